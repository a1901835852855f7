"""`zoufang report …`: the indicators (indicators.md) as tables, CSV, XLSX and charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    CHART_FORMATS,
    TABLE_FORMATS,
    _format_option,
    _output_option,
    _period_option,
    _report,
    _township_option,
    _village_option,
    load_script_or_fail,
    main,
)


@main.group()
def report() -> None:
    """Reports 报表: satisfaction, coverage, households, integrity, problems (table, csv, xlsx, png)."""


@report.command(name="satisfaction")
@click.option(
    "--by", type=click.Choice(["village", "township", "cadre"]), default="village", show_default=True
)
@_period_option
@_township_option
@_village_option
@_format_option(CHART_FORMATS)
@_output_option
def report_satisfaction(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """群众满意度: villagers' SMS answers beside the visit-recorded ones, with n, intervals and the gap."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await reports.satisfaction(db, ctx, by, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="awareness")
@click.option(
    "--by", type=click.Choice(["village", "township", "cadre"]), default="village", show_default=True
)
@_period_option
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_awareness(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """政策知晓率: households that know the support policies they receive, from the visits' answers, with n and
    intervals against ZOUFANG_AWARENESS_TARGET (100 %)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        script = load_script_or_fail(ctx.settings.script)
        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await reports.awareness(db, ctx, by, chosen, area, script)

    _report(build, fmt, output, period or "")


@report.command(name="coverage")
@click.option("--role", help="roster role, e.g. 第一书记 (default: every role with a visit target)")
@_period_option
@_township_option
@_format_option(CHART_FORMATS)
@_output_option
def report_coverage(
    role: str | None, period: str | None, township: str | None, fmt: str, output: Path | None
) -> None:
    """入户率: per cadre, households in scope, visited in the role's period, and who is left."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        roles = reports.role_from(role, ctx)
        chosen = None if period is None else reports.period_from(period, "quarter", ctx)
        area = await reports.area_from(db, township, None, ctx)
        return await reports.coverage(db, ctx, roles, chosen, area, full_lists=fmt in ("csv", "xlsx"))

    _report(build, fmt, output, period or "")


@report.command(name="households")
@click.option("--group", help="四类人群: 政策兜底, 重点帮扶, 脱贫达标, 巩固提升")
@click.option("--warning", is_flag=True, help="list the 返贫预警 households with their reasons")
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_households(
    group: str | None, warning: bool, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """Household groups, unmet 两不愁三保障/饮水 items, and the 返贫预警 list (each household's latest visit)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.group_from(group, ctx)
        area = await reports.area_from(db, township, village, ctx)
        if warning:
            return await reports.warnings(db, ctx, chosen, area)
        return await reports.households(db, ctx, chosen, area)

    _report(build, fmt, output)


@report.command(name="integrity")
@_period_option
@_township_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_integrity(period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """数据真实性提示: short visits, far locations, bursts, identical answers, satisfaction gaps, closures
    without a decision. Flags to check, never verdicts (thresholds: ZOUFANG_INTEGRITY_*)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, "quarter", ctx)
        area = await reports.area_from(db, township, None, ctx)
        return await reports.integrity(db, ctx, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="problems")
@click.option("--by", type=click.Choice(["month", "township"]), default="month", show_default=True)
@click.option("--period", help="a year (2026), half-year, quarter or month; default: the current year")
@_township_option
@_format_option(CHART_FORMATS)
@_output_option
def report_problems(by: str, period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """Problems opened and closed (销号) per month, or per township with those still open."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, "year", ctx)
        area = await reports.area_from(db, township, None, ctx)
        if by == "township":
            return await reports.problems_by_township(db, ctx, chosen, area)
        return await reports.problems(db, ctx, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="overdue")
@click.option("--county", help="县 (roster name); default: every county")
@_format_option(TABLE_FORMATS)
@_output_option
def report_overdue(county: str | None, fmt: str, output: Path | None) -> None:
    """Problems overdue past the next meeting: the supervision centre's list (督查指挥中心)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.overdue(db, ctx, county)

    _report(build, fmt, output)


# --- the plans' duties (issue 17) -------------------------------------------------------------------------


@report.command(name="targets")
@click.option("--by", type=click.Choice(["village", "township"]), default="village", show_default=True)
@click.option("--period", help="the satisfaction's period (default: the current ZOUFANG_POLL_PERIOD)")
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_targets(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """The plans' 98 % targets: safe housing, 医保 and 养老保险 (each household's latest visit) beside SMS
    satisfaction, with n, intervals and whether each meets its target (ZOUFANG_HOUSING_TARGET, …)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        script = load_script_or_fail(ctx.settings.script)
        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await reports.targets(db, ctx, by, chosen, area, script)

    _report(build, fmt, output, period or "")


@report.command(name="exited-check")
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_exited_check(township: str | None, village: str | None, fmt: str, output: Path | None) -> None:
    """核查清单: households marked 已脱贫 whose latest visit still fails 两不愁三保障/饮水安全, with the items."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        area = await reports.area_from(db, township, village, ctx)
        return await reports.exited_check(db, ctx, area)

    _report(build, fmt, output)


@report.command(name="ranking")
@click.option("--period", help="a month (2026-11), quarter, half-year or year; default: the current month")
@_township_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_ranking(period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """乡镇排名 for the county's monthly review: coverage, SMS satisfaction, problem resolution, overdue."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, "month", ctx)
        area = await reports.area_from(db, township, None, ctx)
        return await reports.ranking(db, ctx, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="days-in-village")
@click.option("--period", help="a month (2026-11), quarter, half-year or year; default: the current month")
@_township_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_days_in_village(period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """驻村天数: days with a visit per 第一书记, 驻村工作队, 市级包保领导 against the norm; behind first."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, "month", ctx)
        area = await reports.area_from(db, township, None, ctx)
        return await reports.days_in_village(db, ctx, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="lists")
@click.option("--group", help="四类人群: 政策兜底, 重点帮扶, 脱贫达标, 巩固提升 (default: every household)")
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_lists(
    group: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """四个清单: every household with its group (latest visit), one row each, a group column to filter on."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.group_from(group, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await reports.lists(db, ctx, chosen, area)

    _report(build, fmt, output)
