"""The raw exports' reads: submitted visits with their answers, polls, problems with their history.

Each read is a generator over one streamed query (SQLAlchemy Core, `yield_per`: a server-side cursor on
PostgreSQL, the driver's own lazy cursor on SQLite), so an export of any size holds one batch of rows at a time.
A visit's answers are read a batch of visits at a time (by the answers' unique index, so the
database sorts nothing; on SQLite straight from the driver's cursor, 7 million rows). Run them inside one read transaction (`Database.run(..., write=False)`): `snapshot`
makes PostgreSQL give both queries the same snapshot, as SQLite's read transaction does anyway.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, select, true
from sqlalchemy.orm import aliased

from storage.models import (
    Answer,
    Cadre,
    County,
    Household,
    Poll,
    Problem,
    ProblemEvent,
    Township,
    Village,
    Visit,
)

BATCH = 2000  # rows fetched from the database at a time

_visits, _answers, _households = Visit.__table__, Answer.__table__, Household.__table__
_villages, _townships, _counties = Village.__table__, Township.__table__, County.__table__
_cadres, _polls, _problems, _events = (
    Cadre.__table__,
    Poll.__table__,
    Problem.__table__,
    ProblemEvent.__table__,
)


@dataclass(frozen=True)
class Scope:
    """Which rows an export takes: submitted (or created) in [start, end), in these villages; None: all."""

    start: datetime | None = None
    end: datetime | None = None
    village_ids: tuple[int, ...] | None = None


def snapshot(conn: Connection) -> Connection:
    """The connection reading one snapshot for every query of the export (before its first statement)."""
    if conn.dialect.name == "postgresql" and not conn.in_transaction():
        conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def _stream(conn: Connection, query: Select[Any]) -> Iterator[Any]:
    return iter(conn.execution_options(yield_per=BATCH).execute(query))


def _when(column: ColumnElement[datetime], scope: Scope) -> list[ColumnElement[bool]]:
    conditions = []
    if scope.start is not None:
        conditions.append(column >= scope.start)
    if scope.end is not None:
        conditions.append(column < scope.end)
    return conditions


def _in_villages(column: ColumnElement[int], scope: Scope) -> ColumnElement[bool]:
    return true() if scope.village_ids is None else column.in_(scope.village_ids)


def _place(query: Select[Any], village_id: ColumnElement[int]) -> Select[Any]:
    """Joins the village, its township and county to a query (their names are in PLACE_COLUMNS)."""
    return (
        query.join(_villages, _villages.c.id == village_id)
        .join(_townships, _townships.c.id == _villages.c.township_id)
        .join(_counties, _counties.c.id == _townships.c.county_id)
    )


PLACE_COLUMNS = (_counties.c.name, _townships.c.name, _villages.c.name, _households.c.hamlet)

# --- visits ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitHead:
    """A submitted visit as the export's fixed columns show it (times aware, in UTC)."""

    id: int
    code: str
    county: str
    township: str
    village: str
    hamlet: str | None
    head_name: str
    cadre_code: str
    cadre_name: str
    cadre_role: str
    channel: str
    script_version: str
    started_at: datetime
    submitted_at: datetime
    lat: float | None
    lon: float | None


# A visit's answers: (field, item) → its values in seq order. `item` is -1 for a plain question, 0, 1, … for a
# repeat group's items; a several-of answer has one value per option chosen. Values are typed (int, float, bool
# or str): the one value column storage.visits._typed filled.
Answers = dict[tuple[str, int], list[Any]]


def _submitted(scope: Scope) -> list[ColumnElement[bool]]:
    return [
        _visits.c.status == "submitted",
        *_when(_visits.c.submitted_at, scope),
        _in_villages(_households.c.village_id, scope),
    ]


def _visit_heads(scope: Scope) -> Select[Any]:
    query = select(
        _visits.c.id,
        _households.c.code,
        *PLACE_COLUMNS,
        _households.c.head_name,
        _cadres.c.code,
        _cadres.c.name,
        _cadres.c.role,
        _visits.c.channel,
        _visits.c.script_version,
        _visits.c.started_at,
        _visits.c.submitted_at,
        _visits.c.lat,
        _visits.c.lon,
    ).select_from(_visits.join(_households, _households.c.id == _visits.c.household_id))
    query = _place(query, _households.c.village_id).join(_cadres, _cadres.c.id == _visits.c.cadre_id)
    return query.where(*_submitted(scope)).order_by(_visits.c.id)


# A batch of visits' answers, in the unique index's order (visit_id, field, item, seq): no sort anywhere.
# The value is the one value column storage.visits._typed filled; SQLite's coalesce keeps each value's own type
# (a yes/no comes as 1/0) and saves three columns a row on 7 million rows; PostgreSQL reads the four columns.
def _answers_of(values: Sequence[Any], visits: ColumnElement[bool] | None = None) -> Select[Any]:
    if visits is None:
        visits = _answers.c.visit_id.in_(bindparam("ids", expanding=True))
    return (
        select(_answers.c.visit_id, _answers.c.field, _answers.c.item, *values)
        .where(visits)
        .order_by(_answers.c.visit_id, _answers.c.field, _answers.c.item, _answers.c.seq)
    )


_VALUES = (_answers.c.value_int, _answers.c.value_real, _answers.c.value_bool, _answers.c.value_text)
_ANSWERS_OF = _answers_of(_VALUES)
VISIT_BATCH = 500  # visits whose answers are read at once
_VISIT_ID = operator.itemgetter(0)


def submitted_visits(conn: Connection, scope: Scope) -> Iterator[tuple[VisitHead, Answers]]:
    """Every submitted visit of the scope in id order, with its answers: the visits stream from one query,
    their answers are read a batch of visits at a time through the answers' own index (nothing is sorted)."""
    for head, rows in submitted_answer_rows(conn, scope):
        answers: Answers = {}
        _group(rows, answers)
        yield head, answers


AnswerRow = tuple[int, str, int, Any]  # (visit_id, field, item, value), in the answers' index order


def submitted_answer_rows(conn: Connection, scope: Scope) -> Iterator[tuple[VisitHead, list[AnswerRow]]]:
    """`submitted_visits` with each visit's answers as the rows they are read as, for a reader that orders
    them its own way (the long layout: 7 million rows, grouping them first would be wasted)."""
    heads = _stream(conn, _visit_heads(scope))
    fetch = _sqlite_answers(conn) if conn.dialect.name == "sqlite" else _core_answers(conn)
    while batch := [VisitHead(*row) for row in itertools.islice(heads, VISIT_BATCH)]:
        rows = fetch([head.id for head in batch])
        at = 0
        for head in batch:  # both in visit id order: each visit's rows are the next run of rows
            start, at = at, bisect.bisect_right(rows, head.id, lo=at, key=_VISIT_ID)
            yield head, rows[start:at]


def _core_answers(conn: Connection) -> Callable[[list[int]], list[AnswerRow]]:
    def fetch(ids: list[int]) -> list[AnswerRow]:
        return [_one_value(row) for row in conn.execute(_ANSWERS_OF, {"ids": ids})]

    return fetch


def _sqlite_answers(conn: Connection) -> Callable[[list[int]], list[AnswerRow]]:
    """The hot read, straight on the driver's cursor (inside the connection's transaction): SQLAlchemy's
    row processing cost more than SQLite's own work for ~37 rows a visit, and the values need none."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def fetch(ids: list[int]) -> list[AnswerRow]:
        return cursor.execute(_sqlite_answers_sql(len(ids), conn.dialect), ids).fetchall()

    return fetch


@functools.cache
def _sqlite_answers_sql(n: int, dialect: Any) -> str:
    """The SQLite answers query for n visit ids as n `?` parameters (a full batch, and the last one)."""
    ids = _answers.c.visit_id.in_([bindparam(f"id{k}") for k in range(n)])
    return str(_answers_of([func.coalesce(*_VALUES)], ids).compile(dialect=dialect))


def _one_value(row: Sequence[Any]) -> AnswerRow:
    value = next((v for v in row[3:] if v is not None), None)
    return row[0], row[1], row[2], value


def _group(rows: Iterable[AnswerRow], answers: Answers) -> None:
    """One visit's (visit_id, field, item, value) rows, in that order, into its (field, item) → values."""
    key: tuple[str, int] | None = None
    values: list[Any] = []
    for _, field, item, value in rows:
        if (field, item) == key:
            values.append(value)
        else:
            key = (field, item)
            values = answers[key] = [value]


def repeat_items(conn: Connection, scope: Scope, fields: Sequence[str]) -> int:
    """How many items the longest repeat group answer of these (child) fields has in the scope: the number
    of numbered column sets the wide layout needs."""
    if not fields:
        return 0
    query = (
        select(func.max(_answers.c.item))
        .select_from(
            _answers.join(_visits, _visits.c.id == _answers.c.visit_id).join(
                _households, _households.c.id == _visits.c.household_id
            )
        )
        .where(_answers.c.field.in_(fields), *_submitted(scope))
    )
    most = conn.execute(query).scalar_one_or_none()
    return 0 if most is None else int(most) + 1


# --- polls -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollRow:
    id: int
    code: str
    county: str
    township: str
    village: str
    hamlet: str | None
    head_name: str
    phone: str
    period: str
    state: str
    rating: str | None
    reason: str | None
    comment: str | None
    clarified: bool
    callback: bool
    created_at: datetime
    asked_at: datetime | None  # its question SMS left (not when it was due)
    reminded_at: datetime | None
    clarified_at: datetime | None
    asked_reason_at: datetime | None
    closed_at: datetime | None
    visit_id: int | None
    problem_id: int | None
    problem_status: str | None


def polls(conn: Connection, scope: Scope) -> Iterator[PollRow]:
    """Every poll created in the scope (its village: the one it went out in), in id order."""
    query = select(
        _polls.c.id,
        _households.c.code,
        *PLACE_COLUMNS,
        _households.c.head_name,
        _polls.c.phone,
        _polls.c.period,
        _polls.c.state,
        _polls.c.rating,
        _polls.c.reason,
        _polls.c.comment,
        _polls.c.clarified,
        _polls.c.callback,
        _polls.c.created_at,
        _polls.c.asked_at,
        _polls.c.reminded_at,
        _polls.c.clarified_at,
        _polls.c.asked_reason_at,
        _polls.c.closed_at,
        _polls.c.visit_id,
        _polls.c.problem_id,
        _problems.c.status,
    ).select_from(
        _polls.join(_households, _households.c.id == _polls.c.household_id).outerjoin(
            _problems, _problems.c.id == _polls.c.problem_id
        )
    )
    query = _place(query, _polls.c.village_id).where(
        *_when(_polls.c.created_at, scope), _in_villages(_polls.c.village_id, scope)
    )
    for row in _stream(conn, query.order_by(_polls.c.id)):
        yield PollRow(*row)


# --- problems ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemRow:
    id: int
    code: str
    county: str
    township: str
    village: str
    hamlet: str | None
    head_name: str
    source: str
    visit_id: int | None
    raised_by: str | None  # 干部编号 姓名
    category: str
    description: str
    resolved_on_site: bool
    resolution: str | None
    status: str
    responsible: str | None
    due_on: Any
    meeting_on: Any
    created_at: datetime
    escalated_at: datetime | None
    decided_at: datetime | None
    closed_at: datetime | None
    overdue_on: Any
    merged_into_id: int | None


@dataclass(frozen=True)
class EventRow:
    problem_id: int
    code: str
    at: datetime
    actor: str | None  # 干部编号 姓名; None: the system
    action: str
    from_state: str
    to_state: str
    note: str | None
    meeting_on: Any
    responsible: str | None
    due_on: Any


def _who(cadre: Any) -> ColumnElement[str]:
    return cadre.c.code + " " + cadre.c.name


def _problem_query(scope: Scope) -> Select[Any]:
    raiser, responsible = aliased(_cadres), aliased(_cadres)
    query = select(
        _problems.c.id,
        _households.c.code,
        *PLACE_COLUMNS,
        _households.c.head_name,
        _problems.c.source,
        _problems.c.visit_id,
        _who(raiser),
        _problems.c.category,
        _problems.c.description,
        _problems.c.resolved_on_site,
        _problems.c.resolution,
        _problems.c.status,
        _who(responsible),
        _problems.c.due_on,
        _problems.c.meeting_on,
        _problems.c.created_at,
        _problems.c.escalated_at,
        _problems.c.decided_at,
        _problems.c.closed_at,
        _problems.c.overdue_on,
        _problems.c.merged_into_id,
    ).select_from(
        _problems.join(_households, _households.c.id == _problems.c.household_id)
        .outerjoin(raiser, raiser.c.id == _problems.c.raised_by_id)
        .outerjoin(responsible, responsible.c.id == _problems.c.responsible_id)
    )
    query = _place(query, _households.c.village_id)
    return query.where(_in_villages(_households.c.village_id, scope)).order_by(_problems.c.id)


def _event_query(scope: Scope) -> Select[Any]:
    actor, responsible = aliased(_cadres), aliased(_cadres)
    return (
        select(
            _events.c.problem_id,
            _households.c.code,
            _events.c.at,
            _who(actor),
            _events.c.action,
            _events.c.from_state,
            _events.c.to_state,
            _events.c.note,
            _events.c.meeting_on,
            _who(responsible),
            _events.c.due_on,
        )
        .select_from(
            _events.join(_problems, _problems.c.id == _events.c.problem_id)
            .join(_households, _households.c.id == _problems.c.household_id)
            .outerjoin(actor, actor.c.id == _events.c.actor_id)
            .outerjoin(responsible, responsible.c.id == _events.c.responsible_id)
        )
        .where(_in_villages(_households.c.village_id, scope))
        .order_by(_events.c.problem_id, _events.c.at, _events.c.id)
    )


def problem_events(conn: Connection, scope: Scope) -> Iterator[EventRow]:
    """Every move of the scope's problems, by problem, then in the order they happened."""
    for row in _stream(conn, _event_query(scope)):
        yield EventRow(*row)


def problems(conn: Connection, scope: Scope) -> Iterator[tuple[ProblemRow, list[EventRow]]]:
    """Every problem of the scope (by the household's village) in id order, with its whole history."""
    events = problem_events(conn, scope)
    pending = next(events, None)
    for row in _stream(conn, _problem_query(scope)):
        problem = ProblemRow(*row)
        history: list[EventRow] = []
        while pending is not None and pending.problem_id <= problem.id:
            if pending.problem_id == problem.id:
                history.append(pending)
            pending = next(events, None)
        yield problem, history


__all__ = [
    "BATCH",
    "AnswerRow",
    "Answers",
    "EventRow",
    "PollRow",
    "ProblemRow",
    "Scope",
    "VisitHead",
    "polls",
    "problem_events",
    "problems",
    "repeat_items",
    "snapshot",
    "submitted_answer_rows",
    "submitted_visits",
]
