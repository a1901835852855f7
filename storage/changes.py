"""The roster's changes over a period, from the audit trail: households added to a county that already had some
(`household.create`) and changes of 脱贫状态 (`household.update` with a status), each with the household's
present village, for `zoufang report changes`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent, Household, Township, Village
from storage.reports import Area

_CHUNK = 500


@dataclass(frozen=True)
class StatusChange:
    code: str  # 户编号
    head_name: str
    township: str
    village: str
    at: datetime
    before: str | None  # None: the household is new
    after: str


async def status_changes(
    session: AsyncSession, start: datetime, end: datetime, area: Area
) -> list[StatusChange]:
    """Each addition and each status change in [start, end), oldest first, of the households in `area`."""
    query = (
        select(AuditEvent.subject, AuditEvent.action, AuditEvent.before, AuditEvent.after, AuditEvent.at)
        .where(
            AuditEvent.action.in_(("household.create", "household.update")),
            AuditEvent.at >= start,
            AuditEvent.at < end,
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    found: list[tuple[str, str | None, str, datetime]] = []
    for subject, action, before, after, at in await session.execute(query):
        new = json.loads(after or "{}")
        if "status" not in new:
            continue  # another field changed
        old = None if action == "household.create" else json.loads(before or "{}").get("status")
        found.append((subject.removeprefix("household:"), old, new["status"], at))
    places = await _places_of(session, {code for code, *_ in found}, area)
    return [StatusChange(code, *places[code], at, old, new) for code, old, new, at in found if code in places]


async def _places_of(session: AsyncSession, codes: set[str], area: Area) -> dict[str, tuple[str, str, str]]:
    """户编号 → (户主, 乡镇, 村) for those in the area."""
    places: dict[str, tuple[str, str, str]] = {}
    ordered = sorted(codes)
    for start in range(0, len(ordered), _CHUNK):
        query = (
            select(Household.code, Household.head_name, Township.name, Village.name)
            .join(Village, Village.id == Household.village_id)
            .join(Township, Township.id == Village.township_id)
            .where(Household.code.in_(ordered[start : start + _CHUNK]), area.households(Household.village_id))
        )
        places.update(
            {
                code: (head, township, village)
                for code, head, township, village in await session.execute(query)
            }
        )
    return places
