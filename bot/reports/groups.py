"""Household groups (四类人群) with the unmet basic needs (两不愁三保障) per group, and the 返贫预警 list of the
households whose latest visit raised a warning."""

from __future__ import annotations

from typing import Any

from bot.reports.base import Context, ReportError
from bot.reports.output import Column, Report
from storage import reports as q
from storage.db import Database
from survey.facts import (
    FACT_LABELS,
    FACT_LABELS_EN,
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
    raise ReportError(ctx.say("unknown_group", text=repr(text), known=known))


def _group_labels(ctx: Context) -> dict[str | None, str]:
    """Each group's label in the report's language, and the label of a household with none: once a report."""
    return {None: ctx.say("no_group"), **ctx.labels(GROUP_LABELS, GROUP_LABELS_EN)}


def _households_empty(group: str | None, labels: dict[str | None, str], ctx: Context) -> str:
    if group is not None:
        label = labels.get(group, group)
        return ctx.say("households_empty_group", label=label, quoted=repr(label))
    return ctx.say("households_empty")


async def households(db: Database, ctx: Context, group: str | None, area: q.Area) -> Report:
    """Households by group (each household's latest visit), unmet basic needs and warnings per group."""
    async with db.reading() as s:
        rows = await q.household_groups(s, area, UNMET_ITEMS, group)
        unvisited = await q.never_visited(s, area) if group is None else 0
        warned = sum(r[-1] for r in rows)
        missing = await q.uncollected_counts(s, area, _NOT_COLLECTED, group)
    found = {row[0]: row[1:] for row in rows}
    # every group in the fixed order, with zeros, so a missing group reads as none rather than as forgotten
    shown = [group] if group is not None else [*GROUPS, *(g for g in found if g not in GROUPS)]
    zeros = (0,) * (len(UNMET_ITEMS) + 2)
    labels = _group_labels(ctx)
    result = []
    for code in shown:
        count, *unmet, warnings = found.get(code, zeros)
        result.append(
            {
                "group": labels.get(code, code),
                "households": count,
                **dict(zip(UNMET_ITEMS, unmet, strict=True)),
                "warned": warnings,
            }
        )
    if not found:
        result = []
    if result:
        total: dict[str, Any] = {"group": ctx.say("total")}
        for key in ("households", *UNMET_ITEMS, "warned"):
            total[key] = sum(r[key] for r in result)
        result.append(total)
    unmet = ctx.labels(UNMET_LABELS, UNMET_LABELS_EN)
    return Report(
        name="households",
        title=ctx.say("households_title"),
        columns=[
            ctx.column("group"),
            ctx.column("households", kind="int"),
            *(Column(code, ctx.say("col_unmet", item=unmet[code]), None, "int") for code in UNMET_ITEMS),
            ctx.column("warned", kind="int"),
        ],
        rows=result,
        locale=ctx.locale,
        notes=[*_households_notes(warned, unvisited, ctx), *_uncollected_notes(missing, ctx)],
        empty=_households_empty(group, labels, ctx),
    )


def _households_notes(warned: int, unvisited: int, ctx: Context) -> list[str]:
    notes = [ctx.say("households_note_warned", warned=warned)]
    if unvisited:
        notes.insert(0, ctx.say("households_note_unvisited", unvisited=unvisited))
    return notes


# The facts a households report rests on, in the order its notes name them when a script did not collect them.
_NOT_COLLECTED = ("per_capita_net", *UNMET_ITEMS, "group", *WARNINGS)


def _uncollected_notes(missing: dict[str, int], ctx: Context) -> list[str]:
    """未采集: which facts the households' latest visits did not collect, and for how many households, so a
    household not counted as unmet or warned is not read as met or safe."""
    if not missing:
        return []
    labels = ctx.labels(FACT_LABELS, FACT_LABELS_EN)
    found = ctx.say("list_sep").join(
        ctx.say("uncollected_item", fact=labels[code], n=n) for code, n in missing.items()
    )
    return [ctx.say("households_note_uncollected", found=found)]


def _reasons(codes: str, labels: dict[str, str]) -> str:
    """Warning codes as labels, in the fixed order of survey.facts.WARNINGS."""
    given = set(codes.split(",")) - {""}
    ordered = [w for w in WARNINGS if w in given] + sorted(given - set(WARNINGS))
    return "；".join(labels.get(w, w) for w in ordered)


async def warnings(db: Database, ctx: Context, group: str | None, area: q.Area) -> Report:
    """The 返贫预警 list: every household whose latest visit raised a warning, with the reasons."""
    labels = ctx.labels(WARNING_LABELS, WARNING_LABELS_EN)
    groups = _group_labels(ctx)
    async with db.reading() as s:
        found = await q.warning_list(s, area, group)
        unjudged = await q.uncollected_counts(s, area, WARNINGS, group, warned_only=True)
    not_collected = ctx.say("not_collected")
    rows = [
        {
            "township": town,
            "village": village,
            "code": code,
            "head": head,
            "group": groups.get(g, g),
            "per_capita": _per_capita(net, missing, not_collected),
            "reasons": _reasons(codes, labels),
            "visited": ctx.local(at),
        }
        for town, village, code, head, g, net, codes, at, missing in found
    ]
    return Report(
        name="warnings",
        title=ctx.say("warnings_title", count=len(rows)),
        columns=[
            ctx.column("township"),
            ctx.column("village"),
            ctx.column("code", "household_code"),
            ctx.column("head"),
            ctx.column("group"),
            ctx.column("per_capita", kind="yuan"),
            ctx.column("reasons"),
            ctx.column("visited", "latest_visit"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.say("warnings_empty"),
        notes=_unjudged_notes(unjudged, ctx),
    )


def _per_capita(net: Any, missing: str | None, not_collected: str) -> float | str | None:
    """The per-capita net of a warned household; 未采集 when its visit's script lacked the income questions."""
    if net is not None:
        return float(net)
    return not_collected if "per_capita_net" in (missing or "").split(",") else None


def _unjudged_notes(unjudged: dict[str, int], ctx: Context) -> list[str]:
    """Households with no warning whose script could not judge some warnings: they are not shown as safe."""
    if not unjudged:
        return []
    labels = ctx.labels(WARNING_LABELS, WARNING_LABELS_EN)
    found = ctx.say("list_sep").join(
        ctx.say("uncollected_item", fact=labels[code], n=n) for code, n in unjudged.items()
    )
    return [ctx.say("warnings_note_unjudged", found=found)]
