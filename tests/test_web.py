"""The dashboard (/dash/) through aiohttp's test client on the demo roster: signing in with a one-time link,
who sees what (every page, download and action refused without a live session, to the wrong role and for
another township's id — never data), the secretary's moves through the escalation flow, and escaping."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, select, update

from bot.app import make_app
from bot.settings import Settings
from bot.web.auth import COOKIE, cookie_value
from storage import web as store
from storage.db import Database
from storage.models import (
    Cadre,
    Household,
    Poll,
    Problem,
    ProblemEvent,
    Township,
    Village,
    WebKey,
    WebLink,
    cadre_villages,
)
from storage.visits import cadre_by_code
from survey.script import load_script
from tests.cli_support import clean_env, ok, zoufang, zoufang_process
from tests.test_audit import TZ, audit_rows
from tests.test_escalation import cadre_id, raise_problem
from tests.test_problem_cli import RAISED

SECRET = "test-secret-not-for-production"


def dash_settings(**extra: object) -> Settings:
    return replace(Settings(), web_secret=SECRET, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def client(roster: Database) -> AsyncIterator[TestClient]:
    app = make_app(roster, load_script(), dash_settings(), primary=False)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def link_for(db: Database, code: str, ttl: timedelta = timedelta(minutes=30)) -> str:
    async with db.session() as s:
        return await store.create_link(s, await cadre_id(db, code), datetime.now(UTC), ttl)


async def confirm(client: TestClient, token: str) -> ClientResponse:
    """Open the link (its page, which spends nothing) and press its button (the POST that signs in)."""
    shown = await client.get(f"/dash/login/{token}", allow_redirects=False)
    assert shown.status == 200 and "Set-Cookie" not in shown.headers, await shown.text()
    found = re.search(r'name="token" value="([^"]+)"', await shown.text())
    assert found and found[1] == token
    return await client.post("/dash/login", data={"token": found[1]}, allow_redirects=False)


async def sign_in(client: TestClient, db: Database, code: str) -> None:
    response = await confirm(client, await link_for(db, code))
    assert response.status == 303, await response.text()


async def place_id(db: Database, model: type, name: str) -> int:
    async with db.reading() as s:
        return (await s.execute(select(model.id).where(model.name == name))).scalar_one()


async def ids(db: Database) -> dict[str, int]:
    return {
        "dongfeng": await place_id(db, Township, "东风镇"),
        "other": (await place_id(db, Township, "福顺乡")),
        "village": (await place_id(db, Village, "新华村")),
        "far_village": (await place_id(db, Village, "福顺村")),
    }


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def test_a_one_time_link_signs_in_once_and_only_its_hash_is_kept(
    roster: Database, db_path: Path, client
):
    env = clean_env(
        db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}", ZOUFANG_WEB_SECRET=SECRET
    )
    printed = ok(
        zoufang_process(db_path.parent, "web", "invite", "GB012", env=env)
    ).stdout  # its real-process test
    url = printed.splitlines()[0]
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/dash/login/[A-Za-z0-9_-]{40,}", url), printed
    assert "仅可使用一次，30 分钟内有效" in printed
    token = url.rsplit("/", 1)[1]
    async with roster.reading() as s:
        stored = list((await s.execute(select(WebLink.token_hash))).scalars())
    assert stored == [store.token_hash(token)] and token not in stored

    first = await confirm(client, token)
    assert first.status == 303 and first.headers["Location"] == "/dash/"
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dash" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is not https here
    home = await client.get("/dash/", allow_redirects=False)
    assert (
        home.status == 303 and home.headers["Location"] == f"/dash/township/{(await ids(roster))['dongfeng']}"
    )

    client.session.cookie_jar.clear()
    again = await client.get(f"/dash/login/{token}", allow_redirects=False)
    assert again.status == 410 and "Set-Cookie" not in again.headers
    assert "已失效" in await again.text()
    replayed = await client.post("/dash/login", data={"token": token}, allow_redirects=False)
    assert replayed.status == 410 and "Set-Cookie" not in replayed.headers
    assert (await client.get("/dash/", allow_redirects=False)).headers["Location"] == "/dash/signin"


async def test_invite_revoke_and_a_cadres_own_link_are_in_the_audit_trail(roster: Database, db_path: Path):
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    ok(zoufang(db_path.parent, "web", "invite", "GB012", env=env))
    async with roster.session() as s:  # as Telegram's /web asks: the cadre for themselves
        gb001 = await cadre_id(roster, "GB001")
        await store.create_link(
            s, gb001, datetime.now(UTC), timedelta(minutes=30), actor="telegram:7001", actor_cadre_id=gb001
        )
    ok(zoufang(db_path.parent, "web", "revoke", "GB012", env=env))

    today = datetime.now(TZ).date().isoformat()
    trail = [r for r in audit_rows(db_path.parent, env, "--since", today) if r["操作代码"].startswith("web.")]
    assert [(r["操作代码"], r["操作"], r["对象"]) for r in trail] == [
        ("web.invite", "工作台登录链接", "cadre:GB012"),
        ("web.invite", "工作台登录链接", "cadre:GB001"),
        ("web.revoke", "结束工作台会话", "cadre:GB012"),
    ]
    assert trail[0]["操作人"].startswith("cli") and trail[2]["操作人"].startswith("cli")
    assert trail[1]["操作人"].startswith("GB001 ")  # the cadre, by 干部编号 and name
    assert "expires_at" in json.loads(trail[0]["变更后"])
    assert json.loads(trail[2]["变更后"]) == {"sessions_ended": 0, "links_voided": 1}


async def test_an_expired_link_and_an_https_base_url(roster: Database):
    expired = await link_for(roster, "GB012", timedelta(minutes=-1))
    app = make_app(
        roster, load_script(), dash_settings(public_base_url="https://zf.example.cn"), primary=False
    )
    async with TestClient(TestServer(app)) as client:
        refused = await client.get(f"/dash/login/{expired}", allow_redirects=False)
        assert refused.status == 410 and "Set-Cookie" not in refused.headers
        fresh = await confirm(client, await link_for(roster, "GB012"))
        assert "Secure" in fresh.headers["Set-Cookie"]


async def test_opening_a_link_spends_nothing_only_its_button_does(roster: Database, client: TestClient):
    """A chat app fetching the link for a preview (Telegram does) must not use it up: GETs show a button."""
    token = await link_for(roster, "GB012")
    for _ in range(2):
        shown = await client.get(f"/dash/login/{token}", allow_redirects=False)
        assert shown.status == 200 and "Set-Cookie" not in shown.headers
        text = await shown.text()
        assert '<form method="post" action="/dash/login">' in text and "登录" in text
        assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert (await client.get("/dash/", allow_redirects=False)).headers["Location"] == "/dash/signin"
    english = await client.get(f"/dash/login/{token}?lang=en", allow_redirects=False)
    assert "Sign in to the dashboard as" in await english.text()

    signed = await client.post("/dash/login", data={"token": token}, allow_redirects=False)
    assert signed.status == 303 and signed.headers["Location"] == "/dash/"
    assert (
        (await client.get("/dash/", allow_redirects=False)).headers["Location"].startswith("/dash/township/")
    )

    client.session.cookie_jar.clear()
    spent = await client.post("/dash/login", data={"token": token}, allow_redirects=False)
    assert spent.status == 410 and "Set-Cookie" not in spent.headers and "已失效" in await spent.text()
    assert (await client.get(f"/dash/login/{token}", allow_redirects=False)).status == 410
    for form in ({}, {"token": ""}, {"token": "x" * 500}, {"token": "unknown"}):
        refused = await client.post("/dash/login", data=form, allow_redirects=False)
        assert refused.status == 410 and "Set-Cookie" not in refused.headers, form

    other = await link_for(roster, "GB012")  # another site's form posting a link is refused, link unspent
    forged = await client.post(
        "/dash/login", data={"token": other}, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False
    )
    assert forged.status == 403 and "Set-Cookie" not in forged.headers
    assert (await client.get(f"/dash/login/{other}", allow_redirects=False)).status == 200


async def test_without_zoufang_web_secret_a_key_is_made_once_and_kept(roster: Database):
    for _ in range(2):  # a second server (a restart, another worker) signs with the same key
        app = make_app(roster, load_script(), Settings(), primary=False)
        async with TestClient(TestServer(app)) as client:
            await sign_in(client, roster, "GB012")
            home = await client.get("/dash/", allow_redirects=False)
            assert home.headers["Location"].startswith("/dash/township/")
            async with roster.reading() as s:
                keys = list((await s.execute(select(WebKey.secret))).scalars())
            assert len(keys) == 1
            sent = client.session.cookie_jar.filter_cookies(client.make_url("/dash/"))[COOKIE].value
            token = sent.split(".")[0]
            assert sent == cookie_value(keys[0], token)
            client.session.cookie_jar.clear()
            client.session.cookie_jar.update_cookies({COOKIE: cookie_value(SECRET, token)})  # another key
            assert (await client.get("/dash/", allow_redirects=False)).headers["Location"] == "/dash/signin"


def pages(places: dict[str, int]) -> list[str]:
    township, village = places["dongfeng"], places["village"]
    return [
        "/dash/",
        "/dash/county/1",
        "/dash/county/1/satisfaction.csv",
        f"/dash/township/{township}",
        f"/dash/township/{township}/coverage.csv",
        f"/dash/township/{township}/coverage.xlsx",
        f"/dash/village/{village}",
        f"/dash/village/{village}/households.csv",
        "/dash/overdue",
        "/dash/overdue/overdue.csv",
        "/dash/mine",
        "/dash/mine/households.csv",
    ]


DATA = ("DEMO0001", "新华村", "自来水管冻裂")  # what no refused answer may carry


async def assert_refused_everywhere(client: TestClient, places: dict[str, int], pid: int) -> None:
    for url in pages(places):
        response = await client.get(url, allow_redirects=False)
        body = await response.text()
        assert response.status == 303 and response.headers["Location"] == "/dash/signin", url
        assert not any(marker in body for marker in DATA), url
    for action in ("decide", "close", "merge", "reopen"):
        response = await client.post(f"/dash/problem/{pid}/{action}", data={"note": "x"})
        assert response.status == 403, action


async def test_without_a_live_session_nothing_is_shown(roster: Database, db_path: Path, client: TestClient):
    places, pid = await ids(roster), await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    await assert_refused_everywhere(client, places, pid)  # no cookie
    client.session.cookie_jar.update_cookies({COOKIE: "forged.0123abcd"})
    await assert_refused_everywhere(client, places, pid)
    client.session.cookie_jar.update_cookies({COOKIE: cookie_value("another key", "some-token")})
    await assert_refused_everywhere(client, places, pid)

    await sign_in(client, roster, "GB012")
    assert (await client.get(f"/dash/township/{places['dongfeng']}")).status == 200
    async with roster.session() as s:  # the session's time is up
        await s.execute(update(store.WebSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await assert_refused_everywhere(client, places, pid)

    await sign_in(client, roster, "GB012")
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    revoked = ok(
        zoufang_process(db_path.parent, "web", "revoke", "GB012", env=env)
    ).stdout  # its real-process test
    assert "已结束" in revoked and " 1 个" in revoked
    await assert_refused_everywhere(client, places, pid)
    async with roster.reading() as s:
        assert (await s.get(Problem, pid)).status == "escalated"  # type: ignore[union-attr]


async def test_each_role_sees_its_own_place_and_gets_404_for_another_townships(roster: Database, client):
    places, pid = await ids(roster), await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    await sign_in(client, roster, "GB025")  # 福顺乡's secretary
    for url in (
        f"/dash/township/{places['dongfeng']}",
        f"/dash/township/{places['dongfeng']}/satisfaction.csv",
        f"/dash/village/{places['village']}",
        f"/dash/village/{places['village']}/households.csv",
        f"/dash/village/{places['village']}/households.xlsx",
        "/dash/township/987654321",
        "/dash/township/abc",
    ):
        response = await client.get(url, allow_redirects=False)
        body = await response.text()
        assert response.status == 404, url
        assert not any(marker in body for marker in DATA), url
    assert (await client.get("/dash/county/1", allow_redirects=False)).status == 403
    own = await client.get(f"/dash/township/{places['other']}")
    html = await own.text()
    assert own.status == 200 and "福顺乡" in html and "新华村" not in html
    moved = await client.post(f"/dash/problem/{pid}/close", data={"csrf": csrf_of(html), "note": "x"})
    assert moved.status == 404
    overdue = await (await client.get("/dash/overdue")).text()
    assert "福顺乡" in overdue

    client.session.cookie_jar.clear()
    await sign_in(client, roster, "GB001")  # a first secretary of 新华村: only their own households
    assert (await client.get("/dash/county/1", allow_redirects=False)).status == 403
    assert (await client.get("/dash/overdue", allow_redirects=False)).status == 403
    assert (await client.get(f"/dash/township/{places['dongfeng']}", allow_redirects=False)).status == 404
    assert (await client.get(f"/dash/village/{places['far_village']}", allow_redirects=False)).status == 404
    mine = await (await client.get(f"/dash/village/{places['village']}")).text()
    assert "DEMO0001" in mine
    listed = await (await client.get("/dash/mine/households.csv")).text()
    assert "DEMO0001" in listed and "福顺村" not in listed

    client.session.cookie_jar.clear()
    await sign_in(client, roster, "GB028")  # 督查指挥中心: the county
    county = await client.get("/dash/county/1")
    assert county.status == 200 and "东风镇" in await county.text() and "福顺乡" in await county.text()
    assert (await client.get("/dash/county/2", allow_redirects=False)).status == 404
    states = (await (await client.get("/dash/county/1/states.csv")).read()).decode("utf-8")
    assert "待研究,escalated,1\r\n" in states and "合计,,1\r\n" in states
    assert (await client.get(f"/dash/village/{places['far_village']}")).status == 200


# one cadre of 东风镇 for every role (the demo roster); those who see only their own households are of 新华村
ROLE_CADRES = {
    "督查指挥中心": "GB028",
    "乡镇党委书记": "GB012",
    "扶贫专干": "GB013",
    "乡镇包保干部": "GB010",
    "市级包保领导": "GB027",
    "第一书记": "GB001",
    "帮扶责任人": "GB002",
    "村党支部书记": "GB003",
    "驻村工作队": "GB011",
}
# each page's status for a viewer of 东风镇 at each level (county, township, own): a kind of page the level
# never sees is 403, a place it may not see is 404 (whether it exists or not)
ROLE_MATRIX = {
    "/dash/county/1": (200, 403, 403),
    "/dash/county/2": (404, 403, 403),  # no such county: the level check comes first
    "/dash/township/{dongfeng}": (200, 200, 404),
    "/dash/township/{other}": (200, 404, 404),
    "/dash/township/987654321": (404, 404, 404),
    "/dash/village/{village}": (200, 200, 200),  # 新华村: the own-household cadres' village
    "/dash/village/{near_village}": (200, 200, 404),  # 永安村: 东风镇's, not theirs
    "/dash/village/{far_village}": (200, 404, 404),  # 福顺村: another township's
    "/dash/overdue": (200, 200, 403),
}
LEVELS = ("county", "township", "own")


async def test_every_role_of_scope_gets_the_right_status_on_every_kind_of_page(roster: Database, client):
    from bot.web.scope import COUNTY_ROLES, TOWNSHIP_ROLES, scope_of

    assert set(ROLE_CADRES) >= COUNTY_ROLES | TOWNSHIP_ROLES  # every role scope.py names is in the table
    async with roster.reading() as s:  # and every role of the roster (the others: their own households)
        assert set(ROLE_CADRES) == set((await s.execute(select(Cadre.role).distinct())).scalars())
    places = {**await ids(roster), "near_village": await place_id(roster, Village, "永安村")}
    for role, code in ROLE_CADRES.items():
        async with roster.reading() as s:
            cadre = await cadre_by_code(s, code)
            assert cadre is not None and cadre.role == role and cadre.township.name == "东风镇", code
            level = scope_of(cadre.id, role, cadre.township.county_id, cadre.township_id).level
        client.session.cookie_jar.clear()
        await sign_in(client, roster, code)
        for template, statuses in ROLE_MATRIX.items():
            url = template.format(**places)
            response = await client.get(url, allow_redirects=False)
            expected = statuses[LEVELS.index(level)]
            assert response.status == expected, (role, url, response.status)
            if expected != 200:
                body = await response.text()
                assert not any(marker in body for marker in DATA), (role, url)


async def test_a_helper_sees_only_the_households_they_help(roster: Database, client: TestClient):
    """A 帮扶责任人 with no village of their own: the village page lists their households and nothing else of
    it (no village-wide table such as the warning list)."""
    places, helper = await ids(roster), await cadre_id(roster, "GB002")
    async with roster.session() as s:
        await s.execute(delete(cadre_villages).where(cadre_villages.c.cadre_id == helper))
        await s.execute(update(Household).where(Household.helper_id == helper).values(helper_id=None))
        await s.execute(update(Household).where(Household.code == "DEMO0001").values(helper_id=helper))
    await sign_in(client, roster, "GB002")
    html = await (await client.get(f"/dash/village/{places['village']}")).text()
    assert "DEMO0001" in html and "DEMO0002" not in html and 'id="t-warnings"' not in html
    assert (await client.get(f"/dash/village/{places['village']}/warnings.csv")).status == 404
    listed = await (await client.get("/dash/mine/households.csv")).text()
    assert "DEMO0001" in listed and "DEMO0002" not in listed
    assert (await client.get(f"/dash/village/{places['far_village']}", allow_redirects=False)).status == 404


async def test_the_secretary_decides_and_closes_through_the_flow(roster: Database, client: TestClient):
    places, pid = await ids(roster), await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    other = await raise_problem(roster, "DEMO0002", "GB001", RAISED, text="水管又冻裂了")
    secretary, responsible = await cadre_id(roster, "GB012"), await cadre_id(roster, "GB001")
    await sign_in(client, roster, "GB013")  # the specialist sees the queue, may not act: the machine says why
    page = await (await client.get(f"/dash/township/{places['dongfeng']}")).text()
    assert f'id="p{pid}"' in page and f"/dash/problem/{pid}/decide" not in page
    form = {"csrf": csrf_of(page), "responsible": str(responsible), "due_days": "15"}
    refused = await client.post(f"/dash/problem/{pid}/decide", data=form)
    assert refused.status == 409 and "只有本乡镇党委书记可以" in await refused.text()

    client.session.cookie_jar.clear()
    await sign_in(client, roster, "GB012")
    url = f"/dash/township/{places['dongfeng']}"
    page = await (await client.get(url)).text()
    token = csrf_of(page)
    assert (await client.post(f"/dash/problem/{pid}/decide", data={**form, "csrf": "0" * 40})).status == 403
    assert (
        await client.post(f"/dash/problem/{pid}/decide", data={k: v for k, v in form.items() if k != "csrf"})
    ).status == 403
    bad_due = await client.post(f"/dash/problem/{pid}/decide", data={**form, "csrf": token, "due_days": "9"})
    assert bad_due.status == 409 and "完成期限请选 7/15/30 天" in await bad_due.text()
    decided = await client.post(
        f"/dash/problem/{pid}/decide", data={**form, "csrf": token}, allow_redirects=False
    )
    assert decided.status == 303 and decided.headers["Location"].startswith(f"{url}?done=decide&p={pid}")
    no_note = await client.post(f"/dash/problem/{pid}/close", data={"csrf": token, "note": " "})
    assert no_note.status == 409 and "请写明处理结果" in await no_note.text()
    closed = await client.post(f"/dash/problem/{pid}/close", data={"csrf": token, "note": "已更换水管"})
    assert closed.status == 200 and "已销号" in await closed.text()
    merged = await client.post(f"/dash/problem/{other}/merge", data={"csrf": token, "into": str(pid)})
    assert merged.status == 409 and "只能合并到未化解的问题" in await merged.text()
    reopened = await client.post(f"/dash/problem/{pid}/reopen", data={"csrf": token, "note": "又漏水"})
    assert reopened.status == 200 and "已重新打开" in await reopened.text()
    async with roster.reading() as s:
        moves = (
            await s.execute(
                select(ProblemEvent.action, ProblemEvent.actor_id)
                .where(ProblemEvent.problem_id == pid)
                .order_by(ProblemEvent.id)
            )
        ).all()
    assert [tuple(m) for m in moves] == [
        ("escalate", responsible),
        ("decide", secretary),
        ("close", secretary),
        ("reopen", secretary),
    ]


def table_html(page: str, name: str) -> str:
    found = re.search(rf'<table data-table="{name}">.*?</table>', page, re.S)
    assert found, f"no {name} table"
    return found.group(0)


async def test_a_pages_tables_are_kept_a_while_and_a_move_on_the_page_refreshes_them(roster: Database):
    """A county page is several county-wide reports: they are kept ZOUFANG_WEB_CACHE_SECONDS (their time
    shown), so a problem raised meanwhile shows later; the secretary's own move shows at once."""
    url = f"/dash/township/{(await ids(roster))['dongfeng']}"
    responsible = str(await cadre_id(roster, "GB001"))
    for seconds in (3600, 0):
        pid = await raise_problem(roster, "DEMO0001", "GB001", RAISED, text=f"路灯坏了 {seconds}")
        app = make_app(roster, load_script(), dash_settings(web_cache_seconds=seconds), primary=False)
        async with TestClient(TestServer(app)) as client:
            await sign_in(client, roster, "GB012")
            first = await (await client.get(url)).text()
            assert re.search(r"数据时间 \d\d:\d\d:\d\d", first)
            await raise_problem(roster, "DEMO0002", "GB001", RAISED, text=f"水管冻裂 {seconds}")
            later = await (await client.get(url)).text()
            if seconds:
                assert table_html(later, "states") == table_html(first, "states")  # kept
                assert f"水管冻裂 {seconds}" in later  # the queue itself is always read afresh
            else:
                assert table_html(later, "states") != table_html(first, "states")
            form = {"csrf": csrf_of(later), "responsible": responsible, "due_days": "15"}
            moved = await client.post(f"/dash/problem/{pid}/decide", data=form)
            assert moved.status == 200
            assert table_html(await moved.text(), "states") != table_html(later, "states")


async def test_villagers_and_cadres_text_is_shown_as_text(roster: Database, client: TestClient):
    places = await ids(roster)
    async with roster.session() as s:
        await s.execute(
            update(Household)
            .where(Household.code == "DEMO0001")
            .values(head_name="<script>alert(1)</script>")
        )
    await raise_problem(roster, "DEMO0001", "GB001", RAISED, text='"><img src=x onerror=alert(2)>')
    await sign_in(client, roster, "GB012")
    for url in (f"/dash/village/{places['village']}", f"/dash/township/{places['dongfeng']}"):
        html = await (await client.get(url)).text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
        assert "<script>" not in html and "<img src=x" not in html, url


async def test_a_village_page_shows_each_households_latest_sms_answer(roster: Database, client: TestClient):
    places = await ids(roster)
    async with roster.session() as s:
        household = (await s.execute(select(Household).where(Household.code == "DEMO0001"))).scalar_one()
        for period, rating, day in (("2026Q3", "满意", 1), ("2026Q4", "不满意", 20)):
            at = datetime(2026, 11 if period == "2026Q4" else 8, day, tzinfo=UTC)
            s.add(
                Poll(
                    household_id=household.id,
                    village_id=household.village_id,
                    phone="+8613800138000",
                    period=period,
                    state="answered",
                    locale="zh_CN",
                    created_at=at,
                    send_after=at,
                    rating=rating,
                )
            )
    await sign_in(client, roster, "GB012")
    rows = (await (await client.get(f"/dash/village/{places['village']}/households.csv")).read()).decode()
    assert "最近短信评价" in rows.splitlines()[0]
    assert next(line for line in rows.splitlines() if "DEMO0001" in line).endswith(",2026Q4 不满意")
    assert next(line for line in rows.splitlines() if "DEMO0002" in line).endswith(",")
    english = await (await client.get(f"/dash/village/{places['village']}?lang=en")).text()
    assert "2026Q4 dissatisfied" in english


async def test_english_by_query_then_by_cookie(roster: Database, client: TestClient):
    await sign_in(client, roster, "GB028")
    english = await client.get("/dash/county/1?lang=en")
    assert "County overview" in await english.text() and "zoufang_lang=en" in english.headers["Set-Cookie"]
    assert "County overview" in await (await client.get("/dash/county/1")).text()
    assert "县级总览" in await (await client.get("/dash/county/1?lang=zh_CN")).text()


async def test_the_county_tables_are_the_cli_reports(roster: Database, db_path: Path, client: TestClient):
    await sign_in(client, roster, "GB028")
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    for table, args in (
        ("satisfaction", ("satisfaction", "--by", "township")),
        ("coverage", ("coverage",)),
        ("problems", ("problems", "--by", "township")),
        ("groups", ("households",)),
    ):
        cli = ok(zoufang(db_path.parent, "report", *args, "--format", "csv", env=env)).stdout
        downloaded = await client.get(f"/dash/county/1/{table}.csv")
        assert downloaded.headers["Content-Type"].startswith("text/csv")
        body = (await downloaded.read()).decode("utf-8")
        assert "\r\n" in body and body.replace("\r\n", "\n") == cli, table  # the subprocess reads text


async def test_a_table_as_the_clis_spreadsheet(roster: Database, db_path: Path, client: TestClient):
    from openpyxl import load_workbook

    await sign_in(client, roster, "GB028")
    downloaded = await client.get("/dash/county/1/groups.xlsx")
    assert downloaded.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    (db_path.parent / "web.xlsx").write_bytes(await downloaded.read())
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    ok(zoufang(db_path.parent, "report", "households", "--format", "xlsx", "--output", "cli.xlsx", env=env))
    web_sheet, cli_sheet = (load_workbook(db_path.parent / n).active for n in ("web.xlsx", "cli.xlsx"))
    assert [list(r) for r in web_sheet.iter_rows(values_only=True)] == [
        list(r) for r in cli_sheet.iter_rows(values_only=True)
    ]


async def test_the_table_cache_builds_once_for_waiting_requests_and_keeps_no_failure():
    import asyncio

    from bot.web.tables import Table, TableCache

    now = [0.0]
    cache, builds = TableCache(60, clock=lambda: now[0]), []

    async def build() -> Table:
        builds.append(now[0])
        await asyncio.sleep(0.01)
        return Table("t", str(len(builds)), [], [], [], "")

    first = await asyncio.gather(*(cache.get(("k",), build) for _ in range(5)))
    assert {t.title for t in first} == {"1"} and len(builds) == 1  # five requests, one build
    now[0] = 59.0
    assert (await cache.get(("k",), build)).title == "1"
    now[0] = 61.0
    assert (await cache.get(("k",), build)).title == "1"  # shown once more while it is built again
    await asyncio.sleep(0.05)
    assert (await cache.get(("k",), build)).title == "2"
    now[0] = 61.0 + 60 * TableCache.STALE_TIMES
    assert (await cache.get(("k",), build)).title == "3"  # far too old to show: the viewer waits

    async def broken() -> Table:
        raise RuntimeError("database locked")

    with pytest.raises(RuntimeError):
        await cache.get(("b",), broken)
    assert (await cache.get(("b",), build)).title == "4"  # the failure was not kept


async def test_a_long_queue_comes_in_pages_of_fifty_oldest_first(roster: Database, client: TestClient):
    url = f"/dash/township/{(await ids(roster))['dongfeng']}"
    pids = [
        await raise_problem(roster, "DEMO0001", "GB001", RAISED + timedelta(minutes=n), text=f"问题 {n}")
        for n in range(55)
    ]
    await sign_in(client, roster, "GB012")

    def cards(html: str) -> list[int]:
        return [int(found) for found in re.findall(r'id="p(\d+)"', html)]

    first = await (await client.get(url)).text()
    assert cards(first) == pids[:50]
    assert "共 55 个未化解问题（最早的在前），第 1/2 页" in first and "?page=2" in first
    second = await (await client.get(url + "?page=2")).text()
    assert cards(second) == pids[50:] and "?page=1" in second
    for odd in ("999", "0", "x", "1" * 30):  # out of range or not a number: the nearest page, never an error
        response = await client.get(f"{url}?page={odd}")
        assert response.status == 200
        assert cards(await response.text()) == (pids[50:] if odd == "999" else pids[:50])


async def test_each_table_with_a_chart_shows_the_clis_png(roster: Database, client: TestClient):
    places = await ids(roster)
    await sign_in(client, roster, "GB012")
    page = await (await client.get(f"/dash/township/{places['dongfeng']}")).text()
    charts = re.findall(r'<img class="chart" src="([^"]+\.png)"', page)
    assert (
        f"/dash/township/{places['dongfeng']}/coverage.png" in charts
    )  # no rows, no chart: satisfaction here
    for src in charts:
        response = await client.get(src)
        assert response.status == 200 and response.content_type == "image/png", src
        assert (await response.read()).startswith(b"\x89PNG\r\n\x1a\n")
    assert (
        await client.get(f"/dash/township/{places['other']}/satisfaction.png")
    ).status == 404  # not theirs
    assert (await client.get(f"/dash/township/{places['dongfeng']}/nothing.png")).status == 404
    client.session.cookie_jar.clear()
    response = await client.get(charts[0], allow_redirects=False)
    assert response.status == 303  # no session, no picture


async def test_serve_builds_the_county_overview_at_start_so_its_first_viewer_does_not_wait(
    roster: Database, monkeypatch: pytest.MonkeyPatch
):
    import asyncio

    from bot.web import tables

    built: list[str] = []
    real_build = tables.build

    async def counted(db, ctx, place, name, full=False):  # type: ignore[no-untyped-def]
        built.append(f"{place.kind}:{name}")
        return await real_build(db, ctx, place, name, full)

    monkeypatch.setattr(tables, "build", counted)
    app = make_app(roster, load_script(), dash_settings(), primary=False, prewarm=True)
    async with TestClient(TestServer(app)) as client:
        for _ in range(200):  # the build runs behind the start
            if "county:groups" in built:
                break
            await asyncio.sleep(0.02)
        assert {f"county:{name}" for name in tables.TABLES["county"]} <= set(built)
        built.clear()
        async with roster.reading() as s:
            centre = (
                (await s.execute(select(Cadre.code).where(Cadre.role == "督查指挥中心"))).scalars().first()
            )
        await sign_in(client, roster, centre)
        county = (await client.get("/dash/", allow_redirects=True)).url.path
        assert county.startswith("/dash/county/")
        page = await client.get(county)
        assert page.status == 200 and "数据时间" in await page.text()
        assert not [b for b in built if b.startswith("county:")]  # nothing rebuilt for the first viewer
