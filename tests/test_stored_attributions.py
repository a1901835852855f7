"""What the reports read instead of recomputing (migration 0010): each poll's village and the visit it rates,
each household's latest visit. Kept right by the real write paths (the visit flow, `poll send`, a poll after a
visit, the roster import), and the reports' figures equal a recomputation from the rows themselves.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot import reports
from bot.flows.poll import send_polls
from bot.flows.visit import VisitFlow
from bot.jobs.outbox import ConsoleSender, OutboxWorker
from bot.roster_files import import_file
from bot.settings import Settings
from storage.db import Database
from storage.models import Cadre, Household, Poll, Village, Visit
from storage.reports import SATISFIED, Area
from storage.visits import cadre_by_code, household_by_code
from survey.facts import GROUP_LABELS, GROUPS
from survey.periods import parse_period
from tests.report_data import Q4, add_poll, add_visit, ctx, hh, local
from tests.test_visit_flow import FULL, SCRIPT, walk

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def deliver(db: Database, at: datetime) -> None:
    """Send every SMS due at `at` through the outbox sender (printed to nowhere): polls count once asked."""
    worker = OutboxWorker(db, ConsoleSender(io.StringIO()), clock=lambda: at)
    while await worker.send_one():
        pass  # 10:00 in Asia/Shanghai, in 2026Q4


VILLAGE = "新华村"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def visit(db: Database, clock: Clock, cadre_code: str, household_code: str) -> int:
    """One full visit through the flow, submitted at the clock's time."""
    flow = VisitFlow(db, SCRIPT, Settings(), clock=clock)
    async with db.session() as s:
        cadre = await cadre_by_code(s, cadre_code)
        household = await household_by_code(s, household_code)
    assert cadre is not None and household is not None
    started = await flow.start(cadre, household, channel="console")
    await walk(flow, started.visit_id, FULL)
    return started.visit_id


async def latest_of(db: Database, code: str) -> int | None:
    async with db.reading() as s:
        query = select(Household.latest_visit_id).where(Household.code == code)
        return (await s.execute(query)).scalar_one()


async def polls_of(db: Database, code: str) -> list[tuple[int, int | None, str]]:
    """(village id, rated visit, period) of the household's polls, oldest first."""
    async with db.reading() as s:
        query = (
            select(Poll.village_id, Poll.visit_id, Poll.period)
            .join(Household, Household.id == Poll.household_id)
            .where(Household.code == code)
            .order_by(Poll.id)
        )
        return [tuple(row) for row in await s.execute(query)]  # type: ignore[misc]


async def village_id(db: Database, name: str) -> int:
    async with db.reading() as s:
        return (await s.execute(select(Village.id).where(Village.name == name))).scalar_one()


async def with_phone(db: Database, village: str, n: int = 0) -> str:
    """The 户编号 of the n-th household of the village that has a phone."""
    async with db.reading() as s:
        query = (
            select(Household.code)
            .join(Village, Village.id == Household.village_id)
            .where(Village.name == village, Household.phone.is_not(None), Household.phone != "")
            .order_by(Household.code)
        )
        return list((await s.execute(query)).scalars())[n]


async def send(db: Database, now: datetime, settings: Settings | None = None, village: str = VILLAGE) -> None:
    async with db.session() as s:
        await send_polls(s, now, settings or Settings(), village=village)


# --- the write paths ---------------------------------------------------------------------------------------


async def test_a_later_visit_is_the_latest_and_the_poll_after_a_visit_rates_that_visit(roster: Database):
    code = await with_phone(roster, VILLAGE)
    clock = Clock(T0)
    first = await visit(roster, clock, "GB001", code)
    assert await latest_of(roster, code) == first
    # the flow queued the villager's poll in the same transaction: it rates the visit just submitted
    assert await polls_of(roster, code) == [(await village_id(roster, VILLAGE), first, "2026Q4")]
    clock.now = T0 + timedelta(days=3)
    second = await visit(roster, clock, "GB002", code)
    assert await latest_of(roster, code) == second
    assert [rated for _, rated, _ in await polls_of(roster, code)] == [first]  # made before the second visit


async def test_a_poll_round_rates_each_households_latest_visit_and_none_where_there_was_none(
    roster: Database,
):
    visited, unvisited = await with_phone(roster, VILLAGE, 0), await with_phone(roster, VILLAGE, 1)
    clock = Clock(T0 - timedelta(days=10))
    await visit(roster, clock, "GB001", visited)
    clock.now = T0 - timedelta(days=2)
    newer = await visit(roster, clock, "GB002", visited)
    # the visits queued this quarter's polls (the default period); the round is December's
    await send(roster, T0 + timedelta(days=15), Settings(poll_period="month"))
    xinhua = await village_id(roster, VILLAGE)
    assert (await polls_of(roster, visited))[-1] == (xinhua, newer, "2026-12")
    assert await polls_of(roster, unvisited) == [(xinhua, None, "2026-12")]


async def test_a_round_made_before_a_visits_time_does_not_rate_that_visit(roster: Database):
    code = await with_phone(roster, VILLAGE)
    await visit(roster, Clock(T0 + timedelta(hours=1)), "GB001", code)  # an hour after the round below
    await send(roster, T0, Settings(poll_period="month"))
    async with roster.reading() as s:
        query = select(Poll.visit_id).join(Household).where(Household.code == code, Poll.period == "2026-11")
        assert (await s.execute(query)).scalars().all() == [None]


async def test_two_visits_at_the_same_instant_the_higher_id_is_the_latest(roster: Database):
    code = await with_phone(roster, VILLAGE)
    flow = VisitFlow(roster, SCRIPT, Settings(), clock=Clock(T0))
    async with roster.session() as s:
        secretary, helper = await cadre_by_code(s, "GB001"), await cadre_by_code(s, "GB002")
        household = await household_by_code(s, code)
    assert secretary and helper and household
    low = await flow.start(secretary, household, channel="console")
    high = await flow.start(helper, household, channel="console")
    assert low.visit_id < high.visit_id
    await walk(flow, high.visit_id, FULL)  # submitted first, queues the poll
    await walk(flow, low.visit_id, FULL)  # the same instant, a lower id
    assert await latest_of(roster, code) == high.visit_id
    assert [rated for _, rated, _ in await polls_of(roster, code)] == [high.visit_id]


async def test_a_visit_stored_with_a_time_before_a_poll_becomes_the_visit_that_poll_rates(roster: Database):
    """A visit synced late (its time earlier than a poll already made) is the visit that poll's answer rates."""
    code = await with_phone(roster, VILLAGE)
    await send(roster, T0)
    assert [rated for _, rated, _ in await polls_of(roster, code)] == [None]
    late = await visit(roster, Clock(T0 - timedelta(hours=2)), "GB001", code)
    assert [rated for _, rated, _ in await polls_of(roster, code)] == [late]
    assert await latest_of(roster, code) == late


async def test_a_household_the_roster_moves_keeps_its_polls_in_the_village_they_went_out_in(
    roster: Database, tmp_path: Path
):
    code = await with_phone(roster, VILLAGE)
    monthly = Settings(poll_period="month")
    await send(roster, T0, monthly)
    path = tmp_path / "households.csv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    column = table[0].index("行政村")
    for row in table[1:]:
        if row[0] == code:
            row[column] = "永安村"  # same township
    moved = tmp_path / "moved.csv"
    with moved.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(table)
    await import_file(roster, "households", moved)
    await send(roster, T0 + timedelta(days=15), monthly, village="永安村")
    await deliver(roster, T0 + timedelta(days=15))
    xinhua, yongan = await village_id(roster, VILLAGE), await village_id(roster, "永安村")
    assert [(v, p) for v, _, p in await polls_of(roster, code)] == [(xinhua, "2026-11"), (yongan, "2026-12")]
    november = await reports.satisfaction(roster, ctx(), "village", parse_period("2026-11"), Area())
    polled = {r["village"]: r["sms_polled"] for r in november.rows[:-1]}
    async with roster.reading() as s:
        sent = len((await s.execute(select(Poll.id).where(Poll.period == "2026-11"))).all())
    assert (polled[VILLAGE], polled["永安村"]) == (sent, 0)  # November's round went out in 新华村 only


# --- the reports against a recomputation from the rows ----------------------------------------------------


async def messy_data(db: Database, rng: random.Random) -> None:
    """Visits and polls in no particular order, all in 2026Q4: visits stored after the polls they precede,
    polls before and after visits, few distinct times (many ties)."""
    times = [local("2026-10-01 09:00") + timedelta(hours=rng.randrange(0, 24 * 80)) for _ in range(6)]
    cadres = ["GB001", "GB002", "GB003", "GB011", "GB027"]
    polled: set[str] = set()
    for _ in range(120):
        household, at = hh(rng.randint(1, 30)), rng.choice(times)
        if rng.random() < 0.45:
            await add_visit(db, household, rng.choice(cadres), at, group=rng.choice(GROUPS), unmet="water")
        elif household not in polled:  # one poll per household per quarter
            polled.add(household)
            await add_poll(
                db, household, at, rng.choice(["满意", "基本满意", "不满意", None]), sent=rng.random() < 0.9
            )


async def recomputed(db: Database, start: datetime, end: datetime) -> dict[str, Counter]:
    """The satisfaction and household figures straight from the rows, in Python."""
    async with db.reading() as s:
        visits = (
            await s.execute(
                select(
                    Visit.id, Visit.household_id, Visit.cadre_id, Visit.submitted_at, Visit.household_group
                ).where(Visit.status == "submitted")
            )
        ).all()
        polls = (
            await s.execute(select(Poll.household_id, Poll.created_at, Poll.asked_at, Poll.rating))
        ).all()
        village_of = dict((await s.execute(select(Household.id, Household.village_id))).all())
    ranked = sorted(visits, key=lambda v: (v.submitted_at, v.id))
    counts: dict[str, Counter] = {"village": Counter(), "cadre": Counter(), "groups": Counter()}
    for household, created, sent, rating in polls:
        if not start <= created < end:
            continue
        before = [v for v in ranked if v.household_id == household and v.submitted_at <= created]
        cadre = before[-1].cadre_id if before else None
        for key, row in (("village", village_of[household]), ("cadre", cadre)):
            counts[key][(row, "asked")] += int(sent is not None or rating is not None)
            counts[key][(row, "answered")] += int(rating is not None)
            counts[key][(row, "satisfied")] += int(rating in SATISFIED)
    latest = {v.household_id: v for v in ranked}  # the last of each household's, in (time, id) order
    counts["groups"].update(v.household_group for v in latest.values())
    return counts


async def test_report_figures_equal_a_recomputation_from_the_rows(roster: Database):
    await messy_data(roster, random.Random(11))
    start, end = Q4.starts_at(ctx().settings.tz), Q4.ends_at(ctx().settings.tz)
    expected = await recomputed(roster, start, end)
    async with roster.reading() as s:
        code_of = dict((await s.execute(select(Cadre.id, Cadre.code))).all())
        name_of = dict((await s.execute(select(Village.id, Village.name))).all())
    by_village = await reports.satisfaction(roster, ctx(), "village", Q4, Area())
    for row in by_village.rows[:-1]:
        vid = next(k for k, name in name_of.items() if name == row["village"])
        assert (row["sms_polled"], row["sms_n"]) == (
            expected["village"][(vid, "asked")],
            expected["village"][(vid, "answered")],
        )
        assert row["sms_rate"] == (
            expected["village"][(vid, "satisfied")] / row["sms_n"] if row["sms_n"] else None
        )
    by_cadre = await reports.satisfaction(roster, ctx(), "cadre", Q4, Area())
    found = {row["cadre_code"]: (row["sms_polled"], row["sms_n"]) for row in by_cadre.rows[:-1]}
    cadres = {k for k, _ in expected["cadre"]}
    wanted = {
        (code_of[c] if c is not None else "（短信前无走访）"): (
            expected["cadre"][(c, "asked")],
            expected["cadre"][(c, "answered")],
        )
        for c in cadres
    }
    assert {k: v for k, v in found.items() if k in wanted} == wanted
    assert all(v == (0, 0) for k, v in found.items() if k not in wanted)  # cadres with recorded visits only
    households = await reports.households(roster, ctx(), None, Area())
    labels = {GROUP_LABELS[g]: n for g, n in expected["groups"].items()}
    assert {r["group"]: r["households"] for r in households.rows[:-1] if r["households"]} == labels
    # and the stored columns themselves
    async with roster.reading() as s:
        stored = (await s.execute(select(Poll.household_id, Poll.created_at, Poll.visit_id))).all()
        visits = (
            await s.execute(
                select(Visit.id, Visit.household_id, Visit.submitted_at).where(Visit.status == "submitted")
            )
        ).all()
    for household, created, rated in stored:
        before = sorted(
            (v.submitted_at, v.id)
            for v in visits
            if v.household_id == household and v.submitted_at <= created
        )
        assert rated == (before[-1][1] if before else None)


async def test_a_year_long_report_reads_the_same_attribution(roster: Database):
    """The stored attribution holds across a period boundary: a Q3 visit owns the Q4 poll it triggered."""
    await add_visit(roster, hh(5), "GB001", local("2026-09-30 16:00"))
    await add_poll(roster, hh(5), local("2026-10-01 10:00"), "满意")
    await add_visit(roster, hh(5), "GB002", local("2026-12-01 10:00"))  # later: not the rated visit
    year = await reports.satisfaction(roster, ctx(), "cadre", parse_period("2026"), Area())
    gb001 = next(r for r in year.rows if r["cadre_code"] == "GB001")
    assert (gb001["sms_n"], gb001["sms_rate"]) == (1, 1.0)
