"""Visit coverage (入户率): per cadre of a role with a visit target, households in scope, visited in the
role's period, the rate against the target, and who is left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.reports.base import Context, ReportError
from bot.reports.output import Column, Report, rate_bars
from storage import reports as q
from storage.db import Database
from survey.periods import ROLE_LABELS_EN, ROLES, Period, coverage_target, current_period

# Excel holds at most 32,767 characters in a cell; a township-wide role early in a period could have thousands left.
FILE_LEFT_LIMIT = 1000
NAMED_CADRES = 200
TARGETED_ROLES = tuple(r for r in ROLES if coverage_target(r).period_kind is not None)


def role_from(text: str | None, ctx: Context) -> list[str]:
    if text is None:
        return list(TARGETED_ROLES)
    for role in TARGETED_ROLES:
        if text.strip() in (role, ROLE_LABELS_EN[role]):
            return [role]
    known = "、".join(TARGETED_ROLES)
    raise ReportError(
        ctx.t(
            f"未知角色 {text!r}；有入户目标的角色：{known}",
            f"unknown role {text!r}; roles with a visit target: {known}",
        )
    )


COVERAGE_COLUMNS = [
    Column("cadre_code", "干部编号", "cadre id"),
    Column("cadre_name", "姓名", "name"),
    Column("role", "角色", "role"),
    Column("township", "乡镇", "township"),
    Column("period", "考核周期", "period"),
    Column("in_scope", "应走访户", "households in scope", "int"),
    Column("visited", "已走访户", "visited", "int"),
    Column("rate", "入户率", "coverage", "pct"),
    Column("target", "目标", "target", "pct"),
    Column("met", "达标", "meets target", "flag"),
    Column("left_count", "未走访户数", "not yet visited", "int"),
    Column("left", "未走访户", "households left"),
]


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
    label = period.label if period else ctx.t("各角色当期", "each role's current period")
    report = Report(
        name="coverage",
        title=ctx.t(f"入户率（{label}）", f"Visit coverage ({label})"),
        columns=COVERAGE_COLUMNS,
        rows=rows,
        locale=ctx.locale,
        empty=ctx.t("没有承担入户任务的干部。", "No cadre with a visit target."),
        notes=[
            ctx.t(
                "每位干部只计本人在考核周期内提交的走访；落后于目标的排在前面。",
                "Only a cadre's own submitted visits in the period count; cadres behind target come first.",
            )
        ],
    )
    if named < sum(1 for r in rows if r["left_count"]):
        report.notes.append(
            ctx.t(
                f"未走访户名单只列出落后最多的 {named} 名干部；用 --role 或 --township 缩小范围可看其余干部的名单。",
                f"Households left are named for the {named} cadres furthest behind; narrow with --role or "
                "--township to name the others'.",
            )
        )
    report.chart = _coverage_chart(report, ctx)  # an empty report draws "无数据"
    return report


async def _name_who_is_left(s: Any, rows: list[dict[str, Any]], per_cadre: int, ctx: Context) -> int:
    """Name the first households left for the cadres furthest behind (one small indexed query each, for at most
    NAMED_CADRES cadres: a province-wide list of every unvisited household is not a report anyone reads)."""
    behind = [row for row in rows if row["left_count"]][:NAMED_CADRES]
    left = await q.left_households(s, [row["_scope"] for row in behind], per_cadre)
    for row in behind:
        found = left.get(row["_scope"].cadre_id, [])
        names = "、".join(f"{head}（{code}）" for code, head in found)
        if row["left_count"] > len(found):
            names += ctx.t(f" 等{row['left_count']}户", f" … {row['left_count']} in all")
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
        "role": cadre.role if ctx.locale != "en" else ROLE_LABELS_EN[cadre.role],
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
            [(ctx.t("入户率", "coverage"), values, [None] * len(values), [None] * len(values))],
            1.0,
            ctx.t("目标 100%", "target 100%"),
            ctx.t("入户率", "coverage"),
        )

    return draw
