"""`zoufang export visits|polls|problems`: the raw records by 户编号."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    Failure,
    _file_option,
    _township_option,
    cannot_write,
    load_script_or_fail,
    main,
    phrase,
    run,
    settings,
    with_db,
)

# --- raw exports 原始数据导出 (issue 13), by 户编号, for re-entry into the poverty information systems --------


def _export(make: Any, fmt: str, output: Path | None, period: str | None, township: str | None) -> None:
    """Stream an export from one read transaction into CSV (standard output without --output) or XLSX."""
    import os
    from datetime import UTC, datetime

    from bot import exports
    from bot.reports.base import Context, ReportError, area_from, period_from
    from storage.exports import Scope, snapshot

    conf = settings()
    ctx = Context(conf, datetime.now(UTC))
    try:
        chosen = None if period is None else period_from(period, "quarter", ctx)
    except ReportError as exc:
        raise Failure(str(exc)) from exc
    tz = conf.tz

    def work(conn: Any, scope: Any) -> tuple[Path | None, int]:
        export = make(snapshot(conn), scope, chosen.label if chosen else "all")
        if fmt == "csv" and output is None:
            stdout = click.get_binary_stream("stdout")
            try:
                count = exports.write_csv(export, stdout)
                stdout.flush()
            except BrokenPipeError:  # `… | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
                return None, 0
            return None, count
        path = output or Path(f"{export.name}.{fmt}")
        partial = path.with_name(f".{path.name}.part")  # a file half written never takes the name
        try:
            if fmt == "csv":
                with partial.open("wb", buffering=1 << 20) as handle:
                    count = exports.write_csv(export, handle)
            else:
                count = exports.write_xlsx(export, partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path, count

    async def go() -> tuple[Path | None, int]:
        async with with_db(conf.db_url) as db:
            area = await area_from(db, township, None, ctx)
            start = None if chosen is None else chosen.starts_at(tz)
            scope = Scope(start, None if chosen is None else chosen.ends_at(tz), area.village_ids)
            return await db.run(lambda conn: work(conn, scope), write=False)

    try:
        written, count = run(go())
    except ReportError as exc:
        raise Failure(str(exc)) from exc
    except OSError as exc:
        raise Failure(cannot_write(exc, output)) from exc
    if written is not None:
        click.echo(phrase("wrote_rows", path=written.resolve(), rows=count))


_export_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx"]),
    default="csv",
    show_default=True,
    help="csv (UTF-8 with BOM; standard output without --output) or xlsx",
)
_export_period = click.option(
    "--period", help="2026-11, 2026Q4, 2026H2 or 2026 (local time); default: all time"
)


@main.group()
def export() -> None:
    """Raw exports 原始数据导出 by 户编号: visits with every answer, SMS polls, problems with their history."""


@export.command(name="visits")
@_export_period
@_township_option
@_export_format
@click.option(
    "--layout",
    type=click.Choice(["wide", "long"]),
    default="wide",
    show_default=True,
    help="wide: a row per visit, a column per question; long: a row per answer",
)
@click.option(
    "--choices",
    type=click.Choice(["label", "code", "both"]),
    default="label",
    show_default=True,
    help="wide layout: choice and yes/no answers as labels (是, 低保), codes (1, the stored value) or both",
)
@_file_option
def export_visits(
    period: str | None, township: str | None, fmt: str, layout: str, choices: str, output: Path | None
) -> None:
    """Every submitted visit: 户编号, place, cadre, times, location and its answers in script order."""
    conf = settings()
    script = load_script_or_fail(conf.script)

    def make(conn: Any, scope: Any, label: str) -> Any:
        from bot.exports import visits_export

        return visits_export(conn, script, scope, layout, choices, conf.locale, conf.tz, label)

    _export(make, fmt, output, period, township)


@export.command(name="polls")
@_export_period
@_township_option
@_export_format
@_file_option
def export_polls(period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """Every satisfaction poll (by creation time and the village it went to): rating, reason, steps, outcome."""
    conf = settings()

    def make(conn: Any, scope: Any, label: str) -> Any:
        from bot.exports import polls_export

        return polls_export(conn, scope, conf.locale, conf.tz, label)

    _export(make, fmt, output, period, township)


@export.command(name="problems")
@_township_option
@_export_format
@_file_option
def export_problems(township: str | None, fmt: str, output: Path | None) -> None:
    """Every problem with its whole history (a 处理记录 column; XLSX also a sheet with a row per move)."""
    conf = settings()

    def make(conn: Any, scope: Any, label: str) -> Any:
        from bot.exports import problems_export

        return problems_export(conn, scope, conf.locale, conf.tz)

    _export(make, fmt, output, None, township)
