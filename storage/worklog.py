"""Queries for 扶贫日志: one cadre's month of entries, the roster hints, and the year's logs for the spot check.

The spot check's population is SQL aggregation (GROUP BY cadre, month of `day`), never a loop over entries.
The month comes from `extract('month', day)` with the year as a range on `day`: dialect-neutral (SQLite compiles
it to strftime, PostgreSQL to EXTRACT) and the range keeps the (cadre_id, day) index usable.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Cadre, Township, WorkLogEntry
from survey.worklog import CITY_LEADER_ROLE


@dataclass(frozen=True)
class YearLog:
    """One (cadre, month) log of the year that has at least one entry."""

    code: str
    name: str
    role: str
    township: str
    month: str  # "2026-03"
    entries: int


async def month_entries(session: AsyncSession, cadre_id: int, start: date, end: date) -> list[WorkLogEntry]:
    """A cadre's entries with start <= day < end, by day, then the time they were written."""
    query = (
        select(WorkLogEntry)
        .where(WorkLogEntry.cadre_id == cadre_id, WorkLogEntry.day >= start, WorkLogEntry.day < end)
        .order_by(WorkLogEntry.day, WorkLogEntry.created_at, WorkLogEntry.id)
    )
    return list((await session.execute(query)).scalars())


async def city_leaders(session: AsyncSession, township_id: int) -> list[str]:
    """Names of the 市级包保领导 whose roster township is this one (the work team's signer)."""
    query = (
        select(Cadre.name)
        .where(Cadre.role == CITY_LEADER_ROLE, Cadre.township_id == township_id)
        .order_by(Cadre.code)
    )
    return list((await session.execute(query)).scalars())


async def cadre_hints(
    session: AsyncSession, given: str, limit: int = 10
) -> tuple[list[tuple[str, str]], int]:
    """For an unknown 干部编号: up to `limit` (code, name) near it, and how many cadres the roster has.

    Cadres whose name is what was typed come first, then codes equal but for case, then similar codes.
    """
    total = (await session.execute(select(func.count()).select_from(Cadre))).scalar_one()
    if not total:
        return [], 0
    rows = list((await session.execute(select(Cadre.code, Cadre.name).order_by(Cadre.code))).tuples())
    names = dict(rows)
    wanted = given.strip()
    picked = [code for code, name in rows if name == wanted]
    picked += [code for code, _ in rows if code.casefold() == wanted.casefold()]
    picked += difflib.get_close_matches(wanted, list(names), n=limit, cutoff=0.6)
    unique = list(dict.fromkeys(picked))[:limit]
    return [(code, names[code]) for code in unique], total


def year_logs_query(start: date, end: date) -> Select:
    """(cadre, month, entries) for every cadre-month with an entry and start <= day < end (one calendar year)."""
    month = extract("month", WorkLogEntry.day)
    counts = (
        select(
            WorkLogEntry.cadre_id.label("cadre_id"),
            month.label("month"),
            func.count(WorkLogEntry.id).label("entries"),
        )
        .where(WorkLogEntry.day >= start, WorkLogEntry.day < end)
        .group_by(WorkLogEntry.cadre_id, month)
        .subquery()
    )
    return (
        select(Cadre.code, Cadre.name, Cadre.role, Township.name, counts.c.month, counts.c.entries)
        .join(counts, counts.c.cadre_id == Cadre.id)
        .join(Township, Township.id == Cadre.township_id)
        .order_by(Cadre.code, counts.c.month)
    )


async def year_logs(session: AsyncSession, year: int) -> list[YearLog]:
    """The spot check's population: every (cadre, month) log of the year with at least one entry."""
    query = year_logs_query(date(year, 1, 1), date(year + 1, 1, 1))
    return [
        YearLog(code, name, role, township, f"{year:04d}-{int(month):02d}", int(entries))
        for code, name, role, township, month, entries in (await session.execute(query)).tuples()
    ]
