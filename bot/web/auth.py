"""Signing in to the dashboard: a one-time link sets a signed session cookie; every page asks for a live session.

The cookie is `<token>.<hmac>`: the token names a row of web_sessions (only its hash is stored), the HMAC (with
ZOUFANG_WEB_SECRET, or the key kept in web_keys) makes a forged or altered cookie fail before the database is
asked. A form's CSRF token is an HMAC of the session's token, so it is tied to that session and nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.keys import CLOCK, DB
from bot.settings import Settings
from bot.web.scope import Scope, scope_of
from storage import web as store
from storage.models import Cadre

COOKIE = "zoufang_session"
SETTINGS = web.AppKey("web_settings", Settings)
TABLES = web.AppKey("web_tables", object)  # bot.web.tables.TableCache
KEY = web.AppKey("web_key", dict)  # {"key": …} once read: the app's state is fixed once it has started
CSRF = web.RequestKey("csrf", str)
SIGN_IN = "/dash/signin"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the cadre, what they may see, and their session's token (for the CSRF token)."""

    cadre: Cadre
    scope: Scope
    token: str


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def cookie_value(key: str, token: str) -> str:
    return f"{token}.{_mac(key, 'session:' + token)}"


def token_of(key: str, value: str | None) -> str | None:
    """The token of a well-signed cookie, else None (a forged one never reaches the database)."""
    if not value or "." not in value:
        return None
    token, _, mac = value.rpartition(".")
    return token if hmac.compare_digest(mac, _mac(key, "session:" + token)) else None


def csrf_token(key: str, token: str) -> str:
    return _mac(key, "csrf:" + token)[:40]


async def signing_key(app: web.Application) -> str:
    """ZOUFANG_WEB_SECRET, or the key made once and kept in the database (read once per process)."""
    held = app[KEY]
    if "key" not in held:
        settings = app[SETTINGS]
        if settings.web_secret:
            held["key"] = settings.web_secret
        else:
            async with app[DB].session() as s:
                await store.make_key(s)
            async with app[DB].reading() as s:  # read after the commit: a racing process's earlier key wins
                held["key"] = await store.stored_key(s)
    return str(held["key"])


async def viewer_of(request: web.Request) -> Viewer | None:
    key = await signing_key(request.app)
    token = token_of(key, request.cookies.get(COOKIE))
    if token is None:
        return None
    async with request.app[DB].reading() as s:
        cadre = await store.session_cadre(s, token, request.app[CLOCK]())
    if cadre is None:
        return None
    scope = scope_of(cadre.id, cadre.role, cadre.township.county_id, cadre.township_id)
    return Viewer(cadre, scope, token)


Page = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def signed_in(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The page for a live session; without one, a GET goes to the sign-in page and a POST is refused 403.
    A POST must carry the session's CSRF token."""

    async def handler(request: web.Request) -> web.StreamResponse:
        viewer = await viewer_of(request)
        if viewer is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(SIGN_IN)
            raise web.HTTPForbidden(text="sign in first / 请先登录")
        expected = csrf_token(await signing_key(request.app), viewer.token)
        request[CSRF] = expected  # every page's forms (sign out) carry it
        if request.method == "POST":
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")), expected):
                raise web.HTTPForbidden(text="bad CSRF token / 表单已失效，请刷新页面")
        return await page(request, viewer)

    return handler


async def confirm_link(request: web.Request) -> web.StreamResponse:
    """GET /dash/login/{token}: a live, unused link shows a page with one button that signs in (a POST of the
    token to /dash/login); the GET itself spends nothing, so a chat app fetching the link for its preview (as
    Telegram does) cannot use it up. Anything else is the sign-in page (410) that says to ask for a new link."""
    from bot.web.pages import page, sign_in_page

    token = request.match_info["token"]
    async with request.app[DB].reading() as s:
        cadre = await store.peek_link(s, token, request.app[CLOCK]())
    if cadre is None:
        return sign_in_page(request, status=410, spent=True)
    response = page(request, "confirm.html", viewer=None, token=token, name=cadre.name, role=cadre.role)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response


async def sign_in_with_link(request: web.Request) -> web.StreamResponse:
    """POST /dash/login (the confirm page's button, `token` in the form): a live, unused link opens a session
    and goes to /dash/; anything else is the sign-in page (410) that says to ask for a new link. A browser's
    cross-site POST is refused 403, so another site cannot sign a visitor in as someone else."""
    from bot.web.pages import sign_in_page

    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise web.HTTPForbidden(text="cross-site sign-in refused / 请从登录链接打开")
    form = await request.post()
    link = str(form.get("token", ""))
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    if not link or len(link) > 200:
        return sign_in_page(request, status=410, spent=True)
    async with request.app[DB].session() as s:
        cadre_id = await store.use_link(s, link, now)
        token = None
        if cadre_id is not None:
            token = await store.create_session(s, cadre_id, now, timedelta(hours=settings.web_session_hours))
    if token is None:
        return sign_in_page(request, status=410, spent=True)
    response = web.Response(status=303, headers={"Location": "/dash/"})
    set_session_cookie(response, cookie_value(await signing_key(request.app), token), settings)
    return no_store(response)


def set_session_cookie(response: web.StreamResponse, value: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.web_session_hours * 3600,
        path="/dash",
        httponly=True,
        samesite="Lax",
        secure=settings.public_base_url.lower().startswith("https://"),
    )


def no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response
