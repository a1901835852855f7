"""`zoufang worklog` and `worklog sample`: the 扶贫日志 and its yearly spot check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    TABLE_FORMATS,
    Failure,
    _format_option,
    _output_option,
    main,
    run,
    settings,
    table_width,
    with_db,
)

# --- 扶贫日志 work log (indicators.md, "Work log 扶贫日志") ----------------------------------------------------


def _worklog_failure(code: str, **params: Any) -> Failure:
    from bot.worklog import error

    return Failure(str(error(code, settings().locale, **params)))


def _written(path: Path, locale: str) -> None:
    from messages import render

    click.echo(render("worklog/written.txt", locale, path=str(path.resolve())))


@main.group(invoke_without_command=True)
@click.option("--cadre", "cadre_code", metavar="ID", help="干部编号 (cadre_id from the roster)")
@click.option("--month", metavar="YYYY-MM", help="the month, e.g. 2026-03 (local dates, ZOUFANG_TIMEZONE)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("md", "xlsx")),
    default="md",
    show_default=True,
    help="md (Markdown) or xlsx (one sheet, Chinese headers, the sign-off line under the entries)",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to write (md goes to standard output without it; xlsx defaults to worklog-<cadre>-<month>.xlsx)",
)
@click.pass_context
def worklog(
    ctx: click.Context, cadre_code: str | None, month: str | None, fmt: str, output: Path | None
) -> None:
    """扶贫日志: a cadre's month of work-log entries by day, the counts, and the sign-off line for the role's
    signer (第一书记: 乡镇主要领导; 驻村工作队: the township's 市级包保领导; 市级包保领导: 市级四个班子主要领导;
    other roles: a generic 审核人 line).

    `zoufang worklog sample` draws the organisation department's yearly spot check."""
    if ctx.invoked_subcommand is not None:
        given = [("--cadre", cadre_code), ("--month", month), ("--output", output)]
        given += [("--format", None if fmt == "md" else fmt)]
        for option, value in given:
            if value is not None:
                raise _worklog_failure("with_sample", option=option)
        return
    if cadre_code is None and month is None:
        raise _worklog_failure("no_target")
    if cadre_code is None:
        raise _worklog_failure("missing", option="--cadre ID", example="--cadre GB001")
    if month is None:
        raise _worklog_failure("missing", option="--month YYYY-MM", example="--month 2026-03")
    from bot.worklog import (
        WorklogError,
        default_log_path,
        log_markdown,
        month_log,
        parse_month,
        write_log_xlsx,
    )

    conf = settings()

    async def go(chosen: Any) -> Any:
        async with with_db(conf.db_url) as db:
            return await month_log(db, conf, cadre_code, chosen)

    try:
        log = run(go(parse_month(month, conf.locale)))
    except WorklogError as exc:
        raise Failure(str(exc)) from exc
    if fmt == "md" and output is None:
        click.echo(log_markdown(log, conf.locale), nl=False)
        return
    path = output or default_log_path(log)
    try:
        if fmt == "md":
            path.write_text(log_markdown(log, conf.locale), encoding="utf-8")
        else:
            write_log_xlsx(log, path, conf.locale)
    except OSError as exc:
        raise Failure(str(exc)) from exc
    _written(path, conf.locale)


@worklog.command(name="sample")
@click.option("--year", metavar="YYYY", help="the year whose logs are checked, e.g. 2026")
@click.option(
    "--rate",
    default="0.3",
    show_default=True,
    help="share of the year's logs to draw, in (0, 1] (0.3 or 30%); the seed asks for at least 0.3",
)
@click.option(
    "--seed", help="random seed, a whole number; without it one is taken from the clock and printed"
)
@_format_option(TABLE_FORMATS)
@_output_option
def worklog_sample(year: str | None, rate: str, seed: str | None, fmt: str, output: Path | None) -> None:
    """Draw the organisation department's spot check of a year's 扶贫日志, reproducibly.

    The population is every (cadre, month) log of the year with at least one entry (logs are signed monthly).
    It is sorted by 干部编号 then month, and ceil(rate × N) logs are drawn with the seed: the same seed gives
    the same sample on any machine, whatever order the database returns. The summary line gives the
    population, the sample size, the rate and the seed."""
    if year is None:
        raise _worklog_failure("missing", option="--year YYYY", example="--year 2026")
    from bot.reports.output import emit
    from bot.worklog import (
        WorklogError,
        draw_sample,
        parse_year,
        rate_from,
        sample_report,
        sample_summary,
        seed_from,
    )

    conf = settings()
    try:
        chosen_year = parse_year(year, conf.locale)
        chosen_rate = rate_from(rate, conf.locale)
        chosen_seed, from_clock = seed_from(seed, conf.locale)
    except WorklogError as exc:
        raise Failure(str(exc)) from exc

    async def go() -> Any:
        async with with_db(conf.db_url) as db:
            return await draw_sample(db, chosen_year, chosen_rate, chosen_seed, from_clock)

    sample = run(go())
    report = sample_report(sample, conf.locale)
    summary = sample_summary(sample, conf.locale)  # one line, never wrapped: it holds the seed
    report.notes = [*report.notes, summary]  # under the table on screen, and in the CSV and XLSX files
    try:
        written = emit(report, fmt, output, click.get_text_stream("stdout"), width=table_width())
    except OSError as exc:
        raise Failure(str(exc)) from exc
    if written is None:
        return
    click.echo(summary)
    _written(written, conf.locale)
