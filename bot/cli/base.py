"""What every command shares: the click group, one-line failures, the settings, the database, the report options,
and `phrase`: the command's own lines, from messages/templates/<locale>/cli/parts.txt.

Imports stay inside commands so `--help` and reports never load the bot's libraries (jinja2 included)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import click

_debug = False  # `zoufang --debug`: a failure's line comes after the traceback of what caused it


class Failure(click.ClickException):
    """A failure: one line on standard error, exit 1 (with --debug, the cause's traceback first)."""

    def show(self, file: Any = None) -> None:
        if _debug and self.__cause__ is not None:
            import traceback

            click.echo("".join(traceback.format_exception(self.__cause__)).rstrip(), err=True)
        click.echo(f"zoufang: {self.message}", err=True)


class Group(click.Group):
    """The CLI's edge: a known failure (messages.Refusal, raised wherever it is found) becomes a Failure, one
    sentence in the settings' language; anything else is a bug and keeps its traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from bot.cli.help import cli_locale, localize

        localize(self, cli_locale())
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        from messages import Refusal

        try:
            return super().invoke(ctx)
        except Refusal as exc:
            raise Failure(refusal_text(exc)) from exc


def refusal_text(refusal: Any) -> str:
    return str(refusal.text(_locale()))


def _locale() -> str | None:
    """The settings' language; when the settings cannot be read, ZOUFANG_LOCALE as given (zh-CN if unknown)."""
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings().locale
    except SettingsError:
        from bot.cli.help import cli_locale

        return cli_locale()


def phrase(name: str, /, **params: Any) -> str:
    """A line of the command's own (macro `name` of cli/parts.txt) in the settings' language; zh-CN when the
    settings cannot be read (that failure is then reported in zh-CN too)."""
    from messages import error_text

    return error_text(name, _locale(), source="cli/parts.txt", **params)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    from sqlalchemy.exc import DBAPIError

    try:
        return asyncio.run(coro)
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0]
        if "no such table" in reason or "does not exist" in reason:
            raise Failure(phrase("db_not_ready", reason=reason, where=_sqlite_file())) from exc
        raise Failure(phrase("db_error", reason=reason)) from exc


def _sqlite_file() -> Any:
    """The SQLite file ZOUFANG_DB_URL names, absolute, to say where an uninitialised database is; None else."""
    from bot.settings import SettingsError, load_settings
    from storage.db import sqlite_file

    try:
        return sqlite_file(load_settings().db_url)
    except SettingsError:
        return None


def settings() -> Any:
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        raise Failure(refusal_text(exc)) from exc


def refuse_memory_db(url: str) -> None:
    """An in-memory SQLite database vanishes when the command ends: of no use to any command."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # the database's own refusal says what a URL looks like
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise Failure(phrase("db_in_memory", given=url))


def load_script_or_fail(path: str | None, *, warn: bool = False) -> Any:
    """The script in force, or a one-line Failure; `warn`: say on standard error which derived facts it will
    not collect (a visit started under it stores them as 未采集)."""
    from bot.script_files import load_script_file
    from survey.script import ScriptError, role_warnings

    try:
        loaded = load_script_file(path or None)
    except ScriptError as exc:
        raise Failure(str(exc).replace("\n", " ")) from exc
    if warn:
        for note in role_warnings(loaded):
            click.echo(f"zoufang: {phrase('script_note', note=note)}", err=True)
    return loaded


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="on a failure, the traceback of its cause too")
def main(debug: bool) -> None:
    """zoufang 走访：五问四讲三看一化解 入户走访、满意度短信与问题化解。"""
    global _debug
    _debug = debug


@contextlib.asynccontextmanager
async def with_db(url: str | None = None) -> AsyncIterator[Any]:
    """The database of `url` (default: ZOUFANG_DB_URL), closed when the block ends, however it ends."""
    from storage.db import Database

    url = url or settings().db_url
    refuse_memory_db(url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.close()


# --- reports (indicators.md) ---------------------------------------------------------------------------------

TABLE_FORMATS = ("table", "csv", "xlsx")
CHART_FORMATS = ("table", "csv", "xlsx", "png")


def _format_option(formats: tuple[str, ...]) -> Any:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(formats),
        default="table",
        show_default=True,
        help="table on screen, csv (UTF-8 with BOM), xlsx" + (", png chart" if "png" in formats else ""),
    )


_file_option = click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to write (csv and table go to standard output without it; xlsx and png get a default name)",
)
_wide = False  # `--wide`: screen tables with every column, unwrapped


def _set_wide(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    global _wide
    _wide = value


def _output_option(command: Any) -> Any:
    """--output, and --wide for the screen table (fit 100 columns without it)."""
    wide = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_set_wide,
        help="on screen: every column, cells unwrapped (default: fit 100 columns)",
    )
    return _file_option(wide(command))


def table_width() -> int | None:
    from bot.reports.output import WIDE

    return WIDE if _wide else None


_period_option = click.option(
    "--period",
    help="2026-11 (month), 2026Q4 (quarter), 2026H2 (half-year), 2026 (year); default: the current one",
)
_township_option = click.option("--township", help="乡镇 (roster name)")
_village_option = click.option("--village", help="行政村 (roster name)")


def _report(build: Any, fmt: str, output: Path | None, period_label: str = "") -> None:
    """Build a report with a fresh context, then show or write it; bad input is one line on standard error."""
    from datetime import UTC, datetime

    from bot.reports.base import Context, ReportError
    from bot.reports.output import emit

    conf = settings()
    ctx = Context(conf, datetime.now(UTC))

    async def go() -> Any:
        async with with_db(conf.db_url) as db:
            return await build(db, ctx)

    try:
        report = run(go())
    except ReportError as exc:
        raise Failure(str(exc)) from exc
    stdout = click.get_text_stream("stdout")
    try:
        written = emit(report, fmt, output, stdout, period_label, table_width())
    except OSError as exc:
        raise Failure(cannot_write(exc, output)) from exc
    if written is not None:
        if not report.rows:
            click.echo(report.empty)
        click.echo(phrase("wrote", path=written.resolve()))


def cannot_write(exc: OSError, path: Path | None) -> str:
    return phrase("cannot_write", path=exc.filename or path, why=exc.strerror or exc)
