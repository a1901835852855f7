"""The reports' rollups: every count is SQL aggregation in the database, grouped by the report's row.

Python only sees one row per village, township, cadre or flagged case, never one per visit or reply.
Time bounds are aware datetimes (the local period's first and last instant, see survey.periods).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float

from storage.models import (
    Answer,
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
    """(asked, answered, satisfied): asked are polls whose question SMS has left, or answered however early;
    not those still queued (for the morning, or behind a large round)."""
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


def _sms(rows: Iterable[Sequence[Any]]) -> dict[int | None, Counts]:
    return {k: Counts(sms_polled=p, sms_answered=a, sms_satisfied=s) for k, p, a, s in rows}


async def sms_counts(
    session: AsyncSession, by: str, start: datetime, end: datetime, area: Area
) -> dict[int | None, Counts]:
    """Villagers' SMS answers by row: polls created in [start, end). `sms_polled` counts the polls actually
    asked (their question SMS sent, or answered however early), not those still queued.

    A poll counts for the village it went out in (polls.village_id) and, by cadre, for the cadre of the visit
    it rates (polls.visit_id: the household's latest visit at or before the poll); None when there was none.
    """
    measures = _poll_measures(Poll.asked_at, Poll.rating)
    in_period = (Poll.created_at >= start, Poll.created_at < end, area.households(Poll.village_id))
    if by == "cadre":
        # visits walked in cadre order, each one's polls read from ix_polls_visit_created: no sort, no table
        rated = (
            select(Visit.cadre_id, *measures)
            .join(Poll, Poll.visit_id == Visit.id)
            .where(*in_period)
            .group_by(Visit.cadre_id)
        )
        unrated = select(func.count(), *measures).where(Poll.visit_id.is_(None), *in_period)
        found = _sms(await session.execute(rated))
        polls, *counts = (await session.execute(unrated)).one()
        if polls:
            found.update(_sms([(None, *counts)]))
        return found
    # villages walked in id order, each one's polls read from ix_polls_village_created: no sort, no table
    per_village = (
        select(Village.id, Village.township_id, *measures)
        .join(Poll, Poll.village_id == Village.id)
        .where(*in_period)
        .group_by(Village.id, Village.township_id)
    )
    if by == "village":
        return _sms((k, p, a, s) for k, _, p, a, s in await session.execute(per_village))
    rows = per_village.subquery()
    sums = (cast(func.sum(c), BigInteger) for c in list(rows.c)[2:])  # PostgreSQL: a sum of counts is numeric
    per_township = select(rows.c.township_id, *sums).group_by(rows.c.township_id)
    return _sms(await session.execute(per_township))


async def recorded_counts(
    session: AsyncSession, by: str, start: datetime, end: datetime, area: Area
) -> dict[int | None, Counts]:
    """Satisfaction as the cadres recorded it in visits submitted in [start, end), by the household's village
    (as it is now), its township, or the visiting cadre."""
    measures = (func.count(Visit.id), func.count(Visit.satisfaction), _satisfied(Visit.satisfaction))
    submitted = (Visit.status == "submitted", Visit.submitted_at >= start, Visit.submitted_at < end)
    if by == "cadre":
        query = _in_area(select(Visit.cadre_id, *measures).where(*submitted), area).group_by(Visit.cadre_id)
    else:
        key = Household.village_id if by == "village" else Village.township_id
        query = (
            select(key, *measures)
            .join(Household, Household.id == Visit.household_id)
            .where(*submitted, area.households())
            .group_by(key)
        )
        if by == "township":
            query = query.join(Village, Village.id == Household.village_id)
    rows = await session.execute(query)
    return {k: Counts(visits=v, recorded=r, recorded_satisfied=s) for k, v, r, s in rows}


async def awareness_counts(
    session: AsyncSession, by: str, start: datetime, end: datetime, area: Area, field: str
) -> dict[int | None, tuple[int, int]]:
    """(answered, yes) of the yes/no question `field` in visits submitted in [start, end), by the household's
    village, its township, or the visiting cadre."""
    measures = (func.count(Answer.id), count_where(Answer.value_bool.is_(True)))
    answered = (
        Answer.field == field,
        Answer.item == -1,
        Answer.value_bool.is_not(None),
        Visit.status == "submitted",
        Visit.submitted_at >= start,
        Visit.submitted_at < end,
    )
    base = select(Answer.id).join(Visit, Visit.id == Answer.visit_id)
    if by == "cadre":
        query = _in_area(base.with_only_columns(Visit.cadre_id, *measures).where(*answered), area)
        query = query.group_by(Visit.cadre_id)
    else:
        key = Household.village_id if by == "village" else Village.township_id
        query = (
            base.with_only_columns(key, *measures)
            .join(Household, Household.id == Visit.household_id)
            .where(*answered, area.households())
            .group_by(key)
        )
        if by == "township":
            query = query.join(Village, Village.id == Household.village_id)
    return {k: (n, yes) for k, n, yes in await session.execute(query)}


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


def _visited_counts(scope: str, groups: Sequence[tuple[Sequence[int], datetime, datetime]]) -> Select:  # type: ignore[type-arg]
    """(cadre id, distinct households of their scope they visited in their period), from the visits side:
    `groups` are (cadre ids, start, end), one per period, so the cadres of every role of a scope are counted in
    one statement and the households joined once."""
    arms = [
        select(Visit.cadre_id.label("cadre_id"), Visit.household_id.label("household_id")).where(
            Visit.cadre_id.in_(list(ids)),
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
        )
        for ids, start, end in groups
    ]
    visits = (arms[0] if len(arms) == 1 else union_all(*arms)).subquery()
    return (
        select(visits.c.cadre_id, func.count(func.distinct(visits.c.household_id)))
        .join(Household, Household.id == visits.c.household_id)
        .where(_in_scope(scope, visits.c.cadre_id))
        .group_by(visits.c.cadre_id)
    )


_NOT_DONE = Household.id.not_in(bindparam("done", expanding=True))  # the households the cadre visited
_HOUSEHOLD_NAMES = select(Household.id, Household.code, Household.head_name).where(_NOT_DONE)


@cache
def _scope_in_code_order(villages: int, limited_arms: bool) -> CompoundSelect | Select:  # type: ignore[type-arg]
    """The first :limit households (by 户编号) not in :done of a helper (0: helper :cadre_id), or of the
    villages :v0 … (one arm per village, read in 户编号 order from ix_households_village_names and merged as they
    come, so the merge stops at :limit: a township's households are never all read and sorted). Built once per
    shape and bound at each run: building a statement costs more than running it.

    SQLite merges plain arms lazily (a LIMIT inside an arm would make it sort that arm first); PostgreSQL merges
    lazily only arms that carry their own ORDER BY … LIMIT (else it sorts them all, with parallel workers).
    """
    limit = bindparam("limit", type_=Integer)
    if villages == 0:
        mine = _HOUSEHOLD_NAMES.where(Household.helper_id == bindparam("cadre_id"))
        return mine.order_by(Household.code).limit(limit)
    arms = [_HOUSEHOLD_NAMES.where(Household.village_id == bindparam(f"v{i}")) for i in range(villages)]
    if not limited_arms:
        merged = union_all(*arms)
        return merged.order_by(merged.selected_columns.code).limit(limit)
    limited = union_all(*(select(arm.order_by(Household.code).limit(limit).subquery()) for arm in arms))
    rows = limited.subquery()
    return select(rows).order_by(rows.c.code).limit(limit)


@cache
def _names_in_code_order(villages: int, limited_arms: bool) -> Select:  # type: ignore[type-arg]
    """How many of `_scope_in_code_order`'s households there are and their "户主（户编号）" joined by "、", in
    户编号 order: the database builds the text, so 1,000 names a cadre never become 1,000 rows in Python. The
    rows come from an ordered subquery, whose order SQLite's group_concat and PostgreSQL's string_agg keep."""
    rows = _scope_in_code_order(villages, limited_arms).subquery()
    name = rows.c.head_name + literal("（") + rows.c.code + literal("）")
    return select(func.count(), func.coalesce(func.aggregate_strings(name, "、"), ""))


# SQLite allows 500 SELECTs in one UNION ALL; a township has a few dozen villages, a county might have more
VILLAGES_PER_QUERY = 100
SCOPES_BY_VILLAGE = ("villages", "township")


async def _villages_of(session: AsyncSession, scope: str, cadre_ids: Sequence[int]) -> dict[int, list[int]]:
    """cadre id → the villages of its scope, for many cadres in one query."""
    if scope == "villages":
        query = select(cadre_villages.c.cadre_id, cadre_villages.c.village_id).where(
            cadre_villages.c.cadre_id.in_(cadre_ids)
        )
    else:
        query = (
            select(Cadre.id, Village.id)
            .join(Village, Village.township_id == Cadre.township_id)
            .where(Cadre.id.in_(cadre_ids))
        )
    found: dict[int, list[int]] = {}
    for cadre_id, village_id in await session.execute(query.order_by(*query.selected_columns)):
        found.setdefault(cadre_id, []).append(village_id)
    return found


async def _visited_by(
    session: AsyncSession, cadre_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, set[int]]:
    """cadre id → the households it visited in [start, end), for many cadres in one query."""
    query = (
        select(Visit.cadre_id, Visit.household_id)
        .where(
            Visit.cadre_id.in_(cadre_ids),
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
        )
        .distinct()
    )
    found: dict[int, set[int]] = {}
    for cadre_id, household_id in await session.execute(query):
        found.setdefault(cadre_id, set()).add(household_id)
    return found


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
    visited = dict((await session.execute(_visited_counts(scope, [(ids, start, end)]))).all())
    return {cid: CoverageCounts(cid, int(in_scope.get(cid, 0)), int(visited.get(cid, 0))) for cid in ids}


@dataclass(frozen=True)
class Target:
    """A role's visit target as a report counts it: the scope of its cadres and the period."""

    scope: str
    start: datetime
    end: datetime


async def coverage_by_role(
    session: AsyncSession, cadres: Sequence[tuple[int, str]], targets: Mapping[str, Target]
) -> dict[int, CoverageCounts]:
    """(cadre id, role) → households in scope and visited, each cadre in its role's target: one query per scope
    for each count, not one per role, so the roles of a scope share one pass over visits and households."""
    found = {cid: CoverageCounts(cid, 0, 0) for cid, _ in cadres}
    for scope in sorted({t.scope for t in targets.values()} - {"none"}):
        ids = [cid for cid, role in cadres if targets[role].scope == scope]
        if not ids:
            continue
        periods: dict[tuple[datetime, datetime], list[int]] = {}
        for cid, role in cadres:
            if targets[role].scope == scope:
                periods.setdefault((targets[role].start, targets[role].end), []).append(cid)
        groups = [(members, start, end) for (start, end), members in periods.items()]
        in_scope = dict((await session.execute(_in_scope_counts(scope, ids))).all())
        visited = dict((await session.execute(_visited_counts(scope, groups))).all())
        found.update({c: CoverageCounts(c, int(in_scope.get(c, 0)), int(visited.get(c, 0))) for c in ids})
    return found


@dataclass(frozen=True)
class Behind:
    """A cadre whose households left are to be named: its scope and its role's period."""

    cadre_id: int
    scope: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class LeftNames:
    """The first households a cadre has yet to visit: how many are named, and their "户主（户编号）、…"."""

    count: int
    text: str


async def left_households(
    session: AsyncSession, cadres: Sequence[Behind], limit: int
) -> dict[int, LeftNames]:
    """cadre id → the first `limit` households (by 户编号) it has yet to visit in its period, named.

    The villages and the visited households of every cadre come in a few queries, then one query per cadre
    that reads its scope's households in 户编号 order past the visited ones and stops at `limit`.
    """
    villages: dict[int, list[int]] = {}
    for scope in SCOPES_BY_VILLAGE:
        villages.update(await _villages_of(session, scope, [c.cadre_id for c in cadres if c.scope == scope]))
    visited: dict[int, set[int]] = {}
    for start, end in {(c.start, c.end) for c in cadres}:
        ids = [c.cadre_id for c in cadres if (c.start, c.end) == (start, end)]
        visited.update(await _visited_by(session, ids, start, end))
    limited = session.get_bind().dialect.name == "postgresql"
    found: dict[int, LeftNames] = {}
    for cadre in cadres:
        if cadre.scope not in ("helper", *SCOPES_BY_VILLAGE):
            continue
        params = {"cadre_id": cadre.cadre_id, "limit": limit, "done": sorted(visited.get(cadre.cadre_id, ()))}
        mine = villages.get(cadre.cadre_id, []) if cadre.scope != "helper" else []
        if cadre.scope != "helper" and not mine:
            found[cadre.cadre_id] = LeftNames(0, "")  # no village of its own, no household
            continue
        if len(mine) <= VILLAGES_PER_QUERY:
            query = _names_in_code_order(len(mine), limited)
            count, text = (await session.execute(query, {**params, **_numbered(mine)})).one()
            found[cadre.cadre_id] = LeftNames(int(count), text)
            continue
        rows = []  # more villages than one statement holds: each part's first `limit`, merged here
        for first in range(0, len(mine), VILLAGES_PER_QUERY):
            part = mine[first : first + VILLAGES_PER_QUERY]
            query = _scope_in_code_order(len(part), limited)
            rows += (await session.execute(query, {**params, **_numbered(part)})).all()
        rows.sort(key=lambda row: row[1])
        names = [f"{head}（{code}）" for _, code, head in rows[:limit]]
        found[cadre.cadre_id] = LeftNames(len(names), "、".join(names))
    return found


def _numbered(villages: Sequence[int]) -> dict[str, int]:
    return {f"v{i}": village for i, village in enumerate(villages)}


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


def _latest(query: Select, area: Area) -> Select:  # type: ignore[type-arg]
    """Each household's current facts: its latest submitted visit (households.latest_visit_id)."""
    return (
        query.select_from(Household)
        .join(Visit, Visit.id == Household.latest_visit_id)
        .where(area.households())
    )


def _has_code(column: ColumnElement[str | None], code: str) -> ColumnElement[int]:
    padded = literal(",") + func.coalesce(column, "") + literal(",")
    return count_where(padded.like(f"%,{code},%"))


async def household_groups(
    session: AsyncSession, area: Area, unmet_items: Sequence[str], group: str | None
) -> list[tuple]:  # type: ignore[type-arg]
    """Per household group: households, each unmet item's count, households with a warning."""
    warned = count_where(func.coalesce(Visit.warnings, "") != "")
    measures = (func.count(Visit.id), *(_has_code(Visit.unmet, code) for code in unmet_items), warned)
    query = _latest(select(Visit.household_group, *measures), area).group_by(Visit.household_group)
    if group is not None:
        query = query.where(Visit.household_group == group)
    return [tuple(row) for row in await session.execute(query)]


async def uncollected_counts(
    session: AsyncSession, area: Area, codes: Sequence[str], group: str | None, warned_only: bool = False
) -> dict[str, int]:
    """Households whose latest visit did not collect each fact (未采集), by fact code (only those > 0);
    `warned_only`: among the households without any warning."""
    query = _latest(select(*(_has_code(Visit.uncollected, code) for code in codes)), area)
    if group is not None:
        query = query.where(Visit.household_group == group)
    if warned_only:
        query = query.where(func.coalesce(Visit.warnings, "") == "")
    row = (await session.execute(query)).one()
    return {code: n for code, n in zip(codes, row, strict=True) if n}


async def never_visited(session: AsyncSession, area: Area) -> int:
    query = select(func.count(Household.id)).where(Household.latest_visit_id.is_(None), area.households())
    return (await session.execute(query)).scalar_one()


async def warning_list(session: AsyncSession, area: Area, group: str | None) -> list[tuple]:  # type: ignore[type-arg]
    """(township, village, 户编号, 户主, group, per-capita net, warning codes, visit day, facts not collected)
    per warned household."""
    columns = (
        Township.name,
        Village.name,
        Household.code,
        Household.head_name,
        Visit.household_group,
        Visit.per_capita_net,
        Visit.warnings,
        Visit.submitted_at,
        Visit.uncollected,
    )
    query = (
        _latest(select(*columns), area)
        .join(Village, Village.id == Household.village_id)
        .join(Township, Township.id == Village.township_id)
        .where(func.coalesce(Visit.warnings, "") != "")
        .order_by(Township.name, Village.name, Household.code)
    )
    if group is not None:
        query = query.where(Visit.household_group == group)
    return [tuple(row) for row in await session.execute(query)]


# --- integrity ---------------------------------------------------------------------------------------------


def _in_area(query: Select, area: Area) -> Select:  # type: ignore[type-arg]
    """Visits of the area's households: the join to households only when an area filters (else pure cost)."""
    if area.village_ids is None:
        return query
    return query.join(Household, Household.id == Visit.household_id).where(area.households())


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


@dataclass(frozen=True)
class TimedVisit:
    """A visit of the period that may be flagged: too short, or its fix perhaps too far from home."""

    context: tuple[Any, ...]  # _VISIT_CONTEXT
    submitted_at: datetime
    seconds: float
    short: bool
    at: tuple[float, float] | None  # the fix and the registered place, when it may be far
    home: tuple[float, float] | None


async def short_or_far_visits(
    session: AsyncSession, start: datetime, end: datetime, area: Area, min_seconds: float, degrees: float
) -> list[TimedVisit]:
    """Visits of [start, end) shorter than `min_seconds`, or whose fix is more than `degrees` from the
    registered place in plain degrees (the caller measures those few exactly): one pass over the period."""
    took = seconds_between(Visit.started_at, Visit.submitted_at)
    dlat, dlon = Visit.lat - Household.lat, Visit.lon - Household.lon
    far = and_(
        Visit.lat.is_not(None), Household.lat.is_not(None), dlat * dlat + dlon * dlon > degrees * degrees
    )
    columns = (Visit.submitted_at, took, took < min_seconds, far)
    places = (Visit.lat, Visit.lon, Household.lat, Household.lon)
    query = _with_context(select(*_VISIT_CONTEXT, *columns, *places)).where(
        *_submitted_in(start, end, area), or_(took < min_seconds, far)
    )
    found = []
    for *context, at, seconds, short, maybe_far, lat, lon, home_lat, home_lon in await session.execute(
        query.order_by(Visit.submitted_at, Visit.id)
    ):
        fix, home = ((lat, lon), (home_lat, home_lon)) if maybe_far else (None, None)
        found.append(TimedVisit(tuple(context), at, seconds, bool(short), fix, home))
    return found


async def visit_bursts(
    session: AsyncSession, start: datetime, end: datetime, area: Area, visits: int, seconds: float
) -> list[tuple[int, datetime, datetime]]:
    """(cadre id, first, last) for every visit that closes a run of `visits` within `seconds`."""
    earlier = func.lag(Visit.submitted_at, visits - 1, type_=Visit.submitted_at.type).over(
        partition_by=Visit.cadre_id, order_by=(Visit.submitted_at, Visit.id)
    )
    ranked = select(Visit.cadre_id, Visit.submitted_at, earlier.label("earlier"))
    ranked = _in_area(ranked.where(*_submitted_in(start, end, Area())), area).subquery()
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
    candidates = [Visit.answers_digest.is_not(None)]
    if min_households >= 2:
        # nearly every answer set is unique: look each one up in ix_visits_digest_period first (another
        # household's visit in the period with the same digest), and count only the few that pass
        other = aliased(Visit)
        elsewhere = select(other.id).where(  # its id, not *: SQLite then reads the index alone
            other.answers_digest == Visit.answers_digest,
            other.status == "submitted",
            other.submitted_at >= start,
            other.submitted_at < end,
            other.household_id != Visit.household_id,
        )
        candidates.append(elsewhere.exists())
    shared = _in_area(
        select(Visit.answers_digest).where(*_submitted_in(start, end, Area()), *candidates), area
    )
    shared = shared.group_by(Visit.answers_digest).having(
        func.count(func.distinct(Visit.household_id)) >= min_households
    )
    query = _with_context(select(Visit.answers_digest, *_VISIT_CONTEXT, Visit.submitted_at)).where(
        *_submitted_in(start, end, area), Visit.answers_digest.in_(shared)
    )
    return [
        tuple(row)
        for row in await session.execute(query.order_by(Visit.answers_digest, Visit.submitted_at, Visit.id))
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
