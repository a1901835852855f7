"""The dashboard's rows: one-time sign-in links, server-side sessions, the cookie key, and the places and
households its pages list. Tokens are never stored, only their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import selectinload

from storage import audit
from storage.db import AsyncSession
from storage.models import (
    Cadre,
    County,
    Household,
    Poll,
    Problem,
    Township,
    Village,
    Visit,
    WebKey,
    WebLink,
    WebSession,
    cadre_villages,
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def _subject(s: AsyncSession, cadre_id: int) -> str:
    return f"cadre:{await s.scalar(select(Cadre.code).where(Cadre.id == cadre_id))}"


async def create_link(
    s: AsyncSession,
    cadre_id: int,
    now: datetime,
    ttl: timedelta,
    *,
    actor: str = "",
    actor_cadre_id: int | None = None,
) -> str:
    """A new one-time link's token (the caller prints it; only its hash is kept), audited as web.invite with
    who asked: the CLI's operator, or the cadre themselves (`actor_cadre_id`, from Telegram's /web)."""
    token = new_token()
    s.add(WebLink(cadre_id=cadre_id, token_hash=token_hash(token), created_at=now, expires_at=now + ttl))
    audit.add(
        s,
        now,
        "web.invite",
        await _subject(s, cadre_id),
        cadre_id=actor_cadre_id,
        actor=actor,
        after={"expires_at": (now + ttl).isoformat(timespec="seconds")},
    )
    await s.flush()
    return token


async def peek_link(s: AsyncSession, token: str, now: datetime) -> Cadre | None:
    """The cadre a live, unused link would sign in, without using it (the confirm page's GET)."""
    query = (
        select(Cadre)
        .join(WebLink, WebLink.cadre_id == Cadre.id)
        .where(WebLink.token_hash == token_hash(token), WebLink.used_at.is_(None), WebLink.expires_at > now)
    )
    return (await s.execute(query)).scalar_one_or_none()


async def use_link(s: AsyncSession, token: str, now: datetime) -> int | None:
    """The cadre the link signs in, once: a used, expired or unknown token gives None. One UPDATE, so two
    clicks racing cannot both win."""
    hashed = token_hash(token)
    query = select(WebLink.cadre_id).where(WebLink.token_hash == hashed)
    cadre_id = (await s.execute(query)).scalar_one_or_none()
    if cadre_id is None:
        return None
    used = await s.execute(
        update(WebLink)
        .where(WebLink.token_hash == hashed, WebLink.used_at.is_(None), WebLink.expires_at > now)
        .values(used_at=now)
    )
    return cadre_id if used.rowcount == 1 else None  # type: ignore[attr-defined]


async def create_session(s: AsyncSession, cadre_id: int, now: datetime, ttl: timedelta) -> str:
    token = new_token()
    s.add(WebSession(cadre_id=cadre_id, token_hash=token_hash(token), created_at=now, expires_at=now + ttl))
    await s.flush()
    return token


async def session_cadre(s: AsyncSession, token: str, now: datetime) -> Cadre | None:
    """The cadre of a live session (not expired, not revoked), with their township and villages loaded."""
    query = (
        select(Cadre)
        .join(WebSession, WebSession.cadre_id == Cadre.id)
        .where(
            WebSession.token_hash == token_hash(token),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
        )
        .options(selectinload(Cadre.township).selectinload(Township.county), selectinload(Cadre.villages))
    )
    return (await s.execute(query)).scalar_one_or_none()


async def revoke(s: AsyncSession, cadre_id: int, now: datetime, *, actor: str = "") -> int:
    """End every live session of the cadre, and void their unused links (audited as web.revoke, with how
    many of each); returns the sessions ended."""
    ended = await s.execute(
        update(WebSession)
        .where(WebSession.cadre_id == cadre_id, WebSession.revoked_at.is_(None), WebSession.expires_at > now)
        .values(revoked_at=now)
    )
    voided = await s.execute(
        update(WebLink).where(WebLink.cadre_id == cadre_id, WebLink.used_at.is_(None)).values(used_at=now)
    )
    sessions, links = ended.rowcount, voided.rowcount  # type: ignore[attr-defined]
    after = {"sessions_ended": sessions, "links_voided": links}
    audit.add(s, now, "web.revoke", await _subject(s, cadre_id), actor=actor, after=after)
    return sessions  # type: ignore[no-any-return]


async def end_session(s: AsyncSession, token: str, now: datetime) -> None:
    """Sign out: this session only."""
    await s.execute(
        update(WebSession).where(WebSession.token_hash == token_hash(token)).values(revoked_at=now)
    )


async def stored_key(s: AsyncSession) -> str | None:
    """The first key kept: processes that raced to make one all settle on the same (the lowest id)."""
    return (await s.execute(select(WebKey.secret).order_by(WebKey.id).limit(1))).scalar_one_or_none()


async def make_key(s: AsyncSession) -> None:
    """Keep a new cookie key unless one is kept already (ZOUFANG_WEB_SECRET, when set, is used instead)."""
    if await stored_key(s) is None:
        s.add(WebKey(secret=secrets.token_hex(32)))


# --- places and households the pages list ---------------------------------------------------------------


async def counties(s: AsyncSession) -> list[County]:
    return list((await s.execute(select(County).order_by(County.id))).scalars())


async def county_townships(s: AsyncSession, county_id: int) -> list[Township]:
    query = select(Township).where(Township.county_id == county_id).order_by(Township.name)
    return list((await s.execute(query)).scalars())


async def township_villages(s: AsyncSession, township_id: int) -> list[Village]:
    query = select(Village).where(Village.township_id == township_id).order_by(Village.name)
    return list((await s.execute(query)).scalars())


async def township(s: AsyncSession, township_id: int) -> Township | None:
    return await s.get(Township, township_id, options=[selectinload(Township.county)])


async def village(s: AsyncSession, village_id: int) -> Village | None:
    query = select(Village).where(Village.id == village_id).options(selectinload(Village.township))
    return (await s.execute(query)).scalar_one_or_none()


async def county_village_ids(s: AsyncSession, county_id: int) -> tuple[int, ...]:
    query = select(Village.id).join(Township, Township.id == Village.township_id)
    return tuple((await s.execute(query.where(Township.county_id == county_id))).scalars())


@dataclass(frozen=True)
class HouseholdRow:
    id: int
    code: str
    head_name: str
    members: int
    status: str
    village: str
    visited_at: datetime | None
    visitor: str | None
    warnings: str | None
    group: str | None
    poll: str | None  # the latest answered SMS poll: "2026Q4 满意"


async def households(
    s: AsyncSession, village_ids: Sequence[int], own_cadre_id: int | None = None
) -> list[HouseholdRow]:
    """Households of the villages with their latest visit; `own_cadre_id`: only that cadre's own households
    (they are its 帮扶责任人, or it is a cadre of their village)."""
    visitor = select(Cadre.name).where(Cadre.id == Visit.cadre_id).scalar_subquery()
    latest_poll = (
        select(Poll.period + " " + Poll.rating)
        .where(Poll.household_id == Household.id, Poll.rating.is_not(None))
        .order_by(Poll.created_at.desc(), Poll.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            Household,
            Village.name,
            Visit.submitted_at,
            visitor,
            Visit.warnings,
            Visit.household_group,
            latest_poll,
        )
        .join(Village, Village.id == Household.village_id)
        .outerjoin(Visit, Visit.id == Household.latest_visit_id)
        .where(Household.village_id.in_(village_ids))
        .order_by(Village.name, Household.code)
    )
    if own_cadre_id is not None:
        theirs = select(cadre_villages.c.village_id).where(cadre_villages.c.cadre_id == own_cadre_id)
        query = query.where(or_(Household.helper_id == own_cadre_id, Household.village_id.in_(theirs)))
    return [
        HouseholdRow(h.id, h.code, h.head_name, h.members, h.status, v, at, who, warned, group, poll)
        for h, v, at, who, warned, group, poll in await s.execute(query)
    ]


async def problem_states(s: AsyncSession, village_ids: Sequence[int]) -> dict[str, int]:
    """How many of the villages' problems are in each state, now."""
    query = (
        select(Problem.status, func.count(Problem.id))
        .join(Household, Household.id == Problem.household_id)
        .where(Household.village_id.in_(village_ids))
        .group_by(Problem.status)
    )
    return {status: count for status, count in await s.execute(query)}


async def own_village_ids(s: AsyncSession, cadre_id: int) -> tuple[int, ...]:
    """The villages where the cadre has households of their own: their villages, and those of their helped."""
    theirs = select(cadre_villages.c.village_id).where(cadre_villages.c.cadre_id == cadre_id)
    helped = select(Household.village_id).where(Household.helper_id == cadre_id)
    found = set((await s.execute(theirs)).scalars()) | set((await s.execute(helped)).scalars())
    return tuple(sorted(found))
