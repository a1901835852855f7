"""每月变化 (the roster's monthly change report, issue 17): per village, households added to the roster and the
changes of 脱贫状态 the roster imports recorded in the month — exited, returned to poverty, taken into and out
of monitoring — or, with `listed`, each change. The roster has no status for a death or a closed household, so
those are said to be not collected rather than counted as 0."""

from __future__ import annotations

from collections import Counter

from bot.reports.base import Context
from bot.reports.output import Column, Report
from storage import changes as q
from storage.db import Database
from storage.reports import Area
from survey.periods import Period
from survey.roster import CHANGE_KINDS, change_kind


async def changes(db: Database, ctx: Context, period: Period, area: Area, *, listed: bool = False) -> Report:
    tz = ctx.settings.tz
    async with db.reading() as s:
        found = await q.status_changes(s, period.starts_at(tz), period.ends_at(tz), area)
    kinds = [(change, change_kind(change.before, change.after)) for change in found]
    kinds = [(change, kind) for change, kind in kinds if kind is not None]
    notes = [ctx.say("changes_definition"), ctx.say("changes_not_collected")]
    if listed:
        rows = [
            {
                "at": ctx.local(change.at),
                "township": change.township,
                "village": change.village,
                "household": change.code,
                "head": change.head_name,
                "change": ctx.say(f"change_{kind}"),
                "before": change.before or "",
                "after": change.after,
            }
            for change, kind in kinds
        ]
        columns = [
            ctx.column("at", "changed_at"),
            ctx.column("township"),
            ctx.column("village"),
            ctx.column("household", "household_code"),
            ctx.column("head"),
            ctx.column("change"),
            ctx.column("before", "status_before"),
            ctx.column("after", "status_after"),
        ]
    else:
        per: dict[tuple[str, str], Counter[str]] = {}
        for change, kind in kinds:
            per.setdefault((change.township, change.village), Counter())[kind] += 1
        rows = [
            {"township": t, "village": v, **{k: c[k] for k in CHANGE_KINDS}}
            for (t, v), c in sorted(per.items())
        ]
        if rows:
            rows.append(
                {
                    "township": ctx.say("total"),
                    "village": "",
                    **{k: sum(r[k] for r in rows) for k in CHANGE_KINDS},
                }
            )
        columns = [ctx.column("township"), ctx.column("village")] + [
            Column(k, ctx.say(f"change_{k}"), None, "int") for k in CHANGE_KINDS
        ]
    return Report(
        name="changes",
        title=ctx.say("changes_title", period=period.label),
        columns=columns,
        rows=rows,
        locale=ctx.locale,
        notes=notes,
        empty=ctx.say("changes_empty", period=period.label),
    )
