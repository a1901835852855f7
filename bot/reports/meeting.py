"""The township meeting's numbers: a township's monthly tally (每月统计) with its list of unresolved problems,
and the county supervision centre's list of problems overdue past a meeting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.reports.base import Context, ReportError
from bot.reports.output import Column, Report
from storage.db import Database
from survey.periods import Period
from survey.problems import STATE_LABELS
from survey.stats import rate


def _problem_columns(ctx: Context) -> list[Column]:
    return [
        ctx.column("id", "problem_id", "int"),
        ctx.column("village"),
        ctx.column("household", "household_code"),
        ctx.column("head"),
        ctx.column("category"),
        ctx.column("description", "problem"),
        ctx.column("source"),
        ctx.column("age", kind="int"),
        ctx.column("state"),
        ctx.column("responsible"),
        ctx.column("due_on"),
    ]


@dataclass(frozen=True)
class _Words:
    """What a problem's row says of its source and state, resolved once per report."""

    sms: str
    visit: str
    states: Mapping[str, str]

    @classmethod
    def of(cls, ctx: Context) -> _Words:
        zh = {code: pair[0] for code, pair in STATE_LABELS.items()}
        en = {code: pair[1] for code, pair in STATE_LABELS.items()}
        return cls(ctx.say("source_villager_sms"), ctx.say("source_visit"), ctx.labels(zh, en))


def _problem_row(item: Any, as_of: datetime, words: _Words, ctx: Context) -> dict[str, Any]:
    tz = ctx.settings.tz
    source = words.sms if item.source == "sms" else (item.raised_by or words.visit)
    return {
        "id": item.id,
        "village": item.village,
        "household": item.household_code,
        "head": item.head_name,
        "category": item.category,
        "description": item.description,
        "source": source,
        "age": (as_of.astimezone(tz).date() - item.created_at.astimezone(tz).date()).days,
        "state": words.states.get(item.status, item.status),
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
        on_site = await store.resolved_on_site_between(s, township.id, start, end)
    result = rate(resolved, resolved + len(open_items))
    share = "—" if result.value is None else f"{result.value:.1%}"
    words = _Words.of(ctx)
    return Report(
        name="tally",
        title=ctx.say("tally_title", township=township.name, month=month.label),
        columns=_problem_columns(ctx),
        rows=[_problem_row(item, as_of, words, ctx) for item in open_items],
        locale=ctx.locale,
        notes=[
            ctx.say(
                "tally_note",
                resolved=resolved,
                unresolved=len(open_items),
                share=share,
                n=result.n,
                on_site=on_site,
            )
        ],
        empty=ctx.say("tally_empty"),
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
                known = names or ctx.say("none_known")
                raise ReportError(ctx.say("unknown_county", name=repr(county), known=known))
            township_ids = list(
                (await s.execute(select(Township.id).where(Township.county_id == found))).scalars()
            )
        items = await store.overdue_items(s, township_ids)
    rows = []
    today = ctx.now.astimezone(ctx.settings.tz).date()
    words = _Words.of(ctx)
    for township, item in items:
        row = _problem_row(item, ctx.now, words, ctx)
        row["township"] = township
        row["late"] = (today - item.due_on).days if item.due_on else None
        rows.append(row)
    return Report(
        name="overdue",
        title=ctx.say("overdue_title"),
        columns=[ctx.column("township"), *_problem_columns(ctx), ctx.column("late", kind="int")],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.say("overdue_empty"),
    )
