"""Satisfaction (群众满意度) and policy awareness (政策知晓率): a rate with its n, Wilson interval, target and
small-sample flag per village, township or cadre of the area, then the 合计 row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.reports.base import Context
from bot.reports.output import Column, Report, rate_bars
from storage import reports as q
from storage.db import Database
from survey.periods import Period
from survey.stats import SMALL_SAMPLE, Rate, rate

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
