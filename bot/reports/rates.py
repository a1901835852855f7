"""The indicators of indicators.md as reports: filters resolved, SQL rollups read, rows with honest rates built.

Every figure comes from storage.reports (aggregation in the database); this module only names, rates and sorts
one row per village, township, cadre or flagged case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.report_output import Column, Report
from bot.settings import Settings
from storage import reports as q
from storage.db import Database
from storage.models import Township, Village
from survey.facts import (
    GROUP_LABELS,
    GROUP_LABELS_EN,
    GROUPS,
    UNMET_ITEMS,
    UNMET_LABELS,
    UNMET_LABELS_EN,
    WARNING_LABELS,
    WARNING_LABELS_EN,
    WARNINGS,
)
from survey.integrity import FLAG_LABELS, FLAG_LABELS_EN, Thresholds, distance_m, max_degrees_apart
from survey.periods import (
    ACCEPTED_FORMS,
    ROLE_LABELS_EN,
    ROLES,
    Period,
    PeriodError,
    coverage_target,
    current_period,
    parse_period,
)
from survey.problems import STATE_LABELS
from survey.stats import SMALL_SAMPLE, Rate, rate


class ReportError(ValueError):
    """Bad input to a report (unknown period, place, role or group): one line that lists what exists."""


@dataclass(frozen=True)
class Context:
    """What every report needs: settings (zone, language, targets) and the time it is run."""

    settings: Settings
    now: datetime

    @property
    def locale(self) -> str:
        return self.settings.locale

    def t(self, zh: str, en: str) -> str:
        return en if self.locale == "en" else zh

    def local(self, moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(self.settings.tz).strftime("%Y-%m-%d %H:%M")


# --- inputs ------------------------------------------------------------------------------------------------


def period_from(text: str | None, default_kind: str, ctx: Context) -> Period:
    if text is None:
        return current_period(default_kind, ctx.now, ctx.settings.tz)
    try:
        return parse_period(text)
    except PeriodError as exc:
        raise ReportError(
            ctx.t(
                f"未知周期 {text!r}：可用 {ACCEPTED_FORMS}", f"unknown period {text!r}: use {ACCEPTED_FORMS}"
            )
        ) from exc


async def area_from(db: Database, township: str | None, village: str | None, ctx: Context) -> q.Area:
    """Villages named by --township/--village; an unknown name is an error listing the names that exist."""
    if township is None and village is None:
        return q.Area()
    from sqlalchemy import select

    async with db.reading() as s:
        query = select(Village.id).join(Township, Township.id == Village.township_id)
        if township is not None:
            query = query.where(Township.name == township)
        if village is not None:
            query = query.where(Village.name == village)
        ids = tuple((await s.execute(query)).scalars())
        if ids:
            return q.Area(ids)
        names = await q.place_names(s)
    if township is not None and township not in {t for t, _ in names}:
        known = "、".join(sorted({t for t, _ in names})) or ctx.t("（无）", "(none)")
        raise ReportError(
            ctx.t(f"没有乡镇 {township!r}；现有：{known}", f"no township {township!r}; known: {known}")
        )
    in_scope = [v for t, v in names if township is None or t == township]
    known = "、".join(in_scope) or ctx.t("（无）", "(none)")
    raise ReportError(
        ctx.t(f"没有行政村 {village!r}；现有：{known}", f"no village {village!r}; known: {known}")
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


# --- 1. satisfaction -------------------------------------------------------------------------------------------

BY = ("village", "township", "cadre")


def _rate_cells(prefix: str, result: Rate, target: float) -> dict[str, Any]:
    return {
        f"{prefix}_n": result.n,
        f"{prefix}_rate": result.value,
        f"{prefix}_low": result.low,
        f"{prefix}_high": result.high,
        f"{prefix}_interval": (result.low, result.high),
        f"{prefix}_met": result.meets(target),
        f"{prefix}_small": result.small_sample if result.n else None,
    }


def satisfaction_row(label: dict[str, Any], counts: q.Counts, target: float) -> dict[str, Any]:
    """One row: both sources' rates with n, response rate, interval, target and small-sample flag, and the gap."""
    sms = rate(counts.sms_satisfied, counts.sms_answered)
    recorded = rate(counts.recorded_satisfied, counts.recorded)
    gap = None
    if sms.value is not None and recorded.value is not None:
        gap = round((recorded.value - sms.value) * 100, 9)  # 20.000000000000004 is 20 points, not more
    return {
        **label,
        "sms_screen": f"{counts.sms_answered}/{counts.sms_polled}{_star(sms)}",
        "rec_screen": f"{counts.recorded}{_star(recorded)}",
        "sms_polled": counts.sms_polled,
        "sms_response": counts.sms_answered / counts.sms_polled if counts.sms_polled else None,
        **_rate_cells("sms", sms, target),
        "visits": counts.visits,
        "rec_response": counts.recorded / counts.visits if counts.visits else None,
        **_rate_cells("rec", recorded, target),
        "gap": gap,
    }


def _star(result: Rate) -> str:
    """The screen's mark of a small sample (the files have a column for it)."""
    return "*" if result.n and result.small_sample else ""


def _source_columns(prefix: str, zh: str, en: str) -> list[Column]:
    return [
        Column(f"{prefix}_n", f"{zh}n", f"{en} n", "int", screen=False),
        Column(f"{prefix}_rate", f"{zh}满意度", f"{en} rate", "pct"),
        Column(f"{prefix}_interval", "95%区间", "95% CI", "interval", file=False),
        Column(f"{prefix}_low", f"{zh}95%下限", f"{en} 95% low", "pct", screen=False),
        Column(f"{prefix}_high", f"{zh}95%上限", f"{en} 95% high", "pct", screen=False),
        Column(f"{prefix}_met", "达标", "met", "flag", file=False),
        Column(f"{prefix}_met", f"{zh}达标", f"{en} meets target", "flag", screen=False),
        Column(f"{prefix}_small", f"{zh}小样本", f"{en} small sample", "flag", screen=False),
    ]


def _total_label(by: str, ctx: Context) -> dict[str, Any]:
    """The 合计 row's label cells: the first label column says 合计, the others are empty."""
    columns = _label_columns(by)
    return {c.key: ctx.t("合计", "total") if c is columns[0] else "" for c in columns}


def _label_columns(by: str) -> list[Column]:
    if by == "cadre":
        return [
            Column("cadre_code", "干部编号", "cadre id"),
            Column("cadre_name", "姓名", "name"),
            Column("township", "乡镇", "township"),
        ]
    columns = [Column("township", "乡镇", "township")]
    return [*columns, Column("village", "行政村", "village")] if by == "village" else columns


async def satisfaction(db: Database, ctx: Context, by: str, period: Period, area: q.Area) -> Report:
    tz, target = ctx.settings.tz, ctx.settings.satisfaction_target
    start, end = period.starts_at(tz), period.ends_at(tz)
    async with db.reading() as s:
        sms = await q.sms_counts(s, by, start, end, area)
        recorded = await q.recorded_counts(s, by, start, end, area)
        labels = await _satisfaction_labels(s, by, area, set(sms) | set(recorded), ctx)
    rows = []
    total = q.Counts()
    for key, label in labels:
        counts = q.Counts()
        for source in (sms, recorded):
            if key in source:
                counts.add(source[key])
        total.add(counts)
        rows.append(satisfaction_row(label, counts, target))
    report = Report(
        name="satisfaction",
        title=ctx.t(
            f"群众满意度（{period.label}，按{_by_label(by)}）", f"Satisfaction ({period.label}, by {by})"
        ),
        columns=[
            *_label_columns(by),
            Column("sms_polled", "短信发出", "SMS sent", "int", screen=False),
            Column("sms_response", "短信回复率", "SMS response", "pct", screen=False),
            Column("sms_screen", "短信 回复/发出", "SMS replies/sent", file=False),
            *_source_columns("sms", "短信", "SMS"),
            Column("visits", "走访次数", "visits", "int", screen=False),
            Column("rec_response", "走访回答率", "visit answer rate", "pct", screen=False),
            Column("rec_screen", "走访 n", "visits n", file=False),
            *_source_columns("rec", "走访", "visit"),
            Column("gap", "差距(走访−短信,百分点)", "gap (visit − SMS, points)", "points"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.t(
            f"{period.label} 没有短信回复，也没有走访记录：无可计算的满意度。",
            f"No SMS replies and no visits in {period.label}: nothing to rate.",
        ),
    )
    report.chart = _satisfaction_chart(report, by, target, ctx)  # an empty report draws "无数据"
    if total.sms_polled == 0 and total.visits == 0:
        report.rows = []
        return report
    report.rows.append(satisfaction_row(_total_label(by, ctx), total, target))
    report.notes = _satisfaction_notes(ctx, period, target)
    return report


AWARENESS_FIELD = "policy_known"  # the script's 政策知晓 question (yes/no)


async def awareness(db: Database, ctx: Context, by: str, period: Period, area: q.Area, script: Any) -> Report:
    """政策知晓率: households that know the support policies they receive, of those asked in visits submitted
    in the period, with n and the Wilson interval, against ZOUFANG_AWARENESS_TARGET (the seeds: 100 %)."""
    target = ctx.settings.awareness_target
    asked = AWARENESS_FIELD in {qn.name for qn in script.questions()}
    report = Report(
        name="awareness",
        title=ctx.t(
            f"政策知晓率（{period.label}，按{_by_label(by)}）", f"Policy awareness ({period.label}, by {by})"
        ),
        columns=[
            *_label_columns(by),
            Column("aw_n", "回答户次", "answered", "int"),
            Column("aw_yes", "知晓", "aware", "int"),
            Column("aw_rate", "知晓率", "awareness", "pct"),
            Column("aw_interval", "95%区间", "95% CI", "interval", file=False),
            Column("aw_low", "95%下限", "95% low", "pct", screen=False),
            Column("aw_high", "95%上限", "95% high", "pct", screen=False),
            Column("aw_met", "达标", "meets target", "flag"),
            Column("aw_small", "小样本", "small sample", "flag", screen=False),
        ],
        rows=[],
        locale=ctx.locale,
        empty=ctx.t(
            f"{period.label} 提交的走访中没有政策知晓的回答：无可计算的知晓率。",
            f"No visit submitted in {period.label} answered the policy-awareness question.",
        ),
    )
    if not asked:
        report.empty = ctx.t(
            f"当前走访脚本没有政策知晓题（{AWARENESS_FIELD}）：知晓率未采集，不是 0。",
            f"The visit script in force has no policy-awareness question ({AWARENESS_FIELD}): not collected.",
        )
        return report
    tz = ctx.settings.tz
    async with db.reading() as s:
        counts = await q.awareness_counts(
            s, by, period.starts_at(tz), period.ends_at(tz), area, AWARENESS_FIELD
        )
        labels = await _satisfaction_labels(s, by, area, set(counts), ctx)
    total_n = total_yes = 0
    for key, label in labels:
        n, yes = counts.get(key, (0, 0))
        total_n, total_yes = total_n + n, total_yes + yes
        report.rows.append(_awareness_row(label, n, yes, target))
    if total_n == 0:
        report.rows = []
        return report
    report.rows.append(_awareness_row(_total_label(by, ctx), total_n, total_yes, target))
    report.notes = [
        ctx.t(
            f"知晓率 = 回答“清楚”的户次 / 回答了政策知晓题的户次（本期提交的走访，干部记录）；目标 {target:.0%}；"
            f"小样本（n < {SMALL_SAMPLE}）的比率仅供参考；区间为 95% Wilson 区间。",
            f"Awareness = households answering yes / households asked (visits submitted this period, as cadres "
            f"recorded); target {target:.0%}; small samples (n < {SMALL_SAMPLE}) are indicative only; 95% Wilson.",
        )
    ]
    return report


def _awareness_row(label: dict[str, Any], n: int, yes: int, target: float) -> dict[str, Any]:
    result = rate(yes, n)
    cells = _rate_cells("aw", result, target)
    return {**label, **cells, "aw_yes": yes if n else None}


def _by_label(by: str) -> str:
    return {"village": "行政村", "township": "乡镇", "cadre": "干部"}[by]


def _satisfaction_notes(ctx: Context, period: Period, target: float) -> list[str]:
    return [
        ctx.t(
            f"满意度 =（满意 + 基本满意）/ 有效回答；目标 ≥ {target:.0%}；* 为小样本（n < {SMALL_SAMPLE}），"
            "比率仅供参考；区间为 95% Wilson 区间。",
            f"Rate = (satisfied + fairly satisfied) / valid answers; target ≥ {target:.0%}; "
            f"* marks a small sample (n < {SMALL_SAMPLE}); intervals are 95% Wilson.",
        ),
        ctx.t(
            "短信：本期发出的满意度短信（按户）；走访：本期提交的走访中干部记录的回答。两者分列，不合并；"
            "差距为正表示走访记录高于村民自己的回答。",
            "SMS: polls sent this period; visit: answers recorded by cadres in visits submitted this period. "
            "Never mixed; a positive gap means cadres recorded more satisfaction than villagers reported.",
        ),
    ]


async def _satisfaction_labels(
    s: Any, by: str, area: q.Area, keys: set[int | None], ctx: Context
) -> list[tuple[int | None, dict[str, Any]]]:
    """Every village or township of the area (with data or not), or every cadre with data, in order."""
    if by == "village":
        return [(p.id, {"township": p.township, "village": p.village}) for p in await q.villages(s, area)]
    if by == "township":
        return [(p.id, {"township": p.township}) for p in await q.townships(s, area)]
    cadres = await q.cadres_by_id(s, [k for k in keys if k is not None])
    labels: list[tuple[int | None, dict[str, Any]]] = [
        (cid, {"cadre_code": code, "cadre_name": name, "township": town})
        for cid, (code, name, _role, town) in sorted(cadres.items(), key=lambda item: item[1][0])
    ]
    if None in keys:
        labels.append(
            (
                None,
                {
                    "cadre_code": ctx.t("（短信前无走访）", "(no visit before the poll)"),
                    "cadre_name": "",
                    "township": "",
                },
            )
        )
    return labels


def _satisfaction_chart(report: Report, by: str, target: float, ctx: Context):  # type: ignore[no-untyped-def]
    rows = report.rows[:-1]  # the total is a line of its own, not a bar

    def label(row: dict[str, Any]) -> str:
        return row.get("village") or row.get("cadre_name") or row.get("cadre_code") or row.get("township", "")

    def draw(path: Path) -> None:
        from bot.charts import rate_bars

        rate_bars(
            path,
            report.title,
            [label(r) for r in rows],
            [
                (ctx.t("村民短信", "villagers' SMS"), *_series(rows, "sms")),
                (ctx.t("走访记录", "recorded in visits"), *_series(rows, "rec")),
            ],
            target,
            ctx.t(f"目标 {target:.0%}", f"target {target:.0%}"),
            ctx.t("满意度", "satisfaction"),
        )

    return draw


def _series(rows: list[dict[str, Any]], prefix: str) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        [r[f"{prefix}_rate"] for r in rows],
        [r[f"{prefix}_low"] for r in rows],
        [r[f"{prefix}_high"] for r in rows],
    )


# --- 2. coverage ------------------------------------------------------------------------------------------------

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
        from bot.charts import rate_bars

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


# --- 3. households -----------------------------------------------------------------------------------------------


def group_from(text: str | None, ctx: Context) -> str | None:
    if text is None:
        return None
    for code in GROUPS:
        if text.strip() in (code, GROUP_LABELS[code], GROUP_LABELS_EN[code]):
            return code
    known = "、".join(GROUP_LABELS[g] for g in GROUPS)
    raise ReportError(
        ctx.t(
            f"未知人群类别 {text!r}；可用：{known}", f"unknown household group {text!r}; use one of: {known}"
        )
    )


def _group_label(code: str | None, ctx: Context) -> str:
    if code is None:
        return ctx.t("（未分组）", "(no group)")
    return (GROUP_LABELS_EN if ctx.locale == "en" else GROUP_LABELS).get(code, code)


def _households_empty(group: str | None, ctx: Context) -> str:
    if group is not None:
        label = _group_label(group, ctx)
        return ctx.t(
            f"按各户最近一次走访，没有“{label}”类农户。",
            f"No household is in the group {label!r} by its latest visit.",
        )
    return ctx.t("还没有提交的走访：无可分组的农户。", "No submitted visits yet: no household to group.")


async def households(db: Database, ctx: Context, group: str | None, area: q.Area) -> Report:
    """Households by group (each household's latest visit), unmet basic needs and warnings per group."""
    async with db.reading() as s:
        rows = await q.household_groups(s, area, UNMET_ITEMS, group)
        unvisited = await q.never_visited(s, area) if group is None else 0
        warned = sum(r[-1] for r in rows)
    found = {row[0]: row[1:] for row in rows}
    # every group in the fixed order, with zeros, so a missing group reads as none rather than as forgotten
    shown = [group] if group is not None else [*GROUPS, *(g for g in found if g not in GROUPS)]
    zeros = (0,) * (len(UNMET_ITEMS) + 2)
    result = []
    for code in shown:
        count, *unmet, warnings = found.get(code, zeros)
        result.append(
            {
                "group": _group_label(code, ctx),
                "households": count,
                **dict(zip(UNMET_ITEMS, unmet, strict=True)),
                "warned": warnings,
            }
        )
    if not found:
        result = []
    if result:
        total: dict[str, Any] = {"group": ctx.t("合计", "total")}
        for key in ("households", *UNMET_ITEMS, "warned"):
            total[key] = sum(r[key] for r in result)
        result.append(total)
    return Report(
        name="households",
        title=ctx.t(
            "四类人群与两不愁三保障（按各户最近一次走访）",
            "Household groups and basic needs (each household's latest visit)",
        ),
        columns=[
            Column("group", "类别", "group"),
            Column("households", "户数", "households", "int"),
            *(
                Column(code, f"{UNMET_LABELS[code]}未保障", f"{UNMET_LABELS_EN[code]} unmet", "int")
                for code in UNMET_ITEMS
            ),
            Column("warned", "返贫预警户", "with warnings", "int"),
        ],
        rows=result,
        locale=ctx.locale,
        notes=_households_notes(warned, unvisited, ctx),
        empty=_households_empty(group, ctx),
    )


def _households_notes(warned: int, unvisited: int, ctx: Context) -> list[str]:
    notes = [
        ctx.t(
            f"返贫预警 {warned} 户：zoufang report households --warning 列出每户及原因。",
            f"{warned} households with a warning: zoufang report households --warning lists them with reasons.",
        )
    ]
    if unvisited:
        notes.insert(
            0,
            ctx.t(
                f"另有 {unvisited} 户尚无提交的走访，未计入分组。",
                f"{unvisited} more households have no submitted visit yet and are not grouped.",
            ),
        )
    return notes


def _reasons(codes: str, labels: dict[str, str]) -> str:
    """Warning codes as labels, in the fixed order of survey.facts.WARNINGS."""
    given = set(codes.split(",")) - {""}
    ordered = [w for w in WARNINGS if w in given] + sorted(given - set(WARNINGS))
    return "；".join(labels.get(w, w) for w in ordered)


async def warnings(db: Database, ctx: Context, group: str | None, area: q.Area) -> Report:
    """The 返贫预警 list: every household whose latest visit raised a warning, with the reasons."""
    labels = WARNING_LABELS_EN if ctx.locale == "en" else WARNING_LABELS
    async with db.reading() as s:
        found = await q.warning_list(s, area, group)
    rows = [
        {
            "township": town,
            "village": village,
            "code": code,
            "head": head,
            "group": _group_label(g, ctx),
            "per_capita": None if net is None else float(net),
            "reasons": _reasons(codes, labels),
            "visited": ctx.local(at),
        }
        for town, village, code, head, g, net, codes, at in found
    ]
    return Report(
        name="warnings",
        title=ctx.t(
            f"返贫预警户（{len(rows)} 户）", f"Households at risk of returning to poverty ({len(rows)})"
        ),
        columns=[
            Column("township", "乡镇", "township"),
            Column("village", "行政村", "village"),
            Column("code", "户编号", "household id"),
            Column("head", "户主", "head"),
            Column("group", "类别", "group"),
            Column("per_capita", "人均纯收入(元)", "net income per person (yuan)", "yuan"),
            Column("reasons", "预警原因", "reasons"),
            Column("visited", "最近走访", "latest visit"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.t("没有返贫预警户。", "No household has a warning."),
    )


# --- 4. integrity ------------------------------------------------------------------------------------------------


def _flag(
    code: str, ctx: Context, context: tuple[Any, ...], at: datetime | None, detail: str
) -> dict[str, Any]:
    township, village, cadre_code, cadre_name, household_code, head = context
    labels = FLAG_LABELS_EN if ctx.locale == "en" else FLAG_LABELS
    return {
        "flag": labels[code],
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
        rows += [_short(v, limits, ctx) for v in timed if v.short]
        rows += [flag for v in timed if v.at and (flag := _far(v, limits, ctx))]
        rows += await _bursts(s, ctx, start, end, area, limits)
        rows += _identical(
            await q.identical_answers(s, start, end, area, limits.identical_min_households), ctx
        )
        for town, village, code, name, hcode, head, closed, pid, category in await q.closed_without_decision(
            s, start, end, area
        ):
            rows.append(
                _flag(
                    "closed_without_decision",
                    ctx,
                    (town, village, code, name, hcode, head),
                    closed,
                    ctx.t(
                        f"问题 #{pid}（{category}）已销号，无会议决定记录",
                        f"problem #{pid} ({category}) closed with no meeting decision recorded",
                    ),
                )
            )
    rows += await _satisfaction_gaps(db, ctx, period, area, limits.satisfaction_gap_points)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["flag"]] = counts.get(row["flag"], 0) + 1
    summary = "；".join(f"{flag} {n}" for flag, n in counts.items())
    return Report(
        name="integrity",
        title=ctx.t(f"数据真实性提示（{period.label}）", f"Integrity flags ({period.label})"),
        columns=[
            Column("flag", "提示", "flag"),
            Column("township", "乡镇", "township"),
            Column("village", "行政村", "village"),
            Column("cadre", "干部", "cadre"),
            Column("household", "农户", "household"),
            Column("at", "时间", "time"),
            Column("detail", "情况", "detail"),
        ],
        rows=rows,
        locale=ctx.locale,
        notes=_integrity_notes(rows, summary, ctx),
        empty=ctx.t(f"{period.label} 没有需要核实的提示。", f"No flags in {period.label}."),
    )


def _short(visit: q.TimedVisit, limits: Thresholds, ctx: Context) -> dict[str, Any]:
    detail = ctx.t(
        f"用时 {visit.seconds / 60:.1f} 分钟（阈值 {limits.min_visit_minutes:g} 分钟）",
        f"took {visit.seconds / 60:.1f} min (threshold {limits.min_visit_minutes:g} min)",
    )
    return _flag("short_visit", ctx, visit.context, visit.submitted_at, detail)


def _far(visit: q.TimedVisit, limits: Thresholds, ctx: Context) -> dict[str, Any] | None:
    """The flag of a visit whose fix is further from the registered place than the threshold, measured exactly."""
    assert visit.at is not None and visit.home is not None
    metres = distance_m(*visit.at, *visit.home)
    if metres <= limits.max_distance_m:
        return None
    detail = ctx.t(
        f"距登记住址 {metres / 1000:.2f} 公里（阈值 {limits.max_distance_m / 1000:g} 公里）",
        f"{metres / 1000:.2f} km from the registered place (threshold {limits.max_distance_m / 1000:g} km)",
    )
    return _flag("far_location", ctx, visit.context, visit.submitted_at, detail)


def _integrity_notes(rows: list[dict[str, Any]], summary: str, ctx: Context) -> list[str]:
    if not rows:
        return []
    return [
        ctx.t(f"共 {len(rows)} 条：{summary}。", f"{len(rows)} in all: {summary}."),
        ctx.t(
            "以上为需要核实的提示，不是结论：请核实后再作处理。",
            "These are flags to check, not verdicts: verify before acting.",
        ),
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
    for cadre_id, first, last in runs:
        code, name, _role, town = cadres[cadre_id]
        visits = await q.visits_between(s, cadre_id, first, last)
        detail = ctx.t(
            f"{ctx.local(first)}–{ctx.local(last)[-5:]} 共 {visits} 次走访（阈值 {limits.burst_minutes:g} 分钟内 {limits.burst_visits} 次）",
            f"{visits} visits {ctx.local(first)}–{ctx.local(last)[-5:]} (threshold {limits.burst_visits} within {limits.burst_minutes:g} min)",
        )
        rows.append(_flag("visit_burst", ctx, (town, "", code, name, "", ""), first, detail))
    return rows


def _identical(found: list[tuple[Any, ...]], ctx: Context) -> list[dict[str, Any]]:
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for digest, *rest in found:
        groups.setdefault(digest, []).append(tuple(rest))
    rows = []
    for number, members in enumerate(groups.values(), start=1):
        households = {m[4] for m in members}
        for *context, at in members:
            detail = ctx.t(
                f"第 {number} 组：{len(households)} 户答案完全相同",
                f"set {number}: {len(households)} households answered identically",
            )
            rows.append(_flag("identical_answers", ctx, tuple(context), at, detail))
    return rows


async def _satisfaction_gaps(
    db: Database, ctx: Context, period: Period, area: q.Area, points: float
) -> list[dict[str, Any]]:
    report = await satisfaction(db, ctx, "village", period, area)
    rows = []
    for row in report.rows[:-1]:
        if row["gap"] is not None and row["gap"] > points:
            detail = ctx.t(
                f"走访记录 {_pct(row['rec_rate'])}（n={row['rec_n']}）高于村民短信 {_pct(row['sms_rate'])}（n={row['sms_n']}）{row['gap']:.1f} 个百分点（阈值 {points:g}）",
                f"recorded {_pct(row['rec_rate'])} (n={row['rec_n']}) above SMS {_pct(row['sms_rate'])} (n={row['sms_n']}) by {row['gap']:.1f} points (threshold {points:g})",
            )
            rows.append(
                _flag(
                    "satisfaction_gap", ctx, (row["township"], row["village"], "", "", "", ""), None, detail
                )
            )
    return rows


# --- problems per month ---------------------------------------------------------------------------------------


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
        from bot.charts import count_bars

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


# --- the township meeting's numbers ------------------------------------------------------------------------


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


# what each audit action is called where people read it
AUDIT_ACTIONS = {
    "visit.submit": ("提交走访", "visit submitted"),
    "problem.decide": ("问题交办", "problem decided"),
    "problem.close": ("问题销号", "problem closed"),
    "problem.merge": ("问题合并", "problem merged"),
    "problem.reopen": ("问题重开", "problem reopened"),
    "problem.escalate": ("问题上报", "problem escalated"),
    "problem.overdue": ("问题逾期", "problem overdue"),
    "problem.county": ("问题报县", "problem sent to the county"),
    "problem.resolve_on_site": ("问题现场化解", "problem resolved on the spot"),
    "import.households": ("导入户花名册", "households imported"),
    "import.cadres": ("导入干部花名册", "cadres imported"),
    "household.update": ("户信息变更", "household changed"),
    "cadre.update": ("干部信息变更", "cadre changed"),
    "telegram.bind": ("绑定 Telegram", "Telegram bound"),
    "sms.opt_out": ("短信退订", "SMS opt-out"),
    "sms.opt_in": ("恢复短信", "SMS opt-in"),
}


async def audit_trail(db: Database, ctx: Context, since: date, until: date | None) -> Report:
    """The audit trail from `since` through `until` (local days, both included), oldest first."""
    from storage.audit import entries

    tz = ctx.settings.tz
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz) if until else None
    async with db.reading() as s:
        found = await entries(s, start, end)
    rows = [
        {
            "at": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": e.actor,
            "action": ctx.t(*AUDIT_ACTIONS[e.action]) if e.action in AUDIT_ACTIONS else e.action,
            "code": e.action,
            "subject": e.subject,
            "before": e.before,
            "after": e.after,
        }
        for e in found
    ]
    span = f"{since}～{until}" if until else ctx.t(f"{since} 起", f"since {since}")
    return Report(
        name="audit",
        title=ctx.t(f"操作记录（{span}）", f"Audit trail ({span})"),
        columns=[
            Column("at", "时间", "time"),
            Column("actor", "操作人", "by"),
            Column("action", "操作", "action"),
            Column("code", "操作代码", "action code", screen=False),
            Column("subject", "对象", "subject"),
            Column("before", "变更前", "before"),
            Column("after", "变更后", "after"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.t("这段时间没有操作记录。", "Nothing was recorded in that time."),
    )
