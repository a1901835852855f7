"""Repositories for cadres, their households and visits."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, ScalarSelect, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, joinedload, selectinload

from storage import audit
from storage.models import (
    Answer,
    Cadre,
    County,
    Household,
    Poll,
    Problem,
    Township,
    UTCDateTime,
    Village,
    Visit,
    WorkLogEntry,
    cadre_villages,
)
from storage.problems import creation_event
from survey.answers import code_key
from survey.facts import HouseholdFacts, Lines
from survey.integrity import answers_digest
from survey.script import Script


async def cadre_by_code(session: AsyncSession, code: str) -> Cadre | None:
    """The cadre of 干部编号 `code`: as stored, else as typed loosely (gb001, full-width, spaces: code_key) when
    that names exactly one cadre."""

    def query(where: ColumnElement[bool]) -> Any:
        return select(Cadre).where(where).options(selectinload(Cadre.villages), selectinload(Cadre.township))

    found = (await session.execute(query(Cadre.code == code))).scalar_one_or_none()
    if found is not None:
        return found
    loose = (await session.execute(query(func.upper(Cadre.code) == code_key(code)).limit(2))).scalars().all()
    return loose[0] if len(loose) == 1 else None


def _scope_query(cadre: Cadre, scope: str):
    query = select(Household).options(selectinload(Household.village))
    if scope == "villages":
        village_ids = select(cadre_villages.c.village_id).where(cadre_villages.c.cadre_id == cadre.id)
        return query.where(Household.village_id.in_(village_ids))
    if scope == "helper":
        return query.where(Household.helper_id == cadre.id)
    if scope == "township":
        return query.join(Village).where(Village.township_id == cadre.township_id)
    return None


async def households_in_scope(session: AsyncSession, cadre: Cadre, scope: str) -> list[Household]:
    """The households a cadre must visit: their villages, the households naming them as helper, or the township."""
    query = _scope_query(cadre, scope)
    if query is None:
        return []
    return list((await session.execute(query.order_by(Household.village_id, Household.code))).scalars())


async def visited_household_ids(
    session: AsyncSession, cadre_id: int, start: datetime, end: datetime
) -> set[int]:
    query = select(Visit.household_id).where(
        Visit.cadre_id == cadre_id,
        Visit.status == "submitted",
        Visit.submitted_at >= start,
        Visit.submitted_at < end,
    )
    return set((await session.execute(query)).scalars())


async def drafts_of(session: AsyncSession, cadre_id: int) -> list[Visit]:
    query = (
        select(Visit)
        .where(Visit.cadre_id == cadre_id, Visit.status == "draft")
        .options(selectinload(Visit.household).selectinload(Household.village))
        .order_by(Visit.updated_at.desc())
    )
    return list((await session.execute(query)).scalars())


async def draft_for(session: AsyncSession, cadre_id: int, household_id: int) -> Visit | None:
    """This cadre's unfinished visit to this household, if any (a visit resumes on any channel)."""
    query = (
        select(Visit)
        .where(Visit.cadre_id == cadre_id, Visit.household_id == household_id, Visit.status == "draft")
        .options(joinedload(Visit.household).joinedload(Household.village))
        .order_by(Visit.updated_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def work_log_since(session: AsyncSession, cadre_id: int, first: date) -> list[WorkLogEntry]:
    """The cadre's 扶贫日志 entries from this day on, newest first."""
    query = (
        select(WorkLogEntry)
        .where(WorkLogEntry.cadre_id == cadre_id, WorkLogEntry.day >= first)
        .order_by(WorkLogEntry.day.desc(), WorkLogEntry.id.desc())
    )
    return list((await session.execute(query)).scalars())


async def household_by_code(session: AsyncSession, code: str) -> Household | None:
    query = select(Household).where(Household.code == code).options(selectinload(Household.village))
    return (await session.execute(query)).scalar_one_or_none()


def visit_for_submit(session: Session, visit_id: int) -> Visit:
    """The visit with its household and village, locked (the end of a visit, in a sync session)."""
    query = (
        select(Visit)
        .where(Visit.id == visit_id)
        .options(joinedload(Visit.household).joinedload(Household.village))
        .with_for_update(of=Visit)
    )
    return session.execute(query).scalar_one()


async def visit_by_id(session: AsyncSession, visit_id: int, *, lock: bool = False) -> Visit | None:
    # one joined query: this runs for every answer a cadre types
    query = (
        select(Visit)
        .where(Visit.id == visit_id)
        .options(joinedload(Visit.household).joinedload(Household.village))
    )
    if lock:
        query = query.with_for_update(of=Visit)  # PostgreSQL: lock the visit, not the outer-joined rows
    return (await session.execute(query)).scalar_one_or_none()


_COUNTY_LINES = (
    select(
        County.__table__.c.income_line,
        County.__table__.c.monitoring_line,
        County.__table__.c.count_guaranteed,
    )
    .join(Township.__table__, Township.__table__.c.county_id == County.__table__.c.id)
    .join(Village.__table__, Village.__table__.c.township_id == Township.__table__.c.id)
    .where(Village.__table__.c.id == bindparam("village_id"))
)


def county_lines(session: Session, household: Household, defaults: Lines) -> Lines:
    """The county's own income and monitoring lines, or the settings' defaults where the county sets none."""
    income, monitoring, guaranteed = (
        session.connection().execute(_COUNTY_LINES, {"village_id": household.village_id}).one()
    )
    return lines_or_defaults(income, monitoring, guaranteed, defaults)


def lines_or_defaults(income: Any, monitoring: Any, guaranteed: bool | None, defaults: Lines) -> Lines:
    """A county's own values (None where it sets none) over the settings' defaults."""
    return Lines(
        income_line=Decimal(income) if income is not None else defaults.income_line,
        monitoring_line=Decimal(monitoring) if monitoring is not None else defaults.monitoring_line,
        count_guaranteed=guaranteed if guaranteed is not None else defaults.count_guaranteed,
    )


def latest_visit(
    household_id: ColumnElement[int] | int, at: ColumnElement[datetime] | datetime | None = None
) -> ScalarSelect[int]:
    """The id of the household's latest submitted visit (at or before `at`): by submitted_at, then by id.

    The one definition of "latest": households.latest_visit_id and polls.visit_id (the visit a poll rates) are
    both this, and migration 0010 backfilled them with the same SQL.
    """
    query = select(Visit.id).where(Visit.household_id == household_id, Visit.status == "submitted")
    if at is not None:
        query = query.where(Visit.submitted_at <= at)
    return query.order_by(Visit.submitted_at.desc(), Visit.id.desc()).limit(1).scalar_subquery()


_HOUSEHOLD_ID = bindparam("of_household")
_polls_table = Poll.__table__
_NOTE_LATEST = (
    update(Household.__table__)
    .where(Household.__table__.c.id == _HOUSEHOLD_ID)
    .values(latest_visit_id=latest_visit(_HOUSEHOLD_ID))
)
_NOTE_POLLS = (
    update(_polls_table)
    .where(
        _polls_table.c.household_id == _HOUSEHOLD_ID,
        _polls_table.c.created_at >= bindparam("since", type_=UTCDateTime()),
    )
    .values(visit_id=latest_visit(_polls_table.c.household_id, _polls_table.c.created_at))
)


def note_submitted(session: Session, visit: Visit) -> None:
    """Keep what the reports store about visits right after one is submitted: the household's latest visit, and
    the visit its polls created at or after this one rate (none, unless the visit's time is earlier than a poll
    already made: a device clock behind, or visits placed by hand as the tests do). Plain Core: no ORM object
    of these is in the session."""
    session.flush()  # the statements below must see the visit as submitted
    conn = session.connection()
    conn.execute(_NOTE_LATEST, {"of_household": visit.household_id})
    conn.execute(_NOTE_POLLS, {"of_household": visit.household_id, "since": visit.submitted_at})


def previous_facts(session: Session, household_id: int, before_visit: int) -> HouseholdFacts | None:
    """Facts of the household's latest submitted visit (for 脱贫达标 and the income-drop warning)."""
    query = (
        select(Visit)
        .where(Visit.household_id == household_id, Visit.status == "submitted", Visit.id != before_visit)
        .order_by(Visit.submitted_at.desc())
        .limit(1)
    )
    visit = session.execute(query).scalar_one_or_none()
    if visit is None or visit.counted_income is None:
        return None
    return HouseholdFacts(
        counted_income=Decimal(visit.counted_income),
        per_capita_net=None if visit.per_capita_net is None else Decimal(visit.per_capita_net),
        unmet=tuple(filter(None, (visit.unmet or "").split(","))),
        group=visit.household_group or "",
        warnings=tuple(filter(None, (visit.warnings or "").split(","))),
    )


@dataclass(frozen=True)
class VisitRow:
    """What answering one question needs of a visit, read with Core in one joined query (the hot path)."""

    id: int
    cadre_id: int
    status: str
    session: str
    warnings: str | None
    village: str
    head_name: str
    code: str
    # the household's county's own lines (None: the settings' default), for the summary's 人均纯收入
    income_line: Any = None
    monitoring_line: Any = None
    count_guaranteed: bool | None = None

    def lines(self, defaults: Lines) -> Lines:
        return lines_or_defaults(self.income_line, self.monitoring_line, self.count_guaranteed, defaults)

    uncollected: str | None = None  # set on submission only: the facts its script did not collect


# Built once, on the tables (plain Core: no ORM state for a statement that runs for every answer a cadre gives;
# building a statement costs more than running it).
_visits, _households, _villages = Visit.__table__, Household.__table__, Village.__table__
_townships, _counties = Township.__table__, County.__table__
_VISIT_ROW = (
    select(
        _visits.c.id,
        _visits.c.cadre_id,
        _visits.c.status,
        _visits.c.session,
        _visits.c.warnings,
        _villages.c.name,
        _households.c.head_name,
        _households.c.code,
        _counties.c.income_line,
        _counties.c.monitoring_line,
        _counties.c.count_guaranteed,
    )
    .join(_households, _households.c.id == _visits.c.household_id)
    .join(_villages, _villages.c.id == _households.c.village_id)
    .join(_townships, _townships.c.id == _villages.c.township_id)
    .join(_counties, _counties.c.id == _townships.c.county_id)
    .where(_visits.c.id == bindparam("visit_id"))
)
_VISIT_ROW_LOCKED = _VISIT_ROW.with_for_update(of=_visits)
_SAVE_SESSION = (
    update(_visits)
    .where(_visits.c.id == bindparam("visit_id"))
    .values(session=bindparam("session"), updated_at=bindparam("now"))
)


def visit_row(conn: Connection, visit_id: int, *, lock: bool = False) -> VisitRow | None:
    """Sync Core, for work run whole by Database.run."""
    query = _VISIT_ROW_LOCKED if lock else _VISIT_ROW
    row = conn.execute(query, {"visit_id": visit_id}).one_or_none()
    return None if row is None else VisitRow(*row)


def save_session(conn: Connection, visit_id: int, session_json: str, now: datetime) -> None:
    conn.execute(_SAVE_SESSION, {"visit_id": visit_id, "session": session_json, "now": now})


def save_reconciled(
    conn: Connection, visit_id: int, session_json: str, script: Script, now: datetime
) -> None:
    """A draft brought under the script in force: its session, and the script id and version it now follows."""
    save_session(conn, visit_id, session_json, now)
    conn.execute(
        update(Visit.__table__)
        .where(Visit.__table__.c.id == visit_id)
        .values(script_id=script.id, script_version=script.version)
    )


@dataclass(frozen=True)
class HouseholdLine:
    """A household as the picker shows it: who, where, and whether the cadre visited it this period or has a
    visit to it unfinished."""

    id: int
    code: str
    head_name: str
    village: str
    visited: bool = False
    draft: bool = False


def household_line(household: Household) -> HouseholdLine:
    return HouseholdLine(household.id, household.code, household.head_name, household.village.name)


def _by_cadre(status: str, cadre: Any, *period: Any) -> Any:
    return (
        select(_visits.c.id)
        .where(
            _visits.c.household_id == _households.c.id,
            _visits.c.cadre_id == cadre,
            _visits.c.status == status,
            *period,
        )
        .exists()
    )


_CADRE = bindparam("cadre_id")
_SCOPE_LINES = select(
    _households.c.id,
    _households.c.code,
    _households.c.head_name,
    _villages.c.name,
    _by_cadre(
        "submitted",
        _CADRE,
        _visits.c.submitted_at >= bindparam("start", type_=UTCDateTime()),
        _visits.c.submitted_at < bindparam("end", type_=UTCDateTime()),
    ),
    _by_cadre("draft", _CADRE),
).join(_villages, _villages.c.id == _households.c.village_id)
_IN_SCOPE = {
    "villages": _households.c.village_id.in_(
        select(cadre_villages.c.village_id).where(cadre_villages.c.cadre_id == _CADRE)
    ),
    "helper": _households.c.helper_id == _CADRE,
    "township": _villages.c.township_id == bindparam("township_id"),
}
_SCOPE_QUERIES = {
    scope: (
        _SCOPE_LINES.where(condition).order_by(_households.c.village_id, _households.c.code),
        _SCOPE_LINES.where(condition, _households.c.id == bindparam("household_id")),
    )
    for scope, condition in _IN_SCOPE.items()
}


def scope_lines(
    conn: Connection,
    cadre: Cadre,
    scope: str,
    start: datetime,
    end: datetime,
    household_id: int | None = None,
) -> list[HouseholdLine]:
    """The households a cadre must visit (their villages, the households naming them as helper, or the
    township; by village and 户编号), or just `household_id` when it is one of them. One query (sync Core)."""
    if scope not in _SCOPE_QUERIES:
        return []
    every, one = _SCOPE_QUERIES[scope]
    params = {"cadre_id": cadre.id, "township_id": cadre.township_id, "start": start, "end": end}
    if household_id is not None:
        rows = conn.execute(one, {**params, "household_id": household_id})
    else:
        rows = conn.execute(every, params)
    return [HouseholdLine(*row) for row in rows]


_DRAFT_ROW = (
    select(*_VISIT_ROW.selected_columns)
    .join(_households, _households.c.id == _visits.c.household_id)
    .join(_villages, _villages.c.id == _households.c.village_id)
    .join(_townships, _townships.c.id == _villages.c.township_id)
    .join(_counties, _counties.c.id == _townships.c.county_id)
    .where(
        _visits.c.cadre_id == bindparam("cadre_id"),
        _visits.c.household_id == bindparam("household_id"),
        _visits.c.status == "draft",
    )
    .order_by(_visits.c.updated_at.desc())
    .limit(1)
)
_INSERT_DRAFT = insert(_visits).returning(_visits.c.id)


def draft_row(conn: Connection, cadre_id: int, household_id: int) -> VisitRow | None:
    """This cadre's unfinished visit to this household, if any (a visit resumes on any channel)."""
    row = conn.execute(_DRAFT_ROW, {"cadre_id": cadre_id, "household_id": household_id}).one_or_none()
    return None if row is None else VisitRow(*row)


def insert_draft(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(_INSERT_DRAFT, values).scalar_one())


def answer_rows(script: Script, visit_id: int, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """Typed rows for the answers table: one per value, one per chosen option of a several-of question."""
    rows: list[dict[str, Any]] = []
    for question in script.questions():
        value = answers.get(question.name)
        if value is None:
            continue
        if question.type == "repeat":
            for k, item in enumerate(value):
                for child in question.questions:
                    if item.get(child.name) is not None:
                        rows += _typed(visit_id, child.name, k, child.type, item[child.name])
        else:
            rows += _typed(visit_id, question.name, -1, question.type, value)
    return rows


def _typed(visit_id: int, field: str, item: int, qtype: str, value: Any) -> list[dict[str, Any]]:
    base = {
        "visit_id": visit_id,
        "field": field,
        "item": item,
        "seq": 0,
        "value_int": None,
        "value_real": None,
        "value_bool": None,
        "value_text": None,
    }
    if qtype == "several_of":
        return [{**base, "seq": i, "value_text": v} for i, v in enumerate(value)]
    if qtype == "integer":
        return [{**base, "value_int": int(value)}]
    if qtype == "decimal":
        return [{**base, "value_real": float(value)}]
    if qtype in ("yes_no", "confirm"):
        return [{**base, "value_bool": bool(value)}]
    if qtype == "location":
        return [{**base, "value_text": f"{value['lat']},{value['lon']}"}]
    if qtype == "photo":
        return [{**base, "value_text": value["file_id"]}]
    return [{**base, "value_text": str(value)}]


def store_submission(
    session: Session,
    script: Script,
    visit: Visit,
    answers: dict[str, Any],
    facts: HouseholdFacts,
    now: datetime,
    log_day: date,
    visit_log: str,
    problem_log: Callable[[Problem], str],
) -> list[Problem]:
    """Answers, problems, derived facts and work-log entries of a submitted visit, in the caller's transaction."""
    rows = answer_rows(script, visit.id, answers)
    if rows:
        session.connection().execute(insert(Answer.__table__), rows)
    visit.status = "submitted"
    visit.submitted_at = now
    visit.updated_at = now
    if isinstance(answers.get("location"), dict):
        visit.lat, visit.lon = answers["location"]["lat"], answers["location"]["lon"]
    visit.counted_income = facts.counted_income
    visit.per_capita_net = facts.per_capita_net
    visit.household_group = facts.group
    visit.unmet = ",".join(facts.unmet)
    visit.warnings = ",".join(facts.warnings)
    visit.uncollected = ",".join(facts.uncollected) or None
    satisfaction = script.roles.first("satisfaction")
    visit.satisfaction = answers.get(satisfaction) if satisfaction else None
    visit.answers_digest = answers_digest(answers)
    note_submitted(session, visit)
    problems = [_problem(visit, item, now) for item in answers.get("problems", [])]
    session.add_all(problems)
    session.flush()
    session.add_all(creation_event(p) for p in problems)

    def log(kind: str, text: str, problem: Problem | None = None) -> WorkLogEntry:
        return WorkLogEntry(
            cadre_id=visit.cadre_id,
            day=log_day,
            kind=kind,
            visit_id=visit.id,
            problem_id=problem.id if problem else None,
            text=text,
            created_at=now,
        )

    session.add(log("visit", visit_log))
    session.add_all(log("problem_resolved", problem_log(p), p) for p in problems if p.resolved_on_site)
    _audit_submission(session, visit, answers, problems, now)
    return problems


def _audit_submission(
    session: Session, visit: Visit, answers: dict[str, Any], problems: list[Problem], now: datetime
) -> None:
    """A submitted visit is never edited (a second visit is a new row): its submission is the change recorded."""
    code = session.execute(select(Household.code).where(Household.id == visit.household_id)).scalar_one()
    audit.add(
        session,
        now,
        "visit.submit",
        f"household:{code} visit:{visit.id}",
        cadre_id=visit.cadre_id,
        before={"status": "draft"},
        after={
            "status": "submitted",
            "channel": visit.channel,
            "script_version": visit.script_version,
            "answers": len(answers),
            "problems": len(problems),
            "satisfaction": visit.satisfaction,
        },
    )


def _problem(visit: Visit, item: dict[str, Any], now: datetime) -> Problem:
    resolved = bool(item.get("resolved_on_site"))
    return Problem(
        household_id=visit.household_id,
        visit_id=visit.id,
        raised_by_id=visit.cadre_id,
        source="visit",
        category=item["category"],
        description=item["description"],
        resolved_on_site=resolved,
        resolution=item.get("resolution"),
        status="closed" if resolved else "escalated",
        created_at=now,
        closed_at=now if resolved else None,
        escalated_at=None if resolved else now,
    )


def dump_session(session_data: dict[str, Any]) -> str:
    return json.dumps(session_data, ensure_ascii=False, separators=(",", ":"))


async def count_submitted(session: AsyncSession) -> int:
    return (
        await session.execute(select(func.count(Visit.id)).where(Visit.status == "submitted"))
    ).scalar_one()
