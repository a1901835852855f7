"""The dashboard in real headless Chromium (Debian's `chromium`, driven by playwright): a county officer signs in
through a one-time link printed by `zoufang web invite` (its page's button), reads the overview (its figures are the CLI report's),
downloads a table as the CLI's CSV and switches language; a township secretary decides and closes a problem
through the township page's forms. A screenshot of the overview goes to tests/artifacts/."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import make_app
from bot.settings import Settings
from storage.db import Database, sqlite_url
from survey.script import load_script
from tests.cli_support import clean_env, ok, query, zoufang
from tests.test_escalation import raise_problem
from tests.test_problem_cli import RAISED

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing (apt-get install -y chromium; .ci/run does it)",
)


@pytest.fixture
async def demo(tmp_path: Path, backend: str) -> AsyncIterator[tuple[Database, dict[str, str]]]:
    """The demo county (visits, SMS polls, problems) in a SQLite file, as `zoufang demo` builds it."""
    if backend != "sqlite":
        pytest.skip("the demo database is SQLite")
    path = tmp_path / "demo.db"
    env = clean_env(tmp_path, ZOUFANG_DB_URL=sqlite_url(path), ZOUFANG_WEB_SECRET="browser-test-secret")
    ok(zoufang(tmp_path, "demo", "--db", str(path), "--visits", "12", "--seed", "3", env=env, timeout=120))
    db = Database(sqlite_url(path))
    yield db, env
    await db.close()


@pytest.fixture
async def server(demo: tuple[Database, dict[str, str]]) -> AsyncIterator[str]:
    db, env = demo
    settings = replace(Settings(), web_secret=env["ZOUFANG_WEB_SECRET"])
    test_server = TestServer(make_app(db, load_script(), settings, primary=False))
    await test_server.start_server()
    yield str(test_server.make_url("")).rstrip("/")
    await test_server.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        await chromium.close()


def invite(env: dict[str, str], folder: Path, base: str, code: str) -> str:
    printed = ok(zoufang(folder, "web", "invite", code, env={**env, "PUBLIC_BASE_URL": base})).stdout
    return printed.splitlines()[0]


async def sign_in(page: Any, link: str) -> None:
    """Open the link (a page with one button; opening it spends nothing) and press the button."""
    await page.goto(link)
    assert "/dash/login/" in page.url
    await page.locator("#confirm").click()
    await page.wait_for_url(lambda url: "/dash/login" not in url)


def cli_rows(env: dict[str, str], folder: Path, *args: str) -> list[list[str]]:
    """The data rows of `zoufang report … --format csv` (up to the blank line before the notes)."""
    text = ok(zoufang(folder, "report", *args, "--format", "csv", env=env)).stdout.removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[: rows.index([])] if [] in rows else rows


async def table_rows(page: Any, name: str) -> list[list[str]]:
    header = await page.locator(f'table[data-table="{name}"] thead th').all_inner_texts()
    body = []
    for row in await page.locator(f'table[data-table="{name}"] tbody tr').all():
        body.append([cell.strip() for cell in await row.locator("td").all_inner_texts()])
    return [header, *body]


async def test_county_overview_download_and_language(demo, server: str, browser: Any, tmp_path: Path):
    _, env = demo
    page = await (await browser.new_context(accept_downloads=True)).new_page()
    await sign_in(page, invite(env, tmp_path, server, "GB028"))  # 督查指挥中心: the county
    assert "/dash/county/" in page.url
    assert "县级总览" in await page.locator("h1").inner_text()

    satisfaction = cli_rows(env, tmp_path, "satisfaction", "--by", "township")
    shown = await table_rows(page, "satisfaction")
    assert shown == satisfaction and shown[-1][0] == "合计" and int(shown[-1][1]) > 0  # n of the SMS answers
    warned = cli_rows(env, tmp_path, "households", "--warning")
    assert await page.locator("#warned b").inner_text() == str(len(warned) - 1)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    assert (ARTIFACTS / "overview.png").stat().st_size > 10_000

    async with page.expect_download() as download_info:
        await page.locator("#t-coverage a.download[href$='.csv']").click()
    saved = tmp_path / "coverage.csv"
    await (await download_info.value).save_as(saved)
    cli = ok(zoufang(tmp_path, "report", "coverage", "--format", "csv", env=env)).stdout
    assert saved.read_bytes().decode("utf-8").replace("\r\n", "\n") == cli

    await page.locator("#lang").click()
    assert "County overview" in await page.locator("h1").inner_text()
    await page.locator("a", has_text="东风镇").first.click()
    assert "Township" in await page.locator("h1").inner_text() and "Meeting calendar" in await page.content()
    await page.locator("#lang").click()
    assert "乡镇" in await page.locator("h1").inner_text()


async def test_a_secretary_decides_and_closes_in_the_browser(demo, server: str, browser: Any, tmp_path: Path):
    db, env = demo
    pid = await raise_problem(db, "DEMO0001", "GB001", RAISED, text="自来水管冻裂")
    page = await (await browser.new_context()).new_page()
    await sign_in(page, invite(env, tmp_path, server, "GB012"))  # 东风镇's party secretary
    card = page.locator(f"#p{pid}")
    assert "自来水管冻裂" in await card.inner_text()

    decide = card.locator("form.decide")
    options = await decide.locator('select[name="responsible"] option').all_inner_texts()
    await decide.locator('select[name="responsible"]').select_option(
        label=next(o for o in options if o.startswith("GB001"))
    )
    await decide.locator('select[name="due_days"]').select_option("15")
    await decide.locator("button").click()
    assert f"已决定 #{pid}" in await page.locator("#notice").inner_text()

    await page.locator(f"#p{pid} form.close button").click()  # no note: the machine's reason, nothing moved
    assert "请写明处理结果" in await page.locator("#notice").inner_text()
    await page.locator(f"#p{pid} form.close input[name=note]").fill("已更换水管")
    await page.locator(f"#p{pid} form.close button").click()
    assert f"已销号 #{pid}" in await page.locator("#notice").inner_text()
    path = Path(env["ZOUFANG_DB_URL"].split("///", 1)[1])
    assert query(path, "SELECT status, resolution FROM problems WHERE id = ?", pid) == [
        ("closed", "已更换水管")
    ]
    actions = query(path, "SELECT action FROM problem_events WHERE problem_id = ? ORDER BY id", pid)
    assert [a for (a,) in actions] == ["escalate", "decide", "close"]
