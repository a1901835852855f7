"""Satisfaction (群众满意度) and policy awareness (政策知晓率): a rate with its n, Wilson interval, target and
small-sample flag per village, township or cadre of the area, then the 合计 row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.reports.base import Context
from bot.reports.output import Column, Report, rate_bars
from storage import reports as q
from storage.db import Database
from survey.periods import Period
from survey.stats import SMALL_SAMPLE, Rate, rate

BY = ("village", "township", "cadre")


def _rate_cells(prefix: str, result: Rate, target: float) -> dict[str, Any]:
    return {
        f"{prefix}_n": result.n,
        f"{prefix}_rate": result.value,
        f"{prefix}_low": result.low,
        f"{prefix}_high": result.high,
        f"{prefix}_interval": (result.low, result.high),
        f"{prefix}_met": result.meets(target),
        f"{prefix}_small": result.small_sample if result.n else None,
    }


def satisfaction_row(label: dict[str, Any], counts: q.Counts, target: float) -> dict[str, Any]:
    """One row: both sources' rates with n, response rate, interval, target and small-sample flag, and the gap."""
    sms = rate(counts.sms_satisfied, counts.sms_answered)
    recorded = rate(counts.recorded_satisfied, counts.recorded)
    gap = None
    if sms.value is not None and recorded.value is not None:
        gap = round((recorded.value - sms.value) * 100, 9)  # 20.000000000000004 is 20 points, not more
    return {
        **label,
        "sms_screen": f"{counts.sms_answered}/{counts.sms_polled}{_star(sms)}",
        "rec_screen": f"{counts.recorded}{_star(recorded)}",
        "sms_polled": counts.sms_polled,
        "sms_response": counts.sms_answered / counts.sms_polled if counts.sms_polled else None,
        **_rate_cells("sms", sms, target),
        "visits": counts.visits,
        "rec_response": counts.recorded / counts.visits if counts.visits else None,
        **_rate_cells("rec", recorded, target),
        "gap": gap,
    }


def _star(result: Rate) -> str:
    """The screen's mark of a small sample (the files have a column for it)."""
    return "*" if result.n and result.small_sample else ""


def _source_columns(prefix: str, ctx: Context) -> list[Column]:
    """One source's columns (短信 or 走访): the headers name the source, `src_<part>` with source=…"""
    source = ctx.say(f"source_{prefix}")

    def column(part: str, kind: str, **flags: bool) -> Column:
        return Column(f"{prefix}_{part}", ctx.say(f"src_{part}", kind=source), None, kind, **flags)

    return [
        column("n", "int", screen=False),
        column("rate", "pct"),
        ctx.column(f"{prefix}_interval", "interval", "interval", file=False),
        column("low", "pct", screen=False),
        column("high", "pct", screen=False),
        ctx.column(f"{prefix}_met", "met_short", "flag", file=False),
        column("met", "flag", screen=False),
        column("small", "flag", screen=False),
    ]


def _total_label(by: str, ctx: Context) -> dict[str, Any]:
    """The 合计 row's label cells: the first label column says 合计, the others are empty."""
    columns = _label_columns(by, ctx)
    total = ctx.say("total")
    return {c.key: total if c is columns[0] else "" for c in columns}


def _label_columns(by: str, ctx: Context) -> list[Column]:
    if by == "cadre":
        return [ctx.column("cadre_code"), ctx.column("cadre_name"), ctx.column("township")]
    columns = [ctx.column("township")]
    return [*columns, ctx.column("village")] if by == "village" else columns


async def satisfaction(db: Database, ctx: Context, by: str, period: Period, area: q.Area) -> Report:
    tz, target = ctx.settings.tz, ctx.settings.satisfaction_target
    start, end = period.starts_at(tz), period.ends_at(tz)
    async with db.reading() as s:
        sms = await q.sms_counts(s, by, start, end, area)
        recorded = await q.recorded_counts(s, by, start, end, area)
        labels = await _satisfaction_labels(s, by, area, set(sms) | set(recorded), ctx)
    rows = []
    total = q.Counts()
    for key, label in labels:
        counts = q.Counts()
        for source in (sms, recorded):
            if key in source:
                counts.add(source[key])
        total.add(counts)
        rows.append(satisfaction_row(label, counts, target))
    report = Report(
        name="satisfaction",
        title=ctx.say("satisfaction_title", period=period.label, by=by),
        columns=[
            *_label_columns(by, ctx),
            ctx.column("sms_polled", kind="int", screen=False),
            ctx.column("sms_response", kind="pct", screen=False),
            ctx.column("sms_screen", file=False),
            *_source_columns("sms", ctx),
            ctx.column("visits", kind="int", screen=False),
            ctx.column("rec_response", kind="pct", screen=False),
            ctx.column("rec_screen", file=False),
            *_source_columns("rec", ctx),
            ctx.column("gap", kind="points"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.say("satisfaction_empty", period=period.label),
    )
    report.chart = _satisfaction_chart(report, by, target, ctx)  # an empty report draws "无数据"
    if total.sms_polled == 0 and total.visits == 0:
        report.rows = []
        return report
    report.rows.append(satisfaction_row(_total_label(by, ctx), total, target))
    report.notes = _satisfaction_notes(ctx, period, target)
    return report


AWARENESS_FIELD = "policy_known"  # the built-in script's 政策知晓 question, and the role that marks it


async def awareness(db: Database, ctx: Context, by: str, period: Period, area: q.Area, script: Any) -> Report:
    """政策知晓率: households that know the support policies they receive, of those asked in visits submitted
    in the period, with n and the Wilson interval, against ZOUFANG_AWARENESS_TARGET (the seeds: 100 %)."""
    target = ctx.settings.awareness_target
    field = script.roles.first(AWARENESS_FIELD)  # the question tagged role policy_known (issue 17)
    report = Report(
        name="awareness",
        title=ctx.say("awareness_title", period=period.label, by=by),
        columns=[
            *_label_columns(by, ctx),
            ctx.column("aw_n", kind="int"),
            ctx.column("aw_yes", kind="int"),
            ctx.column("aw_rate", kind="pct"),
            ctx.column("aw_interval", "interval", "interval", file=False),
            ctx.column("aw_low", "low", "pct", screen=False),
            ctx.column("aw_high", "high", "pct", screen=False),
            ctx.column("aw_met", "met", "flag"),
            ctx.column("aw_small", "small", "flag", screen=False),
        ],
        rows=[],
        locale=ctx.locale,
        empty=ctx.say("awareness_empty", period=period.label),
    )
    if field is None:
        report.empty = ctx.say("awareness_not_asked", field=AWARENESS_FIELD)
        return report
    tz = ctx.settings.tz
    async with db.reading() as s:
        counts = await q.awareness_counts(s, by, period.starts_at(tz), period.ends_at(tz), area, field)
        labels = await _satisfaction_labels(s, by, area, set(counts), ctx)
    total_n = total_yes = 0
    for key, label in labels:
        n, yes = counts.get(key, (0, 0))
        total_n, total_yes = total_n + n, total_yes + yes
        report.rows.append(_awareness_row(label, n, yes, target))
    if total_n == 0:
        report.rows = []
        return report
    report.rows.append(_awareness_row(_total_label(by, ctx), total_n, total_yes, target))
    report.notes = [ctx.say("awareness_note", target=f"{target:.0%}", small=SMALL_SAMPLE)]
    return report


def _awareness_row(label: dict[str, Any], n: int, yes: int, target: float) -> dict[str, Any]:
    result = rate(yes, n)
    cells = _rate_cells("aw", result, target)
    return {**label, **cells, "aw_yes": yes if n else None}


def _satisfaction_notes(ctx: Context, period: Period, target: float) -> list[str]:
    return [
        ctx.say("satisfaction_note_rate", target=f"{target:.0%}", small=SMALL_SAMPLE),
        ctx.say("satisfaction_note_sources"),
    ]


async def _satisfaction_labels(
    s: Any, by: str, area: q.Area, keys: set[int | None], ctx: Context
) -> list[tuple[int | None, dict[str, Any]]]:
    """Every village or township of the area (with data or not), or every cadre with data, in order."""
    if by == "village":
        return [(p.id, {"township": p.township, "village": p.village}) for p in await q.villages(s, area)]
    if by == "township":
        return [(p.id, {"township": p.township}) for p in await q.townships(s, area)]
    cadres = await q.cadres_by_id(s, [k for k in keys if k is not None])
    labels: list[tuple[int | None, dict[str, Any]]] = [
        (cid, {"cadre_code": code, "cadre_name": name, "township": town})
        for cid, (code, name, _role, town) in sorted(cadres.items(), key=lambda item: item[1][0])
    ]
    if None in keys:
        labels.append(
            (
                None,
                {
                    "cadre_code": ctx.say("no_visit_before_poll"),
                    "cadre_name": "",
                    "township": "",
                },
            )
        )
    return labels


def _satisfaction_chart(report: Report, by: str, target: float, ctx: Context):  # type: ignore[no-untyped-def]
    def label(row: dict[str, Any]) -> str:
        return row.get("village") or row.get("cadre_name") or row.get("cadre_code") or row.get("township", "")

    def draw(path: Path) -> None:
        # The rows as drawn, not as made: the chart is set before the total row is appended (or the rows
        # emptied), and a slice taken then left out the last village, township or cadre instead of the total.
        rows = report.rows[:-1]  # the total is a line of its own, not a bar (no rows: no total either)
        rate_bars(
            path,
            report.title,
            [label(r) for r in rows],
            [
                (ctx.say("series_sms"), *_series(rows, "sms")),
                (ctx.say("series_visits"), *_series(rows, "rec")),
            ],
            target,
            ctx.say("target_line", target=f"{target:.0%}"),
            ctx.say("satisfaction_axis"),
        )

    return draw


def _series(rows: list[dict[str, Any]], prefix: str) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        [r[f"{prefix}_rate"] for r in rows],
        [r[f"{prefix}_low"] for r in rows],
        [r[f"{prefix}_high"] for r in rows],
    )
