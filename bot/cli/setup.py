"""`zoufang init`, `config` and `demo`: the database, the settings in force, the demo county."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bot.cli.base import (
    Failure,
    main,
    phrase,
    run,
    settings,
    with_db,
)


@main.command()
def init() -> None:
    """Create or upgrade the database (applies the migrations to ZOUFANG_DB_URL)."""
    from storage.migrate import current_revision, upgrade

    async def go() -> str | None:
        async with with_db() as db:
            await upgrade(db)
            return await current_revision(db)

    revision = run(go())
    click.echo(phrase("db_ready", revision=revision, url=settings().db_url))


@main.command()
def config() -> None:
    """Print the settings in force (secrets masked)."""
    from bot.settings import masked

    for name, value in masked(settings()):
        click.echo(f"{name}={value}")


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
        raise Failure(phrase("visits_at_least_one"))
    try:
        run(run_demo(settings(), db_path, visits=visits, seed=seed, out=sys.stdout))
    except DemoError as exc:
        raise Failure(str(exc)) from exc
