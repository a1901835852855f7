"""Visit coverage (入户率): per cadre of a role with a visit target, households in scope, visited in the
role's period, the rate against the target, and who is left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.reports.base import Context, ReportError
from bot.reports.output import Report, rate_bars
from storage import reports as q
from storage.db import Database
from survey.periods import ROLE_LABELS_EN, ROLES, Period, coverage_target, current_period

# Excel holds at most 32,767 characters in a cell; a township-wide role early in a period could have thousands left.
FILE_LEFT_LIMIT = 1000
NAMED_CADRES = 200
_ROLE_LABELS = {role: role for role in ROLES}  # the roster's role names are the Chinese labels
TARGETED_ROLES = tuple(r for r in ROLES if coverage_target(r).period_kind is not None)


def role_from(text: str | None, ctx: Context) -> list[str]:
    if text is None:
        return list(TARGETED_ROLES)
    for role in TARGETED_ROLES:
        if text.strip() in (role, ROLE_LABELS_EN[role]):
            return [role]
    known = "、".join(TARGETED_ROLES)
    raise ReportError(ctx.say("unknown_role", text=repr(text), known=known))


# the coverage report's columns: (key, kind); each header is the phrase col_coverage_<key>
COVERAGE_COLUMNS = (
    ("cadre_code", "text"),
    ("cadre_name", "text"),
    ("role", "text"),
    ("township", "text"),
    ("period", "text"),
    ("in_scope", "int"),
    ("visited", "int"),
    ("rate", "pct"),
    ("target", "pct"),
    ("met", "flag"),
    ("left_count", "int"),
    ("left", "text"),
)


async def coverage(
    db: Database, ctx: Context, roles: list[str], period: Period | None, area: q.Area, full_lists: bool
) -> Report:
    """Per cadre: households in scope, visited in the role's period, the rate against 100%, and who is left."""
    tz = ctx.settings.tz
    overrides = ctx.settings.role_periods
    rows: list[dict[str, Any]] = []
    targets, periods = {}, {}
    for role in roles:
        target = coverage_target(role, overrides)
        periods[role] = period or current_period(target.period_kind or "year", ctx.now, tz)
        targets[role] = q.Target(target.scope, periods[role].starts_at(tz), periods[role].ends_at(tz))
    async with db.reading() as s:
        cadres = [c for c in await q.cadres_with_roles(s, roles, area) if c.role in targets]
        counts = await q.coverage_by_role(s, [(c.id, c.role) for c in cadres], targets)
        for cadre in cadres:
            target = targets[cadre.role]
            rate = coverage_target(cadre.role, overrides).rate
            row = _coverage_row(cadre, counts[cadre.id], periods[cadre.role], rate, ctx)
            row["_scope"] = q.Behind(cadre.id, target.scope, target.start, target.end)
            rows.append(row)
        rows.sort(key=_behind_first)
        named = await _name_who_is_left(s, rows, FILE_LEFT_LIMIT if full_lists else 3, ctx)
    label = period.label if period else ctx.say("each_role_period")
    report = Report(
        name="coverage",
        title=ctx.say("coverage_title", period=label),
        columns=[ctx.column(key, f"coverage_{key}", kind) for key, kind in COVERAGE_COLUMNS],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.say("coverage_empty"),
        notes=[ctx.say("coverage_note")],
    )
    if named < sum(1 for r in rows if r["left_count"]):
        report.notes.append(ctx.say("coverage_note_named", named=named))
    report.chart = _coverage_chart(report, ctx)  # an empty report draws "无数据"
    return report


async def _name_who_is_left(s: Any, rows: list[dict[str, Any]], per_cadre: int, ctx: Context) -> int:
    """Name the first households left for the cadres furthest behind (one small indexed query each, for at most
    NAMED_CADRES cadres: a province-wide list of every unvisited household is not a report anyone reads)."""
    behind = [row for row in rows if row["left_count"]][:NAMED_CADRES]
    left = await q.left_households(s, [row["_scope"] for row in behind], per_cadre)
    more = " " + ctx.say("coverage_more_pattern")  # the space leads, so it is not in the stripped phrase
    for row in behind:
        found = left.get(row["_scope"].cadre_id, q.LeftNames(0, ""))
        names = found.text
        if row["left_count"] > found.count:
            names += more.format(count=row["left_count"])
        row["left"] = names
    for row in rows:
        del row["_scope"]
    return len(behind)


def _coverage_row(
    cadre: q.CadreRow, counts: q.CoverageCounts, period: Period, target: float, ctx: Context
) -> dict[str, Any]:
    share = counts.visited / counts.in_scope if counts.in_scope else None
    left_count = counts.in_scope - counts.visited
    names = ""
    return {
        "cadre_code": cadre.code,
        "cadre_name": cadre.name,
        "role": ctx.labels(_ROLE_LABELS, ROLE_LABELS_EN)[cadre.role],
        "role_key": cadre.role,
        "township": cadre.township,
        "period": period.label,
        "in_scope": counts.in_scope,
        "visited": counts.visited,
        "rate": share,
        "target": target,
        "met": None if share is None else share >= target,
        "left_count": left_count,
        "left": names,
    }


def _behind_first(row: dict[str, Any]) -> tuple[int, float, str]:
    """Behind target first (the furthest behind at the top), then on target, then cadres with no households."""
    if row["rate"] is None:
        return (2, 0.0, row["cadre_code"])
    return (0 if not row["met"] else 1, row["rate"], row["cadre_code"])


def _coverage_chart(report: Report, ctx: Context):  # type: ignore[no-untyped-def]
    def draw(path: Path) -> None:
        by_role: dict[str, list[int]] = {}
        for row in report.rows:
            sums = by_role.setdefault(row["role"], [0, 0])
            sums[0] += row["visited"]
            sums[1] += row["in_scope"]
        labels = list(by_role)
        values = [v / n if n else None for v, n in by_role.values()]
        rate_bars(
            path,
            report.title,
            labels,
            [(ctx.say("col_coverage_rate"), values, [None] * len(values), [None] * len(values))],
            1.0,
            ctx.say("target_line", target="100%"),
            ctx.say("col_coverage_rate"),
        )

    return draw
