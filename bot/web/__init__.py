"""The dashboard (/dash/): the county's, townships' and cadres' figures in a browser, and the township
secretary's moves. Mounted on the `zoufang serve` application by `mount_dash`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from bot.settings import Settings

STATIC = Path(__file__).parent / "static"


def mount_dash(app: web.Application, settings: Settings, prewarm: bool = False) -> None:
    """The dashboard's routes; `prewarm` (zoufang serve) builds the county overviews' tables at start."""
    from bot.web import pages
    from bot.web.auth import KEY, SETTINGS, TABLES, confirm_link, sign_in_with_link, signed_in
    from bot.web.queue import act_on_problem
    from bot.web.tables import TableCache

    app[SETTINGS] = settings
    app[KEY] = {}
    app[TABLES] = TableCache(settings.web_cache_seconds)
    get, post = app.router.add_get, app.router.add_post
    get("/dash", _to_home)
    get("/dash/", signed_in(pages.home))
    get("/dash/signin", pages.sign_in)
    get("/dash/login/{token}", confirm_link)  # shows a button; only its POST spends the link
    post("/dash/login", sign_in_with_link)
    post("/dash/signout", signed_in(pages.sign_out))
    get("/dash/mine", signed_in(pages.own_page))
    get("/dash/mine/{table}.csv", signed_in(pages.download("own")))
    get("/dash/mine/{table}.xlsx", signed_in(pages.download("own", "xlsx")))
    get("/dash/mine/{table}.png", signed_in(pages.chart("own")))
    get("/dash/overdue", signed_in(pages.overdue_page))
    get("/dash/overdue/{table}.csv", signed_in(pages.download("overdue")))
    get("/dash/overdue/{table}.xlsx", signed_in(pages.download("overdue", "xlsx")))
    get("/dash/overdue/{table}.png", signed_in(pages.chart("overdue")))
    for kind, show in (
        ("county", pages.county_page),
        ("township", pages.township_page),
        ("village", pages.village_page),
    ):
        get(f"/dash/{kind}/{{id}}", signed_in(show))
        get(f"/dash/{kind}/{{id}}/{{table}}.csv", signed_in(pages.download(kind)))
        get(f"/dash/{kind}/{{id}}/{{table}}.xlsx", signed_in(pages.download(kind, "xlsx")))
        get(f"/dash/{kind}/{{id}}/{{table}}.png", signed_in(pages.chart(kind)))
    post("/dash/problem/{id}/{action}", signed_in(act_on_problem))
    app.router.add_static("/dash/static/", STATIC)
    if prewarm and settings.web_cache_seconds > 0:
        app.cleanup_ctx.append(_prewarming)


async def _prewarming(app: web.Application) -> AsyncIterator[None]:
    import asyncio
    import contextlib
    import logging

    from bot.web.pages import prewarm

    async def run() -> None:
        try:
            await prewarm(app)
        except Exception as exc:  # the pages build their tables when viewed, as without it
            logging.getLogger("zoufang.web").warning("dashboard tables not built at start: %r", exc)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _to_home(_: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/dash/")
