"""The `zoufang` command. Imports stay inside commands so `--help` and reports never load the bot's libraries."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click


class Failure(click.ClickException):
    """A failure: one line on standard error, exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"zoufang: {self.message}", err=True)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    from sqlalchemy.exc import DBAPIError

    try:
        return asyncio.run(coro)
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0]
        if "no such table" in reason or "does not exist" in reason:
            raise Failure(f"数据库尚未初始化：请先运行 zoufang init（{reason}）") from exc
        raise Failure(f"数据库错误：{reason}") from exc


def settings() -> Any:
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        raise Failure(str(exc)) from exc


def load_script_or_fail(path: str | None) -> Any:
    from survey.script import ScriptError, load_script

    try:
        return load_script(path or None)
    except ScriptError as exc:
        raise Failure(str(exc).replace("\n", " ")) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """zoufang 走访：五问四讲三看一化解 入户走访、满意度短信与问题化解。"""


@main.command()
def init() -> None:
    """Create or upgrade the database (applies the migrations to ZOUFANG_DB_URL)."""
    from storage.db import Database
    from storage.migrate import current_revision, upgrade

    async def go() -> str | None:
        db = Database(settings().db_url)
        try:
            await upgrade(db)
            return await current_revision(db)
        finally:
            await db.close()

    revision = run(go())
    click.echo(f"数据库已就绪（版本 {revision}）：{settings().db_url}")


@main.command()
def config() -> None:
    """Print the settings in force (secrets masked)."""
    from bot.settings import masked

    for name, value in masked(settings()):
        click.echo(f"{name}={value}")


@main.group(name="import")
def import_() -> None:
    """Import a roster file (.csv or .xlsx) in the county format."""


def _import(kind: str, path: Path, county: str | None = None) -> None:
    from bot.roster_files import RosterError, import_file
    from storage.db import Database

    async def go() -> Any:
        db = Database(settings().db_url)
        try:
            return await import_file(db, kind, path, county=county)  # type: ignore[arg-type]
        finally:
            await db.close()

    try:
        summary = run(go())
    except RosterError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        raise SystemExit(1) from exc
    for line in summary.lines():
        click.echo(line)


@import_.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--county", help="县: the county of the file's townships (needed while the database has no county)"
)
def cadres(file: Path, county: str | None) -> None:
    """Import the cadre roster (干部编号, 姓名, 手机, 角色, 乡镇, 行政村)."""
    _import("cadres", file, county)


@import_.command()
@click.argument("file", type=click.Path(path_type=Path))
def households(file: Path) -> None:
    """Import the household roster (建档立卡花名册)."""
    _import("households", file)


@main.command()
@click.option("--cadre", "cadre_code", required=True, help="干部编号 (cadre_id from the roster)")
@click.option("--household", "household_code", help="户编号: skip the picker")
def console(cadre_code: str, household_code: str | None) -> None:
    """Walk a home visit in the terminal (standard input may be piped)."""
    from bot.console import Console, ConsoleError, stdin_reader
    from storage.db import Database

    conf = settings()
    script = load_script_or_fail(conf.script)

    async def go() -> None:
        db = Database(conf.db_url)
        try:
            await Console(db, script, conf, stdin_reader(), sys.stdout).run(cadre_code, household_code)
        finally:
            await db.close()

    try:
        run(go())
    except ConsoleError as exc:
        raise Failure(str(exc)) from exc


@main.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    help="SQLite file to create (default: a new temp file)",
)
@click.option("--visits", default=36, show_default=True, help="Visits to walk through the engine (≥ 30)")
@click.option("--seed", default=2026, show_default=True, help="Random seed for the demo data")
def demo(db_path: Path | None, visits: int, seed: int) -> None:
    """Build a demo county in a fresh SQLite file, walk visits through the engine, print the results."""
    from bot.demo import DemoError, run_demo

    if visits < 1:
        raise Failure("--visits must be at least 1")
    try:
        run(run_demo(settings(), db_path, visits=visits, seed=seed, out=sys.stdout))
    except DemoError as exc:
        raise Failure(str(exc)) from exc


@main.group()
def script() -> None:
    """Visit scripts (the default 五问四讲三看一化解, or a county's own file)."""


@script.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
def check(file: Path | None) -> None:
    """Validate a script file (default: ZOUFANG_SCRIPT, or the built-in script)."""
    loaded = load_script_or_fail(str(file) if file else settings().script)
    count = sum(1 + len(q.questions) for q in loaded.questions())
    click.echo(f"脚本有效：{loaded.id} 版本 {loaded.version}，{len(loaded.sections)} 个部分，{count} 道题")


if __name__ == "__main__":
    main()
