"""Problems on the township queue: rows ↔ survey.problems, every move applied with its event, and the reads
behind the digest, the minutes, the tally and the secretaries' queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage import audit
from storage.models import Cadre, Household, Problem, ProblemEvent, Township, Village
from storage.reports import count_where
from survey import problems as machine
from survey.meetings import Calendar


def creation_values(problem_id: int, problem: Mapping[str, Any]) -> dict[str, Any]:
    """The first move of a new problem (its columns as a mapping): resolved on site, or escalated to the
    township queue. Core inserts of many problems at once (inbound SMS) use it directly."""
    closed = problem["status"] == "closed"
    return {
        "problem_id": problem_id,
        "at": problem["created_at"],
        "actor_id": problem["raised_by_id"],
        "action": "resolve_on_site" if closed else "escalate",
        "from_state": "raised",
        "to_state": problem["status"],
        "note": problem["resolution"] if closed else None,
    }


def creation_event(problem: Problem) -> ProblemEvent:
    columns = ("status", "created_at", "raised_by_id", "resolution")
    return ProblemEvent(**creation_values(problem.id, {c: getattr(problem, c) for c in columns}))


def sms_problem_values(household_id: int, category: str, description: str, now: datetime) -> dict[str, Any]:
    """A problem a villager's SMS raised (a reason for 不满意, or a call-back owed): nobody settled it on the
    spot, so it goes on the township queue at once."""
    return {
        "household_id": household_id,
        "visit_id": None,
        "raised_by_id": None,
        "source": "sms",
        "category": category,
        "description": description,
        "resolved_on_site": False,
        "resolution": None,
        "status": "escalated",
        "created_at": now,
        "escalated_at": now,
    }


def add_sms_problem(
    session: Session, household_id: int, category: str, description: str, now: datetime
) -> Problem:
    """The same problem as an ORM row with its creation event, in the caller's (sync) transaction."""
    problem = Problem(**sms_problem_values(household_id, category, description, now))
    session.add(problem)
    session.flush()
    session.add(creation_event(problem))
    return problem


def to_machine(row: Problem, township_id: int, tz: ZoneInfo) -> machine.Problem:
    return machine.Problem(
        id=row.id,
        township_id=township_id,
        state=row.status,  # type: ignore[arg-type]
        raised_by_id=row.raised_by_id,
        escalated_on=None if row.escalated_at is None else row.escalated_at.astimezone(tz).date(),
        responsible_id=row.responsible_id,
        due_on=row.due_on,
        meeting_on=row.meeting_on,
        resolution=row.resolution,
        merged_into_id=row.merged_into_id,
        overdue_on=row.overdue_on,
    )


def apply(session: AsyncSession, row: Problem, changed: machine.Problem, move: machine.Move) -> ProblemEvent:
    """Write a move: the row takes the machine's state and the event is added, in the caller's transaction."""
    row.status = changed.state
    row.responsible_id = changed.responsible_id
    row.due_on = changed.due_on
    row.meeting_on = changed.meeting_on
    row.resolution = changed.resolution
    row.merged_into_id = changed.merged_into_id
    row.overdue_on = changed.overdue_on
    if move.action == "decide":
        row.decided_at = move.at
    if move.action == "reopen":
        row.escalated_at, row.closed_at, row.decided_at = move.at, None, None
    if changed.state in ("closed", "merged"):
        row.closed_at = move.at
    event = ProblemEvent(
        problem_id=row.id,
        at=move.at,
        actor_id=move.actor_id,
        action=move.action,
        from_state=move.from_state,
        to_state=move.to_state,
        note=move.note,
        meeting_on=move.meeting_on,
        responsible_id=changed.responsible_id if move.action == "decide" else None,
        due_on=changed.due_on if move.action == "decide" else None,
    )
    session.add(event)
    audit.add(
        session,
        move.at,
        f"problem.{move.action}",
        f"problem:{row.id}",
        cadre_id=move.actor_id,
        before={"state": move.from_state},
        after=_moved(changed, move),
    )
    return event


def _moved(changed: machine.Problem, move: machine.Move) -> dict[str, object]:
    """What a move set, for the audit trail: the new state and whatever the move filled in."""
    values = {
        "state": move.to_state,
        "responsible_id": changed.responsible_id if move.action == "decide" else None,
        "due_on": changed.due_on if move.action == "decide" else None,
        "meeting_on": move.meeting_on,
        "merged_into": changed.merged_into_id if move.action == "merge" else None,
        "note": move.note or None,
    }
    return {key: value for key, value in values.items() if value is not None}


# --- places and people ------------------------------------------------------------------------------------


async def township_of_problem(session: AsyncSession, problem_id: int) -> int | None:
    query = (
        select(Village.township_id)
        .join(Household, Household.village_id == Village.id)
        .join(Problem, Problem.household_id == Household.id)
        .where(Problem.id == problem_id)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def problem_for_update(session: AsyncSession, problem_id: int) -> tuple[Problem, int] | None:
    """The problem row (locked where the database can) and its township id."""
    row = await session.get(Problem, problem_id, with_for_update=True)
    if row is None:
        return None
    township_id = await township_of_problem(session, problem_id)
    assert township_id is not None
    return row, township_id


async def calendar_of(session: AsyncSession, township_id: int) -> Calendar:
    text = (
        await session.execute(select(Township.meeting_days).where(Township.id == township_id))
    ).scalar_one()
    return Calendar.parse(text)


async def townships_named(session: AsyncSession, name: str) -> list[Township]:
    return list((await session.execute(select(Township).where(Township.name == name))).scalars())


async def all_townships(session: AsyncSession) -> list[Township]:
    return list((await session.execute(select(Township).order_by(Township.name))).scalars())


async def township_cadres(session: AsyncSession, township_id: int) -> list[Cadre]:
    query = select(Cadre).where(Cadre.township_id == township_id).order_by(Cadre.code)
    return list((await session.execute(query)).scalars())


async def digest_recipients(session: AsyncSession, township_id: int) -> list[Cadre]:
    """The township party secretary and the poverty specialist (escalation.md)."""
    query = (
        select(Cadre)
        .where(Cadre.township_id == township_id, Cadre.role.in_(("乡镇党委书记", "扶贫专干")))
        .order_by(Cadre.role.desc(), Cadre.code)
    )
    return list((await session.execute(query)).scalars())


# --- reads for the queue, digest, minutes, tally -------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    id: int
    village: str
    household_code: str
    head_name: str
    phone: str | None
    category: str
    description: str
    source: str
    raised_by: str | None  # cadre name, None for an SMS
    created_at: datetime
    status: str
    responsible: str | None
    due_on: date | None
    meeting_on: date | None
    resolution: str | None
    closed_at: datetime | None


def _queue_query():  # type: ignore[no-untyped-def]
    raiser = Cadre.__table__.alias("raiser")
    responsible = Cadre.__table__.alias("responsible")
    return (
        select(
            Problem.id,
            Village.name,
            Household.code,
            Household.head_name,
            Household.phone,
            Problem.category,
            Problem.description,
            Problem.source,
            raiser.c.name,
            Problem.created_at,
            Problem.status,
            responsible.c.name,
            Problem.due_on,
            Problem.meeting_on,
            Problem.resolution,
            Problem.closed_at,
        )
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .outerjoin(raiser, raiser.c.id == Problem.raised_by_id)
        .outerjoin(responsible, responsible.c.id == Problem.responsible_id)
    )


async def queue_items(
    session: AsyncSession,
    township_id: int,
    *,
    states: Sequence[str] = tuple(machine.OPEN_STATES),
    raised_by_id: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[QueueItem]:
    """A township's problems in these states, oldest first (or newest first), by village."""
    query = _queue_query().where(Village.township_id == township_id, Problem.status.in_(list(states)))
    if raised_by_id is not None:
        query = query.where(Problem.raised_by_id == raised_by_id)
    order = (
        (Problem.created_at.desc(), Problem.id.desc()) if newest_first else (Problem.created_at, Problem.id)
    )
    query = query.order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [QueueItem(*row) for row in await session.execute(query)]


async def count_open(session: AsyncSession, township_id: int, raised_by_id: int | None = None) -> int:
    query = (
        select(func.count(Problem.id))
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(Village.township_id == township_id, Problem.status.in_(list(machine.OPEN_STATES)))
    )
    if raised_by_id is not None:
        query = query.where(Problem.raised_by_id == raised_by_id)
    return (await session.execute(query)).scalar_one()


async def queue_item(session: AsyncSession, problem_id: int) -> QueueItem | None:
    row = (await session.execute(_queue_query().where(Problem.id == problem_id))).one_or_none()
    return None if row is None else QueueItem(*row)


async def events_of(session: AsyncSession, problem_id: int) -> list[tuple[ProblemEvent, str | None]]:
    query = (
        select(ProblemEvent, Cadre.name)
        .outerjoin(Cadre, Cadre.id == ProblemEvent.actor_id)
        .where(ProblemEvent.problem_id == problem_id)
        .order_by(ProblemEvent.at, ProblemEvent.id)
    )
    return [(event, name) for event, name in await session.execute(query)]


async def events_of_many(
    session: AsyncSession, problem_ids: Sequence[int]
) -> dict[int, list[tuple[ProblemEvent, str | None]]]:
    """Each problem's history, for a page of problems in one query (not one a problem)."""
    found: dict[int, list[tuple[ProblemEvent, str | None]]] = {pid: [] for pid in problem_ids}
    if not found:
        return found
    query = (
        select(ProblemEvent, Cadre.name)
        .outerjoin(Cadre, Cadre.id == ProblemEvent.actor_id)
        .where(ProblemEvent.problem_id.in_(list(found)))
        .order_by(ProblemEvent.problem_id, ProblemEvent.at, ProblemEvent.id)
    )
    for event, name in await session.execute(query):
        found[event.problem_id].append((event, name))
    return found


@dataclass(frozen=True)
class Tally:
    new: int  # escalated since the last meeting
    open: int
    overdue: int  # overdue or on the county list
    closed_in_month: int  # escalated problems closed (销号) this month
    escalated_in_month: int  # escalated this month (the tally's denominator with those still open)


async def tally(
    session: AsyncSession, township_id: int, since: datetime, month_start: datetime, month_end: datetime
) -> Tally:
    """The digest's and the monthly tally's counts, for escalated problems (not those resolved on site)."""
    count = count_where
    query = (
        select(
            count(and_(Problem.escalated_at >= since, Problem.status.in_(list(machine.OPEN_STATES)))),
            count(Problem.status.in_(list(machine.OPEN_STATES))),
            count(Problem.status.in_(("overdue", "county"))),
            count(
                and_(
                    Problem.status == "closed",
                    Problem.closed_at >= month_start,
                    Problem.closed_at < month_end,
                )
            ),
            count(and_(Problem.escalated_at >= month_start, Problem.escalated_at < month_end)),
        )
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(_escalated_in_township(township_id))
    )
    return Tally(*(await session.execute(query)).one())


@dataclass
class MeetingItem:
    """One problem a meeting took up, with every move made on it there (a decision, a close-out, or both)."""

    item: QueueItem
    moves: list[
        tuple[ProblemEvent, str | None, str | None]
    ]  # (event, responsible name, actor name), in order


async def decisions_at(session: AsyncSession, township_id: int, meeting_on: date) -> list[MeetingItem]:
    """The problems a meeting took up, each once, in the order of their first move there."""
    responsible = Cadre.__table__.alias("decided_responsible")
    actor = Cadre.__table__.alias("decided_actor")
    query = (
        select(ProblemEvent, responsible.c.name, actor.c.name, Problem.id)
        .join(Problem, Problem.id == ProblemEvent.problem_id)
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .outerjoin(responsible, responsible.c.id == ProblemEvent.responsible_id)
        .outerjoin(actor, actor.c.id == ProblemEvent.actor_id)
        .where(
            Village.township_id == township_id,
            ProblemEvent.meeting_on == meeting_on,
            ProblemEvent.action.in_(("decide", "close")),
        )
        .order_by(ProblemEvent.at, ProblemEvent.id)
    )
    taken: dict[int, MeetingItem] = {}
    for event, responsible_name, actor_name, problem_id in await session.execute(query):
        if problem_id not in taken:
            taken[problem_id] = MeetingItem(await queue_item(session, problem_id), [])
        taken[problem_id].moves.append((event, responsible_name, actor_name))
    return list(taken.values())


async def overdue_items(
    session: AsyncSession, township_ids: Sequence[int] | None
) -> list[tuple[str, QueueItem]]:
    """Problems on the county list (overdue past the next meeting), with their township."""
    query = (
        _queue_query()
        .add_columns(Township.name)
        .join(Township, Township.id == Village.township_id)
        .where(Problem.status == "county")
        .order_by(Township.name, Problem.due_on, Problem.id)
    )
    if township_ids is not None:
        query = query.where(Village.township_id.in_(list(township_ids)))
    return [(row[-1], QueueItem(*row[:-1])) for row in await session.execute(query)]


async def due_for_daily_check(session: AsyncSession, today: date) -> list[tuple[Problem, int]]:
    """Problems the daily look may move: decided past their due date, or already overdue."""
    query = (
        select(Problem, Village.township_id)
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(or_(and_(Problem.status == "decided", Problem.due_on < today), Problem.status == "overdue"))
    )
    return [(row, township_id) for row, township_id in await session.execute(query)]


def _escalated_in_township(township_id: int):  # type: ignore[no-untyped-def]
    return and_(Village.township_id == township_id, Problem.resolved_on_site.is_(False))


async def resolved_between(session: AsyncSession, township_id: int, start: datetime, end: datetime) -> int:
    """Escalated problems closed (销号) in [start, end)."""
    query = (
        select(func.count(Problem.id))
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(
            _escalated_in_township(township_id),
            Problem.status == "closed",
            Problem.closed_at >= start,
            Problem.closed_at < end,
        )
    )
    return (await session.execute(query)).scalar_one()


async def resolved_on_site_between(
    session: AsyncSession, township_id: int, start: datetime, end: datetime
) -> int:
    """Problems resolved on the spot (当场化解) during a visit in [start, end): never escalated, so outside 化解率,
    but counted beside it so the rate is not read as all the township solved."""
    query = (
        select(func.count(Problem.id))
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(
            Village.township_id == township_id,
            Problem.resolved_on_site.is_(True),
            Problem.created_at >= start,
            Problem.created_at < end,
        )
    )
    return (await session.execute(query)).scalar_one()


async def unresolved_at(session: AsyncSession, township_id: int, end: datetime) -> list[QueueItem]:
    """Escalated problems raised before `end` and not closed by then (merged duplicates excepted)."""
    query = _queue_query().where(
        _escalated_in_township(township_id),
        Problem.created_at < end,
        Problem.status != "merged",
        or_(Problem.status.in_(list(machine.OPEN_STATES)), Problem.closed_at >= end),
    )
    return [
        QueueItem(*row) for row in await session.execute(query.order_by(Village.name, Problem.created_at))
    ]
