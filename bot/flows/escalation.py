"""The township queue (escalation.md): secretaries decide, close (销号), merge and reopen; the digest before each
meeting; the minutes after it; the monthly tally; the daily overdue look. Channel-free: Telegram and the CLI call in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from bot.flows.taps import MAX_ID
from messages import render
from storage import problems as store
from storage.db import AsyncSession, Database
from storage.models import Cadre, Problem, Township
from storage.outbox import enqueue
from storage.telegram import chats_of
from survey import problems as machine
from survey.meetings import Calendar
from survey.periods import period_of
from survey.phones import mask_phone
from survey.stats import rate

ACTIONS = ("decide", "close", "merge", "reopen")


class ActionRefused(Exception):
    """A move refused, with the reason's code and values for `messages/templates/<locale>/problems/errors.txt`."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def text(self, locale: str) -> str:
        from messages import error_text

        return error_text(self.code, locale, source="problems/errors.txt", **self.params)


@dataclass(frozen=True)
class Acted:
    item: store.QueueItem
    move: machine.Move


def _actor(cadre: Cadre) -> machine.Actor:
    return machine.Actor(cadre_id=cadre.id, role=cadre.role, township_id=cadre.township_id)


async def act(
    db: Database,
    settings: Any,
    cadre_id: int,
    problem_id: int,
    action: str,
    now: datetime,
    *,
    responsible_id: int | None = None,
    due_days: int | None = None,
    note: str = "",
    into_id: int | None = None,
) -> Acted:
    """One secretary's move on one problem, all in one transaction. A problem the cadre may not see is
    'not found' (nobody learns another township's queue by guessing numbers)."""
    tz = settings.tz
    today = now.astimezone(tz).date()
    if problem_id > MAX_ID:  # nobody's (and past the database's integers: every channel's numbers end here)
        raise ActionRefused("not_found", id=problem_id)
    async with db.session() as s:
        cadre = await s.get(Cadre, cadre_id)
        found = await store.problem_for_update(s, problem_id)
        if cadre is None or found is None:
            raise ActionRefused("not_found", id=problem_id)
        row, township_id = found
        actor = _actor(cadre)
        problem = store.to_machine(row, township_id, tz)
        if not machine.may_view(actor, problem):
            raise ActionRefused("not_found", id=problem_id)
        try:
            changed, move = await _move(
                s,
                actor,
                problem,
                action,
                now,
                today,
                township_id,
                responsible_id,
                due_days,
                note,
                into_id,
                tz,
            )
        except machine.MoveError as refused:
            raise ActionRefused(refused.code, **refused.params) from refused
        store.apply(s, row, changed, move)
        await s.flush()
        item = await store.queue_item(s, problem_id)
    assert item is not None
    return Acted(item, move)


# --- what a secretary sees: the queue, a problem's card, whether a move would be allowed ---------------------


@dataclass(frozen=True)
class QueueView:
    """One page of a cadre's queue: a secretary or specialist sees the township's open problems; anyone else
    the open ones they raised (`mine`)."""

    mine: bool
    count: int
    page: int  # from 0, within range
    pages: int
    items: list[store.QueueItem]
    lines: list[dict[str, Any]]  # each item as the templates show it (its age in days)


async def queue_view(
    db: Database, settings: Any, cadre: Cadre, page: int = 0, page_size: int | None = None
) -> QueueView:
    """That page of the cadre's queue, oldest first (`page_size` None: every open problem on one page)."""
    mine = cadre.role not in machine.QUEUE_ROLES
    raised_by = cadre.id if mine else None
    async with db.reading() as s:
        count = await store.count_open(s, cadre.township_id, raised_by_id=raised_by)
        pages = max(1, -(-count // page_size)) if page_size else 1
        page = min(max(page, 0), pages - 1)
        offset = page * page_size if page_size else 0
        items = await store.queue_items(
            s, cadre.township_id, raised_by_id=raised_by, offset=offset, limit=page_size
        )
    today = datetime.now(settings.tz).date()
    lines = [
        {
            "id": i.id,
            "village": i.village,
            "category": i.category,
            "head": i.head_name,
            "age": (today - i.created_at.astimezone(settings.tz).date()).days,
            "status": i.status,
        }
        for i in items
    ]
    return QueueView(mine, count, page, pages, items, lines)


async def visible(db: Database, settings: Any, cadre: Cadre, problem_id: int) -> tuple[machine.Problem, int]:
    """The problem as the machine sees it, and its township; 'not found' unless the cadre may see it."""
    if problem_id > MAX_ID:  # nobody's (and past the database's integers)
        raise ActionRefused("not_found", id=problem_id)
    async with db.reading() as s:
        row = await s.get(Problem, problem_id)
        township_id = None if row is None else await store.township_of_problem(s, problem_id)
    if row is None or township_id is None:
        raise ActionRefused("not_found", id=problem_id)
    problem = store.to_machine(row, township_id, settings.tz)
    if not machine.may_view(_actor(cadre), problem):
        raise ActionRefused("not_found", id=problem_id)
    return problem, township_id


async def check_move(
    db: Database, settings: Any, cadre: Cadre, problem_id: int, action: str, now: datetime
) -> tuple[machine.Problem, int]:
    """Would the machine allow this move now? A dry run with stand-in values (a note, a target, a due date), so
    a stale or forged button is refused before anyone is asked for a note; `act` checks again for real."""
    problem, township_id = await visible(db, settings, cadre, problem_id)
    actor, today = _actor(cadre), now.astimezone(settings.tz).date()
    try:
        if action == "decide":
            async with db.reading() as s:
                calendar = await store.calendar_of(s, township_id)
            due = today + timedelta(days=max(machine.DUE_CHOICES_DAYS))
            machine.decide(
                problem, actor, responsible_id=cadre.id, due_on=due, at=now, today=today, calendar=calendar
            )
        elif action == "close":
            machine.close(problem, actor, note="-", at=now)
        elif action == "reopen":
            machine.reopen(problem, actor, note="-", at=now, today=today)
        elif action == "merge":
            stand_in = replace(problem, id=0, state="escalated")
            machine.merge(problem, actor, into=stand_in, at=now)
    except machine.MoveError as refused:
        raise ActionRefused(refused.code, **refused.params) from refused
    return problem, township_id


@dataclass(frozen=True)
class Card:
    """A problem as its card shows it: the text, the problem, and whether the viewer may move it."""

    text: str
    problem: machine.Problem
    may_act: bool


async def card(
    db: Database, settings: Any, cadre: Cadre, problem_id: int, locale: str, done: str | None = None
) -> Card:
    """The problem's details, decision and history (`done`: the move just made, said first)."""
    problem, township_id = await visible(db, settings, cadre, problem_id)
    tz = settings.tz
    today = datetime.now(tz).date()
    async with db.reading() as s:
        item = await store.queue_item(s, problem_id)
        events = await store.events_of(s, problem_id)
        calendar = await store.calendar_of(s, township_id)
    assert item is not None
    created = item.created_at.astimezone(tz).date()
    text = render(
        "problems/telegram_problem.txt",
        locale,
        item=item,
        phone=mask_phone(item.phone) if item.phone else "",
        created=created,
        age=(today - created).days,
        agenda=machine.agenda_meeting(problem, today, calendar),
        events=[_event(event, name, tz) for event, name in events],
        done=done,
    )
    return Card(text, problem, machine.may_act(_actor(cadre), problem))


def _event(event: Any, actor: str | None, tz: Any) -> dict[str, Any]:
    return {
        "day": event.at.astimezone(tz).date(),
        "action": event.action,
        "actor": actor,
        "note": event.note,
        "due_on": event.due_on,
    }


async def _move(
    s: AsyncSession,
    actor: machine.Actor,
    problem: machine.Problem,
    action: str,
    now: datetime,
    today: date,
    township_id: int,
    responsible_id: int | None,
    due_days: int | None,
    note: str,
    into_id: int | None,
    tz: Any,
) -> tuple[machine.Problem, machine.Move]:
    if action == "decide":
        if due_days not in machine.DUE_CHOICES_DAYS:
            raise machine.MoveError("bad_due", choices="/".join(map(str, machine.DUE_CHOICES_DAYS)))
        if responsible_id not in {c.id for c in await store.township_cadres(s, township_id)}:
            raise machine.MoveError("responsible_elsewhere")
        calendar = await store.calendar_of(s, township_id)
        return machine.decide(
            problem,
            actor,
            responsible_id=responsible_id,
            due_on=today + timedelta(days=due_days),  # type: ignore[arg-type]
            at=now,
            today=today,
            calendar=calendar,
            note=note or None,
        )
    if action == "close":
        return machine.close(problem, actor, note=note, at=now)
    if action == "reopen":
        return machine.reopen(problem, actor, note=note, at=now, today=today)
    if action == "merge":
        known = into_id is not None and into_id <= MAX_ID
        target = await store.problem_for_update(s, into_id) if known else None
        if target is None or target[1] != township_id:  # another township's problem: not confirmed to exist
            raise machine.MoveError("not_found", id=into_id)
        into = store.to_machine(target[0], target[1], tz)
        return machine.merge(problem, actor, into=into, at=now)
    raise machine.MoveError("unknown_action", action=action)


async def daily_check(db: Database, settings: Any, now: datetime) -> int:
    """Overdue and county moves for the day (idempotent: a moved problem is not moved again)."""
    async with db.session() as s:
        return await check_day(s, settings, now)


async def check_day(s: AsyncSession, settings: Any, now: datetime) -> int:
    """`daily_check` in the caller's transaction (the scheduler records its job row in the same one)."""
    tz = settings.tz
    today = now.astimezone(tz).date()
    moved = 0
    calendars: dict[int, Calendar] = {}
    for row, township_id in await store.due_for_daily_check(s, today):
        if township_id not in calendars:
            calendars[township_id] = await store.calendar_of(s, township_id)
        problem = store.to_machine(row, township_id, tz)
        for changed, move in machine.on_day(problem, now, today, calendars[township_id]):
            store.apply(s, row, changed, move)
            moved += 1
    return moved


# --- the digest -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    township: str
    meeting: date
    today: date
    new: int
    open: int
    overdue: int
    closed_in_month: int
    on_site_in_month: int  # resolved on the spot during visits this month: not in `resolution`
    month: str
    resolution: Any  # survey.stats.Rate over this month's closed + still open
    villages: list[tuple[str, list[dict[str, Any]]]]


async def build_digest(
    db: Database, settings: Any, township: Township, now: datetime, meeting: date | None = None
) -> Digest:
    """What the secretary and the specialist read before the next meeting (or before `meeting`)."""
    tz = settings.tz
    today = now.astimezone(tz).date()
    async with db.reading() as s:
        calendar = Calendar.parse(township.meeting_days)
        meeting = meeting or calendar.next_on_or_after(today)
        last = calendar.latest_on_or_before(today - timedelta(days=1)) or today
        month = period_of("month", today)
        counts = await store.tally(
            s,
            township.id,
            datetime.combine(last, datetime.min.time(), tz),
            month.starts_at(tz),
            month.ends_at(tz),
        )
        items = await store.queue_items(s, township.id)
        on_site = await store.resolved_on_site_between(s, township.id, month.starts_at(tz), month.ends_at(tz))
    return Digest(
        township=township.name,
        meeting=meeting,
        today=today,
        new=counts.new,
        open=counts.open,
        overdue=counts.overdue,
        closed_in_month=counts.closed_in_month,
        on_site_in_month=on_site,
        month=month.label,
        resolution=rate(counts.closed_in_month, counts.closed_in_month + counts.open),
        villages=_by_village(items, today, tz),
    )


def _by_village(
    items: Sequence[store.QueueItem], today: date, tz: Any
) -> list[tuple[str, list[dict[str, Any]]]]:
    villages: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        villages.setdefault(item.village, []).append(
            {
                "id": item.id,
                "age": (today - item.created_at.astimezone(tz).date()).days,
                "category": item.category,
                "description": item.description,
                "household": item.household_code,
                "head": item.head_name,
                "phone": mask_phone(item.phone) if item.phone else "",
                "source": item.source,
                "raised_by": item.raised_by,
                "status": item.status,
                "responsible": item.responsible,
                "due_on": item.due_on,
            }
        )
    return sorted(villages.items())


def digest_text(digest: Digest, locale: str, fmt: str = "md") -> str:
    return render(f"problems/digest.{fmt}", locale, d=digest)


def digest_sms(digest: Digest, locale: str, telegram: bool = True, specialist: bool = False) -> str:
    """The one-segment summary; it points to Telegram only for someone who has it there, and tells the
    secretary to ask the specialist for the list, the specialist (扶贫专干) to have it ready."""
    return render("problems/digest_sms.txt", locale, d=digest, telegram=telegram, specialist=specialist)


async def queue_digest(
    db: Database, settings: Any, township: Township, now: datetime, chats: dict[int, int]
) -> int:
    """Put the digest in the outbox for the township's secretary and specialist: Telegram (HTML) where they are
    registered (`chats`: cadre id → chat id), and a one-segment SMS summary to each. Returns the rows queued."""
    digest = await build_digest(db, settings, township, now)
    async with db.session() as s:
        return await enqueue_digest(s, settings, digest, township.id, now, chats)


async def enqueue_digest(
    s: AsyncSession,
    settings: Any,
    digest: Digest,
    township_id: int,
    now: datetime,
    chats: dict[int, int] | None = None,
) -> int:
    """`queue_digest`'s writes in the caller's transaction; `chats` are looked up when not given."""
    recipients = await store.digest_recipients(s, township_id)
    if chats is None:
        chats = await chats_of(s, [c.id for c in recipients])
    queued = 0
    for cadre in recipients:
        locale = cadre.locale or settings.locale
        if cadre.id in chats:
            text = render("problems/digest_telegram.html", locale, d=digest)
            await s.run_sync(enqueue, str(chats[cadre.id]), text, "digest", now, "telegram")
            queued += 1
        await s.run_sync(
            enqueue,
            cadre.phone,
            digest_sms(digest, locale, cadre.id in chats, specialist=cadre.role == "扶贫专干"),
            "digest/sms",
            now,
        )
        queued += 1
    return queued
