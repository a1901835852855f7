"""The satisfaction-poll flow: creating polls (`zoufang poll send`, after a visit) and the tick. Replies are
bot.flows.sms's (many at once, in one transaction).

The rules are survey.polls' (a pure state machine); this module only loads a poll, calls the machine, stores
the result and carries out its actions: SMS become outbox rows, problems go on the township queue.

The question counts as sent when its outbox row is due (`send_after`): the outbox sends due rows at once, so
the reminder and expiry clocks start then.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.settings import Settings
from messages import render
from storage.db import AsyncSession, Database, Session
from storage.models import Household, Poll, Township, Village
from storage.outbox import enqueue, is_opted_out
from storage.polls import (
    add_poll,
    apply_state,
    county_name,
    county_names,
    due_polls,
    has_poll,
    households_with_villages,
    insert_polls,
    opted_out_among,
    place_names,
    polled_households,
    to_state,
    townships_named,
    village_ids_of_townships,
    village_name,
    villages_named,
)
from storage.problems import add_sms_problem
from survey import polls as machine
from survey.periods import current_period
from survey.sms_text import segments

TIMINGS = machine.PollTimings()
PROBLEM_CATEGORY = "其他"
CALLBACK_DESCRIPTION = "村民短信回复不满意，未说明原因，需电话回访"


class UnknownArea(ValueError):
    """No township / village of that name: `known` lists the names that exist."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}")
        self.kind, self.name, self.known = kind, name, known


@dataclass
class SendResult:
    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # no_phone / opted_out / already_polled


def render_sms(name: str, locale: str, **params: Any) -> str:
    """An SMS template in one segment where it can be: long county and village names (or English words beside
    Chinese names, which make the whole text UCS-2, 70 units a segment) overflow the full wording, so the
    template's `brief` wording is used then. Villagers get, and pay for, one message."""
    text = render(name, locale, brief=False, **params)
    if segments(text) > 1:
        text = render(name, locale, brief=True, **params)
    return text


def period_label(now: datetime, settings: Settings) -> str:
    return current_period(settings.poll_period, now, settings.tz).label


def quiet_end(at: datetime, settings: Settings) -> datetime:
    """`at`, or the end of the quiet hours when `at` falls inside them."""
    return machine.next_outside_quiet(at, machine.parse_quiet_hours(settings.quiet_hours), settings.tz)


# --------------------------------------------------------------------------- creating polls


def create_poll(
    session: Session,
    household: Household,
    village: str,
    now: datetime,
    settings: Settings,
    send_after: datetime | None = None,
) -> Poll:
    """A poll for this household (the caller checked phone, opt-out and period), its question queued."""
    assert household.phone is not None
    due = quiet_end(send_after or now, settings)
    period = period_label(now, settings)
    row = add_poll(session, household, now, due, period=period, locale=settings.locale)
    poll, actions = machine.new_poll(household.phone, household_id=household.id, poll_id=row.id)
    _carry_out(session, row, village, actions, now, send_at=due)
    apply_state(row, machine.on_sent(poll, due), TIMINGS)
    return row


async def send_polls(
    session: AsyncSession,
    now: datetime,
    settings: Settings,
    *,
    township: str | None = None,
    village: str | None = None,
    dry_run: bool = False,
) -> SendResult:
    """Poll every household of the township or village (roster names) that has a phone and has not opted out."""
    if township is not None:
        townships = await townships_named(session, township)
        if not townships:
            raise UnknownArea("township", township, await place_names(session, Township))
        village_ids = await village_ids_of_townships(session, [t.id for t in townships])
    else:
        assert village is not None
        villages = await villages_named(session, village)
        if not villages:
            raise UnknownArea("village", village, await place_names(session, Village))
        village_ids = [v.id for v in villages]
    households = await households_with_villages(session, village_ids)
    period = period_label(now, settings)
    ids = [h.id for h in households]
    polled: set[int] = set()
    for start in range(0, len(ids), LOOKUP_CHUNK):  # a query takes at most 32,767 values on PostgreSQL
        polled |= await polled_households(session, ids[start : start + LOOKUP_CHUNK], period)
    opted_out = await opted_out_among(session, [h.phone for h in households if h.phone])
    result, chosen = SendResult(), []
    for household in households:
        if not household.phone:
            result.skipped["no_phone"] += 1
        elif household.phone in opted_out:
            result.skipped["opted_out"] += 1
        elif household.id in polled:
            result.skipped["already_polled"] += 1
        else:
            chosen.append(household)
    result.queued = len(chosen)
    if not dry_run:
        await _queue_many(session, chosen, now, settings)
    return result


LOOKUP_CHUNK = 10_000


async def _queue_many(
    session: AsyncSession, households: Sequence[Any], now: datetime, settings: Settings
) -> None:
    """Many polls at once: every new poll is the same but for its household, so the machine runs once and
    storage copies its poll and question to every household (the question in the village's words)."""
    due = quiet_end(now, settings)
    poll, actions = machine.new_poll()
    shape = Poll(period=period_label(now, settings), locale=settings.locale, created_at=now, send_after=due)
    apply_state(shape, machine.on_sent(poll, due), TIMINGS)
    [ask] = actions  # the question, whose text depends only on the village
    names = {h.village_id: h.village for h in households}
    counties = await county_names(session, names)
    bodies = {
        v: render_sms(f"{ask.template}.txt", settings.locale, village=name, county=counties.get(v, ""))
        for v, name in names.items()
    }
    await insert_polls(session, [h.id for h in households], shape, ask.template, bodies, now)


def schedule_after_visit(
    session: Session, household: Household, now: datetime, settings: Settings
) -> Poll | None:
    """A poll the day after a visit, at 10:00 local time (never in quiet hours). Call from VisitFlow._submit
    (sync, in the visit's transaction; async code: `await session.run_sync(schedule_after_visit, …)`).

    None when the household has no phone, has opted out, or already has a poll this period.
    """
    if not household.phone or is_opted_out(session, household.phone):
        return None
    if has_poll(session, household.id, period_label(now, settings)):
        return None
    tomorrow = now.astimezone(settings.tz).date() + timedelta(days=1)
    at = datetime.combine(tomorrow, settings.after_visit_time, tzinfo=settings.tz)
    village = village_name(session, household.village_id)
    return create_poll(session, household, village, now, settings, send_after=at)


# --------------------------------------------------------------------------- time passing


async def tick(db: Database, now: datetime, settings: Settings) -> int:
    """Reminders, expiries and call-backs that are due; returns how many polls changed. Idempotent."""
    return await db.run_orm(lambda s: _tick(s, now, settings))


def _tick(session: Session, now: datetime, settings: Settings) -> int:
    changed = 0
    for row in due_polls(session, now):
        before = to_state(row)
        poll, actions = machine.on_tick(before, now, TIMINGS)
        apply_state(row, poll, TIMINGS)
        if poll == before and not actions:
            continue
        changed += 1
        village = village_name(session, row.village_id)
        _carry_out(session, row, village, actions, now, send_at=quiet_end(now, settings))
    return changed


# --------------------------------------------------------------------------- actions


def _carry_out(
    session: Session,
    row: Poll,
    village: str,
    actions: list[machine.Action],
    now: datetime,
    *,
    send_at: datetime | None = None,
) -> None:
    """A new poll's question and the tick's reminders and thanks become outbox rows (due at `send_at`, else at
    once); a call-back goes on the township queue, linked to the household and the poll. (Replies and the
    opt-outs they carry are bot.flows.sms's.)"""
    county = county_name(session, row.village_id) if row.village_id is not None else ""
    for action in actions:
        if isinstance(action, machine.SendSms):
            body = render_sms(
                f"{action.template}.txt", row.locale, village=village, county=county, **action.params
            )
            enqueue(session, row.phone, body, action.template, now, due=send_at, poll_id=row.id)
        elif isinstance(action, machine.RaiseProblem):
            text = action.text if action.kind == "reason" and action.text else CALLBACK_DESCRIPTION
            assert row.household_id is not None
            row.problem_id = add_sms_problem(session, row.household_id, PROBLEM_CATEGORY, text, now).id
