"""Integrity flags (数据真实性提示): the cases of indicators.md worth a second look, one row each, never a verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.reports.base import Context
from bot.reports.output import Column, Report
from bot.reports.rates import satisfaction
from storage import reports as q
from storage.db import Database
from survey.integrity import FLAG_LABELS, FLAG_LABELS_EN, Thresholds, distance_m, max_degrees_apart
from survey.periods import Period


def _flag(
    code: str, ctx: Context, context: tuple[Any, ...], at: datetime | None, detail: str
) -> dict[str, Any]:
    township, village, cadre_code, cadre_name, household_code, head = context
    labels = FLAG_LABELS_EN if ctx.locale == "en" else FLAG_LABELS
    return {
        "flag": labels[code],
        "flag_code": code,
        "township": township or "",
        "village": village or "",
        "cadre": f"{cadre_name or ''}（{cadre_code}）" if cadre_code else "",
        "household": f"{head}（{household_code}）" if household_code else "",
        "at": ctx.local(at),
        "detail": detail,
    }


async def integrity(db: Database, ctx: Context, period: Period, area: q.Area) -> Report:
    """The flags of indicators.md for the period. Flags for a second look, never verdicts."""
    limits: Thresholds = ctx.settings.integrity
    tz = ctx.settings.tz
    start, end = period.starts_at(tz), period.ends_at(tz)
    rows: list[dict[str, Any]] = []
    async with db.reading() as s:
        timed = await q.short_or_far_visits(
            s, start, end, area, limits.min_visit_minutes * 60, max_degrees_apart(limits.max_distance_m)
        )
        rows += [_short(v, limits, ctx) for v in timed if v.short]
        rows += [flag for v in timed if v.at and (flag := _far(v, limits, ctx))]
        rows += await _bursts(s, ctx, start, end, area, limits)
        rows += _identical(
            await q.identical_answers(s, start, end, area, limits.identical_min_households), ctx
        )
        for town, village, code, name, hcode, head, closed, pid, category in await q.closed_without_decision(
            s, start, end, area
        ):
            rows.append(
                _flag(
                    "closed_without_decision",
                    ctx,
                    (town, village, code, name, hcode, head),
                    closed,
                    ctx.t(
                        f"问题 #{pid}（{category}）已销号，无会议决定记录",
                        f"problem #{pid} ({category}) closed with no meeting decision recorded",
                    ),
                )
            )
    rows += await _satisfaction_gaps(db, ctx, period, area, limits.satisfaction_gap_points)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["flag"]] = counts.get(row["flag"], 0) + 1
    summary = "；".join(f"{flag} {n}" for flag, n in counts.items())
    return Report(
        name="integrity",
        title=ctx.t(f"数据真实性提示（{period.label}）", f"Integrity flags ({period.label})"),
        columns=[
            Column("flag", "提示", "flag"),
            Column("township", "乡镇", "township"),
            Column("village", "行政村", "village"),
            Column("cadre", "干部", "cadre"),
            Column("household", "农户", "household"),
            Column("at", "时间", "time"),
            Column("detail", "情况", "detail"),
        ],
        rows=rows,
        locale=ctx.locale,
        notes=_integrity_notes(rows, summary, ctx),
        empty=ctx.t(f"{period.label} 没有需要核实的提示。", f"No flags in {period.label}."),
    )


def _short(visit: q.TimedVisit, limits: Thresholds, ctx: Context) -> dict[str, Any]:
    detail = ctx.t(
        f"用时 {visit.seconds / 60:.1f} 分钟（阈值 {limits.min_visit_minutes:g} 分钟）",
        f"took {visit.seconds / 60:.1f} min (threshold {limits.min_visit_minutes:g} min)",
    )
    return _flag("short_visit", ctx, visit.context, visit.submitted_at, detail)


def _far(visit: q.TimedVisit, limits: Thresholds, ctx: Context) -> dict[str, Any] | None:
    """The flag of a visit whose fix is further from the registered place than the threshold, measured exactly."""
    assert visit.at is not None and visit.home is not None
    metres = distance_m(*visit.at, *visit.home)
    if metres <= limits.max_distance_m:
        return None
    detail = ctx.t(
        f"距登记住址 {metres / 1000:.2f} 公里（阈值 {limits.max_distance_m / 1000:g} 公里）",
        f"{metres / 1000:.2f} km from the registered place (threshold {limits.max_distance_m / 1000:g} km)",
    )
    return _flag("far_location", ctx, visit.context, visit.submitted_at, detail)


def _integrity_notes(rows: list[dict[str, Any]], summary: str, ctx: Context) -> list[str]:
    if not rows:
        return []
    return [
        ctx.t(f"共 {len(rows)} 条：{summary}。", f"{len(rows)} in all: {summary}."),
        ctx.t(
            "以上为需要核实的提示，不是结论：请核实后再作处理。",
            "These are flags to check, not verdicts: verify before acting.",
        ),
    ]


async def _bursts(
    s: Any, ctx: Context, start: datetime, end: datetime, area: q.Area, limits: Thresholds
) -> list[dict[str, Any]]:
    """Overlapping windows of one cadre's visits merged into one flag per run."""
    found = await q.visit_bursts(s, start, end, area, limits.burst_visits, limits.burst_minutes * 60)
    runs: list[list[Any]] = []
    for cadre_id, first, last in found:
        if runs and runs[-1][0] == cadre_id and first <= runs[-1][2]:
            runs[-1][2] = max(runs[-1][2], last)
        else:
            runs.append([cadre_id, first, last])
    cadres = await q.cadres_by_id(s, sorted({r[0] for r in runs}))
    rows = []
    for cadre_id, first, last in runs:
        code, name, _role, town = cadres[cadre_id]
        visits = await q.visits_between(s, cadre_id, first, last)
        detail = ctx.t(
            f"{ctx.local(first)}–{ctx.local(last)[-5:]} 共 {visits} 次走访（阈值 {limits.burst_minutes:g} 分钟内 {limits.burst_visits} 次）",
            f"{visits} visits {ctx.local(first)}–{ctx.local(last)[-5:]} (threshold {limits.burst_visits} within {limits.burst_minutes:g} min)",
        )
        rows.append(_flag("visit_burst", ctx, (town, "", code, name, "", ""), first, detail))
    return rows


def _identical(found: list[tuple[Any, ...]], ctx: Context) -> list[dict[str, Any]]:
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for digest, *rest in found:
        groups.setdefault(digest, []).append(tuple(rest))
    rows = []
    for number, members in enumerate(groups.values(), start=1):
        households = {m[4] for m in members}
        for *context, at in members:
            detail = ctx.t(
                f"第 {number} 组：{len(households)} 户答案完全相同",
                f"set {number}: {len(households)} households answered identically",
            )
            rows.append(_flag("identical_answers", ctx, tuple(context), at, detail))
    return rows


async def _satisfaction_gaps(
    db: Database, ctx: Context, period: Period, area: q.Area, points: float
) -> list[dict[str, Any]]:
    report = await satisfaction(db, ctx, "village", period, area)
    rows = []
    for row in report.rows[:-1]:
        if row["gap"] is not None and row["gap"] > points:
            detail = ctx.t(
                f"走访记录 {_pct(row['rec_rate'])}（n={row['rec_n']}）高于村民短信 {_pct(row['sms_rate'])}（n={row['sms_n']}）{row['gap']:.1f} 个百分点（阈值 {points:g}）",
                f"recorded {_pct(row['rec_rate'])} (n={row['rec_n']}) above SMS {_pct(row['sms_rate'])} (n={row['sms_n']}) by {row['gap']:.1f} points (threshold {points:g})",
            )
            rows.append(
                _flag(
                    "satisfaction_gap", ctx, (row["township"], row["village"], "", "", "", ""), None, detail
                )
            )
    return rows


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
