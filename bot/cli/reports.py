"""`zoufang report …`: the indicators (indicators.md) as tables, CSV, XLSX and charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    CHART_FORMATS,
    TABLE_FORMATS,
    Failure,
    _format_option,
    _output_option,
    _period_option,
    _report,
    _township_option,
    _village_option,
    load_script_or_fail,
    main,
    phrase,
    run,
    settings,
    with_db,
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


@report.command(name="handbook")
@click.option(
    "--by", type=click.Choice(["village", "township", "cadre"]), default="village", show_default=True
)
@_period_option
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_handbook(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """一册两表更新率: visits that found the handbook and both forms up to date, with n and intervals (100 %)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports
        from bot.reports.handbook import handbook

        script = load_script_or_fail(ctx.settings.script)
        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await handbook(db, ctx, by, chosen, area, script)

    _report(build, fmt, output, period or "")


@report.command(name="talks")
@click.option(
    "--by", type=click.Choice(["village", "township", "cadre"]), default="village", show_default=True
)
@_period_option
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_talks(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """四讲落实率: visits where all four talks were given, with n and intervals (100 %)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports
        from bot.reports.handbook import talks

        script = load_script_or_fail(ctx.settings.script)
        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await talks(db, ctx, by, chosen, area, script)

    _report(build, fmt, output, period or "")


@report.command(name="changes")
@click.option("--month", help="YYYY-MM; default: this month (any period: 2026Q4, 2026H2, 2026)")
@click.option(
    "--list", "listed", is_flag=True, help="each change (户编号, 户主, 原状态 → 新状态) instead of counts"
)
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_changes(
    month: str | None, listed: bool, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """每月变化: households added to the roster and 脱贫状态 changes (脱贫, 返贫, 纳入/解除监测) by village."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports
        from bot.reports.changes import changes

        chosen = reports.period_from(month, "month", ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await changes(db, ctx, chosen, area, listed=listed)

    _report(build, fmt, output, month or "")


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
@click.option(
    "--send",
    is_flag=True,
    help="deliver each county's list to its 督查指挥中心 (Telegram and SMS), once a day",
)
def report_overdue(county: str | None, fmt: str, output: Path | None, send: bool) -> None:
    """Problems overdue past the next meeting: the supervision centre's list (督查指挥中心)."""
    if send:
        from bot.reports.base import ReportError

        try:
            lines = run(_send_overdue(county))
        except ReportError as exc:  # an unknown county
            raise Failure(str(exc)) from exc
        for line in lines:
            click.echo(line)
        return

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.overdue(db, ctx, county)

    _report(build, fmt, output)


async def _send_overdue(county: str | None) -> list[str]:
    """Each county's list (or the one named) to its centre, recorded once a local day."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from bot import reports
    from bot.flows.supervision import NoCentre, deliver, overdue_sms, overdue_text
    from storage.models import County

    conf = settings()
    now = datetime.now(UTC)
    day = now.astimezone(conf.tz).date().isoformat()
    ctx = reports.Context(conf, now)
    lines = []
    async with with_db(conf.db_url) as db:
        async with db.reading() as s:
            query = select(County).order_by(County.name)
            counties = list(
                (await s.execute(query.where(County.name == county) if county else query)).scalars()
            )
        if county and not counties:
            await reports.overdue(db, ctx, county)  # says the county is unknown, naming those there are
        for row in counties:
            report = await reports.overdue(db, ctx, row.name)

            def sms(telegram: bool, report: Any = report, name: str = row.name) -> str:
                return overdue_sms(conf.locale, name, report, telegram)

            try:
                done = await deliver(
                    db, row, f"overdue-list:{row.id}:{day}", overdue_text(report), sms, now, "overdue"
                )
            except NoCentre as exc:
                raise Failure(phrase("no_centre", county=exc.county)) from exc
            what = phrase("what_overdue", county=row.name, day=day)
            if done.sent_before is not None:
                at = done.sent_before.astimezone(conf.tz).strftime("%Y-%m-%d %H:%M")
                lines.append(phrase("centre_sent_before", what=what, at=at))
            else:
                lines.append(phrase("centre_sent", what=what, people=done.people, messages=done.messages))
    return lines


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
