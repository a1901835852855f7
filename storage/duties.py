"""The rollups of the plans' duties that software can carry (issue 17): the 98 % targets, the check list of
exited households that still fail an item, the township ranking, days in the village, the four lists.

As in storage.reports, counts are SQL aggregation: one row per village, township or cadre reaches Python
(the check list and the four lists are lists of households by nature: one row each).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, String, and_, cast, func, literal, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Answer, Cadre, Household, Problem, Township, Village, Visit
from storage.reports import Area, count_where
from survey.problems import OPEN_STATES

EXITED = "已脱贫"  # the roster's 脱贫状态 of a household that has exited poverty (roster.md)


def mentions(column: ColumnElement[str | None], code: str) -> ColumnElement[bool]:
    """A comma-joined code list (visits.unmet, visits.uncollected) names `code`."""
    padded = literal(",") + func.coalesce(column, "") + literal(",")
    return padded.like(f"%,{code},%")


def _latest_by_village(*measures: ColumnElement[Any], area: Area) -> Any:
    return (
        select(Household.village_id, *measures)
        .select_from(Household)
        .join(Visit, Visit.id == Household.latest_visit_id)
        .where(area.households())
        .group_by(Household.village_id)
    )


async def item_counts(
    session: AsyncSession, area: Area, items: Sequence[str]
) -> dict[int, list[tuple[int, int]]]:
    """village id → per item (households whose latest visit collected it, of them those meeting it)."""
    measures = []
    for code in items:
        collected = not_(mentions(Visit.uncollected, code))
        measures += [count_where(collected), count_where(and_(collected, not_(mentions(Visit.unmet, code))))]
    rows = await session.execute(_latest_by_village(*measures, area=area))
    return {
        row[0]: [(row[1 + 2 * i], row[2 + 2 * i]) for i in range(len(items))]
        for row in rows  # type: ignore[misc]
    }


async def answer_counts(session: AsyncSession, area: Area, field: str) -> dict[int, tuple[int, int]]:
    """village id → (households whose latest visit answered the yes/no question `field`, of them yes)."""
    query = (
        select(Household.village_id, func.count(Answer.id), count_where(Answer.value_bool.is_(True)))
        .select_from(Household)
        .join(Answer, Answer.visit_id == Household.latest_visit_id)
        .where(area.households(), Answer.field == field, Answer.item == -1, Answer.value_bool.is_not(None))
        .group_by(Household.village_id)
    )
    return {village: (n, yes) for village, n, yes in await session.execute(query)}


# --- exited households that still fail an item ------------------------------------------------------------


async def exited_failing(session: AsyncSession, area: Area) -> list[tuple[Any, ...]]:
    """(township, village, 户编号, 户主, unmet codes, uncollected codes, visit time, cadre name) for every
    household the roster marks 已脱贫 whose latest visit has an unmet item."""
    query = (
        select(
            Township.name,
            Village.name,
            Household.code,
            Household.head_name,
            Visit.unmet,
            Visit.uncollected,
            Visit.submitted_at,
            Cadre.name,
        )
        .select_from(Household)
        .join(Visit, Visit.id == Household.latest_visit_id)
        .join(Cadre, Cadre.id == Visit.cadre_id)
        .join(Village, Village.id == Household.village_id)
        .join(Township, Township.id == Village.township_id)
        .where(area.households(), Household.status == EXITED, func.coalesce(Visit.unmet, "") != "")
        .order_by(Township.name, Village.name, Household.code)
    )
    return [tuple(row) for row in await session.execute(query)]


async def exited_counts(session: AsyncSession, area: Area, items: Sequence[str]) -> tuple[int, int, int]:
    """(exited households, of them never visited, of them whose latest visit left an item uncollected)."""
    uncollected = [mentions(Visit.uncollected, code) for code in items]

    query = (
        select(
            func.count(Household.id),
            count_where(Household.latest_visit_id.is_(None)),
            count_where(and_(Visit.id.is_not(None), or_(*uncollected))),
        )
        .select_from(Household)
        .outerjoin(Visit, Visit.id == Household.latest_visit_id)
        .where(area.households(), Household.status == EXITED)
    )
    return tuple((await session.execute(query)).one())  # type: ignore[return-value]


# --- the township ranking ---------------------------------------------------------------------------------


async def township_coverage(session: AsyncSession, start: datetime, end: datetime, area: Area) -> dict:
    """township id → (households, households with a visit submitted in [start, end))."""
    visited = (
        select(Visit.household_id)
        .where(Visit.status == "submitted", Visit.submitted_at >= start, Visit.submitted_at < end)
        .distinct()
        .subquery()
    )
    query = (
        select(Village.township_id, func.count(Household.id), func.count(visited.c.household_id))
        .select_from(Household)
        .join(Village, Village.id == Household.village_id)
        .outerjoin(visited, visited.c.household_id == Household.id)
        .where(area.households())
        .group_by(Village.township_id)
    )
    return {t: (n, seen) for t, n, seen in await session.execute(query)}


async def township_problems(session: AsyncSession, start: datetime, end: datetime, area: Area) -> dict:
    """township id → (escalated problems closed 销号 in [start, end), escalated problems open now, overdue
    now: overdue or on the county list) — the digest's resolution rate, over the period."""
    escalated = Problem.resolved_on_site.is_(False)
    query = (
        select(
            Village.township_id,
            count_where(
                and_(
                    escalated, Problem.status == "closed", Problem.closed_at >= start, Problem.closed_at < end
                )
            ),
            count_where(and_(escalated, Problem.status.in_(sorted(OPEN_STATES)))),
            count_where(Problem.status.in_(("overdue", "county"))),
        )
        .select_from(Problem)
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(area.households())
        .group_by(Village.township_id)
    )
    return {t: (closed, still_open, late) for t, closed, still_open, late in await session.execute(query)}


# --- days in the village ----------------------------------------------------------------------------------


def local_day(session: AsyncSession, moment: ColumnElement[Any], zone: str, offset_seconds: int) -> Any:
    """The local calendar day of a UTC timestamp. PostgreSQL knows the zone; SQLite knows none, so there it is
    the zone's offset at the period's start (China keeps one offset all year)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(moment, literal(f"{offset_seconds:+d} seconds", String))
    return cast(func.timezone(literal(zone, String), moment), Date)


async def days_in_village(
    session: AsyncSession,
    roles: Sequence[str],
    start: datetime,
    end: datetime,
    zone: str,
    offset_seconds: int,
    area: Area,
) -> dict[int, int]:
    """cadre id → distinct local days with a visit submitted in [start, end), for the cadres of these roles
    (households of the area)."""
    day = local_day(session, Visit.submitted_at, zone, offset_seconds)
    days = (
        select(Visit.cadre_id, day.label("day"))
        .join(Cadre, Cadre.id == Visit.cadre_id)
        .join(Household, Household.id == Visit.household_id)
        .where(
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
            Cadre.role.in_(list(roles)),
            area.households(),
        )
        .distinct()
        .subquery()
    )
    query = select(days.c.cadre_id, func.count()).group_by(days.c.cadre_id)
    return {cadre: n for cadre, n in await session.execute(query)}


# --- the four lists ---------------------------------------------------------------------------------------


async def household_list(session: AsyncSession, area: Area, group: str | None) -> list[tuple[Any, ...]]:
    """(township, village, 户编号, 户主, members, roster status, group, per-capita net, unmet, warnings,
    visit time, uncollected) for every household of the area; one never visited has no group and no visit."""
    query = (
        select(
            Township.name,
            Village.name,
            Household.code,
            Household.head_name,
            Household.members,
            Household.status,
            Visit.household_group,
            Visit.per_capita_net,
            Visit.unmet,
            Visit.warnings,
            Visit.submitted_at,
            Visit.uncollected,
        )
        .select_from(Household)
        .outerjoin(Visit, Visit.id == Household.latest_visit_id)
        .join(Village, Village.id == Household.village_id)
        .join(Township, Township.id == Village.township_id)
        .where(area.households())
        .order_by(Township.name, Village.name, Household.code)
    )
    if group is not None:
        query = query.where(Visit.household_group == group)
    return [tuple(row) for row in await session.execute(query)]
