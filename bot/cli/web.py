"""`zoufang web invite|revoke`: sign cadres in to the dashboard (/dash/) and out of it."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.base import Failure, main, run, settings, with_db

LOCAL_BASE = "http://127.0.0.1:8080"  # `zoufang serve`'s default address, when PUBLIC_BASE_URL is not set


@main.group()
def web() -> None:
    """工作台 the dashboard: one-time sign-in links, and ending a cadre's sessions."""


async def _cadre(s: Any, code: str) -> Any:
    from storage.visits import cadre_by_code

    cadre = await cadre_by_code(s, code.strip())
    if cadre is None:
        raise Failure(f"没有这个干部编号：{code}")
    return cadre


@web.command(name="invite")
@click.argument("cadre_id")
def web_invite(cadre_id: str) -> None:
    """Print a one-time sign-in link (ZOUFANG_WEB_LINK_MINUTES, default 30): it opens a session once."""
    from datetime import timedelta

    from storage.audit import operator
    from storage.models import utcnow
    from storage.web import create_link

    conf = settings()
    ttl = timedelta(minutes=conf.web_link_minutes)

    async def go() -> tuple[str, str]:
        async with with_db(conf.db_url) as db, db.session() as s:
            cadre = await _cadre(s, cadre_id)
            token = await create_link(s, cadre.id, utcnow(), ttl, actor=operator())
            return token, f"{cadre.name}（{cadre.role}）"

    token, who = run(go())
    base = (conf.public_base_url or LOCAL_BASE).rstrip("/")
    click.echo(f"{base}/dash/login/{token}")
    until = (utcnow() + ttl).astimezone(conf.tz)
    click.echo(
        f"{who} 的登录链接，仅可使用一次，{conf.web_link_minutes} 分钟内有效（至 {until:%Y-%m-%d %H:%M}）"
    )
    if not conf.public_base_url:
        click.echo(f"PUBLIC_BASE_URL 未设置：链接使用 {LOCAL_BASE}", err=True)


@web.command(name="revoke")
@click.argument("cadre_id")
def web_revoke(cadre_id: str) -> None:
    """End every dashboard session of the cadre (and void their unused links)."""
    from storage.audit import operator
    from storage.models import utcnow
    from storage.web import revoke

    conf = settings()

    async def go() -> tuple[int, str]:
        async with with_db(conf.db_url) as db, db.session() as s:
            cadre = await _cadre(s, cadre_id)
            return await revoke(s, cadre.id, utcnow(), actor=operator()), cadre.name

    ended, name = run(go())
    click.echo(f"已结束 {name} 的 {ended} 个工作台会话")
