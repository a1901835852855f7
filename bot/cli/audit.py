"""`zoufang audit`: who changed what and when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    TABLE_FORMATS,
    Failure,
    _format_option,
    _output_option,
    _report,
    main,
    phrase,
)


@main.command()
@click.option("--since", required=True, metavar="YYYY-MM-DD", help="the first day (local time)")
@click.option("--until", metavar="YYYY-MM-DD", help="the last day, included; default: today")
@_format_option(TABLE_FORMATS)
@_output_option
def audit(since: str, until: str | None, fmt: str, output: Path | None) -> None:
    """操作记录: who changed what and when — submitted visits, problem moves, roster imports, cadres' role or
    township changes, Telegram bindings, dashboard links and sign-outs (web invite, /web, web revoke), SMS opt-outs and opt-ins — with the values before and after."""
    from datetime import date

    def day(text: str, option: str) -> date:
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            raise Failure(phrase("not_a_date", option=option, given=repr(text))) from None

    first = day(since, "--since")
    last = day(until, "--until") if until else None
    if last is not None and last < first:
        raise Failure(phrase("until_before_since", until=last, since=first))

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.audit_trail(db, ctx, first, last)

    _report(build, fmt, output, f"{first}")
