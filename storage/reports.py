"""The reports' rollups: every count is SQL aggregation in the database, grouped by the report's row.

Python only sees one row per village, township, cadre or flagged case, never one per visit or reply.
Time bounds are aware datetimes (the local period's first and last instant, see survey.periods).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float

from storage.models import (
    Cadre,
    Household,
    Poll,
    Problem,
    Township,
    Village,
    Visit,
    cadre_villages,
)
from survey.problems import OPEN_STATES

SATISFIED = ("满意", "基本满意")


class seconds_between(FunctionElement[float]):  # lower case: reads as the SQL function it compiles to
    """Seconds from the first timestamp to the second, in each dialect's own arithmetic."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: object, **kw: object) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)  # type: ignore[attr-defined]
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between)
def _seconds_default(element: seconds_between, compiler: object, **kw: object) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)  # type: ignore[attr-defined]
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@dataclass(frozen=True)
class Area:
    """Which villages a report covers: None means the whole database."""

    village_ids: tuple[int, ...] | None = None

    def households(self, column: ColumnElement[int] = Household.village_id) -> ColumnElement[bool]:
        return literal(True) if self.village_ids is None else column.in_(self.village_ids)


@dataclass(frozen=True)
class Place:
    id: int
    township: str
    village: str


@dataclass
class Counts:
    """One report row's satisfaction counts from both sources."""

    sms_polled: int = 0
    sms_answered: int = 0
    sms_satisfied: int = 0
    visits: int = 0
    recorded: int = 0
    recorded_satisfied: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows of the group meet the condition (0, not NULL, for an empty group)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _satisfied(column: ColumnElement[str | None]) -> ColumnElement[int]:
    return count_where(column.in_(SATISFIED))


def _poll_measures(sent_at: ColumnElement[datetime | None], rating: ColumnElement[str | None]) -> tuple:  # type: ignore[type-arg]
    """(asked, answered, satisfied): asked are polls sent, or answered however early; not those still queued."""
    return count_where(or_(sent_at.is_not(None), rating.is_not(None))), func.count(rating), _satisfied(rating)


# --- places -----------------------------------------------------------------------------------------------


async def villages(session: AsyncSession, area: Area) -> list[Place]:
    query = (
        select(Village.id, Township.name, Village.name)
        .join(Township, Township.id == Village.township_id)
        .where(area.households(Village.id))
        .order_by(Township.name, Village.name)
    )
    return [Place(*row) for row in await session.execute(query)]


async def townships(session: AsyncSession, area: Area) -> list[Place]:
    query = (
        select(Township.id, Township.name, literal(""))
        .join(Village, Village.township_id == Township.id)
        .where(area.households(Village.id))
        .distinct()
        .order_by(Township.name)
    )
    return [Place(*row) for row in await session.execute(query)]


async def place_names(session: AsyncSession) -> list[tuple[str, str]]:
    """(township, village) for every village, for error messages that list what exists."""
    query = select(Township.name, Village.name).join(Village, Village.township_id == Township.id)
    return [tuple(row) for row in await session.execute(query.order_by(Township.name, Village.name))]  # type: ignore[misc]


# --- satisfaction -------------------------------------------------------------------------------------------


def _group_column(by: str) -> ColumnElement[int]:
    return {"village": Household.village_id, "township": Village.township_id}[by]


async def sms_counts(
    session: AsyncSession, by: str, start: datetime, end: datetime, area: Area
) -> dict[int | None, Counts]:
    """Villagers' SMS answers by row: polls created in [start, end). `sms_polled` counts the polls actually
    asked (sent, or answered however early), not those still queued for the morning.

    By cadre, a poll belongs to the cadre of the household's latest visit submitted at or before the poll was
    created (the visit the villager is rating); None when the household had no visit by then.
    """
    measures = _poll_measures(Poll.sent_at, Poll.rating)
    in_period = (Poll.created_at >= start, Poll.created_at < end, area.households())
    if by == "cadre":
        # the cadre of the household's latest visit at or before the poll: one indexed lookup per poll
        rated = (
            select(Visit.cadre_id)
            .where(
                Visit.household_id == Poll.household_id,
                Visit.status == "submitted",
                Visit.submitted_at <= Poll.created_at,
            )
            .order_by(Visit.submitted_at.desc(), Visit.id.desc())
            .limit(1)
            .correlate(Poll)
            .scalar_subquery()
        )
        per_poll = (
            select(Poll.sent_at, Poll.rating, rated.label("cadre_id"))
            .join(Household, Household.id == Poll.household_id)
            .where(*in_period)
            .subquery()
        )
        query = select(per_poll.c.cadre_id, *_poll_measures(per_poll.c.sent_at, per_poll.c.rating)).group_by(
            per_poll.c.cadre_id
        )
        rows = await session.execute(query)
        return {k: Counts(sms_polled=p, sms_answered=a, sms_satisfied=s) for k, p, a, s in rows}
    key = _group_column(by)
    query = select(key, *measures).join(Household, Household.id == Poll.household_id)
    if by == "township":
        query = query.join(Village, Village.id == Household.village_id)
    rows = await session.execute(query.where(*in_period).group_by(key))
    return {k: Counts(sms_polled=p, sms_answered=a, sms_satisfied=s) for k, p, a, s in rows}


async def recorded_counts(
    session: AsyncSession, by: str, start: datetime, end: datetime, area: Area
) -> dict[int | None, Counts]:
    """Satisfaction as the cadres recorded it in visits submitted in [start, end)."""
    key = Visit.cadre_id if by == "cadre" else _group_column(by)
    query = (
        select(key, func.count(Visit.id), func.count(Visit.satisfaction), _satisfied(Visit.satisfaction))
        .join(Household, Household.id == Visit.household_id)
        .where(
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
            area.households(),
        )
        .group_by(key)
    )
    if by == "township":
        query = query.join(Village, Village.id == Household.village_id)
    rows = await session.execute(query)
    return {k: Counts(visits=v, recorded=r, recorded_satisfied=s) for k, v, r, s in rows}


async def cadres_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, tuple[str, str, str, str]]:
    """id → (code, name, role, township) for the cadres a report names."""
    if not ids:
        return {}
    query = (
        select(Cadre.id, Cadre.code, Cadre.name, Cadre.role, Township.name)
        .join(Township, Township.id == Cadre.township_id)
        .where(Cadre.id.in_(list(ids)))
    )
    return {row[0]: tuple(row[1:]) for row in await session.execute(query)}  # type: ignore[misc]


# --- coverage -----------------------------------------------------------------------------------------------


def _in_scope_counts(scope: str, cadre_ids: list[int]) -> Select:  # type: ignore[type-arg]
    """(cadre id, households in scope): per-village (or per-township) household counts summed per cadre, so no
    (cadre, household) pair is ever formed."""
    per_village = (
        select(Household.village_id.label("village_id"), func.count(Household.id).label("n"))
        .group_by(Household.village_id)
        .subquery()
    )
    if scope == "villages":
        return (
            select(cadre_villages.c.cadre_id, func.coalesce(func.sum(per_village.c.n), 0))
            .join(per_village, per_village.c.village_id == cadre_villages.c.village_id)
            .where(cadre_villages.c.cadre_id.in_(cadre_ids))
            .group_by(cadre_villages.c.cadre_id)
        )
    if scope == "helper":
        return (
            select(Household.helper_id, func.count(Household.id))
            .where(Household.helper_id.in_(cadre_ids))
            .group_by(Household.helper_id)
        )
    return (
        select(Cadre.id, func.coalesce(func.sum(per_village.c.n), 0))
        .join(Village, Village.township_id == Cadre.township_id)
        .join(per_village, per_village.c.village_id == Village.id)
        .where(Cadre.id.in_(cadre_ids))
        .group_by(Cadre.id)
    )


def _in_scope(scope: str, cadre: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether Household is in the scope of the cadre `cadre` (a column: the visit's cadre, or a cadre id)."""
    if scope == "villages":
        return exists().where(
            cadre_villages.c.cadre_id == cadre, cadre_villages.c.village_id == Household.village_id
        )
    if scope == "helper":
        return Household.helper_id == cadre
    return exists().where(
        Cadre.id == cadre, Village.id == Household.village_id, Village.township_id == Cadre.township_id
    )


def _visited_counts(scope: str, cadre_ids: list[int], start: datetime, end: datetime) -> Select:  # type: ignore[type-arg]
    """(cadre id, distinct households of their scope they visited in [start, end)), from the visits side."""
    return (
        select(Visit.cadre_id, func.count(func.distinct(Visit.household_id)))
        .join(Household, Household.id == Visit.household_id)
        .where(
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
            Visit.cadre_id.in_(cadre_ids),
            _in_scope(scope, Visit.cadre_id),
        )
        .group_by(Visit.cadre_id)
    )


def _left_of(
    scope: str, cadre_id: int, villages: list[int], start: datetime, end: datetime, limit: int
) -> Select:  # type: ignore[type-arg]
    """The first `limit` households (by 户编号) of one cadre's scope with no visit of theirs in [start, end)."""
    visited = exists().where(
        Visit.household_id == Household.id,
        Visit.cadre_id == cadre_id,
        Visit.status == "submitted",
        Visit.submitted_at >= start,
        Visit.submitted_at < end,
    )
    mine = Household.helper_id == cadre_id if scope == "helper" else Household.village_id.in_(villages)
    return (
        select(Village.name, Household.code, Household.head_name)
        .join(Village, Village.id == Household.village_id)
        .where(mine, ~visited)
        .order_by(Household.code)
        .limit(limit)
    )


async def _scope_villages(session: AsyncSession, scope: str, cadre_id: int) -> list[int]:
    if scope == "villages":
        query = select(cadre_villages.c.village_id).where(cadre_villages.c.cadre_id == cadre_id)
    elif scope == "township":
        query = (
            select(Village.id)
            .join(Cadre, Cadre.township_id == Village.township_id)
            .where(Cadre.id == cadre_id)
        )
    else:
        return []
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class CoverageCounts:
    cadre_id: int
    in_scope: int
    visited: int


async def coverage(
    session: AsyncSession, cadre_ids: Sequence[int], scope: str, start: datetime, end: datetime
) -> dict[int, CoverageCounts]:
    """For cadres of one scope and period: households in scope and how many of them the cadre visited."""
    ids = list(cadre_ids)
    if not ids or scope == "none":
        return {cid: CoverageCounts(cid, 0, 0) for cid in ids}
    in_scope = dict((await session.execute(_in_scope_counts(scope, ids))).all())
    visited = dict((await session.execute(_visited_counts(scope, ids, start, end))).all())
    return {cid: CoverageCounts(cid, int(in_scope.get(cid, 0)), int(visited.get(cid, 0))) for cid in ids}


async def left_households(
    session: AsyncSession, cadre_id: int, scope: str, start: datetime, end: datetime, limit: int
) -> list[tuple[str, str, str]]:
    """(village, 户编号, 户主) of the households the cadre has yet to visit in the period, the first `limit`."""
    villages = await _scope_villages(session, scope, cadre_id)
    query = _left_of(scope, cadre_id, villages, start, end, limit)
    return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]


@dataclass(frozen=True)
class CadreRow:
    id: int
    code: str
    name: str
    role: str
    township: str


async def cadres_with_roles(session: AsyncSession, roles: Sequence[str], area: Area) -> list[CadreRow]:
    """Cadres of these roles; with an area, those serving one of its villages or its townships."""
    query = (
        select(Cadre.id, Cadre.code, Cadre.name, Cadre.role, Township.name)
        .join(Township, Township.id == Cadre.township_id)
        .where(Cadre.role.in_(list(roles)))
        .order_by(Cadre.code)
    )
    if area.village_ids is not None:
        mine = select(cadre_villages.c.cadre_id).where(cadre_villages.c.village_id.in_(area.village_ids))
        towns = select(Village.township_id).where(Village.id.in_(area.village_ids))
        query = query.where(or_(Cadre.id.in_(mine), Cadre.township_id.in_(towns)))
    return [CadreRow(*row) for row in await session.execute(query)]


async def known_roles(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(Cadre.role).distinct().order_by(Cadre.role))).scalars())


# --- households -----------------------------------------------------------------------------------------------


def latest_visits(area: Area):  # type: ignore[no-untyped-def]
    """Each household's most recently submitted visit: its current facts."""
    rank = func.row_number().over(
        partition_by=Visit.household_id, order_by=(Visit.submitted_at.desc(), Visit.id.desc())
    )
    ranked = select(Visit.id.label("id"), rank.label("rank")).where(Visit.status == "submitted")
    if area.village_ids is not None:  # the join only to filter: without an area it is pure cost
        ranked = ranked.join(Household, Household.id == Visit.household_id).where(area.households())
    ranked = ranked.subquery()
    return select(ranked.c.id).where(ranked.c.rank == 1).subquery()


def _has_code(column: ColumnElement[str | None], code: str) -> ColumnElement[int]:
    padded = literal(",") + func.coalesce(column, "") + literal(",")
    return count_where(padded.like(f"%,{code},%"))


async def household_groups(
    session: AsyncSession, area: Area, unmet_items: Sequence[str], group: str | None
) -> list[tuple]:  # type: ignore[type-arg]
    """Per household group: households, each unmet item's count, households with a warning."""
    latest = latest_visits(area)
    warned = count_where(func.coalesce(Visit.warnings, "") != "")
    query = (
        select(
            Visit.household_group,
            func.count(Visit.id),
            *(_has_code(Visit.unmet, code) for code in unmet_items),
            warned,
        )
        .join(latest, latest.c.id == Visit.id)
        .group_by(Visit.household_group)
    )
    if group is not None:
        query = query.where(Visit.household_group == group)
    return [tuple(row) for row in await session.execute(query)]


async def never_visited(session: AsyncSession, area: Area) -> int:
    submitted = exists().where(Visit.household_id == Household.id, Visit.status == "submitted")
    query = select(func.count(Household.id)).where(~submitted, area.households())
    return (await session.execute(query)).scalar_one()


async def warning_list(session: AsyncSession, area: Area, group: str | None) -> list[tuple]:  # type: ignore[type-arg]
    """(township, village, 户编号, 户主, group, per-capita net, warning codes, visit day) per warned household."""
    latest = latest_visits(area)
    query = (
        select(
            Township.name,
            Village.name,
            Household.code,
            Household.head_name,
            Visit.household_group,
            Visit.per_capita_net,
            Visit.warnings,
            Visit.submitted_at,
        )
        .join(latest, latest.c.id == Visit.id)
        .join(Household, Household.id == Visit.household_id)
        .join(Village, Village.id == Household.village_id)
        .join(Township, Township.id == Village.township_id)
        .where(func.coalesce(Visit.warnings, "") != "")
        .order_by(Township.name, Village.name, Household.code)
    )
    if group is not None:
        query = query.where(Visit.household_group == group)
    return [tuple(row) for row in await session.execute(query)]


# --- integrity ---------------------------------------------------------------------------------------------


def _submitted_in(start: datetime, end: datetime, area: Area) -> tuple[ColumnElement[bool], ...]:
    return (
        Visit.status == "submitted",
        Visit.submitted_at >= start,
        Visit.submitted_at < end,
        area.households(),
    )


_VISIT_CONTEXT = (Township.name, Village.name, Cadre.code, Cadre.name, Household.code, Household.head_name)


def _with_context(query: Select) -> Select:  # type: ignore[type-arg]
    return (
        query.join(Household, Household.id == Visit.household_id)
        .join(Village, Village.id == Household.village_id)
        .join(Township, Township.id == Village.township_id)
        .join(Cadre, Cadre.id == Visit.cadre_id)
    )


async def short_visits(
    session: AsyncSession, start: datetime, end: datetime, area: Area, min_seconds: float
) -> list[tuple]:  # type: ignore[type-arg]
    took = seconds_between(Visit.started_at, Visit.submitted_at)
    query = _with_context(select(*_VISIT_CONTEXT, Visit.submitted_at, took)).where(
        *_submitted_in(start, end, area), took < min_seconds
    )
    return [tuple(row) for row in await session.execute(query.order_by(Visit.submitted_at))]


async def far_visit_candidates(
    session: AsyncSession, start: datetime, end: datetime, area: Area, degrees: float
) -> list[tuple]:  # type: ignore[type-arg]
    """Visits whose fix may be further than the threshold (plain degree distance above the bound);
    the caller measures these few exactly."""
    dlat = Visit.lat - Household.lat
    dlon = Visit.lon - Household.lon
    query = _with_context(
        select(*_VISIT_CONTEXT, Visit.submitted_at, Visit.lat, Visit.lon, Household.lat, Household.lon)
    ).where(
        *_submitted_in(start, end, area),
        Visit.lat.is_not(None),
        Household.lat.is_not(None),
        dlat * dlat + dlon * dlon > degrees * degrees,
    )
    return [tuple(row) for row in await session.execute(query.order_by(Visit.submitted_at))]


async def visit_bursts(
    session: AsyncSession, start: datetime, end: datetime, area: Area, visits: int, seconds: float
) -> list[tuple[int, datetime, datetime]]:
    """(cadre id, first, last) for every visit that closes a run of `visits` within `seconds`."""
    earlier = func.lag(Visit.submitted_at, visits - 1, type_=Visit.submitted_at.type).over(
        partition_by=Visit.cadre_id, order_by=(Visit.submitted_at, Visit.id)
    )
    ranked = (
        select(Visit.cadre_id, Visit.submitted_at, earlier.label("earlier"))
        .join(Household, Household.id == Visit.household_id)
        .where(*_submitted_in(start, end, area))
        .subquery()
    )
    span = seconds_between(ranked.c.earlier, ranked.c.submitted_at)
    query = (
        select(ranked.c.cadre_id, ranked.c.earlier, ranked.c.submitted_at)
        .where(ranked.c.earlier.is_not(None), span <= seconds)
        .order_by(ranked.c.cadre_id, ranked.c.submitted_at)
    )
    return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]


async def visits_between(session: AsyncSession, cadre_id: int, first: datetime, last: datetime) -> int:
    query = select(func.count(Visit.id)).where(
        Visit.cadre_id == cadre_id,
        Visit.status == "submitted",
        Visit.submitted_at >= first,
        Visit.submitted_at <= last,
    )
    return (await session.execute(query)).scalar_one()


async def identical_answers(
    session: AsyncSession, start: datetime, end: datetime, area: Area, min_households: int
) -> list[tuple]:  # type: ignore[type-arg]
    """Visits whose answer set (survey.integrity.answers_digest) other households share, grouped by digest."""
    shared = (
        select(Visit.answers_digest)
        .join(Household, Household.id == Visit.household_id)
        .where(*_submitted_in(start, end, area), Visit.answers_digest.is_not(None))
        .group_by(Visit.answers_digest)
        .having(func.count(func.distinct(Visit.household_id)) >= min_households)
    )
    query = _with_context(select(Visit.answers_digest, *_VISIT_CONTEXT, Visit.submitted_at)).where(
        *_submitted_in(start, end, area), Visit.answers_digest.in_(shared)
    )
    return [
        tuple(row) for row in await session.execute(query.order_by(Visit.answers_digest, Visit.submitted_at))
    ]


async def closed_without_decision(
    session: AsyncSession, start: datetime, end: datetime, area: Area
) -> list[tuple]:  # type: ignore[type-arg]
    """Escalated problems (not resolved on site) closed in [start, end) with no meeting decision recorded."""
    query = (
        select(
            Township.name,
            Village.name,
            Cadre.code,
            Cadre.name,
            Household.code,
            Household.head_name,
            Problem.closed_at,
            Problem.id,
            Problem.category,
        )
        .join(Household, Household.id == Problem.household_id)
        .join(Village, Village.id == Household.village_id)
        .join(Township, Township.id == Village.township_id)
        .outerjoin(Cadre, Cadre.id == Problem.raised_by_id)
        .where(
            Problem.status == "closed",
            Problem.resolved_on_site.is_(False),
            Problem.decided_at.is_(None),
            Problem.closed_at >= start,
            Problem.closed_at < end,
            area.households(),
        )
        .order_by(Problem.closed_at)
    )
    return [tuple(row) for row in await session.execute(query)]


# --- problems per month -------------------------------------------------------------------------------------


def _closed_in(lo: datetime, hi: datetime, on_site: bool) -> ColumnElement[bool]:
    """Closed in [lo, hi): on site (一化解), or after escalation (销号); merged duplicates are neither."""
    return and_(
        Problem.status == "closed",
        Problem.resolved_on_site.is_(on_site),
        Problem.closed_at >= lo,
        Problem.closed_at < hi,
    )


async def problems_per_month(
    session: AsyncSession, bounds: Sequence[datetime], area: Area
) -> list[tuple[int, int, int]]:
    """(opened, closed on site, closed after escalation) in each [bounds[i], bounds[i+1]): one pass,
    boundaries computed in local time by the caller."""
    months = list(pairwise(bounds))
    measures = [
        count_where(condition)
        for lo, hi in months
        for condition in (
            and_(Problem.created_at >= lo, Problem.created_at < hi),
            _closed_in(lo, hi, True),
            _closed_in(lo, hi, False),
        )
    ]
    query = (
        select(*measures)
        .select_from(Problem)
        .join(Household, Household.id == Problem.household_id)
        .where(
            area.households(),
            or_(
                and_(Problem.created_at >= bounds[0], Problem.created_at < bounds[-1]),
                and_(Problem.closed_at >= bounds[0], Problem.closed_at < bounds[-1]),
            ),
        )
    )
    row = (await session.execute(query)).one()
    return [tuple(row[i : i + 3]) for i in range(0, len(row), 3)]  # type: ignore[misc]


async def problems_by_township(
    session: AsyncSession, start: datetime, end: datetime, area: Area
) -> list[tuple[str, int, int, int, int]]:
    """(township, open now, opened, closed on site, closed after escalation) — the last three in [start, end) —
    for every township of the area."""
    query = (
        select(
            Township.name,
            count_where(Problem.status.in_(sorted(OPEN_STATES))),
            count_where(and_(Problem.created_at >= start, Problem.created_at < end)),
            count_where(_closed_in(start, end, True)),
            count_where(_closed_in(start, end, False)),
        )
        .select_from(Township)
        .join(Village, Village.township_id == Township.id)
        .outerjoin(Household, Household.village_id == Village.id)
        .outerjoin(Problem, Problem.household_id == Household.id)
        .where(area.households(Village.id))
        .group_by(Township.id, Township.name)
        .order_by(Township.name)
    )
    return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]
