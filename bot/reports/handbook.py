"""Rates of visits where every item of a group was done (issue 17: answers the visits collect that no report
used), with n and the Wilson interval against 100 %, each item's count in the files; a script without the
group's questions says so (未采集), never 0 %:

- 一册两表更新率 (`report handbook`): the looks found the handbook and both forms up to date (roles
  handbook_current, income_sheet_current, medical_sheet_current);
- 四讲落实率 (`report talks`): the cadre gave all four talks (roles talk_party, talk_policy, talk_hope,
  talk_aspiration)."""

from __future__ import annotations

from typing import Any

from bot.reports.base import Context
from bot.reports.output import Column, Report
from bot.reports.rates import _label_columns, _rate_cells, _satisfaction_labels, _total_label
from storage import reports as q
from storage.db import Database
from storage.handbook import handbook_counts
from survey.periods import Period
from survey.script import pick
from survey.stats import rate

HANDBOOK_ROLES = ("handbook_current", "income_sheet_current", "medical_sheet_current")
TALK_ROLES = ("talk_party", "talk_policy", "talk_hope", "talk_aspiration")
TARGET = (
    1.0  # the plans: every household's handbook and two forms up to date; every talk given at every visit
)


async def handbook(db: Database, ctx: Context, by: str, period: Period, area: q.Area, script: Any) -> Report:
    return await all_done(db, ctx, by, period, area, script, "handbook", HANDBOOK_ROLES)


async def talks(db: Database, ctx: Context, by: str, period: Period, area: q.Area, script: Any) -> Report:
    return await all_done(db, ctx, by, period, area, script, "talks", TALK_ROLES)


async def all_done(
    db: Database,
    ctx: Context,
    by: str,
    period: Period,
    area: q.Area,
    script: Any,
    name: str,
    roles: tuple[str, ...],
) -> Report:
    """The `name` report (its phrases: <name>_title, _empty, _not_asked, _note) over the questions of `roles`."""
    fields = [field for role in roles if (field := script.roles.first(role))]
    report = Report(
        name=name,
        title=ctx.say(f"{name}_title", period=period.label, by=by),
        columns=[
            *_label_columns(by, ctx),
            ctx.column("hb_n", kind="int"),
            Column("hb_current", ctx.say(f"col_{name}_current"), None, "int"),
            Column("hb_rate", ctx.say(f"col_{name}_rate"), None, "pct"),
            ctx.column("hb_interval", "interval", "interval", file=False),
            ctx.column("hb_low", "low", "pct", screen=False),
            ctx.column("hb_high", "high", "pct", screen=False),
            ctx.column("hb_met", "met", "flag"),
            ctx.column("hb_small", "small", "flag", screen=False),
            *(
                Column(f"hb_{f}", pick(script.question(f).label, ctx.locale), None, "int", screen=False)
                for f in fields
            ),
        ],
        rows=[],
        locale=ctx.locale,
        empty=ctx.say(f"{name}_empty", period=period.label),
    )
    if not fields:
        report.empty = ctx.say(f"{name}_not_asked", roles=", ".join(roles))
        return report
    tz = ctx.settings.tz
    async with db.reading() as s:
        counts = await handbook_counts(s, by, period.starts_at(tz), period.ends_at(tz), area, fields)
        labels = await _satisfaction_labels(s, by, area, set(counts), ctx)
    totals = [0, 0, [0] * len(fields)]
    for key, label in labels:
        n, current, items = counts.get(key, (0, 0, (0,) * len(fields)))
        totals[0] += n
        totals[1] += current
        totals[2] = [a + b for a, b in zip(totals[2], items, strict=True)]
        report.rows.append(_row(label, n, current, items, fields))
    if totals[0] == 0:
        report.rows = []
        return report
    report.rows.append(_row(_total_label(by, ctx), totals[0], totals[1], totals[2], fields))
    report.notes = [ctx.say(f"{name}_note", items=len(fields), target=f"{TARGET:.0%}")]
    return report


def _row(label: dict[str, Any], n: int, current: int, items: Any, fields: list[str]) -> dict[str, Any]:
    cells = _rate_cells("hb", rate(current, n), TARGET)
    each = {f"hb_{f}": (count if n else None) for f, count in zip(fields, items, strict=True)}
    return {**label, **cells, "hb_current": current if n else None, **each}
