"""`zoufang serve --workers N` as a real subprocess: one port served by several processes.

The PostgreSQL + Redis tests (skipped unless ZOUFANG_TEST_PG_URL and ZOUFANG_TEST_REDIS_URL are set) start
`zoufang serve --workers 2` on a fresh database with the demo roster, Redis and the fake Bot API server of this
process, and post updates to the webhook over fresh connections, so that both workers take them. The others
need neither server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import TELEGRAM_WEBHOOK
from bot.demo import write_roster
from bot.roster_files import import_file
from storage.db import Database
from storage.models import Answer, Cadre, Visit
from tests.cli_support import COMMAND, clean_env
from tests.conftest import PG_URL, REDIS_URL, _pg_admin, _pg_url
from tests.fake_telegram import (
    FakeTelegram,
    callback_update,
    carry_out_webhook_answer,
    location_update,
    message_update,
    photo_update,
)
from tests.test_telegram import visit_steps

SECRET = "workers-webhook-secret"
WORKERS = 2
IDLE_RSS_LIMIT_MB = 150
needs_servers = pytest.mark.skipif(
    not (PG_URL and REDIS_URL), reason="ZOUFANG_TEST_PG_URL and ZOUFANG_TEST_REDIS_URL are not both set"
)


# --- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB: resident, and resident with the pages shared with the other workers split between them."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    pss = rss
    with contextlib.suppress(OSError, AttributeError):
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        pss = int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))  # type: ignore[union-attr]
    return rss / 1024, pss / 1024


async def start_serve(
    folder: Path, env: dict[str, str], *args: str
) -> tuple[asyncio.subprocess.Process, Path]:
    log = folder / "serve.log"
    with log.open("w") as out:  # a file, not a pipe nobody reads: a full pipe would stall the server
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "serve", *args, cwd=folder, env=env, stdout=out, stderr=out
        )
    return process, log


async def healthz(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(base + "/healthz") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def wait_healthy(base: str, process: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(aiohttp.ClientConnectionError):
                await healthz(session, base)
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"serve did not answer /healthz:\n{log.read_text()}")


async def stop(process: asyncio.subprocess.Process, timeout: float = 20.0) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode  # type: ignore[return-value]


async def pids_answering(base: str, want: int, requests: int = 400) -> Counter[int]:
    """Which processes answer /healthz, over fresh connections (the kernel hands each to one worker)."""
    seen: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(requests // 20):
            answers = await asyncio.gather(*(healthz(session, base) for _ in range(20)))
            seen.update(a["pid"] for a in answers)
            if len(seen) >= want:
                break
    return seen


# --- a cluster: PostgreSQL, Redis, the fake Bot API and `zoufang serve --workers 2` ------------------------------


@dataclass
class Cluster:
    base: str
    process: asyncio.subprocess.Process
    log: Path
    fake: FakeTelegram
    db: Database
    env: dict[str, str]
    folder: Path
    session: aiohttp.ClientSession = field(init=False)

    async def post(self, update: dict[str, Any]) -> int:
        """Post an update as Telegram does (a new connection each time), and carry out a method given as
        the webhook's answer, so the fake Bot API server sees every message."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with self.session.post(self.base + TELEGRAM_WEBHOOK, json=update, headers=headers) as response:
            await carry_out_webhook_answer(response, self.fake, self.session)
            return response.status

    async def invite(self, cadre: str) -> str:
        """`zoufang invite CADRE` in a subprocess: the one-time code it prints."""
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "invite", cadre, cwd=self.folder, env=self.env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        assert process.returncode == 0
        found = re.search(r"/start ([A-Z2-9]{8})", out.decode())
        assert found, out.decode()
        return found.group(1)


@pytest.fixture
async def cluster(pg_template: str, fake_telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Cluster]:
    from redis.asyncio import Redis

    name = f"zoufang_w{os.getpid()}_{random.randrange(10**9)}"
    await _pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    url = _pg_url(name)
    db = Database(url)
    write_roster(tmp_path, random.Random(7))
    await import_file(db, "cadres", tmp_path / "cadres.csv", county="示范县")
    await import_file(db, "households", tmp_path / "households.csv")
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    env = clean_env(
        tmp_path,
        ZOUFANG_DB_URL=url,
        ZOUFANG_REDIS_URL=REDIS_URL,
        TELEGRAM_BOT_TOKEN=fake_telegram.token,
        TELEGRAM_API_BASE=fake_telegram.base_url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    port = free_port()
    process, log = await start_serve(tmp_path, env, "--workers", str(WORKERS), "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    running = Cluster(base, process, log, fake_telegram, db, env, tmp_path)
    try:
        await wait_healthy(base, process, log)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            running.session = session
            yield running
    finally:
        await stop(process)
        await db.close()
        await redis.flushdb()
        await redis.aclose()
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Chat:
    """One cadre's private chat with the bot, posted through the cluster's webhook."""

    def __init__(self, cluster: Cluster, user: int) -> None:
        self.cluster, self.user = cluster, user

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.cluster.fake.calls
            if c.ok and c.method.lower() == method.lower() and c.params.get("chat_id") == self.user
        ]

    async def post(self, update: dict[str, Any]) -> None:
        assert await self.cluster.post(update) == 200

    async def say(self, text: str) -> str:
        before = len(self.calls("sendMessage"))
        await self.post(message_update(self.user, text))
        sent = self.calls("sendMessage")[before:]
        return sent[-1]["text"] if sent else ""

    async def tap(self, data: str) -> str:
        before = len(self.calls("sendMessage"))
        await self.post(callback_update(self.user, data))
        sent = self.calls("sendMessage")[before:]
        return sent[-1]["text"] if sent else ""

    def markup(self) -> dict[str, Any]:
        """The keyboard the chat shows now: the last message's, or its last edit (a tick)."""
        shown = ("sendmessage", "editmessagereplymarkup")
        for c in reversed(self.cluster.fake.calls):
            if c.ok and c.params.get("chat_id") == self.user and c.method.lower() in shown:
                return c.params.get("reply_markup") or {}
        return {}

    def buttons(self) -> list[tuple[str, str]]:
        rows = self.markup().get("inline_keyboard", [])
        return [(b["text"], b["callback_data"]) for row in rows for b in row]

    def button(self, label: str) -> str:
        for text, data in self.buttons():
            if label in text:
                return data
        raise AssertionError(f"no button {label!r} in {self.markup()}")

    async def bind(self, cadre: str) -> None:
        reply = await self.say(f"/start {await self.cluster.invite(cadre)}")
        assert reply.startswith("绑定成功"), reply

    async def pick_first_household(self) -> None:
        assert "请选择要走访的户" in await self.say("/visit")
        assert "请发送您当前的位置" in await self.tap(self.markup()["inline_keyboard"][0][0]["callback_data"])

    async def step(self, kind: str, value: Any) -> None:
        if kind == "say":
            await self.say(value)
        elif kind == "tap":
            await self.tap(self.button(value))
        elif kind == "toggle":
            before = len(self.calls("editMessageReplyMarkup"))
            await self.post(callback_update(self.user, self.button(value)))
            assert len(self.calls("editMessageReplyMarkup")) == before + 1
        elif kind == "location":
            await self.post(location_update(self.user, *value))
        elif kind == "photo":
            await self.post(photo_update(self.user, value))


async def answers_of(db: Database, cadre_code: str) -> tuple[Visit, dict[str, list[Any]]]:
    async with db.reading() as s:
        visit = (
            await s.execute(
                select(Visit).join(Cadre, Visit.cadre_id == Cadre.id).where(Cadre.code == cadre_code)
            )
        ).scalar_one()
        rows = (
            await s.execute(select(Answer).where(Answer.visit_id == visit.id).order_by(Answer.id))
        ).scalars()
        answers: dict[str, list[Any]] = {}
        for a in rows:
            value = next(
                (v for v in (a.value_int, a.value_real, a.value_bool, a.value_text) if v is not None), None
            )
            answers.setdefault(f"{a.field}[{a.item}]", []).append(value)
    return visit, answers


# --- with PostgreSQL and Redis ---------------------------------------------------------------------------------


@needs_servers
async def test_two_workers_share_the_port_stay_small_and_stop_on_sigterm(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
):
    parent = cluster.process.pid
    seen = await pids_answering(cluster.base, WORKERS)
    workers = children(parent)
    assert len(workers) == WORKERS and set(seen) == workers, (seen, workers)
    await asyncio.sleep(2)  # idle: started, answered, nothing to do
    memory = {pid: memory_mb(pid) for pid in (parent, *sorted(workers))}
    with capsys.disabled():
        print(
            "\nidle memory, MB (RSS / PSS): "
            + ", ".join(
                f"{'parent' if pid == parent else 'worker'} {pid}: {rss:.0f} / {pss:.0f}"
                for pid, (rss, pss) in memory.items()
            )
            + f"; /healthz answers by worker: {dict(seen)}"
        )
    assert all(memory[pid][0] < IDLE_RSS_LIMIT_MB for pid in workers), memory
    assert memory[parent][0] < IDLE_RSS_LIMIT_MB, memory

    started = time.monotonic()
    assert await stop(cluster.process) == 0, cluster.log.read_text()
    took = time.monotonic() - started
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert not any(alive(pid) for pid in workers)
    log = cluster.log.read_text()
    assert "worker 0 started" in log and "worker 1 started" in log and "Traceback" not in log
    assert log.count(" stopped") == WORKERS


@needs_servers
async def test_chats_walk_their_visits_in_order_whichever_worker_takes_each_update(cluster: Cluster):
    """Four cadres walk a visit at once, each chat one update at a time as Telegram delivers (it sends a chat's
    next update after the webhook answered the last); consecutive updates land on either worker. The picker's
    search lives in Redis, and a redelivery storm (one update posted six times at once) is applied once."""
    cadres = {"GB001": 8101, "GB004": 8104, "GB007": 8107, "GB014": 8114}

    async def walk(cadre: str, user: int) -> None:
        chat = Chat(cluster, user)
        await chat.bind(cadre)
        for _ in range(3):  # FSM state (the search) written by one worker, read by whichever takes the tap
            await chat.say("/visit 不存在的名字")
            before = len(chat.calls("editMessageText"))
            await chat.post(callback_update(user, "p:0"))
            assert "没有找到符合的户" in chat.calls("editMessageText")[before]["text"]
        await chat.pick_first_household()
        steps = visit_steps()
        await chat.step(*steps[0])  # the location
        storm = message_update(user, steps[1][1])  # "3" members: Telegram redelivers it while it is handled
        assert steps[1] == ("say", "3")
        await asyncio.gather(*(chat.post(storm) for _ in range(6)))
        for kind, value in steps[2:]:
            await chat.step(kind, value)
        assert "请核对本次走访" in chat.calls("sendMessage")[-1]["text"]
        assert (await chat.tap(chat.button("提交"))).startswith("走访已提交")

    await asyncio.gather(*(walk(cadre, user) for cadre, user in cadres.items()))

    stored = [await answers_of(cluster.db, cadre) for cadre in cadres]
    visit, answers = stored[0]
    assert visit.status == "submitted" and visit.channel == "telegram" and visit.satisfaction == "基本满意"
    assert answers["members[-1]"] == [3] and answers["labour_members[-1]"] == [2]
    assert answers["main_cause[-1]"] == ["因病"] and answers["housing_photo[-1]"] == ["AgAD-house"]
    for other_visit, other in stored[1:]:
        assert other_visit.status == "submitted"
        assert other == answers  # the same inputs, in the same order, applied once each


@needs_servers
async def test_a_burst_of_taps_in_one_chat_is_applied_one_at_a_time_across_workers(cluster: Cluster):
    """Ten ticks of a several-of question posted at once, to both workers. The ticks are kept in the FSM state
    (Redis): two workers handling the same chat at once would each read it, tick, write, and lose one tick.
    RedisEventIsolation handles one chat's updates one at a time, so each tick counts: every option tapped
    (from the keyboard as first shown: each tap says "tick it") ends ticked, whatever order they came in."""
    chat = Chat(cluster, 8201)
    await chat.bind("GB001")
    await chat.pick_first_household()
    for kind, value in visit_steps()[:3]:  # location, 3 members, 2 labour
        await chat.step(kind, value)
    await chat.step("tap", "因病")
    options = [(text, data) for text, data in chat.buttons() if data.startswith("t:")]
    assert len(options) >= 4, options
    taps = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]  # not 3: 无 excludes the others
    before = len(chat.calls("editMessageReplyMarkup"))
    updates = [callback_update(chat.user, options[i][1]) for i in taps]
    await asyncio.gather(*(chat.post(update) for update in updates))
    assert len(chat.calls("editMessageReplyMarkup")) == before + len(updates)
    ticked = {options[i][0][2:] for i in set(taps)}
    shown = {text[2:] for text, data in chat.buttons() if data.startswith("t:") and text.startswith("☑")}
    assert shown == ticked
    await chat.tap(chat.button("完成"))
    async with cluster.db.reading() as s:
        session = json.loads((await s.execute(select(Visit))).scalar_one().session)
    assert set(session["answers"][options[0][1].split(":")[2]]) == ticked


@needs_servers
async def test_a_language_switched_on_one_worker_holds_on_the_other_at_once(cluster: Cluster):
    """Each worker remembers who is behind a Telegram user for a while; a change made through one worker
    (/lang, a new binding) bumps a generation in Redis, so the other drops its copy before the next update."""
    chat = Chat(cluster, 8301)
    await chat.bind("GB004")
    for _ in range(6):  # both workers now remember the cadre, in Chinese
        assert "GB004" in await chat.say("/whoami")
    assert await chat.say("/lang en") == "Language set to English."
    for _ in range(6):
        assert "Choose a household" in await chat.say("/visit")


# --- without PostgreSQL or Redis -------------------------------------------------------------------------------


def no_servers_env(folder: Path, **extra: str) -> dict[str, str]:
    return clean_env(folder, **extra)


async def run_cli(folder: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *COMMAND, *args, cwd=folder, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, err.decode()


async def test_several_workers_refuse_polling_in_one_line(tmp_path: Path):
    code, err = await run_cli(tmp_path, no_servers_env(tmp_path), "serve", "--workers", "2", "--polling")
    assert code == 1 and err.strip().count("\n") == 0 and "--polling" in err and "--workers 1" in err


async def test_several_workers_with_a_bot_need_redis(tmp_path: Path):
    env = no_servers_env(
        tmp_path, TELEGRAM_BOT_TOKEN="123456:TEST-token", TELEGRAM_WEBHOOK_SECRET="s", ZOUFANG_REDIS_URL=""
    )
    code, err = await run_cli(tmp_path, env, "serve", "--workers", "2", "--port", str(free_port()))
    assert code == 1 and err.strip().count("\n") == 0 and "ZOUFANG_REDIS_URL" in err


async def test_a_taken_port_is_one_line(tmp_path: Path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = await run_cli(
            tmp_path, no_servers_env(tmp_path), "serve", "--workers", "2", "--port", str(port)
        )
    lines = err.strip().splitlines()
    assert (
        code == 1 and lines[-1].startswith(f"zoufang: 无法监听 127.0.0.1:{port}：") and "Traceback" not in err
    )


async def test_one_worker_is_one_process_as_before(tmp_path: Path):
    env = no_servers_env(tmp_path)
    port = free_port()
    process, log = await start_serve(tmp_path, env, "--workers", "1", "--port", str(port))
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, log)
        seen = await pids_answering(f"http://127.0.0.1:{port}", 1, requests=20)
        assert set(seen) == {process.pid} and children(process.pid) == set()
    finally:
        process.terminate()
        await process.wait()
    text = log.read_text()
    assert "zoufang serving on http://127.0.0.1:" in text and "warning" not in text
    assert re.search(r"INFO \[\d+\]", text) is None  # the log lines of one process name no pid


async def test_a_worker_that_dies_is_started_again_on_sqlite_with_a_warning(tmp_path: Path):
    env = no_servers_env(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, log = await start_serve(tmp_path, env, "--workers", "2", "--port", str(port))
    try:
        await wait_healthy(base, process, log)
        for _ in range(100):
            if log.read_text().count("worker serving on") == 2:
                break
            await asyncio.sleep(0.1)
        assert log.read_text().count("Telegram outbox messages stay queued") == 1  # worker 0's sender only
        workers = children(process.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        for _ in range(100):
            now = children(process.pid)
            if len(now) == 2 and victim not in now:
                break
            await asyncio.sleep(0.1)
        assert len(now) == 2 and victim not in now, now
        seen = await pids_answering(base, 2)
        assert set(seen) == now
        assert await stop(process) == 0
    finally:
        await stop(process)
    text = log.read_text()
    assert text.splitlines()[0] == (
        "zoufang: warning: SQLite has one writer: the 2 workers only queue on its lock (PostgreSQL uses the cores)"
    )
    assert f"(pid {victim}) died with exit code -9: starting it again" in text


def test_aiogram_is_imported_lean_and_every_model_still_builds(tmp_path: Path):
    """bot.channels.telegram.lean: aiogram's models are built when first used (the RSS above depends on it); every one of
    them can still be built from the namespace recorded for it."""
    import subprocess
    import sys

    program = """
import re
from pydantic import BaseModel
from bot.channels.telegram.lean import import_aiogram

def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024

before = rss()
import_aiogram()
import aiogram.methods as M
import aiogram.types as T
lean = rss() - before
assert T.Update.__pydantic_complete__ and not T.Message.__pydantic_complete__
assert not M.SendMessage.__pydantic_complete__
built = 0
for module in (T, M):
    for name in module.__all__:
        model = getattr(module, name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            model.model_rebuild()
            assert model.__pydantic_complete__, name
            built += 1
print(lean, rss() - before, built)
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert done.returncode == 0, done.stderr
    lean, eager, built = map(int, done.stdout.split())
    assert built > 500 and lean < eager - 50, (lean, eager, built)


async def test_the_workers_stop_when_the_parent_is_killed(tmp_path: Path):
    """SIGKILL leaves the parent no chance to stop them: the kernel sends them SIGTERM (PR_SET_PDEATHSIG)."""
    port = free_port()
    process, log = await start_serve(
        tmp_path, no_servers_env(tmp_path), "--workers", "2", "--port", str(port)
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, log)
        workers = children(process.pid)
        assert len(workers) == 2
        process.kill()
        await process.wait()
        for _ in range(100):
            if not any(alive(pid) for pid in workers):
                break
            await asyncio.sleep(0.1)
        assert not any(alive(pid) for pid in workers), log.read_text()
    finally:
        await stop(process)
