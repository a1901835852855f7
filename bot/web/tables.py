"""The dashboard's tables are the CLI's reports: the same builders (`bot.reports`), the same CSV writer. A page
shows a report's CSV as an HTML table, so every figure on screen is the figure of `zoufang report … --format csv`."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot import reports
from bot.reports import Column, Context, Report
from storage import web as store
from storage.db import Database
from storage.reports import Area
from survey.facts import GROUP_LABELS, GROUP_LABELS_EN, WARNING_LABELS, WARNING_LABELS_EN, WARNINGS
from survey.problems import STATE_LABELS, STATES


@dataclass(frozen=True)
class Place:
    """What a page is about: the county, a township, a village, or a cadre's own households."""

    kind: str  # county | township | village | own | overdue
    id: int
    name: str
    area: Area
    township: str = ""  # the township's roster name (township and village pages; overdue of a township)
    county: str = ""
    own_cadre_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[Database, Context, Place, bool], Awaitable[Report]]


async def _satisfaction(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    by = "township" if place.kind == "county" else "village"
    period = reports.period_from(None, ctx.settings.poll_period, ctx)
    return await reports.satisfaction(db, ctx, by, period, place.area)


async def _coverage(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    return await reports.coverage(db, ctx, reports.role_from(None, ctx), None, place.area, full_lists=full)


async def _problems(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    return await reports.problems_by_township(db, ctx, reports.period_from(None, "year", ctx), place.area)


async def _groups(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    return await reports.households(db, ctx, None, place.area)


async def _warnings(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    return await reports.warnings(db, ctx, None, place.area)


async def _overdue(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    report = await reports.overdue(db, ctx, place.county or None)
    if place.township:  # a township's own part of the county's list
        report.rows = [row for row in report.rows if row.get("township") == place.township]
    return report


async def _states(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    """Problems by state now (survey.problems.STATES, in the machine's order), then 合计."""
    async with db.reading() as s:
        counts = await store.problem_states(s, place.area.village_ids or ())
    en = ctx.locale == "en"
    rows: list[dict[str, Any]] = [
        {"state": STATE_LABELS[state][1 if en else 0], "code": state, "count": counts.get(state, 0)}
        for state in STATES
    ]
    rows.append({"state": ctx.say("total"), "code": "", "count": sum(counts.values())})
    return Report(
        name="problem-states",
        title=ctx.say("title_problem_states", place=place.name),
        columns=[
            ctx.column("state"),
            ctx.column("code", "state_code"),
            ctx.column("count", "state_problems", kind="int"),
        ],
        rows=rows,
        locale=ctx.locale,
    )


TABLES: dict[str, tuple[str, ...]] = {
    "county": ("satisfaction", "coverage", "states", "problems", "groups"),
    "township": ("satisfaction", "coverage", "states", "problems", "groups"),
    "village": ("households", "warnings"),
    "own": ("households",),
    "overdue": ("overdue",),
}


def names_of(place: Place) -> tuple[str, ...]:
    """The tables of the page; a cadre who sees only their own households gets only those, on any page."""
    return TABLES["own"] if place.own_cadre_id is not None else TABLES[place.kind]


async def build(db: Database, ctx: Context, place: Place, name: str, full: bool = False) -> Report:
    """The named table of the page (`full`: as the CLI writes it to a file, every household left named)."""
    if name not in names_of(place):
        raise KeyError(name)
    return await _BUILDERS[name](db, ctx, place, full)


async def warning_count(db: Database, ctx: Context, place: Place) -> int:
    """How many households have a 返贫预警: the rows of `zoufang report households --warning`."""
    return len((await _warnings(db, ctx, place, False)).rows)


def csv_of(report: Report) -> str:
    """The CLI's CSV of the report (`zoufang report … --format csv`), byte for byte."""
    out = io.StringIO()
    reports.emit(report, "csv", None, out)
    return out.getvalue()


def xlsx_of(report: Report) -> bytes:
    """The CLI's XLSX of the report (`--format xlsx`): written to a scratch file by the same writer, read back."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{report.name}.xlsx"
        reports.emit(report, "xlsx", path, io.StringIO())
        return path.read_bytes()


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]
    empty: str
    as_of: str = ""  # when its figures were read (local HH:MM:SS), shown under the table
    chart: bool = False  # the report draws a chart (…/<name>.png)


def table_of(name: str, report: Report) -> Table:
    """The report as the page shows it: the CSV's header and rows (the notes below them)."""
    lines = list(csv.reader(io.StringIO(csv_of(report).removeprefix("\ufeff"))))
    header, body = lines[0], lines[1:]
    rows = body[: body.index([])] if [] in body else body
    notes = [n for n in report.notes if n]
    return Table(name, report.title, header, rows, notes, report.empty, chart=report.chart is not None)


def png_of(report: Report) -> bytes:
    """The report's chart as `zoufang report … --format png` writes it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chart.png"
        assert report.chart is not None
        report.chart(path)
        return path.read_bytes()


T = TypeVar("T")
log = logging.getLogger("zoufang.web")


_MISSING: Any = object()


@dataclass
class _Kept:
    at: float = 0.0  # when `value` was built (the cache's clock)
    value: Any = _MISSING
    building: asyncio.Task[Any] | None = None


class TableCache:
    """A page's tables, kept `seconds` after they were built, so opening pages costs what rendering costs.

    A county page is five reports over the whole county (seconds at 250,000 households); the figures move with
    each visit and reply, but nobody reads them to the second. So a table built for a place and language is
    kept (ZOUFANG_WEB_CACHE_SECONDS, default 60; 0 keeps nothing), its time shown under it. Older than that,
    it is still shown once while a new one is built behind it (up to STALE_TIMES × `seconds` old; older ones
    are built while the viewer waits), so nobody waits for a county's reports but the first viewer. A problem
    moved on the dashboard empties the cache, so the mover sees the move. Requests that come while a table is
    first built wait for that one build, which a viewer who leaves does not cancel. Downloads are always built
    fresh (they are the CLI's files)."""

    STALE_TIMES = 30  # at the default minute: figures up to half an hour old are shown (their time with them)

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self._kept: dict[tuple[Any, ...], _Kept] = {}

    async def get(self, key: tuple[Any, ...], build: Callable[[], Awaitable[T]]) -> T:
        if self.seconds <= 0:
            return await build()
        kept = self._kept.get(key)
        if kept is not None and kept.value is not _MISSING:
            age = self.clock() - kept.at
            if age < self.seconds * self.STALE_TIMES:
                if age >= self.seconds and kept.building is None:
                    self._start(kept, build)  # shown as it is once more; the next view gets the new one
                return kept.value  # type: ignore[no-any-return]
        if kept is None or kept.building is None:
            kept = self._kept[key] = _Kept()
            self._start(kept, build)
        assert kept.building is not None
        return await asyncio.shield(kept.building)  # type: ignore[no-any-return]

    def _start(self, kept: _Kept, build: Callable[[], Awaitable[Any]]) -> None:
        async def run() -> Any:
            try:
                value = await build()
            finally:
                kept.building = None
            kept.at, kept.value = self.clock(), value
            return value

        task = asyncio.create_task(run())
        task.add_done_callback(lambda done: self._forget_failure(kept, done))
        kept.building = task

    def _forget_failure(self, kept: _Kept, done: asyncio.Task[Any]) -> None:
        if done.cancelled() or done.exception() is None:
            return
        if kept.value is _MISSING:  # a failed first build is not kept: the next request tries again
            self._kept = {k: v for k, v in self._kept.items() if v is not kept}
        log.warning("dashboard table not built: %r", done.exception())

    def clear(self) -> None:
        self._kept.clear()


def cache_key(place: Place, name: str, locale: str) -> tuple[Any, ...]:
    return (name, place.kind, place.id, place.own_cadre_id, locale)


# --- the households of a village (or a cadre's own): one report of the dashboard's own -------------------


def _reasons(codes: str | None, en: bool) -> str:
    given = set((codes or "").split(",")) - {""}
    labels = WARNING_LABELS_EN if en else WARNING_LABELS
    return "；".join(
        labels.get(w, w) for w in [w for w in WARNINGS if w in given] + sorted(given - set(WARNINGS))
    )


async def _households(db: Database, ctx: Context, place: Place, full: bool) -> Report:
    en = ctx.locale == "en"
    groups = GROUP_LABELS_EN if en else GROUP_LABELS
    not_collected = (
        "not collected" if en else "未采集"
    )  # visited, but its script lacked the group's questions
    async with db.reading() as s:
        found = await store.households(s, place.area.village_ids or (), place.own_cadre_id)
    rows = [
        {
            "village": h.village,
            "code": h.code,
            "head": h.head_name,
            "members": h.members,
            "status": h.status,
            "group": groups.get(h.group, h.group) if h.group else (not_collected if h.visited_at else ""),
            "visited": ctx.local(h.visited_at),
            "visitor": h.visitor or "",
            "reasons": _reasons(h.warnings, en),
            "poll": _poll(h.poll, en),
        }
        for h in found
    ]
    return Report(
        name="households",
        title=ctx.say("title_households", place=place.name, n=len(rows)),
        columns=_household_columns(ctx),
        rows=rows,
        locale=ctx.locale,
        empty=ctx.say("no_households"),
    )


def _household_columns(ctx: Context) -> list[Column]:
    return [
        ctx.column("village"),
        ctx.column("code", "household_code"),
        ctx.column("head"),
        ctx.column("members", kind="int"),
        ctx.column("status", "poverty_status"),
        ctx.column("group"),
        ctx.column("visited", "latest_visit"),
        ctx.column("visitor"),
        ctx.column("reasons", "warning_reasons"),
        ctx.column("poll", "latest_poll"),
    ]


_RATINGS_EN = {"满意": "satisfied", "基本满意": "fairly satisfied", "不满意": "dissatisfied"}


def _poll(answer: str | None, en: bool) -> str:
    if not answer or not en:
        return answer or ""
    period, _, rating = answer.partition(" ")
    return f"{period} {_RATINGS_EN.get(rating, rating)}"


_BUILDERS: dict[str, Builder] = {
    "satisfaction": _satisfaction,
    "coverage": _coverage,
    "problems": _problems,
    "groups": _groups,
    "warnings": _warnings,
    "overdue": _overdue,
    "households": _households,
    "states": _states,
}
