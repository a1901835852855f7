"""`zoufang poll send`: satisfaction SMS polls."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.base import (
    Failure,
    main,
    run,
    settings,
    with_db,
)


@main.group()
def poll() -> None:
    """Satisfaction SMS polls 满意度短信回访 (one per household per quarter)."""


_SKIP_REASONS = {"no_phone": "无电话", "opted_out": "已退订", "already_polled": "本季度已发过"}


@poll.command(name="send")
@click.option("--township", help="乡镇 (roster name): every village of the township")
@click.option("--village", help="村 (roster name)")
@click.option("--dry-run", is_flag=True, help="count only: queue nothing")
def poll_send(township: str | None, village: str | None, dry_run: bool) -> None:
    """Poll every household of the area that has a phone and has not opted out, visited or not."""
    if (township is None) == (village is None):
        raise Failure("请给出 --township 或 --village 之一")
    from bot.flows.poll import UnknownArea, send_polls
    from storage.models import utcnow

    conf = settings()

    async def go() -> Any:
        async with with_db(conf.db_url) as db, db.session() as s:
            return await send_polls(s, utcnow(), conf, township=township, village=village, dry_run=dry_run)

    try:
        result = run(go())
    except UnknownArea as exc:
        kind = "乡镇" if exc.kind == "township" else "村"
        known = "、".join(exc.known) or "（无：先运行 zoufang import）"
        raise Failure(f"没有名为 {exc.name} 的{kind}；已有的{kind}：{known}") from exc
    skipped = sum(result.skipped.values())
    why = "，".join(f"{_SKIP_REASONS[k]} {n}" for k, n in sorted(result.skipped.items()) if n)
    area = township or village
    if dry_run:
        click.echo(
            f"{area}：将发送 {result.queued} 条满意度短信；跳过 {skipped} 户（{why or '无'}）。试运行，未排队。"
        )
    else:
        click.echo(f"{area}：已排队 {result.queued} 条满意度短信；跳过 {skipped} 户（{why or '无'}）。")
