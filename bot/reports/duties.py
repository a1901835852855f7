"""The plans' duties that software can carry (issue 17): the 98 % targets beside satisfaction, the check list
of exited households whose latest visit still fails an item, the township ranking for the county's monthly
review, the days in the village per cadre against the norm, and the four lists (四个清单) of households."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

from bot.reports.base import Context
from bot.reports.output import Column, Report
from storage import duties as store
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
from survey.periods import Period
from survey.stats import SMALL_SAMPLE, Rate, rate

# --- targets ------------------------------------------------------------------------------------------------

# (indicator, the unmet item of survey.facts it is the complement of, the setting holding its target)
TARGET_ITEMS = (("housing", "housing", "housing_target"), ("medical", "medical_insurance", "medical_target"))
PENSION_ROLE = "pension_insured"  # the role (and the built-in script's question) of 养老保险


def _rate_cells(result: Rate, target: float) -> dict[str, Any]:
    return {
        "n": result.n,
        "hits": result.hits if result.n else None,
        "rate": result.value,
        "interval": (result.low, result.high),
        "low": result.low,
        "high": result.high,
        "target": target,
        "met": result.meets(target),
        "small": result.small_sample if result.n else None,
    }


def _rate_columns(ctx: Context) -> list[Column]:
    return [
        ctx.column("n", "duty_n", kind="int"),
        ctx.column("hits", "duty_hits", kind="int"),
        ctx.column("rate", "duty_rate", kind="pct"),
        ctx.column("interval", "interval", "interval", file=False),
        ctx.column("low", "low", "pct", screen=False),
        ctx.column("high", "high", "pct", screen=False),
        ctx.column("target", "duty_target", kind="pct"),
        ctx.column("met", "met", "flag"),
        ctx.column("small", "small", "flag"),  # on screen too: a small sample is flagged, never hidden
    ]


async def targets(db: Database, ctx: Context, by: str, period: Period, area: q.Area, script: Any) -> Report:
    """Safe housing, 医保 and 养老保险 against the plans' 98 % targets (each household's latest visit), beside
    the villagers' SMS satisfaction in the period, per village or township, then 合计."""
    tz = ctx.settings.tz
    async with db.reading() as s:
        places = await q.villages(s, area)
        items = await store.item_counts(s, area, [item for _, item, _ in TARGET_ITEMS])
        sms = await q.sms_counts(s, "village", period.starts_at(tz), period.ends_at(tz), area)
        field = script.roles.first(PENSION_ROLE)
        pensions = await store.answer_counts(s, area, field) if field else None
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for p in places:
        groups[(p.township, p.village if by == "village" else "")].append(p.id)
    groups[(ctx.say("total"), "")] = [p.id for p in places]
    rows: list[dict[str, Any]] = []
    for (town, village), ids in groups.items():
        label = {"township": town, "village": village}
        for index, (indicator, _item, setting) in enumerate(TARGET_ITEMS):
            n = sum(items[v][index][0] for v in ids if v in items)
            hits = sum(items[v][index][1] for v in ids if v in items)
            target = getattr(ctx.settings, setting)
            rows.append(
                {**label, "indicator": ctx.say(f"duty_{indicator}"), **_rate_cells(rate(hits, n), target)}
            )
        rows.append({**label, "indicator": ctx.say("duty_pension"), **_pension_cells(pensions, ids, ctx)})
        answered = sum(sms[v].sms_answered for v in ids if v in sms)
        satisfied = sum(sms[v].sms_satisfied for v in ids if v in sms)
        cells = _rate_cells(rate(satisfied, answered), ctx.settings.satisfaction_target)
        rows.append({**label, "indicator": ctx.say("duty_satisfaction", period=period.label), **cells})
    columns = [ctx.column("township"), ctx.column("village"), ctx.column("indicator", "duty_indicator")]
    if by == "township":
        columns.pop(1)
    # a village appears in `items` once one of its households has a latest visit, whatever it collected
    anything = bool(items) or any(c.sms_answered for c in sms.values())
    return Report(
        name="targets",
        title=ctx.say("targets_title", period=period.label, by=by),
        columns=[*columns, *_rate_columns(ctx)],
        rows=rows if places and anything else [],
        locale=ctx.locale,
        notes=_targets_notes(ctx, script),
        empty=ctx.say("targets_empty", period=period.label),
    )


def _pension_cells(found: dict[int, tuple[int, int]] | None, ids: list[int], ctx: Context) -> dict[str, Any]:
    """养老保险 from the latest visits' answers to the question tagged pension_insured; 未采集 without one."""
    target = ctx.settings.pension_target
    if found is None:
        return {"rate": ctx.say("not_collected"), "target": target}
    n = sum(found[v][0] for v in ids if v in found)
    return _rate_cells(rate(sum(found[v][1] for v in ids if v in found), n), target)


def _targets_notes(ctx: Context, script: Any) -> list[str]:
    conf = ctx.settings
    field = script.roles.first(PENSION_ROLE)
    asked = any(question.name == PENSION_ROLE for question in script.questions())
    pension = (
        ctx.say("targets_note_pension_rate", target=f"{conf.pension_target:.0%}", field=field)
        if field
        else ctx.say(
            "targets_note_pension", target=f"{conf.pension_target:.0%}", asked=asked, field=PENSION_ROLE
        )
    )
    return [
        ctx.say("targets_note_housing", target=f"{conf.housing_target:.0%}"),
        ctx.say("targets_note_medical", target=f"{conf.medical_target:.0%}"),
        pension,
        ctx.say("targets_note_satisfaction", target=f"{conf.satisfaction_target:.0%}"),
        ctx.say("targets_note_rates", small=SMALL_SAMPLE),
    ]


# --- exited households that still fail an item -----------------------------------------------------------


def _codes(text: str | None, order: tuple[str, ...], labels: dict[str, str]) -> str:
    given = set((text or "").split(",")) - {""}
    ordered = [c for c in order if c in given] + sorted(given - set(order))
    return "；".join(labels.get(c, c) for c in ordered)


async def exited_check(db: Database, ctx: Context, area: q.Area) -> Report:
    """核查清单: households the roster marks 已脱贫 whose latest visit still fails 两不愁三保障/饮水安全."""
    labels = ctx.labels(UNMET_LABELS, UNMET_LABELS_EN)
    async with db.reading() as s:
        found = await store.exited_failing(s, area)
        exited, unvisited, unjudged = await store.exited_counts(s, area, UNMET_ITEMS)
    rows = [
        {
            "township": town,
            "village": village,
            "code": code,
            "head": head,
            "items": _codes(unmet, UNMET_ITEMS, labels),
            "uncollected": _codes(
                ",".join(c for c in (missing or "").split(",") if c in UNMET_ITEMS), UNMET_ITEMS, labels
            ),
            "visited": ctx.local(at),
            "cadre": cadre,
        }
        for town, village, code, head, unmet, missing, at, cadre in found
    ]
    return Report(
        name="exited-check",
        title=ctx.say("exited_title", count=len(rows)),
        columns=[
            ctx.column("township"),
            ctx.column("village"),
            ctx.column("code", "household_code"),
            ctx.column("head"),
            ctx.column("items", "exited_items"),
            ctx.column("uncollected", "exited_uncollected"),
            ctx.column("visited", "latest_visit"),
            ctx.column("cadre"),
        ],
        rows=rows,
        locale=ctx.locale,
        notes=[
            ctx.say("exited_note", exited=exited, failing=len(rows), unvisited=unvisited, unjudged=unjudged)
        ],
        empty=ctx.say("exited_empty", exited=exited),
    )


# --- the township ranking ---------------------------------------------------------------------------------

_RANKED = ("coverage", "satisfaction", "resolution")  # higher is better; overdue: lower is better


def _ranks(values: dict[int, float | None], higher: bool) -> dict[int, float]:
    """Competition ranks (1 = best, ties share the best place); a township with nothing to judge ranks last."""
    known = [v for v in values.values() if v is not None]
    result = {}
    for key, value in values.items():
        if value is None:
            result[key] = len(values)
        else:
            result[key] = 1 + sum(1 for other in known if (other > value if higher else other < value))
    return result


async def ranking(db: Database, ctx: Context, period: Period, area: q.Area) -> Report:
    """The county's monthly review: per township coverage, SMS satisfaction, problem resolution rate and
    overdue problems, each township's rank on each, and the overall rank (by the sum of the four)."""
    tz = ctx.settings.tz
    start, end = period.starts_at(tz), period.ends_at(tz)
    async with db.reading() as s:
        towns = await q.townships(s, area)
        covered = await store.township_coverage(s, start, end, area)
        sms = await q.sms_counts(s, "township", start, end, area)
        problems = await store.township_problems(s, start, end, area)
    measures: dict[int, dict[str, Any]] = {}
    for town in towns:
        households, seen = covered.get(town.id, (0, 0))
        counts = sms.get(town.id, q.Counts())
        closed, still_open, late = problems.get(town.id, (0, 0, 0))
        measures[town.id] = {
            "township": town.township,
            "coverage": rate(seen, households),
            "satisfaction": rate(counts.sms_satisfied, counts.sms_answered),
            "resolution": rate(closed, closed + still_open),
            "overdue": late,
        }
    rows = _ranking_rows(measures)
    _flag(rows, ctx)
    columns = _ranking_columns(ctx)
    anything = any(
        m["coverage"].hits or m["satisfaction"].n or m["resolution"].n or m["overdue"]
        for m in measures.values()
    )
    return Report(
        name="ranking",
        title=ctx.say("ranking_title", period=period.label),
        columns=columns,
        rows=rows if anything else [],
        locale=ctx.locale,
        notes=[
            ctx.say("ranking_note_measures"),
            ctx.say("ranking_note_rank"),
            ctx.say("ranking_note_flags", red=RED_FLAGS, yellow=YELLOW_FLAGS),
        ],
        empty=ctx.say("ranking_empty", period=period.label),
    )


def _ranking_rows(measures: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each township's rates with n and interval, its place on each measure, and the overall rank."""
    ranks = {name: _ranks({k: m[name].value for k, m in measures.items()}, True) for name in _RANKED}
    ranks["overdue"] = _ranks({k: float(m["overdue"]) for k, m in measures.items()}, False)
    score = {k: sum(ranks[name][k] for name in ranks) for k in measures}
    overall = _ranks({k: -score[k] for k in measures}, True)
    rows = []
    for key in sorted(measures, key=lambda k: (overall[k], measures[k]["township"])):
        m = measures[key]
        row: dict[str, Any] = {"township": m["township"], "rank": overall[key], "score": score[key]}
        for name in _RANKED:
            result: Rate = m[name]
            row |= {
                f"{name}_n": result.n,
                f"{name}_rate": result.value,
                f"{name}_interval": (result.low, result.high),
                f"{name}_low": result.low,
                f"{name}_high": result.high,
                f"{name}_rank": ranks[name][key],
            }
        row |= {"overdue": m["overdue"], "overdue_rank": ranks["overdue"][key]}
        rows.append(row)
    return rows


RED_FLAGS, YELLOW_FLAGS = 3, 2  # seed 001: a red flag for the top 3 townships, a yellow one for the bottom 2


def _flag(rows: list[dict[str, Any]], ctx: Context) -> None:
    """红旗 for the top three places, 黄旗 for the last two rows; only where the townships are enough for both
    (with fewer, every township would be flagged, and the flags would say nothing)."""
    if len(rows) < RED_FLAGS + YELLOW_FLAGS:
        return
    for index, row in enumerate(rows):
        if row["rank"] <= RED_FLAGS:
            row["flag"] = ctx.say("ranking_red")
        elif index >= len(rows) - YELLOW_FLAGS:
            row["flag"] = ctx.say("ranking_yellow")


def _ranking_columns(ctx: Context) -> list[Column]:
    columns = [ctx.column("rank", "ranking_rank", kind="int"), ctx.column("township")]
    for name in _RANKED:
        columns += [
            ctx.column(f"{name}_n", f"ranking_{name}_n", kind="int"),
            ctx.column(f"{name}_rate", f"ranking_{name}", kind="pct"),
            ctx.column(f"{name}_interval", "interval", "interval", file=False),
            ctx.column(f"{name}_low", f"ranking_{name}_low", kind="pct", screen=False),
            ctx.column(f"{name}_high", f"ranking_{name}_high", kind="pct", screen=False),
            ctx.column(f"{name}_rank", f"ranking_{name}_rank", kind="int", screen=False),
        ]
    return [
        *columns,
        ctx.column("overdue", "ranking_overdue", kind="int"),
        ctx.column("overdue_rank", "ranking_overdue_rank", kind="int", screen=False),
        ctx.column("score", "ranking_score", kind="int"),
        ctx.column("flag", "ranking_flag"),
    ]


# --- days in the village ------------------------------------------------------------------------------------

# role → days in the village a week the plans ask for: 第一书记 5 a week, 工作队 1 a week, 市级包保领导 1 every two
DAYS_NORMS: dict[str, float] = {"第一书记": 5.0, "驻村工作队": 1.0, "市级包保领导": 0.5}


def elapsed_days(period: Period, ctx: Context) -> int:
    """Days of the period gone by when the report is run (the whole period once it is over)."""
    today = ctx.now.astimezone(ctx.settings.tz).date()
    last = min(today + timedelta(days=1), period.end)
    return max((last - period.start).days, 0)


async def days_in_village(db: Database, ctx: Context, period: Period, area: q.Area) -> Report:
    """Per cadre of a role with a norm: distinct local days with a submitted visit in the period, against the
    norm for the days of the period gone by; behind the norm first."""
    tz = ctx.settings.tz
    start = period.starts_at(tz)
    offset = int((start.utcoffset() or timedelta()).total_seconds())
    days = elapsed_days(period, ctx)
    async with db.reading() as s:
        cadres = await q.cadres_with_roles(s, list(DAYS_NORMS), area)
        found = await store.days_in_village(
            s, list(DAYS_NORMS), start, period.ends_at(tz), ctx.settings.timezone, offset, area
        )
    rows = []
    for cadre in cadres:
        norm = math.ceil(DAYS_NORMS[cadre.role] * days / 7 - 1e-9)
        done = found.get(cadre.id, 0)
        rows.append(
            {
                "cadre_code": cadre.code,
                "cadre_name": cadre.name,
                "role": cadre.role,
                "township": cadre.township,
                "days": done,
                "norm": norm,
                "short": max(norm - done, 0),
                "met": done >= norm,
            }
        )
    rows.sort(key=lambda r: (r["met"], -r["short"], r["cadre_code"]))
    return Report(
        name="days-in-village",
        title=ctx.say("days_title", period=period.label, days=days),
        columns=[
            ctx.column("cadre_code"),
            ctx.column("cadre_name"),
            ctx.column("role", "coverage_role"),
            ctx.column("township"),
            ctx.column("days", "days_done", kind="int"),
            ctx.column("norm", "days_norm", kind="int"),
            ctx.column("short", "days_short", kind="int"),
            ctx.column("met", "met", "flag"),
        ],
        rows=rows,
        locale=ctx.locale,
        notes=[ctx.say("days_note", days=days)],
        empty=ctx.say("days_empty"),
    )


# --- the four lists -----------------------------------------------------------------------------------------


async def lists(db: Database, ctx: Context, group: str | None, area: q.Area) -> Report:
    """四个清单: every household of the area with its group (latest visit), one row each, in the groups' order;
    households never visited last, as 尚未走访."""
    groups = {None: ctx.say("no_group"), **ctx.labels(GROUP_LABELS, GROUP_LABELS_EN)}
    unmet_labels = ctx.labels(UNMET_LABELS, UNMET_LABELS_EN)
    warning_labels = ctx.labels(WARNING_LABELS, WARNING_LABELS_EN)
    async with db.reading() as s:
        found = await store.household_list(s, area, group)
    order = {g: i for i, g in enumerate(GROUPS)}
    unvisited = ctx.say("lists_unvisited")
    rows = []
    for town, village, code, head, members, status, g, net, unmet, warned, at, _missing in found:
        rows.append(
            {
                "group": unvisited if at is None else groups.get(g, g),
                "_order": len(GROUPS) + (2 if at is None else 1) if g not in order else order[g],
                "township": town,
                "village": village,
                "code": code,
                "head": head,
                "members": members,
                "status": status,
                "per_capita": None if net is None else float(net),
                "unmet": _codes(unmet, UNMET_ITEMS, unmet_labels),
                "warnings": _codes(warned, WARNINGS, warning_labels),
                "visited": ctx.local(at),
            }
        )
    rows.sort(key=lambda r: r.pop("_order"))  # stable: township, village, 户编号 within a group
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["group"]] += 1
    tally = ctx.say("list_sep").join(f"{label} {n}" for label, n in counts.items())
    return Report(
        name="lists",
        title=ctx.say("lists_title"),
        columns=[
            ctx.column("group"),
            ctx.column("township"),
            ctx.column("village"),
            ctx.column("code", "household_code"),
            ctx.column("head"),
            ctx.column("members", "lists_members", kind="int"),
            ctx.column("status", "lists_status"),
            ctx.column("per_capita", kind="yuan"),
            ctx.column("unmet", "lists_unmet"),
            ctx.column("warnings", "lists_warnings"),
            ctx.column("visited", "latest_visit"),
        ],
        rows=rows,
        locale=ctx.locale,
        notes=[ctx.say("lists_note", tally=tally)] if rows else [],
        empty=ctx.say("lists_empty"),
    )
