"""`zoufang invite`, `zoufang telegram set-webhook` and `zoufang serve` against the fake Bot API.

`serve` always runs as a subprocess; `invite` and `telegram set-webhook` in this process, but for one test each
in a real process (`process=True`)."""

from __future__ import annotations

import asyncio
import random
import re
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.demo import write_roster
from tests.cli_support import COMMAND, clean_env, ok, query, zoufang
from tests.fake_telegram import FakeTelegram


@pytest.fixture
def county(tmp_path: Path) -> Path:
    write_roster(tmp_path, random.Random(3))
    ok(zoufang(tmp_path, "init"))
    ok(zoufang(tmp_path, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(tmp_path, "import", "households", "households.csv"))
    return tmp_path


async def cli(folder: Path, *args: str, process: bool = False, **env: str) -> tuple[int, str, str]:
    """Run zoufang without blocking the event loop the fake Bot API server runs on: in this process (in a
    thread), or with `process` in a real one."""
    if not process:
        done = await asyncio.to_thread(zoufang, folder, *args, env=clean_env(folder, **env))
        return done.returncode, done.stdout, done.stderr
    child = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        cwd=folder,
        env=clean_env(folder, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    return child.returncode or 0, out.decode(), err.decode()


def telegram_env(fake: FakeTelegram, **extra: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE": fake.base_url,
        "TELEGRAM_WEBHOOK_SECRET": "s3cret-webhook",
        **extra,
    }


async def test_invite_prints_a_code_and_the_deep_link(county: Path, fake_telegram: FakeTelegram):
    """`zoufang invite` in a real process (its end-to-end test)."""
    code, out, err = await cli(county, "invite", "GB001", process=True, **telegram_env(fake_telegram))
    assert code == 0, err
    invite = re.search(r"/start ([A-Z2-9]{8})", out)
    assert invite, out
    assert f"https://t.me/zoufang_test_bot?start={invite.group(1)}" in out
    assert "72 小时内有效" in out
    stored = query(county / "z.db", "SELECT code_hash, used_at FROM invites")
    assert len(stored) == 1 and stored[0][1] is None and invite.group(1) not in stored[0][0]


async def test_invite_offline_and_for_an_unknown_cadre(county: Path):
    code, out, _ = await cli(county, "invite", "GB001")
    assert code == 0 and "/start " in out and "t.me" not in out
    code, out, err = await cli(county, "invite", "NOBODY")
    assert code == 1 and err.strip().count("\n") == 0 and "NOBODY" in err


async def test_set_webhook_registers_the_public_url_with_the_secret(
    tmp_path: Path, fake_telegram: FakeTelegram
):
    """`zoufang telegram set-webhook` in a real process (its end-to-end test)."""
    env = telegram_env(fake_telegram, PUBLIC_BASE_URL="https://zoufang.example.cn/")
    code, out, err = await cli(tmp_path, "telegram", "set-webhook", process=True, **env)
    assert "已注册 webhook" in out
    assert code == 0, err
    assert fake_telegram.webhook["url"] == "https://zoufang.example.cn/telegram/webhook"
    assert fake_telegram.webhook["secret_token"] == "s3cret-webhook"
    assert fake_telegram.sent("setMyCommands")


async def test_set_webhook_and_polling_need_their_settings(tmp_path: Path, fake_telegram: FakeTelegram):
    code, _, err = await cli(tmp_path, "telegram", "set-webhook", **telegram_env(fake_telegram))
    assert code == 1 and "PUBLIC_BASE_URL" in err and err.strip().count("\n") == 0
    code, _, err = await cli(tmp_path, "serve", "--polling", process=True)  # serve: never in this process
    assert code == 1 and "TELEGRAM_BOT_TOKEN" in err
    env = telegram_env(fake_telegram)
    env["TELEGRAM_WEBHOOK_SECRET"] = ""
    code, _, err = await cli(tmp_path, "serve", "--port", str(free_port()), process=True, **env)
    assert code == 1 and "TELEGRAM_WEBHOOK_SECRET" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_healthy(url: str, process: asyncio.subprocess.Process) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            if process.returncode is not None:
                raise AssertionError("serve exited")
            try:
                async with session.get(url) as response:
                    await response.read()
                    return response
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError("serve did not answer /healthz")


async def test_serve_without_a_token_serves_health_and_says_so(county: Path):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        "serve",
        "--port",
        str(port),
        cwd=county,
        env=clean_env(county),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        response = await wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert response.status == 200
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/telegram/webhook") as r,
        ):
            assert r.status == 404  # no Telegram route without a token
    finally:
        process.terminate()
        _, err = await process.communicate()
    assert "without the Telegram route" in err.decode()


async def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path):
    port = free_port()
    missing = tmp_path / "no-such-dir" / "x.db"
    env = clean_env(tmp_path, ZOUFANG_DB_URL=f"postgresql+asyncpg://nobody@127.0.0.1:1/{missing.name}")
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        "serve",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        response = await wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert response.status == 503
    finally:
        process.terminate()
        await process.communicate()
