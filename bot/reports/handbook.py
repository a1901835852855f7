"""一册两表更新率 (issue 17: answers the visits collect that no report used): of the visits submitted in the
period that looked at every one of the script's 一册两表 questions (roles handbook_current, income_sheet_current,
medical_sheet_current), the share that found all of them present and up to date, with n and the Wilson interval,
against 100 %; each item's count in the files. A script without those questions says so (未采集), never 0 %."""

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
TARGET = 1.0  # the plans: every household's handbook and two forms up to date


async def handbook(db: Database, ctx: Context, by: str, period: Period, area: q.Area, script: Any) -> Report:
    fields = [name for role in HANDBOOK_ROLES if (name := script.roles.first(role))]
    report = Report(
        name="handbook",
        title=ctx.say("handbook_title", period=period.label, by=by),
        columns=[
            *_label_columns(by, ctx),
            ctx.column("hb_n", kind="int"),
            ctx.column("hb_current", kind="int"),
            ctx.column("hb_rate", kind="pct"),
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
        empty=ctx.say("handbook_empty", period=period.label),
    )
    if not fields:
        report.empty = ctx.say("handbook_not_asked", roles=", ".join(HANDBOOK_ROLES))
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
    report.notes = [ctx.say("handbook_note", items=len(fields), target=f"{TARGET:.0%}")]
    return report


def _row(label: dict[str, Any], n: int, current: int, items: Any, fields: list[str]) -> dict[str, Any]:
    cells = _rate_cells("hb", rate(current, n), TARGET)
    each = {f"hb_{f}": (count if n else None) for f, count in zip(fields, items, strict=True)}
    return {**label, **cells, "hb_current": current if n else None, **each}
