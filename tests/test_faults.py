"""Faults with real processes.

- `zoufang serve` killed with SIGKILL in the middle of a stream of signed inbound replies, then started again:
  every reply it answered 200 is stored once; every other is posted again (as Twilio retries) and stored once;
  Twilio's duplicate deliveries of replies already stored change nothing.
- `zoufang worker` killed with SIGKILL while it sends the outbox to the fake Twilio API, then started again:
  every message goes out, each once, but the one the killed worker had in flight, which may go twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from bot.demo import inbound_form, write_roster
from bot.roster_files import import_file
from storage.db import Database
from storage.models import OutboxMessage
from storage.outbox import enqueue
from tests.cli_support import COMMAND, clean_env
from tests.fake_twilio import FakeTwilio
from tests.test_serve_workers import children, free_port, start_serve, stop, wait_healthy

TOKEN = "fault-test-token"
REPLIES = 3000
CONCURRENCY = 40
TEXTS = ["1", "满意", "2", "3 路没修", "你好", "收到", "谢谢", "不满意"]


def replies(households: list[str]) -> list[dict[str, str]]:
    """REPLIES forms: half from the roster's households (no poll is waiting: only keywords would act), half
    from strangers, whose messages are counted one by one (a reply applied twice would count twice)."""
    rng = random.Random(11)
    forms = []
    for i in range(REPLIES):
        sender = rng.choice(households) if i % 2 else f"+861390000{i % 997:04d}"
        forms.append(inbound_form(f"SM{i:032x}", sender, rng.choice(TEXTS)))
    return forms


async def post_all(base: str, forms: list[dict[str, str]], public: str) -> dict[str, int]:
    """Post each form once (CONCURRENCY at a time); the status each got, or 0 when the connection failed."""
    validator = RequestValidator(TOKEN)
    url = public + "/sms/inbound"
    statuses: dict[str, int] = {}
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(session: aiohttp.ClientSession, form: dict[str, str]) -> None:
        async with slots:
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
            try:
                async with session.post(base + "/sms/inbound", data=form, headers=headers) as response:
                    await response.read()
                    statuses[form["MessageSid"]] = response.status
            except (TimeoutError, aiohttp.ClientError):
                statuses[form["MessageSid"]] = 0

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session, form) for form in forms))
    return statuses


async def scalar(db: Database, sql: str) -> Any:
    async with db.reading() as s:
        return (await s.execute(text(sql))).scalar()


async def twilio_sids(db: Database) -> Counter[str]:
    async with db.reading() as s:
        query = text("SELECT external_id FROM processed_updates WHERE source = 'twilio'")
        return Counter((await s.execute(query)).scalars())


def kill_all(pid: int) -> None:
    """SIGKILL to serve and its worker processes at once (a crash: nobody finishes anything)."""
    for victim in (pid, *children(pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


async def test_serve_killed_mid_stream_loses_and_doubles_no_reply(db: Database, tmp_path: Path):
    """On SQLite one process; on PostgreSQL `--workers 2`, all killed at once."""
    write_roster(tmp_path, random.Random(7))
    await import_file(db, "cadres", tmp_path / "cadres.csv", county="示范县")
    await import_file(db, "households", tmp_path / "households.csv")
    async with db.reading() as s:
        query = text("SELECT phone FROM households WHERE phone <> ''")
        households = list((await s.execute(query)).scalars())
    forms = replies(households)
    port = free_port()
    base, public = f"http://127.0.0.1:{port}", "https://zoufang.example.cn"
    env = clean_env(tmp_path, ZOUFANG_DB_URL=db.url, TWILIO_AUTH_TOKEN=TOKEN, PUBLIC_BASE_URL=public + "/")
    workers = ("--workers", "2") if db.engine.dialect.name == "postgresql" else ()
    args = ("--host", "127.0.0.1", "--port", str(port), *workers)

    first, log = await start_serve(tmp_path, env, *args)
    await wait_healthy(base, first, log)
    stream = asyncio.create_task(post_all(base, forms, public))
    while await scalar(db, "SELECT count(*) FROM processed_updates") < REPLIES // 3:
        await asyncio.sleep(0.01)
    kill_all(first.pid)  # mid-stream: some requests in a batch, some in flight, some not sent
    await first.wait()
    statuses = await stream
    answered = {sid for sid, status in statuses.items() if status == 200}
    assert 0 < len(answered) < REPLIES, "the kill came before or after the stream"
    assert answered <= set(await twilio_sids(db))  # nothing answered 200 was lost

    second, log = await start_serve(tmp_path, env, *args)
    try:
        await wait_healthy(base, second, log)
        # Twilio posts again what got no 200, and (duplicate deliveries) some of what did
        again = [f for f in forms if f["MessageSid"] not in answered] + [
            f for i, f in enumerate(forms) if f["MessageSid"] in answered and i % 5 == 0
        ]
        retried = await post_all(base, again, public)
        assert set(retried.values()) == {200}
    finally:
        assert await stop(second) == 0

    stored = await twilio_sids(db)
    assert len(stored) == REPLIES and set(stored.values()) == {1}  # every reply stored, each once
    strangers = sum(1 for f in forms if f["From"] not in set(households))
    counted = await scalar(db, "SELECT sum(messages) FROM unknown_senders")
    assert counted == strangers  # applied once each: none lost, none doubled
    print(
        f"killed after {len(answered)} of {REPLIES} answered 200; {len(again)} posted again; lost 0, doubled 0"
    )


# --- zoufang worker killed while sending --------------------------------------------------------------------

OUTBOX = 2000
SEND_TIMEOUT = "1"  # ZOUFANG_SEND_TIMEOUT: a row a dead sender claimed 1 + 10 s ago is sent again


async def queue_outbox(db: Database, count: int) -> list[str]:
    """`count` SMS in the outbox, each with a body of its own (so the fake API's log says which went twice)."""
    now = datetime.now(UTC)
    bodies = [f"您好，这是第 {i} 条回访短信。" for i in range(count)]

    def write(sync: Session) -> None:
        for i, body in enumerate(bodies):
            enqueue(sync, f"+8613{i:09d}", body, "poll/ask", now)

    async with db.session() as s:
        await s.run_sync(write)
    return bodies


async def outbox_states(db: Database) -> Counter[str]:
    async with db.reading() as s:
        rows = (await s.execute(select(OutboxMessage.status))).scalars()
        return Counter(rows)


async def bodies_sending(db: Database) -> set[str]:
    async with db.reading() as s:
        query = select(OutboxMessage.body).where(OutboxMessage.status == "sending")
        return set((await s.execute(query)).scalars())


async def start_worker(folder: Path, env: dict[str, str], name: str) -> asyncio.subprocess.Process:
    with (folder / f"{name}.log").open("w") as out:
        return await asyncio.create_subprocess_exec(
            *COMMAND, "worker", cwd=folder, env=env, stdout=out, stderr=out
        )


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_worker_killed_mid_send_sends_each_sms_once_but_the_one_in_flight(
    db: Database, tmp_path: Path, fake_twilio: FakeTwilio
):
    """SIGKILL of `zoufang worker` (on PostgreSQL one of two, sharing the outbox) while it sends: after a restart
    every message goes out, each once, except the one a killed worker had in flight, at most twice."""
    bodies = await queue_outbox(db, OUTBOX)
    many = db.engine.dialect.name == "postgresql"  # SQLite has one writer: one sender
    env = clean_env(
        tmp_path,
        ZOUFANG_DB_URL=db.url,
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER="+8610690000",
        TWILIO_API_BASE=fake_twilio.base_url,
        ZOUFANG_SMS_RATE="2000",
        ZOUFANG_SEND_TIMEOUT=SEND_TIMEOUT,
    )
    workers = [await start_worker(tmp_path, env, f"worker{i}") for i in range(2 if many else 1)]
    try:

        async def a_third_sent() -> bool:
            return len(fake_twilio.messages) >= OUTBOX // 3

        await until(a_third_sent, 60, "a third of the outbox to go out")
        os.kill(workers[0].pid, signal.SIGKILL)  # between claims, mid-call or between the call and its record
        await workers[0].wait()
        in_flight = await bodies_sending(db)
        await asyncio.sleep(float(SEND_TIMEOUT) + 10 + 0.5)  # what it claimed is now a dead sender's
        workers[0] = await start_worker(tmp_path, env, "restarted")

        async def restarted_is_up() -> bool:  # its SIGTERM handler is set before it says so
            return "sending SMS at" in (tmp_path / "restarted.log").read_text()

        await until(restarted_is_up, 60, "the restarted worker to start")

        async def all_sent() -> bool:
            return (await outbox_states(db)) == Counter({"sent": OUTBOX})

        await until(all_sent, 120, "every message to be sent")
    finally:
        for worker in workers:
            assert await stop(worker) in (0, -signal.SIGKILL), (tmp_path / "restarted.log").read_text()
    sent = Counter(m["Body"] for m in fake_twilio.messages)
    assert set(sent) == set(bodies)  # none lost
    twice = {body for body, n in sent.items() if n > 1}
    assert max(sent.values()) <= 2
    # a repeat is only ever of a message a killed worker had claimed: one, on PostgreSQL one per live worker
    # claimed at that moment too (those are finished by their worker, not sent again)
    assert twice <= in_flight and len(twice) <= 1
    print(f"sent {len(fake_twilio.messages)} for {OUTBOX} messages; in flight at the kill: {len(in_flight)}")
