"""The satisfaction-poll flow end to end: `poll send` → outbox rows; replies through the real, signed Twilio
webhook (the app's SMS clock); time passing through `tick` on a clock the test holds."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

import bot.channels.twilio
from bot.app import INBOUND_WRITER
from bot.flows.poll import (
    CALLBACK_DESCRIPTION,
    UnknownArea,
    schedule_after_visit,
    send_polls,
    tick,
)
from bot.settings import Settings
from messages import render
from storage.db import Database
from storage.models import County, Household, OptOut, OutboxMessage, Poll, Problem, ProcessedUpdate, Village
from storage.outbox import opt_out
from survey.polls import next_outside_quiet, parse_quiet_hours
from survey.sms_text import segments, utf16_units
from tests.cli_support import clean_env, ok, zoufang_process
from tests.test_sms_webhooks import SMS_INBOUND, Clock, client_for, inbound, post, sms_settings

VILLAGE = "新华村"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
POLL_TEMPLATES = ("ask", "reminder", "clarify", "ask_reason", "thanks")


@pytest.fixture
def settings() -> Settings:
    return sms_settings()


@pytest.fixture
def clock() -> Clock:
    return Clock()  # starts at T0


@pytest.fixture
async def client(roster: Database, settings: Settings, clock: Clock):
    async with await client_for(roster, settings, clock) as test_client:
        yield test_client


@pytest.fixture
async def phone(roster: Database) -> str:
    """A 新华村 household's phone."""
    async with roster.reading() as s:
        query = (
            select(Household.phone)
            .join(Village, Household.village_id == Village.id)
            .where(Village.name == VILLAGE, Household.phone.is_not(None), Household.phone != "")
            .order_by(Household.id)
        )
        return (await s.execute(query.limit(1))).scalar_one()


async def send(db: Database, settings: Settings, now: datetime = T0, **area: object):
    async with db.session() as s:
        return await send_polls(s, now, settings, **({"village": VILLAGE} | area))  # type: ignore[arg-type]


async def reply(client: TestClient, phone: str, body: str) -> None:
    assert (await post(client, SMS_INBOUND, inbound(phone, body))).status == 200


async def poll_of(db: Database, phone: str) -> Poll:
    async with db.reading() as s:
        query = select(Poll).where(Poll.phone == phone).order_by(Poll.id.desc()).limit(1)
        return (await s.execute(query)).scalar_one()


async def kinds(db: Database, phone: str) -> list[str]:
    async with db.reading() as s:
        query = select(OutboxMessage.kind).where(OutboxMessage.to == phone).order_by(OutboxMessage.id)
        return list((await s.execute(query)).scalars())


async def rows(db: Database, model: type) -> int:
    async with db.reading() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def problems(db: Database) -> list[Problem]:
    async with db.reading() as s:
        return list((await s.execute(select(Problem).order_by(Problem.id))).scalars())


# --------------------------------------------------------------------------- sending


async def test_send_polls_every_household_with_a_phone_once_per_period(roster: Database, settings: Settings):
    first = await send(roster, settings)
    assert first.queued > 0
    async with roster.reading() as s:
        messages = (await s.execute(select(OutboxMessage))).scalars().all()
    assert len(messages) == first.queued == await rows(roster, Poll)
    assert {m.kind for m in messages} == {"poll/ask"}
    for m in messages:
        assert VILLAGE in m.body and "回复1满意 2基本满意 3不满意" in m.body and "回复TD退订" in m.body
        assert segments(m.body) == 1 and utf16_units(m.body) <= 70
    again = await send(roster, settings, T0 + timedelta(days=3))
    assert again.queued == 0 and again.skipped["already_polled"] == first.queued
    assert await rows(roster, OutboxMessage) == first.queued
    poll = (await send(roster, settings, township="东风镇", dry_run=True)).skipped["already_polled"]
    assert poll == first.queued  # the township covers the village


async def test_poll_sms_names_the_county_office_first(roster: Database, settings: Settings):
    """Issue 16: the poll SMS named no sender and villagers ignore unsigned SMS: it opens with 【<县>扶贫办】,
    the county of the household's village in the roster (English: [<county> Poverty Office])."""
    await send(roster, settings)
    async with roster.reading() as s:
        bodies = list((await s.execute(select(OutboxMessage.body))).scalars())
        counties = set((await s.execute(select(County.name))).scalars())
    assert bodies
    for body in bodies:
        assert any(body.startswith(f"【{county}扶贫办】") for county in counties), body
    english = render("poll/ask.txt", "en", village="Xinhua", county="Shifan County")
    assert english.startswith("[Shifan County Poverty Office] ")


async def test_templates_fit_one_segment_with_the_longest_village_name(roster: Database):
    async with roster.reading() as s:
        names = list((await s.execute(select(Village.name))).scalars())
    longest = max(names, key=len)
    for village in (longest, "一二三四五六七八九十"):
        for county in (
            "示范县",
            "阿克塞哈萨克族自治县",
        ):  # the question and reminder are signed by the county office
            for template in POLL_TEMPLATES:
                body = render(f"poll/{template}.txt", "zh_CN", village=village, county=county)
                assert segments(body) == 1 and utf16_units(body) <= 70, (template, body)
    for template in POLL_TEMPLATES:
        assert render(f"poll/{template}.txt", "en", village="Xinhua", county="Shifan County")


async def test_dry_run_counts_and_queues_nothing(roster: Database, settings: Settings):
    async with roster.session() as s:
        households = (
            await s.execute(
                select(Household).join(Village).where(Village.name == VILLAGE).order_by(Household.id)
            )
        ).scalars()
        households = list(households)
        with_phone = [h for h in households if h.phone]
        without = len(households) - len(with_phone)
        assert without >= 1, "the demo roster has households without a phone"
        await opt_out(s, with_phone[0].phone, "reply", T0)
    result = await send(roster, settings, dry_run=True)
    assert result.queued == len(with_phone) - 1
    assert result.skipped == {"no_phone": without, "opted_out": 1}
    assert await rows(roster, OutboxMessage) == 0 and await rows(roster, Poll) == 0


async def test_unknown_area_lists_what_exists(roster: Database, settings: Settings):
    with pytest.raises(UnknownArea) as caught:
        await send(roster, settings, village="无此村")
    assert VILLAGE in caught.value.known
    with pytest.raises(UnknownArea) as caught:
        await send(roster, settings, village=None, township="无此镇")
    assert "东风镇" in caught.value.known


# --------------------------------------------------------------------------- replies


async def test_reply_1_is_satisfied_and_thanked(client: TestClient, roster: Database, settings, phone):
    await send(roster, settings)
    await reply(client, phone, "1")
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating, poll.due_at) == ("answered", "满意", None)
    assert await kinds(roster, phone) == ["poll/ask", "poll/thanks"]
    await reply(client, phone, "3")  # after the poll: nothing more
    assert await kinds(roster, phone) == ["poll/ask", "poll/thanks"]


async def test_reply_3_then_reason_raises_a_linked_problem(client, roster: Database, settings, phone):
    await send(roster, settings)
    await reply(client, phone, "3")
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating) == ("awaiting_reason", "不满意")
    assert await kinds(roster, phone) == ["poll/ask", "poll/ask_reason"]
    await reply(client, phone, "路灯坏了半年没人修")
    poll = await poll_of(roster, phone)
    [problem] = await problems(roster)
    assert (problem.source, problem.category, problem.status) == ("sms", "其他", "escalated")
    assert problem.description == "路灯坏了半年没人修" and problem.raised_by_id is None
    assert problem.household_id == poll.household_id and poll.problem_id == problem.id
    assert (poll.state, poll.reason) == ("answered", "路灯坏了半年没人修")
    assert await kinds(roster, phone) == ["poll/ask", "poll/ask_reason", "poll/thanks"]


async def test_a_5000_character_reason_is_accepted_and_cut_to_twilios_limit(client, roster, settings, phone):
    await send(roster, settings)
    await reply(client, phone, "3")
    await reply(client, phone, "路" * 5000)
    [problem] = await problems(roster)
    assert problem.description == "路" * 1600
    assert (await poll_of(roster, phone)).reason == "路" * 1600


async def test_3_without_reason_becomes_a_call_back_after_48_hours(client, roster, settings, phone, clock):
    await send(roster, settings)
    await reply(client, phone, "3")
    await tick(roster, T0 + timedelta(hours=47), settings)
    assert await problems(roster) == []
    for _ in range(2):  # idempotent
        await tick(roster, T0 + timedelta(hours=48, minutes=1), settings)
    [problem] = await problems(roster)
    assert problem.description == CALLBACK_DESCRIPTION and problem.source == "sms"
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.callback, poll.problem_id, poll.due_at) == ("answered", True, problem.id, None)
    assert await kinds(roster, phone) == ["poll/ask", "poll/ask_reason", "poll/thanks"]


async def test_no_reply_reminds_once_then_expires(roster: Database, settings: Settings, phone: str):
    await send(roster, settings)
    for hours in (1, 47, 48, 49, 100, 48, 167):
        await tick(roster, T0 + timedelta(hours=hours), settings)
    assert await kinds(roster, phone) == ["poll/ask", "poll/reminder"]
    poll = await poll_of(roster, phone)
    assert poll.state == "reminded"
    await tick(roster, T0 + timedelta(days=7), settings)
    await tick(roster, T0 + timedelta(days=8), settings)
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating, poll.closed_at, poll.due_at) == (
        "expired",
        None,
        T0 + timedelta(days=7),
        None,
    )
    assert await kinds(roster, phone) == ["poll/ask", "poll/reminder"]


async def test_unclear_twice_closes_as_unclear_with_thanks_and_no_third_question(
    client, roster, settings, phone
):
    await send(roster, settings)
    await reply(client, phone, "一般")
    assert (await poll_of(roster, phone)).state == "clarifying"
    await reply(client, phone, "还行")
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating, poll.clarified) == ("unclear", None, True)
    assert await kinds(roster, phone) == ["poll/ask", "poll/clarify", "poll/thanks"]


async def test_td_mid_poll_opts_out_and_later_sends_skip_it_until_resubscribed(
    client, roster: Database, settings: Settings, phone: str
):
    await send(roster, settings)
    await reply(client, phone, "TD")
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.due_at) == ("opted_out", None)
    assert await rows(roster, OptOut) == 1
    await tick(roster, T0 + timedelta(days=3), settings)  # no reminder to an opted-out number
    assert await kinds(roster, phone) == ["poll/ask", "poll/opted_out"]
    next_quarter = T0 + timedelta(days=60)
    result = await send(roster, settings, next_quarter)
    assert result.skipped["opted_out"] == 1
    assert await kinds(roster, phone) == ["poll/ask", "poll/opted_out"]
    await reply(client, phone, "订阅")
    assert await rows(roster, OptOut) == 0
    later = await send(roster, settings, next_quarter + timedelta(days=1))
    assert later.queued == 1 and later.skipped["opted_out"] == 0
    assert await kinds(roster, phone) == ["poll/ask", "poll/opted_out", "poll/opted_in", "poll/ask"]


async def test_td_while_the_reason_is_awaited_keeps_the_rating_and_calls_back(
    client, roster, settings, phone
):
    await send(roster, settings)
    await reply(client, phone, "3")
    await reply(client, phone, "退订")
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating, poll.callback) == ("answered", "不满意", True)
    [problem] = await problems(roster)
    assert problem.description == CALLBACK_DESCRIPTION and poll.problem_id == problem.id


# --------------------------------------------------------------------------- quiet hours and scheduling


async def due_times(db: Database) -> set[datetime]:
    async with db.reading() as s:
        return set((await s.execute(select(OutboxMessage.next_attempt_at))).scalars())


async def test_a_poll_sent_at_22_is_due_at_08_next_day(roster: Database, settings: Settings):
    at_22 = datetime(2026, 11, 20, 22, 0, tzinfo=SHANGHAI)
    result = await send(roster, settings, at_22)
    assert result.queued > 0
    assert await due_times(roster) == {datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)}


async def test_reminders_wait_for_the_end_of_quiet_hours(roster: Database, settings: Settings, phone: str):
    await send(roster, replace(settings, quiet_hours=""), datetime(2026, 11, 20, 22, 0, tzinfo=SHANGHAI))
    await tick(roster, datetime(2026, 11, 22, 22, 30, tzinfo=SHANGHAI), settings)
    async with roster.reading() as s:
        query = select(OutboxMessage.next_attempt_at).where(
            OutboxMessage.to == phone, OutboxMessage.kind == "poll/reminder"
        )
        assert (await s.execute(query)).scalar_one() == datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI)


async def test_schedule_after_visit_is_due_next_day_at_10(roster: Database, settings: Settings):
    async with roster.session() as s:
        households = list((await s.execute(select(Household).order_by(Household.id))).scalars())
        with_phone = next(h for h in households if h.phone)
        without = next(h for h in households if not h.phone)
        at_23 = datetime(2026, 11, 20, 23, 30, tzinfo=SHANGHAI)
        poll = await s.run_sync(schedule_after_visit, with_phone, at_23, settings)
        assert poll is not None and poll.period == "2026Q4"
        assert await s.run_sync(schedule_after_visit, with_phone, at_23, settings) is None  # one per period
        assert await s.run_sync(schedule_after_visit, without, at_23, settings) is None
    assert await due_times(roster) == {datetime(2026, 11, 21, 10, 0, tzinfo=SHANGHAI)}


QUIET = parse_quiet_hours("21:00-08:00")


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 11, 20, 20, 59), datetime(2026, 11, 20, 20, 59)),
        (datetime(2026, 11, 20, 21, 0), datetime(2026, 11, 21, 8, 0)),
        (datetime(2026, 11, 20, 23, 59), datetime(2026, 11, 21, 8, 0)),
        (datetime(2026, 11, 21, 0, 0), datetime(2026, 11, 21, 8, 0)),
        (datetime(2026, 11, 21, 7, 59), datetime(2026, 11, 21, 8, 0)),
        (datetime(2026, 11, 21, 8, 0), datetime(2026, 11, 21, 8, 0)),
        (datetime(2026, 12, 31, 22, 0), datetime(2027, 1, 1, 8, 0)),
    ],
)
def test_next_outside_quiet_hours_at_the_boundaries(local: datetime, expected: datetime):
    at = local.replace(tzinfo=SHANGHAI).astimezone(UTC)
    got = next_outside_quiet(at, QUIET, SHANGHAI)
    assert got == expected.replace(tzinfo=SHANGHAI) and got.tzinfo == UTC


def test_quiet_hours_settings():
    assert parse_quiet_hours(" 21:00 - 08:00 ") == (time(21, 0), time(8, 0))
    assert parse_quiet_hours("") is None
    at = datetime(2026, 11, 20, 13, 0, tzinfo=SHANGHAI)
    assert next_outside_quiet(at, None, SHANGHAI) == at
    assert next_outside_quiet(at, parse_quiet_hours("12:00-14:00"), SHANGHAI) == at.replace(hour=14)
    with pytest.raises(ValueError):
        parse_quiet_hours("9pm")


# --------------------------------------------------------------------------- the command


def test_cli_poll_send_dry_run(roster: Database, db_path: Path, tmp_path: Path):
    """`zoufang poll send` in real processes (its end-to-end test)."""
    env = clean_env(tmp_path, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    result = ok(zoufang_process(tmp_path, "poll", "send", "--village", VILLAGE, "--dry-run", env=env))
    assert "将发送" in result.stdout and "无电话" in result.stdout and "未排队" in result.stdout
    unknown = zoufang_process(tmp_path, "poll", "send", "--village", "无此村", env=env)
    assert unknown.returncode == 1 and VILLAGE in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


async def test_the_poll_period_is_a_setting(roster: Database):
    """One poll per household per period: December is a new period by month, not by quarter."""
    from dataclasses import replace as replaced
    from datetime import UTC, datetime

    from bot.flows.poll import send_polls

    november, december = datetime(2026, 11, 20, 3, 0, tzinfo=UTC), datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    by_quarter, by_month = (
        replaced(Settings(), poll_period="quarter"),
        replaced(Settings(), poll_period="month"),
    )
    async with roster.session() as s:
        assert (await send_polls(s, november, by_quarter, village="新华村")).queued > 0
        assert (await send_polls(s, december, by_quarter, village="新华村")).queued == 0  # same quarter
    async with roster.session() as s:
        assert (await send_polls(s, december, by_month, village="新华村")).queued > 0  # a new month


# --------------------------------------------------------------------------- many at once, and when the database is away


async def village_phones(db: Database) -> list[str]:
    async with db.reading() as s:
        query = select(Poll.phone).where(Poll.state == "sent").order_by(Poll.id)
        return list((await s.execute(query)).scalars())


async def stored_sids(db: Database) -> set[str]:
    async with db.reading() as s:
        return set((await s.execute(select(ProcessedUpdate.external_id))).scalars())


async def test_a_burst_of_replies_is_stored_once_each_in_few_transactions(client, roster, settings):
    await send(roster, settings)
    phones = await village_phones(roster)
    forms = [inbound(phone, "1") for phone in phones]
    resent = forms[:5]  # Twilio retrying, while the first delivery may still be in flight
    responses = await asyncio.gather(*(post(client, SMS_INBOUND, f) for f in [*forms, *resent]))
    assert [r.status for r in responses] == [200] * (len(forms) + len(resent))
    async with roster.reading() as s:
        states = list((await s.execute(select(Poll.state, Poll.rating).where(Poll.phone.in_(phones)))).all())
    assert states == [("answered", "满意")] * len(phones)
    assert await stored_sids(roster) == {f["MessageSid"] for f in forms}
    thanks = [k for phone in phones for k in await kinds(roster, phone) if k == "poll/thanks"]
    assert len(thanks) == len(phones)  # each poll thanked once, the resends changed nothing
    writer = client.server.app[INBOUND_WRITER]
    assert writer.items == len(forms) + len(resent) and writer.batches < writer.items


async def give_up_after(db: Database, ms: int) -> None:
    """The database thread's connection waits at most `ms` for another writer's lock (5 s otherwise)."""
    await db.run(lambda conn: conn.exec_driver_sql(f"PRAGMA busy_timeout={ms}"))


def lock(path: Path) -> sqlite3.Connection:
    """Another process's write transaction on the database file, held until closed."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


async def test_a_locked_database_answers_503_keeps_nothing_and_the_retry_is_applied_once(
    roster: Database, db_path: Path, settings, clock, phone
):
    await send(roster, settings)
    await give_up_after(roster, 200)
    async with await client_for(roster, settings, clock) as client:
        form = inbound(phone, "3 路没修")
        holder = await asyncio.to_thread(lock, db_path)  # in a thread: the app must go on meanwhile
        response = await post(client, SMS_INBOUND, form)
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        holder.close()
        assert form["MessageSid"] not in await stored_sids(roster)
        assert (await poll_of(roster, phone)).state == "sent"  # nothing of it kept
        for _ in range(2):  # Twilio's retry, once the database is back (no restart), then a second one
            assert (await post(client, SMS_INBOUND, form)).status == 200
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating, poll.reason) == ("answered", "不满意", "路没修")
    assert [p.description for p in await problems(roster)] == ["路没修"]


async def test_beyond_the_waiting_limit_replies_get_503_at_once_and_every_200_is_stored(
    roster: Database, db_path: Path, settings, clock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(bot.channels.twilio, "INBOUND_MAX_PENDING", 2)
    await send(roster, settings)
    phones = (await village_phones(roster))[:6]
    async with await client_for(roster, settings, clock) as client:
        holder = await asyncio.to_thread(lock, db_path)  # in a thread: the app must go on meanwhile
        forms = [inbound(p, "2") for p in phones]
        tasks = [asyncio.create_task(post(client, SMS_INBOUND, f)) for f in forms]
        await asyncio.sleep(0.5)
        early = [t.result().status for t in tasks if t.done()]
        holder.close()
        statuses = [(await t).status for t in tasks]
    assert early and set(early) == {503}  # refused while the database was still locked
    assert statuses.count(503) >= 1 and set(statuses) <= {200, 503} and 200 in statuses
    stored = await stored_sids(roster)
    for form, status in zip(forms, statuses, strict=True):
        assert (form["MessageSid"] in stored) == (status == 200)


async def test_polls_queued_for_the_morning_count_as_asked_only_once_their_sms_has_left(
    roster: Database, settings: Settings
):
    """A round queued in the evening goes out at 08:00 (quiet hours): the evening's report must not count those
    polls as asked (the response rate read 0 % of all of them), and they count once the sender has sent them."""
    import io

    from bot import reports
    from bot.jobs.outbox import ConsoleSender, OutboxWorker
    from storage.reports import Area
    from survey.periods import parse_period
    from tests.report_data import ctx

    evening = datetime(2026, 11, 20, 22, 30, tzinfo=SHANGHAI)
    queued = (await send(roster, settings, evening.astimezone(UTC))).queued
    assert queued > 0

    async def asked() -> int:
        report = await reports.satisfaction(roster, ctx(), "village", parse_period("2026Q4"), Area())
        return sum(r["sms_polled"] for r in report.rows if r.get("village") == VILLAGE)

    assert await asked() == 0  # nothing has left yet
    morning = datetime(2026, 11, 21, 8, 1, tzinfo=SHANGHAI)
    worker = OutboxWorker(roster, ConsoleSender(io.StringIO()), clock=lambda: evening)
    assert not await worker.send_one()  # not due in the evening
    worker.clock = lambda: morning
    for _ in range(queued - 1):
        assert await worker.send_one()
    assert await asked() == queued - 1  # each as its SMS leaves, not before
    assert await worker.send_one()
    assert await asked() == queued
    async with roster.reading() as s:
        stamps = set((await s.execute(select(Poll.asked_at).where(Poll.village_id.is_not(None)))).scalars())
        linked = (
            await s.execute(select(func.count()).where(OutboxMessage.poll_id.is_not(None)))
        ).scalar_one()
    assert stamps == {morning} and linked == queued


async def test_a_poll_after_a_visit_is_linked_to_its_question_and_asked_when_it_leaves(roster: Database):
    import io

    from bot.jobs.outbox import ConsoleSender, OutboxWorker

    settings = sms_settings()
    async with roster.session() as s:
        household = (
            await s.execute(select(Household).where(Household.phone.is_not(None)).limit(1))
        ).scalar_one()
        poll = await s.run_sync(schedule_after_visit, household, T0, settings)
        assert poll is not None
        poll_id = poll.id
    async with roster.reading() as s:
        message = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "poll/ask"))
        ).scalar_one()
    assert message.poll_id == poll_id
    worker = OutboxWorker(roster, ConsoleSender(io.StringIO()), clock=lambda: T0 + timedelta(days=1, hours=1))
    assert await worker.send_one()
    async with roster.reading() as s:
        asked_at = (await s.execute(select(Poll.asked_at).where(Poll.id == poll_id))).scalar_one()
    assert asked_at == T0 + timedelta(days=1, hours=1)


async def test_an_english_poll_sms_with_chinese_names_is_one_segment(roster: Database):
    """Issue 16: English words beside Chinese county and village names make the SMS UCS-2 (70 units a segment):
    the full English wording took 3 segments. The brief wording is used when the full one overflows."""
    english = replace(sms_settings(), locale="en")
    assert (await send(roster, english)).queued > 0
    async with roster.reading() as s:
        bodies = list((await s.execute(select(OutboxMessage.body))).scalars())
    for body in bodies:
        assert body.startswith("[示范县] 新华村:") and "1 yes 2 fairly 3 no" in body and "TD" in body
        assert segments(body) == 1, (utf16_units(body), body)
    full = render("poll/ask.txt", "en", county="", village="Xinhua", brief=False)
    assert (
        full.startswith("Xinhua: are you satisfied") and segments(full) == 1
    )  # ASCII names: the full wording
