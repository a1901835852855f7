"""Problems opened and closed (问题提出与化解): per month of the period, or per township with those open now."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.reports.base import Context
from bot.reports.output import Column, Report, count_bars
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
        title=ctx.t(
            f"问题提出与化解（{period.label}，按月）",
            f"Problems opened and closed ({period.label}, by month)",
        ),
        columns=[
            Column("month", "月份", "month"),
            Column("opened", "新提出", "opened", "int"),
            Column("on_site", "当场化解", "resolved on site", "int"),
            Column("closed", "上报后销号", "closed after escalation", "int"),
        ],
        rows=rows if any(any(c) for c in counts) else [],
        locale=ctx.locale,
        empty=ctx.t(
            f"{period.label} 没有提出或化解的问题。", f"No problem opened or closed in {period.label}."
        ),
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
        rows.append({"township": ctx.t("合计", "total"), **{k: sum(r[k] for r in rows) for k in keys}})
    report = Report(
        name="problems",
        title=ctx.t(f"问题化解（{period.label}，按乡镇）", f"Problems ({period.label}, by township)"),
        columns=[
            Column("township", "乡镇", "township"),
            Column("open", "未化解(待专题党委会)", "open (for the township meeting)", "int"),
            Column("opened", "本期新提出", "opened this period", "int"),
            Column("on_site", "本期当场化解", "resolved on site this period", "int"),
            Column("closed", "本期上报后销号", "closed after escalation this period", "int"),
        ],
        rows=rows if any(any(r[k] for k in keys) for r in rows) else [],
        locale=ctx.locale,
        empty=ctx.t(f"{period.label} 没有问题记录。", f"No problems in {period.label}."),
    )

    report.chart = _problem_chart(report, "township", keys, ctx, without_total=True)
    return report


_PROBLEM_SERIES = {
    "open": ("未化解", "open"),
    "opened": ("新提出", "opened"),
    "on_site": ("当场化解", "on site"),
    "closed": ("上报后销号", "closed after escalation"),
}


def _problem_chart(
    report: Report, label: str, keys: Sequence[str], ctx: Context, without_total: bool = False
):  # type: ignore[no-untyped-def]
    """Grouped bars of problem counts, one group per row (the total row left out where there is one)."""

    def draw(path: Path) -> None:
        shown = report.rows[:-1] if without_total else report.rows
        series = [(ctx.t(*_PROBLEM_SERIES[k]), [r[k] for r in shown]) for k in keys]
        count_bars(path, report.title, [r[label] for r in shown], series, ctx.t("问题数", "problems"))

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
