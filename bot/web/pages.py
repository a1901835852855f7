"""The dashboard's pages (/dash/): server-rendered, one small stylesheet, no script.

Each page resolves its place from the URL and the viewer's scope first: a place the viewer may not see is 404
(whether it exists or not), a kind of page their role never sees is 403. Only then is anything read."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.keys import CLOCK, DB
from bot.reports import Context, Report
from bot.web import tables
from bot.web.auth import CSRF, SETTINGS, TABLES, Viewer, csrf_token, no_store, signing_key
from bot.web.tables import Place
from messages import LOCALES, render_page
from storage import web as store
from storage.reports import Area

LANG_COOKIE = "zoufang_lang"


def locale_of(request: web.Request) -> str:
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LOCALES else request.app[SETTINGS].locale


def context_of(request: web.Request) -> Context:
    settings = replace(request.app[SETTINGS], locale=locale_of(request))
    return Context(settings, request.app[CLOCK]())


def page(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    locale = locale_of(request)
    body = render_page(template, locale, path=request.path, signout_csrf=request.get(CSRF, ""), **values)
    response = web.Response(text=body, content_type="text/html", status=status)
    if request.query.get("lang") in LOCALES:
        response.set_cookie(LANG_COOKIE, locale, path="/dash", max_age=365 * 86400, samesite="Lax")
    return no_store(response)


def sign_in_page(request: web.Request, status: int = 200, spent: bool = False) -> web.Response:
    minutes = request.app[SETTINGS].web_link_minutes
    return page(request, "signin.html", status=status, spent=spent, viewer=None, minutes=minutes)


async def sign_in(request: web.Request) -> web.StreamResponse:
    return sign_in_page(request)


# --- places -------------------------------------------------------------------------------------------


# the pages some levels never see (403); the others are each viewer's own place, or 404
SEEN_BY: dict[str, tuple[str, ...]] = {"county": ("county",), "overdue": ("county", "township")}


def _id(request: web.Request) -> int:
    text = request.match_info.get("id", "")
    if not text.isdigit() or len(text) > 12:
        raise web.HTTPNotFound()
    return int(text)


async def place_of(request: web.Request, viewer: Viewer, kind: str) -> Place:
    """The page's place, or 404/403 before anything of it is read."""
    if viewer.scope.level not in SEEN_BY.get(kind, (viewer.scope.level,)):
        raise web.HTTPForbidden(text="403")
    if kind == "county":
        return await _county(request, viewer, _id(request))
    if kind == "overdue":
        return await _overdue(request, viewer)
    if kind == "township":
        return await _township(request, viewer, _id(request))
    if kind == "village":
        return await _village(request, viewer, _id(request))
    return await _own(request, viewer)


async def _county(request: web.Request, viewer: Viewer, county_id: int) -> Place:
    if county_id != viewer.scope.county_id:
        raise web.HTTPNotFound()
    return await county_place(request.app[DB], county_id, viewer.cadre.township.county.name)


async def county_place(db: Any, county_id: int, name: str) -> Place:
    async with db.reading() as s:
        ids = await store.county_village_ids(s, county_id)
        townships = await store.county_townships(s, county_id)
    return Place("county", county_id, name, Area(ids), county=name, extra={"townships": townships})


async def _overdue(request: web.Request, viewer: Viewer) -> Place:
    async with request.app[DB].reading() as s:
        township = await store.township(s, viewer.cadre.township_id)
    assert township is not None
    mine = "" if viewer.scope.level == "county" else township.name
    return Place(
        "overdue", township.county_id, mine or township.county.name, Area(), mine, township.county.name
    )


async def _township(request: web.Request, viewer: Viewer, township_id: int) -> Place:
    async with request.app[DB].reading() as s:
        township = await store.township(s, township_id)
        if township is None or not viewer.scope.sees_township(township.id, township.county_id):
            raise web.HTTPNotFound()
        villages = await store.township_villages(s, township_id)
    area = Area(tuple(v.id for v in villages))
    return Place(
        "township",
        township.id,
        township.name,
        area,
        township.name,
        extra={"villages": villages, "row": township},
    )


async def _village(request: web.Request, viewer: Viewer, village_id: int) -> Place:
    async with request.app[DB].reading() as s:
        village = await store.village(s, village_id)
        own = await store.own_village_ids(s, viewer.cadre.id) if viewer.scope.level == "own" else ()
    if village is None or not viewer.scope.sees_village(
        village.township_id, village.township.county_id, own, village.id
    ):
        raise web.HTTPNotFound()
    own_id = viewer.cadre.id if viewer.scope.level == "own" else None
    return Place(
        "village",
        village.id,
        village.name,
        Area((village.id,)),
        village.township.name,
        own_cadre_id=own_id,
        extra={"township_id": village.township_id},
    )


async def _own(request: web.Request, viewer: Viewer) -> Place:
    async with request.app[DB].reading() as s:
        own = await store.own_village_ids(s, viewer.cadre.id)
    return Place("own", viewer.cadre.id, viewer.cadre.name, Area(own), own_cadre_id=viewer.cadre.id)


# --- pages --------------------------------------------------------------------------------------------


async def home(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    scope = viewer.scope
    if scope.level == "county":
        raise web.HTTPSeeOther(f"/dash/county/{scope.county_id}")
    if scope.level == "township":
        raise web.HTTPSeeOther(f"/dash/township/{scope.township_id}")
    raise web.HTTPSeeOther("/dash/mine")


async def _tables(request: web.Request, place: Place) -> tuple[Context, list[tables.Table]]:
    ctx = context_of(request)
    return ctx, await tables_of(request.app, ctx, place)


async def tables_of(app: web.Application, ctx: Context, place: Place) -> list[tables.Table]:
    """The page's tables, from the kept ones (bot.web.tables.TableCache) where they are."""
    return [(await _kept_report(app, ctx, place, name))[1] for name in tables.names_of(place)]


async def _kept_report(
    app: web.Application, ctx: Context, place: Place, name: str
) -> tuple[Report, tables.Table]:
    """A table's report and the table shown from it, kept together: its chart draws from the same build."""

    async def build() -> tuple[Report, tables.Table]:
        report = await tables.build(app[DB], ctx, place, name)
        table = tables.table_of(name, report)
        return report, replace(table, as_of=f"{ctx.now.astimezone(ctx.settings.tz):%H:%M:%S}")

    return await app[TABLES].get(tables.cache_key(place, name, ctx.locale), build)


async def warned_of(app: web.Application, ctx: Context, place: Place) -> int:
    key = tables.cache_key(place, "warned", ctx.locale)
    return await app[TABLES].get(key, lambda: tables.warning_count(app[DB], ctx, place))


async def prewarm(app: web.Application) -> None:
    """At start, build each county overview's tables in the default language, so the first 督查指挥中心 to
    look does not wait for a county's reports (seconds at 250,000 households); later views keep them fresh."""
    ctx = Context(app[SETTINGS], app[CLOCK]())
    async with app[DB].reading() as s:
        counties = await store.counties(s)
    for county in counties:
        place = await county_place(app[DB], county.id, county.name)
        await tables_of(app, ctx, place)
        await warned_of(app, ctx, place)


def _common(viewer: Viewer, ctx: Context) -> dict[str, Any]:
    return {"viewer": viewer, "target": ctx.settings.satisfaction_target}


async def county_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    place = await place_of(request, viewer, "county")
    ctx, shown = await _tables(request, place)
    warned = await request.app[TABLES].get(
        tables.cache_key(place, "warned", ctx.locale),
        lambda: tables.warning_count(request.app[DB], ctx, place),
    )
    return page(request, "county.html", place=place, tables=shown, warned=warned, **_common(viewer, ctx))


async def township_page(
    request: web.Request, viewer: Viewer, notice: dict[str, Any] | None = None, township_id: int | None = None
) -> web.StreamResponse:
    """A township: its villages, its meeting calendar, its queue with each problem's history (and the
    secretary's forms), and its tables. `notice`: a move just refused (shown with status 409)."""
    from bot.web.queue import township_queue

    if township_id is None:
        place = await place_of(request, viewer, "township")
    else:
        place = await _township(request, viewer, township_id)
    ctx, shown = await _tables(request, place)
    page_text = request.query.get("page", "1")
    wanted = int(page_text) if page_text.isdigit() and len(page_text) < 7 else 1
    queue = await township_queue(request.app[DB], ctx, viewer, place.extra["row"], wanted)
    key = await signing_key(request.app)
    status = 409 if notice and notice.get("refused") else 200
    return page(
        request,
        "township.html",
        status=status,
        place=place,
        tables=shown,
        queue=queue,
        csrf=csrf_token(key, viewer.token),
        notice=notice or _done_notice(request),
        **_common(viewer, ctx),
    )


def _done_notice(request: web.Request) -> dict[str, Any] | None:
    done, pid = request.query.get("done"), request.query.get("p", "")
    if done in ("decide", "close", "merge", "reopen") and pid.isdigit():
        return {"done": done, "id": int(pid)}
    return None


async def village_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    place = await place_of(request, viewer, "village")
    ctx, shown = await _tables(request, place)
    return page(request, "village.html", place=place, tables=shown, **_common(viewer, ctx))


async def own_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    place = await place_of(request, viewer, "own")
    ctx, shown = await _tables(request, place)
    return page(request, "mine.html", place=place, tables=shown, **_common(viewer, ctx))


async def overdue_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    place = await place_of(request, viewer, "overdue")
    ctx, shown = await _tables(request, place)
    return page(request, "overdue.html", place=place, tables=shown, **_common(viewer, ctx))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(kind: str, fmt: str = "csv") -> Any:
    """GET …/<table>.csv or .xlsx: the page's table as the CLI writes it (full lists, as a file gets them)."""

    async def handler(request: web.Request, viewer: Viewer) -> web.StreamResponse:
        place = await place_of(request, viewer, kind)
        name = request.match_info["table"]
        if name not in tables.names_of(place):
            raise web.HTTPNotFound()
        report = await tables.build(request.app[DB], context_of(request), place, name, full=True)
        filename = f"{report.name}-{kind}-{place.id}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        if fmt == "xlsx":
            body = await asyncio.to_thread(tables.xlsx_of, report)
            return no_store(web.Response(body=body, content_type=XLSX_TYPE, headers=headers))
        body = tables.csv_of(report).encode("utf-8")
        return no_store(web.Response(body=body, content_type="text/csv", charset="utf-8", headers=headers))

    return handler


_DRAWING = asyncio.Lock()  # matplotlib's rc_context is process-wide: one chart drawn at a time


def chart(kind: str) -> Any:
    """GET …/<table>.png: the table's chart as `zoufang report … --format png` draws it (kept like the tables:
    a page shows each chart it has, so a page view must not redraw them)."""

    async def handler(request: web.Request, viewer: Viewer) -> web.StreamResponse:
        place = await place_of(request, viewer, kind)
        name = request.match_info["table"]
        if name not in tables.names_of(place):
            raise web.HTTPNotFound()
        ctx = context_of(request)

        async def draw() -> bytes:
            report, _ = await _kept_report(request.app, ctx, place, name)
            if report.chart is None:
                return b""
            async with _DRAWING:
                return await asyncio.to_thread(tables.png_of, report)

        body = await request.app[TABLES].get(tables.cache_key(place, name + ".png", ctx.locale), draw)
        if not body:
            raise web.HTTPNotFound()
        return no_store(web.Response(body=body, content_type="image/png"))

    return handler


async def sign_out(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from bot.web.auth import COOKIE

    async with request.app[DB].session() as s:
        await store.end_session(s, viewer.token, request.app[CLOCK]())
    response = web.Response(status=303, headers={"Location": "/dash/signin"})
    response.del_cookie(COOKIE, path="/dash")
    return response
