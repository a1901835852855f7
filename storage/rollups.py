"""Rollups computed by SQL aggregation in the database (no Python loop over visit rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Cadre, Household, Poll, Problem, Township, Village, Visit, cadre_villages


@dataclass(frozen=True)
class CadreCoverage:
    code: str
    name: str
    role: str
    in_scope: int
    visited: int


def latest_visits():
    """Each household's most recently *submitted* visit (its current facts): ids follow when a draft began."""
    order = func.row_number().over(
        partition_by=Visit.household_id, order_by=(Visit.submitted_at.desc(), Visit.id.desc())
    )
    ranked = select(Visit.id.label("id"), order.label("rank")).where(Visit.status == "submitted").subquery()
    return select(ranked.c.id).where(ranked.c.rank == 1).subquery()


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


async def recorded_satisfaction(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    """Visit-recorded satisfaction answers in [start, end), by answer."""
    query = (
        select(Visit.satisfaction, func.count(Visit.id))
        .where(
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
            Visit.satisfaction.is_not(None),
        )
        .group_by(Visit.satisfaction)
    )
    return {answer: count for answer, count in (await session.execute(query)).all()}


async def household_groups(session: AsyncSession) -> dict[str, int]:
    latest = latest_visits()
    query = (
        select(Visit.household_group, func.count(Visit.id))
        .join(latest, latest.c.id == Visit.id)
        .group_by(Visit.household_group)
    )
    return {group: count for group, count in (await session.execute(query)).all()}


async def warning_households(session: AsyncSession, limit: int = 50) -> list[tuple[str, str, str, str]]:
    """(village, head name, household number, warning codes) from each household's latest visit."""
    latest = latest_visits()
    query = (
        select(Village.name, Household.head_name, Household.code, Visit.warnings)
        .join(latest, latest.c.id == Visit.id)
        .join(Household, Household.id == Visit.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(and_(Visit.warnings.is_not(None), Visit.warnings != ""))
        .order_by(Village.name, Household.code)
        .limit(limit)
    )
    return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def problems_by_township(session: AsyncSession) -> list[tuple[str, int, int]]:
    """(township, open problems, problems closed) per township, every township listed."""
    open_ = func.sum(case((Problem.status != "closed", 1), else_=0))
    closed = func.sum(case((Problem.status == "closed", 1), else_=0))
    query = (
        select(Township.name, func.coalesce(open_, 0), func.coalesce(closed, 0))
        .select_from(Township)
        .outerjoin(Village, Village.township_id == Township.id)
        .outerjoin(Household, Household.village_id == Village.id)
        .outerjoin(Problem, Problem.household_id == Household.id)
        .group_by(Township.id, Township.name)
        .order_by(Township.name)
    )
    return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


SATISFIED = ("满意", "基本满意")


async def sms_satisfaction(session: AsyncSession, start: datetime, end: datetime) -> dict:
    """Villagers' SMS poll answers for polls created in [start, end): one aggregate row plus counts by state.

    `polled` counts every poll; `answered` those with a rating (a 不满意 stands even while its reason is awaited);
    `satisfied` is 满意 + 基本满意 among them; `states` counts polls by state (opted_out, expired, …).
    """
    in_period = (Poll.created_at >= start, Poll.created_at < end)

    def count_rating(*ratings: str):
        return func.coalesce(func.sum(case((Poll.rating.in_(ratings), 1), else_=0)), 0)

    totals = select(
        func.count(Poll.id),
        func.count(Poll.rating),
        count_rating(*SATISFIED),
        count_rating("满意"),
        count_rating("基本满意"),
        count_rating("不满意"),
    ).where(*in_period)
    polled, answered, satisfied, very, basic, unhappy = (await session.execute(totals)).one()
    by_state = select(Poll.state, func.count(Poll.id)).where(*in_period).group_by(Poll.state)
    states = {state: n for state, n in (await session.execute(by_state)).all()}
    return {
        "polled": polled,
        "answered": answered,
        "satisfied": satisfied,
        "满意": very,
        "基本满意": basic,
        "不满意": unhappy,
        "states": states,
    }
