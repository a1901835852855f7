"""扶贫日志 on the command line: one cadre's month with the sign-off line for the role's signer (Markdown or
xlsx), and the organisation department's yearly spot check (indicators.md, "Work log 扶贫日志").

Queries are in storage.worklog, the signer rule in survey.worklog, the draw in survey.sampling; every text a
user reads comes from messages/templates/<locale>/worklog/.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from itertools import groupby
from pathlib import Path
from typing import Any

from bot.reports.output import Column, Report, write_xlsx
from bot.settings import Settings
from messages import render
from storage import worklog as q
from storage.db import Database
from storage.visits import cadre_by_code
from survey.periods import ROLE_LABELS_EN, Period, PeriodError, parse_period
from survey.sampling import MIN_RATE, SamplingError, draw, parse_rate, parse_seed
from survey.worklog import SIGNER_BY_ROLE, Signer, signer_for


class WorklogError(ValueError):
    """Bad input (unknown cadre, bad month, year, rate or seed): one line in the settings' language."""


def error(code: str, locale: str, **params: Any) -> WorklogError:
    return WorklogError(render("worklog/error.txt", locale, code=code, **params))


# --- inputs ------------------------------------------------------------------------------------------------


def _period(text: str, kind: str) -> Period | None:
    try:
        period = parse_period(text)
    except PeriodError:
        return None
    return period if period.kind == kind else None


def parse_month(text: str, locale: str) -> Period:
    """2026-03 (two-digit month); 2026-13, 2026-1, nov, 2026 or 2026Q1 are refused."""
    period = _period(text, "month")
    if period is None:
        raise error("bad_month", locale, given=text)
    return period


def parse_year(text: str, locale: str) -> int:
    period = _period(text, "year")
    if period is None:
        raise error("bad_year", locale, given=text)
    return period.start.year


def rate_from(text: str, locale: str) -> Fraction:
    try:
        return parse_rate(text)
    except SamplingError:
        raise error("bad_rate", locale, given=text) from None


def seed_from(text: str | None, locale: str) -> tuple[int, bool]:
    """(seed, taken from the clock): without --seed, the microseconds of the clock, printed so it can be reused."""
    if text is None:
        return time.time_ns() // 1000 % 1_000_000, True
    try:
        return parse_seed(text), False
    except SamplingError:
        raise error("bad_seed", locale, given=text) from None


# --- one cadre's month --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    day: date
    time: str  # local HH:MM the entry was written
    kind: str  # visit / problem_resolved
    text: str


@dataclass(frozen=True)
class MonthLog:
    code: str
    name: str
    role: str
    township: str
    villages: tuple[str, ...]
    month: Period
    entries: tuple[Entry, ...]
    signer: Signer

    @property
    def role_en(self) -> str:
        return ROLE_LABELS_EN.get(self.role, self.role)

    @property
    def last_day(self) -> date:
        return self.month.end - timedelta(days=1)

    @property
    def visits(self) -> int:
        return sum(1 for e in self.entries if e.kind == "visit")

    @property
    def resolved(self) -> int:
        return sum(1 for e in self.entries if e.kind == "problem_resolved")

    @property
    def days(self) -> list[tuple[date, list[Entry]]]:
        return [(day, list(entries)) for day, entries in groupby(self.entries, key=lambda e: e.day)]


async def month_log(db: Database, settings: Settings, cadre_code: str, month: Period) -> MonthLog:
    """The cadre's entries of the month (local days), and who signs; an unknown cadre is a WorklogError."""
    async with db.reading() as s:
        cadre = await cadre_by_code(s, cadre_code)
        if cadre is None:
            near, total = await q.cadre_hints(s, cadre_code)
            raise error("unknown_cadre", settings.locale, given=cadre_code, near=near, total=total)
        rows = await q.month_entries(s, cadre.id, month.start, month.end)
        leaders = (
            await q.city_leaders(s, cadre.township_id)
            if SIGNER_BY_ROLE.get(cadre.role) == "city_leader"
            else []
        )
        return MonthLog(
            code=cadre.code,
            name=cadre.name,
            role=cadre.role,
            township=cadre.township.name,
            villages=tuple(v.name for v in cadre.villages),
            month=month,
            entries=tuple(
                Entry(r.day, r.created_at.astimezone(settings.tz).strftime("%H:%M"), r.kind, r.text)
                for r in rows
            ),
            signer=signer_for(cadre.role, leaders),
        )


def log_markdown(log: MonthLog, locale: str) -> str:
    return render("worklog/month.md", locale, log=log) + "\n"


LOG_COLUMNS = [
    Column("day", "日期", "Date"),
    Column("time", "时间", "Time"),
    Column("kind", "类型", "Kind"),
    Column("text", "内容", "Entry", wrap=True),
]


def default_log_path(log: MonthLog) -> Path:
    """worklog-<cadre>-<month>.xlsx in the working directory (characters a file name cannot hold become _)."""
    code = re.sub(r'[\\/:*?"<>|\s]', "_", log.code)
    return Path(f"worklog-{code}-{log.month.label}.xlsx")


def write_log_xlsx(log: MonthLog, path: Path, locale: str) -> None:
    """One sheet: the entries under a frozen header row, then the cadre, the counts and the sign-off line."""
    report = Report(
        name=default_log_path(log).stem,
        title=render("worklog/label.txt", locale, what="log_title", key=f"{log.code} {log.month.label}"),
        columns=LOG_COLUMNS,
        rows=[
            {
                "day": e.day,
                "time": e.time,
                "kind": render("worklog/label.txt", locale, what="kind", key=e.kind),
                "text": e.text,
            }
            for e in log.entries
        ],
        locale=locale,
        notes=[render("worklog/sheet.txt", locale, log=log)],  # the cadre, the counts, the sign-off line
    )
    write_xlsx(report, path)


# --- the yearly spot check ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    year: int
    rate: Fraction
    seed: int
    from_clock: bool
    population: list[q.YearLog]
    chosen: list[q.YearLog]


def log_key(log: q.YearLog) -> tuple[str, str]:
    return (log.code, log.month)


async def draw_sample(db: Database, year: int, rate: Fraction, seed: int, from_clock: bool = False) -> Sample:
    """The population is every (cadre, month) log of the year with at least one entry (logs are signed monthly)."""
    async with db.reading() as s:
        population = await q.year_logs(s, year)
    chosen = draw(population, rate, seed, key=log_key)
    return Sample(year, rate, seed, from_clock, population, chosen)


SAMPLE_COLUMNS = [
    Column("code", "干部编号", "Cadre ID"),
    Column("name", "姓名", "Name"),
    Column("role", "角色", "Role"),
    Column("township", "乡镇", "Township"),
    Column("month", "月份", "Month"),
    Column("entries", "条目数", "Entries", kind="int"),
]


def sample_summary(sample: Sample, locale: str) -> str:
    return render(
        "worklog/sample_summary.txt",
        locale,
        year=sample.year,
        population=len(sample.population),
        sampled=len(sample.chosen),
        rate=f"{float(sample.rate) * 100:g}%",
        seed=sample.seed,
        from_clock=sample.from_clock,
        below_minimum=sample.rate < MIN_RATE,
    )


def sample_report(sample: Sample, locale: str) -> Report:
    return Report(
        name=f"worklog-sample-{sample.year}",
        title=render("worklog/label.txt", locale, what="sample_title", key=str(sample.year)),
        columns=SAMPLE_COLUMNS,
        rows=[
            {
                "code": log.code,
                "name": log.name,
                "role": log.role,
                "township": log.township,
                "month": log.month,
                "entries": log.entries,
            }
            for log in sample.chosen
        ],
        locale=locale,
        empty=render("worklog/sample_empty.txt", locale, year=sample.year),
    )
