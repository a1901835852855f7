"""Satisfaction polls in the database: the row ↔ survey.polls state, the next deadline, the queries.

Also the pure quiet-hours helper (`next_outside_quiet`): outgoing poll SMS are never due inside quiet hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import Household, OptOut, Poll, Township, Village
from survey import polls as machine

# A poll still waiting for something: a rating (OPEN_STATES) or the reason after 不满意.
WAITING_STATES: frozenset[str] = machine.OPEN_STATES | {"awaiting_reason"}


# --------------------------------------------------------------------------- quiet hours (pure)


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """ "21:00-08:00" → (21:00, 08:00); empty (or a zero-length range) → None: no quiet hours."""
    text = text.strip()
    if not text:
        return None
    try:
        start_text, end_text = text.split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as exc:
        raise ValueError(f"ZOUFANG_QUIET_HOURS={text!r}: use HH:MM-HH:MM, e.g. 21:00-08:00") from exc
    return None if start == end else (start, end)


def next_outside_quiet(at: datetime, quiet: tuple[time, time] | None, tz: tzinfo) -> datetime:
    """`at` itself when it is outside the quiet hours [start, end) in `tz`, else the end of those quiet hours."""
    if quiet is None:
        return at
    start, end = quiet
    local = at.astimezone(tz)
    now, day = local.time().replace(tzinfo=None), local.date()
    if start < end:  # e.g. 12:00-14:00, within one day
        inside, end_day = start <= now < end, day
    elif now >= start:  # across midnight, evening part: ends tomorrow
        inside, end_day = True, day + timedelta(days=1)
    else:  # across midnight, morning part
        inside, end_day = now < end, day
    if not inside:
        return at
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(at.tzinfo)


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


def due_at(poll: machine.Poll, timings: machine.PollTimings) -> datetime | None:
    """The next moment `on_tick` may change this poll; None when only a reply (or nothing) can."""
    if poll.state == "awaiting_reason":
        return poll.reason_asked_at + timings.reason_wait if poll.reason_asked_at else None
    if poll.state not in machine.OPEN_STATES or poll.sent_at is None:
        return None
    expiry = poll.sent_at + timings.expire_after
    if poll.state == "sent" and poll.reminded_at is None:
        return min(poll.sent_at + timings.remind_after, expiry)
    return expiry


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
        "due_at": due_at(poll, timings),
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


async def opted_out_among(session: AsyncSession, phones: list[str], chunk: int = 500) -> set[str]:
    """Which of these numbers opted out (one query per `chunk` numbers, not one per household)."""
    found: set[str] = set()
    for start in range(0, len(phones), chunk):
        part = phones[start : start + chunk]
        found.update((await session.execute(select(OptOut.phone).where(OptOut.phone.in_(part)))).scalars())
    return found
