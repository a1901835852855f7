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


def _import(kind: str, path: Path, county: str | None = None, new_places: bool = False) -> None:
    from bot.roster_files import RosterError, import_file

    async def go() -> Any:
        async with with_db() as db:
            return await import_file(db, kind, path, county=county, new_places=new_places)  # type: ignore[arg-type]

    try:
        summary = run(go())
    except RosterError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        raise SystemExit(1) from exc
    for line in summary.lines():
        click.echo(line)


_new_places = click.option(
    "--new-places",
    is_flag=True,
    help="make the 县/乡镇/行政村 not yet known (without it they are refused: a typo would move households)",
)


@import_.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--county", help="县: the county of the file's townships (needed while the database has no county)"
)
@_new_places
def cadres(file: Path, county: str | None, new_places: bool) -> None:
    """Import the cadre roster (干部编号, 姓名, 手机, 角色, 乡镇, 行政村)."""
    _import("cadres", file, county, new_places)


@import_.command()
@click.argument("file", type=click.Path(path_type=Path))
@_new_places
def households(file: Path, new_places: bool) -> None:
    """Import the household roster (建档立卡花名册)."""
    _import("households", file, new_places=new_places)
