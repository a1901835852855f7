"""Satisfaction polls in the database: the row ↔ survey.polls state (with the machine's next deadline, kept
in `due_at` so the tick finds due polls by index), the queries. The rules, deadlines and quiet hours
included, are survey.polls'; this module only stores."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, any_, bindparam, case, insert, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import County, Household, OptOut, OutboxMessage, Poll, Township, Village
from storage.outbox import queued_values
from storage.visits import latest_visit
from survey import polls as machine

# A poll still waiting for something: a rating (OPEN_STATES) or the reason after 不满意.
WAITING_STATES: frozenset[str] = machine.OPEN_STATES | {"awaiting_reason"}


# --------------------------------------------------------------------------- row ↔ state


def to_state(row: Poll) -> machine.Poll:
    return machine.Poll(
        id=row.id,
        household_id=row.household_id,
        phone=row.phone,
        state=row.state,  # type: ignore[arg-type]  # stored from a PollState
        sent_at=row.sent_at,
        reminded_at=row.reminded_at,
        clarified_at=row.clarified_at,
        reason_asked_at=row.asked_reason_at,
        closed_at=row.closed_at,
        rating=row.rating,  # type: ignore[arg-type]  # stored from a Rating
        reason=row.reason,
        comment=row.comment,
        callback=row.callback,
    )


def state_columns(poll: machine.Poll, timings: machine.PollTimings) -> dict[str, Any]:
    """The poll's columns for the machine's state, with its next deadline."""
    return {
        "state": poll.state,
        "sent_at": poll.sent_at,
        "reminded_at": poll.reminded_at,
        "clarified_at": poll.clarified_at,
        "clarified": poll.clarified,
        "asked_reason_at": poll.reason_asked_at,
        "closed_at": poll.closed_at,
        "rating": poll.rating,
        "reason": poll.reason,
        "comment": poll.comment,
        "callback": poll.callback,
        "due_at": machine.next_deadline(poll, timings),
    }


def apply_state(row: Poll, poll: machine.Poll, timings: machine.PollTimings) -> None:
    """Write the machine's poll back onto the row, with its next deadline."""
    for name, value in state_columns(poll, timings).items():
        setattr(row, name, value)


# --------------------------------------------------------------------------- queries


def due_polls(session: Session, now: datetime) -> Sequence[Poll]:
    """Polls whose next deadline has passed (the index on due_at keeps this cheap when none has). Locked in id
    order, the order inbound SMS batches lock polls in too."""
    query = select(Poll).where(Poll.due_at <= now).order_by(Poll.id).with_for_update()
    return session.execute(query).scalars().all()


async def polled_households(session: AsyncSession, household_ids: Iterable[int], period: str) -> set[int]:
    ids = list(household_ids)
    if not ids:
        return set()
    query = select(Poll.household_id).where(Poll.period == period, Poll.household_id.in_(ids))
    return set((await session.execute(query)).scalars())


def has_poll(session: Session, household_id: int, period: str) -> bool:
    query = select(Poll.id).where(Poll.period == period, Poll.household_id == household_id).limit(1)
    return session.execute(query).first() is not None


async def villages_named(session: AsyncSession, name: str) -> list[Village]:
    query = select(Village).where(Village.name == name).order_by(Village.id)
    return list((await session.execute(query)).scalars())


async def townships_named(session: AsyncSession, name: str) -> list[Township]:
    query = select(Township).where(Township.name == name).order_by(Township.id)
    return list((await session.execute(query)).scalars())


async def place_names(session: AsyncSession, model: type[Village] | type[Township]) -> list[str]:
    query = select(model.name).distinct().order_by(model.name)
    return list((await session.execute(query)).scalars())


async def households_with_villages(session: AsyncSession, village_ids: Iterable[int]) -> Sequence[Row[Any]]:
    """(id, phone, village_id, village) of the households of these villages, in id order: plain rows, since a
    poll round reads a whole county's and needs no more of them."""
    query = (
        select(Household.id, Household.phone, Household.village_id, Village.name.label("village"))
        .join(Village, Household.village_id == Village.id)
        .where(Household.village_id.in_(list(village_ids)))
        .order_by(Household.id)
    )
    return (await session.execute(query)).all()


async def village_ids_of_townships(session: AsyncSession, township_ids: Iterable[int]) -> list[int]:
    query = select(Village.id).where(Village.township_id.in_(list(township_ids)))
    return list((await session.execute(query)).scalars())


def village_name(session: Session, village_id: int) -> str:
    return session.execute(select(Village.name).where(Village.id == village_id)).scalar_one()


def _county_of_villages(village_ids: Iterable[int]) -> Any:
    return (
        select(Village.id, County.name)
        .join(Township, Township.id == Village.township_id)
        .join(County, County.id == Township.county_id)
        .where(Village.id.in_(list(village_ids)))
    )


def county_name(session: Session, village_id: int) -> str:
    """The county (roster name) of a village: the poll SMS is signed by its office."""
    return dict(session.execute(_county_of_villages([village_id])).all()).get(village_id, "")


async def county_names(session: AsyncSession, village_ids: Iterable[int]) -> dict[int, str]:
    """Village id → its county's name, for a poll round."""
    return dict((await session.execute(_county_of_villages(village_ids))).all())


async def opted_out_among(session: AsyncSession, phones: list[str], chunk: int = 500) -> set[str]:
    """Which of these numbers opted out (one query per `chunk` numbers, not one per household)."""
    found: set[str] = set()
    for start in range(0, len(phones), chunk):
        part = phones[start : start + chunk]
        found.update((await session.execute(select(OptOut.phone).where(OptOut.phone.in_(part)))).scalars())
    return found


# --------------------------------------------------------------------------- new polls


def add_poll(
    session: Session,
    household: Household,
    now: datetime,
    send_after: datetime,
    *,
    period: str,
    locale: str,
) -> Poll:
    """A new queued poll of the household (its id assigned), rating the household's latest visit by now."""
    rated = session.execute(select(latest_visit(household.id, now))).scalar_one_or_none()
    row = Poll(
        household_id=household.id,
        village_id=household.village_id,
        visit_id=rated,
        phone=household.phone,
        period=period,
        state="queued",
        locale=locale,
        created_at=now,
        send_after=send_after,
    )
    session.add(row)
    session.flush()
    return row


POLL_CHUNK = 1000  # households whose polls and questions go in one INSERT … SELECT each


async def insert_polls(
    session: AsyncSession,
    household_ids: Sequence[int],
    shape: Poll,
    question: str,
    bodies: dict[int, str],
    now: datetime,
) -> None:
    """Many polls at once (a township, a county: 100,000 households), all like `shape` but for the household:
    each thousand polls and their questions (outbox rows of kind `question`, the text by village in `bodies`)
    go in as two INSERT … SELECTs from the households (phone, village, the visit each rates)."""
    new_polls, questions = _poll_inserts(session.get_bind().dialect.name, shape, question, bodies, now)
    for start in range(0, len(household_ids), POLL_CHUNK):
        ids = {"ids": list(household_ids[start : start + POLL_CHUNK])}
        await session.execute(new_polls, ids)
        await session.execute(questions, ids)


def _poll_inserts(
    dialect: str, shape: Poll, question: str, bodies: dict[int, str], now: datetime
) -> tuple[Any, Any]:
    polls = Poll.__table__

    def chunk_of(column: Any) -> Any:
        if dialect == "postgresql":
            # the thousand ids as one array: a thousand $n placeholders cost more to render than the insert takes
            return column == any_(bindparam("ids", type_=ARRAY(Integer)))
        return column.in_(bindparam("ids", expanding=True))

    chunk = chunk_of(Household.id)
    common = {
        c.key: literal(getattr(shape, c.key), c.type) for c in polls.c if getattr(shape, c.key) is not None
    }
    rated = latest_visit(Household.id, now)
    new_polls = insert(polls).from_select(
        [*common, "household_id", "phone", "village_id", "visit_id"],
        select(*common.values(), Household.id, Household.phone, Household.village_id, rated)
        .where(chunk)
        .order_by(Household.id),
    )
    outbox = OutboxMessage.__table__
    message = queued_values("", "", question, now, due=shape.send_after)
    del message["to"], message["body"]
    body = case(bodies, value=polls.c.village_id)
    # each question from its new poll (a household has one poll a period), so it carries the poll's id
    questions = insert(outbox).from_select(
        ["poll_id", "to", "body", *message],
        select(polls.c.id, polls.c.phone, body, *(literal(v, outbox.c[k].type) for k, v in message.items()))
        .where(chunk_of(polls.c.household_id), polls.c.period == shape.period)
        .order_by(polls.c.household_id),
    )
    return new_polls, questions
