"""The township meeting's numbers: a township's monthly tally (每月统计) with its list of unresolved problems,
and the county supervision centre's list of problems overdue past a meeting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.reports.base import Context, ReportError
from bot.reports.output import Column, Report
from storage.db import Database
from survey.periods import Period
from survey.problems import STATE_LABELS
from survey.stats import rate


def _problem_columns() -> list[Column]:
    return [
        Column("id", "编号", "#", "int"),
        Column("village", "行政村", "village"),
        Column("household", "户编号", "household id"),
        Column("head", "户主", "head"),
        Column("category", "类别", "category"),
        Column("description", "问题", "problem"),
        Column("source", "来源", "source"),
        Column("age", "天数", "days open", "int"),
        Column("state", "状态", "state"),
        Column("responsible", "责任人", "responsible"),
        Column("due_on", "期限", "due"),
    ]


def _problem_row(item: Any, as_of: datetime, ctx: Context) -> dict[str, Any]:
    tz = ctx.settings.tz
    source = ctx.t("村民短信", "SMS") if item.source == "sms" else (item.raised_by or ctx.t("走访", "visit"))
    return {
        "id": item.id,
        "village": item.village,
        "household": item.household_code,
        "head": item.head_name,
        "category": item.category,
        "description": item.description,
        "source": source,
        "age": (as_of.astimezone(tz).date() - item.created_at.astimezone(tz).date()).days,
        "state": ctx.t(*STATE_LABELS.get(item.status, (item.status, item.status))),
        "responsible": item.responsible or "",
        "due_on": str(item.due_on or ""),
    }


async def tally(db: Database, ctx: Context, township: Any, month: Period) -> Report:
    """每月统计 for one township: resolved and unresolved this month, the rate, and the 未化解问题清单."""
    from storage import problems as store

    tz = ctx.settings.tz
    start, end = month.starts_at(tz), month.ends_at(tz)
    as_of = min(end, ctx.now)
    async with db.reading() as s:
        resolved = await store.resolved_between(s, township.id, start, end)
        open_items = await store.unresolved_at(s, township.id, as_of)
    result = rate(resolved, resolved + len(open_items))
    share = "—" if result.value is None else f"{result.value:.1%}"
    return Report(
        name="tally",
        title=ctx.t(
            f"{township.name} {month.label} 问题化解统计", f"{township.name} problem tally {month.label}"
        ),
        columns=_problem_columns(),
        rows=[_problem_row(item, as_of, ctx) for item in open_items],
        locale=ctx.locale,
        notes=[
            ctx.t(
                f"本月已化解（销号）{resolved} 个，未化解 {len(open_items)} 个，化解率 {share}"
                f"（n = {result.n}）。上表为未化解问题清单。",
                f"Resolved (closed) this month: {resolved}; unresolved: {len(open_items)}; resolution rate {share} "
                f"(n = {result.n}). The table lists the unresolved problems.",
            )
        ],
        empty=ctx.t("未化解问题清单：无。", "Unresolved problems: none."),
    )


async def overdue(db: Database, ctx: Context, county: str | None) -> Report:
    """The supervision centre's list: problems overdue past the next meeting (state county)."""
    from sqlalchemy import select

    from storage import problems as store
    from storage.models import County, Township

    async with db.reading() as s:
        township_ids = None
        if county is not None:
            found = (await s.execute(select(County.id).where(County.name == county))).scalar_one_or_none()
            if found is None:
                names = "、".join((await s.execute(select(County.name).order_by(County.name))).scalars())
                raise ReportError(
                    ctx.t(
                        f"没有县 {county!r}；现有：{names or '（无）'}",
                        f"no county {county!r}; known: {names or '(none)'}",
                    )
                )
            township_ids = list(
                (await s.execute(select(Township.id).where(Township.county_id == found))).scalars()
            )
        items = await store.overdue_items(s, township_ids)
    rows = []
    today = ctx.now.astimezone(ctx.settings.tz).date()
    for township, item in items:
        row = _problem_row(item, ctx.now, ctx)
        row["township"] = township
        row["late"] = (today - item.due_on).days if item.due_on else None
        rows.append(row)
    return Report(
        name="overdue",
        title=ctx.t("逾期未化解问题（报县督查指挥中心）", "Overdue problems (county supervision centre)"),
        columns=[
            Column("township", "乡镇", "township"),
            *_problem_columns(),
            Column("late", "逾期天数", "days late", "int"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.t("没有逾期过会的问题。", "No problem is overdue past a meeting."),
    )
