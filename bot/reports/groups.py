"""Household groups (四类人群) with the unmet basic needs (两不愁三保障) per group, and the 返贫预警 list of the
households whose latest visit raised a warning."""

from __future__ import annotations

from typing import Any

from bot.reports.base import Context, ReportError
from bot.reports.output import Column, Report
from storage import reports as q
from storage.db import Database
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
