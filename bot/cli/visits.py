"""`zoufang console`: a visit walked in the terminal."""

from __future__ import annotations

import sys

import click

from bot.cli.base import (
    Failure,
    load_script_or_fail,
    main,
    phrase,
    run,
    settings,
    with_db,
)


@main.command()
@click.option("--cadre", "cadre_code", required=True, help="干部编号 (cadre_id from the roster)")
@click.option("--household", "household_code", help="户编号: skip the picker")
def console(cadre_code: str, household_code: str | None) -> None:
    """Walk a home visit in the terminal (standard input may be piped)."""
    from bot.channels.console import Console, ConsoleError, stdin_reader

    conf = settings()
    script = load_script_or_fail(conf.script, warn=True)

    async def go() -> None:
        async with with_db(conf.db_url) as db:
            read = stdin_reader(sys.stdin)  # the sys.stdin of now, not of the import
            await Console(db, script, conf, read, sys.stdout).run(cadre_code, household_code)

    try:
        run(go())
    except ConsoleError as exc:
        raise Failure(str(exc)) from exc
    except KeyboardInterrupt:  # Ctrl-C: every answer given was saved when it was given
        if sys.stdin.isatty():
            click.echo(err=True)  # past the terminal's ^C
        click.echo(phrase("console_interrupted", cadre=cadre_code.strip()), err=True)
        sys.exit(130)
