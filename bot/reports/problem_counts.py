"""Problems opened and closed (问题提出与化解): per month of the period, or per township with those open now."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.reports.base import Context
from bot.reports.output import Report, count_bars
from storage import reports as q
from storage.db import Database
from survey.periods import Period


async def problems(db: Database, ctx: Context, period: Period, area: q.Area) -> Report:
    """Problems opened and closed in each month of the period (the chart of issue 5)."""
    tz = ctx.settings.tz
    months = _months(period)
    bounds = [m.starts_at(tz) for m in months] + [months[-1].ends_at(tz)]
    async with db.reading() as s:
        counts = await q.problems_per_month(s, bounds, area)
    rows = [
        {"month": m.label, "opened": o, "on_site": site, "closed": c}
        for m, (o, site, c) in zip(months, counts, strict=True)
    ]
    report = Report(
        name="problems",
        title=ctx.say("problems_title", period=period.label),
        columns=[
            ctx.column("month"),
            ctx.column("opened", kind="int"),
            ctx.column("on_site", kind="int"),
            ctx.column("closed", kind="int"),
        ],
        rows=rows if any(any(c) for c in counts) else [],
        locale=ctx.locale,
        empty=ctx.say("problems_empty", period=period.label),
    )

    report.chart = _problem_chart(report, "month", ("opened", "on_site", "closed"), ctx)
    return report


async def problems_by_township(db: Database, ctx: Context, period: Period, area: q.Area) -> Report:
    """Per township: problems open now (awaiting the township meeting), opened and closed in the period."""
    tz = ctx.settings.tz
    async with db.reading() as s:
        found = await q.problems_by_township(s, period.starts_at(tz), period.ends_at(tz), area)
    keys = ("open", "opened", "on_site", "closed")
    rows = [{"township": name, **dict(zip(keys, numbers, strict=True))} for name, *numbers in found]
    if rows:
        rows.append({"township": ctx.say("total"), **{k: sum(r[k] for r in rows) for k in keys}})
    report = Report(
        name="problems",
        title=ctx.say("problems_by_township_title", period=period.label),
        columns=[
            ctx.column("township"),
            ctx.column("open", kind="int"),
            ctx.column("opened", "opened_in_period", "int"),
            ctx.column("on_site", "on_site_in_period", "int"),
            ctx.column("closed", "closed_in_period", "int"),
        ],
        rows=rows if any(any(r[k] for k in keys) for r in rows) else [],
        locale=ctx.locale,
        empty=ctx.say("problems_by_township_empty", period=period.label),
    )

    report.chart = _problem_chart(report, "township", keys, ctx, without_total=True)
    return report


def _problem_chart(
    report: Report, label: str, keys: Sequence[str], ctx: Context, without_total: bool = False
):  # type: ignore[no-untyped-def]
    """Grouped bars of problem counts, one group per row (the total row left out where there is one)."""

    def draw(path: Path) -> None:
        shown = report.rows[:-1] if without_total else report.rows
        series = [(ctx.say(f"series_{k}"), [r[k] for r in shown]) for k in keys]
        count_bars(path, report.title, [r[label] for r in shown], series, ctx.say("problems_axis"))

    return draw


def _months(period: Period) -> list[Period]:
    from survey.periods import period_of

    months = []
    day = period.start
    while day < period.end:
        month = period_of("month", day)
        months.append(month)
        day = month.end
    return months
