"""`zoufang import cadres|households`: the rosters counties keep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    main,
    run,
    with_db,
)


@main.group(name="import")
def import_() -> None:
    """Import a roster file (.csv, .xlsx or .xls) in the county format."""


def _import(kind: str, path: Path, county: str | None = None) -> None:
    from bot.roster_files import RosterError, import_file

    async def go() -> Any:
        async with with_db() as db:
            return await import_file(db, kind, path, county=county)  # type: ignore[arg-type]

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
