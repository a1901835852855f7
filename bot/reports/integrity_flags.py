"""Integrity flags (数据真实性提示): the cases of indicators.md worth a second look, one row each, never a verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.reports.base import Context
from bot.reports.output import Report
from bot.reports.rates import satisfaction
from storage import reports as q
from storage.db import Database
from survey.integrity import FLAG_LABELS, FLAG_LABELS_EN, Thresholds, distance_m, max_degrees_apart
from survey.periods import Period


def _flag(
    code: str, ctx: Context, context: tuple[Any, ...], at: datetime | None, detail: str
) -> dict[str, Any]:
    township, village, cadre_code, cadre_name, household_code, head = context
    return {
        "flag": ctx.labels(FLAG_LABELS, FLAG_LABELS_EN)[code],
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
        short, far = ctx.say("short_visit_pattern"), ctx.say("far_location_pattern")
        rows += [_short(v, limits, short, ctx) for v in timed if v.short]
        rows += [flag for v in timed if v.at and (flag := _far(v, limits, far, ctx))]
        rows += await _bursts(s, ctx, start, end, area, limits)
        rows += _identical(
            await q.identical_answers(s, start, end, area, limits.identical_min_households), ctx
        )
        closed_pattern = ctx.say("closed_without_decision_pattern")
        for town, village, code, name, hcode, head, closed, pid, category in await q.closed_without_decision(
            s, start, end, area
        ):
            rows.append(
                _flag(
                    "closed_without_decision",
                    ctx,
                    (town, village, code, name, hcode, head),
                    closed,
                    closed_pattern.format(pid=pid, category=category),
                )
            )
    rows += await _satisfaction_gaps(db, ctx, period, area, limits.satisfaction_gap_points)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["flag"]] = counts.get(row["flag"], 0) + 1
    summary = "；".join(f"{flag} {n}" for flag, n in counts.items())
    return Report(
        name="integrity",
        title=ctx.say("integrity_title", period=period.label),
        columns=[
            ctx.column("flag"),
            ctx.column("township"),
            ctx.column("village"),
            ctx.column("cadre"),
            ctx.column("household"),
            ctx.column("at", "time"),
            ctx.column("detail"),
        ],
        rows=rows,
        locale=ctx.locale,
        notes=_integrity_notes(rows, summary, ctx),
        empty=ctx.say("integrity_empty", period=period.label),
    )


def _short(visit: q.TimedVisit, limits: Thresholds, pattern: str, ctx: Context) -> dict[str, Any]:
    detail = pattern.format(minutes=visit.seconds / 60, limit=limits.min_visit_minutes)
    return _flag("short_visit", ctx, visit.context, visit.submitted_at, detail)


def _far(visit: q.TimedVisit, limits: Thresholds, pattern: str, ctx: Context) -> dict[str, Any] | None:
    """The flag of a visit whose fix is further from the registered place than the threshold, measured exactly."""
    assert visit.at is not None and visit.home is not None
    metres = distance_m(*visit.at, *visit.home)
    if metres <= limits.max_distance_m:
        return None
    detail = pattern.format(km=metres / 1000, limit=limits.max_distance_m / 1000)
    return _flag("far_location", ctx, visit.context, visit.submitted_at, detail)


def _integrity_notes(rows: list[dict[str, Any]], summary: str, ctx: Context) -> list[str]:
    if not rows:
        return []
    return [
        ctx.say("integrity_note_count", count=len(rows), summary=summary),
        ctx.say("integrity_note_check"),
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
    pattern = ctx.say("visit_burst_pattern")
    for cadre_id, first, last in runs:
        code, name, _role, town = cadres[cadre_id]
        visits = await q.visits_between(s, cadre_id, first, last)
        detail = pattern.format(
            first=ctx.local(first),
            last=ctx.local(last)[-5:],
            visits=visits,
            minutes=limits.burst_minutes,
            limit=limits.burst_visits,
        )
        rows.append(_flag("visit_burst", ctx, (town, "", code, name, "", ""), first, detail))
    return rows


def _identical(found: list[tuple[Any, ...]], ctx: Context) -> list[dict[str, Any]]:
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for digest, *rest in found:
        groups.setdefault(digest, []).append(tuple(rest))
    rows = []
    pattern = ctx.say("identical_answers_pattern")
    for number, members in enumerate(groups.values(), start=1):
        households = {m[4] for m in members}
        for *context, at in members:
            detail = pattern.format(number=number, households=len(households))
            rows.append(_flag("identical_answers", ctx, tuple(context), at, detail))
    return rows


async def _satisfaction_gaps(
    db: Database, ctx: Context, period: Period, area: q.Area, points: float
) -> list[dict[str, Any]]:
    report = await satisfaction(db, ctx, "village", period, area)
    rows = []
    pattern = ctx.say("satisfaction_gap_pattern")
    for row in report.rows[:-1]:
        if row["gap"] is not None and row["gap"] > points:
            detail = pattern.format(
                rec=_pct(row["rec_rate"]),
                rec_n=row["rec_n"],
                sms=_pct(row["sms_rate"]),
                sms_n=row["sms_n"],
                gap=row["gap"],
                limit=points,
            )
            rows.append(
                _flag(
                    "satisfaction_gap", ctx, (row["township"], row["village"], "", "", "", ""), None, detail
                )
            )
    return rows


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
