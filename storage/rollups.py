"""Rollups computed by SQL aggregation in the database (no Python loop over visit rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Cadre, Household, Village, Visit, cadre_villages


@dataclass(frozen=True)
class CadreCoverage:
    code: str
    name: str
    role: str
    in_scope: int
    visited: int


async def cadre_coverage(
    session: AsyncSession, cadre: Cadre, scope: str, start: datetime, end: datetime
) -> CadreCoverage:
    """Households in the cadre's scope, and how many of them this cadre visited in [start, end)."""
    visited = (
        select(Visit.household_id)
        .where(
            Visit.cadre_id == cadre.id,
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
        )
        .distinct()
        .subquery()
    )
    query = select(func.count(Household.id), func.count(visited.c.household_id)).outerjoin(
        visited, visited.c.household_id == Household.id
    )
    if scope == "villages":
        mine = select(cadre_villages.c.village_id).where(cadre_villages.c.cadre_id == cadre.id)
        query = query.where(Household.village_id.in_(mine))
    elif scope == "helper":
        query = query.where(Household.helper_id == cadre.id)
    elif scope == "township":
        query = query.join(Village, Village.id == Household.village_id).where(
            Village.township_id == cadre.township_id
        )
    else:
        return CadreCoverage(cadre.code, cadre.name, cadre.role, 0, 0)
    in_scope, done = (await session.execute(query)).one()
    return CadreCoverage(cadre.code, cadre.name, cadre.role, in_scope, done)
