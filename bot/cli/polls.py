"""`zoufang poll send`: satisfaction SMS polls."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.base import (
    Failure,
    main,
    phrase,
    run,
    settings,
    with_db,
)


@main.group()
def poll() -> None:
    """Satisfaction SMS polls 满意度短信回访 (one per household per quarter)."""


@poll.command(name="send")
@click.option("--township", help="乡镇 (roster name): every village of the township")
@click.option("--village", help="村 (roster name)")
@click.option("--dry-run", is_flag=True, help="count only: queue nothing")
def poll_send(township: str | None, village: str | None, dry_run: bool) -> None:
    """Poll every household of the area that has a phone and has not opted out, visited or not."""
    if (township is None) == (village is None):
        raise Failure(phrase("poll_area"))
    from bot.flows.poll import UnknownArea, send_polls
    from storage.models import utcnow

    conf = settings()

    async def go() -> Any:
        async with with_db(conf.db_url) as db, db.session() as s:
            return await send_polls(s, utcnow(), conf, township=township, village=village, dry_run=dry_run)

    try:
        result = run(go())
    except UnknownArea as exc:
        raise Failure(phrase("no_area", kind=exc.kind, given=exc.name, known=list(exc.known))) from exc
    reasons = [(phrase(f"skip_{k}"), n) for k, n in sorted(result.skipped.items()) if n]
    click.echo(
        phrase(
            "polls_dry_run" if dry_run else "polls_queued",
            area=township or village,
            queued=result.queued,
            skipped=sum(result.skipped.values()),
            reasons=reasons,
        )
    )
