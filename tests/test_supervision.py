"""Background tasks never die silently (bot.jobs.supervise): a real `zoufang serve` whose SQLite database another
process locks logs the sender's failure, answers /healthz 503 naming the stuck task, and recovers by itself once
the lock is gone; a task that raises is logged with its name and started again."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import create_engine, insert, select

from bot.demo import write_roster
from bot.jobs.outbox import OutboxWorker
from bot.jobs.supervise import Health, supervise
from storage.db import Database
from storage.models import OutboxMessage
from storage.outbox import enqueue, queued_values
from tests.cli_support import COMMAND, clean_env, ok, query, zoufang
from tests.test_poll_flow import lock
from tests.test_telegram_cli import free_port, wait_healthy


@pytest.fixture
def county(tmp_path: Path) -> Path:
    write_roster(tmp_path, random.Random(5))
    ok(zoufang(tmp_path, "init"))
    ok(zoufang(tmp_path, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(tmp_path, "import", "households", "households.csv"))
    return tmp_path


def queue_sms(path: Path, due_in: float) -> None:
    engine = create_engine(f"sqlite:///{path}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = queued_values(
            "+8613800000001", "【示范县扶贫办】测试", "test", now, due=now + timedelta(seconds=due_in)
        )
        conn.execute(insert(OutboxMessage).values(row))
    engine.dispose()


async def health_until(
    url: str, status: int, seconds: float, sender_went_round: bool = False
) -> dict[str, Any]:
    """/healthz's body once it answers `status` (and, with `sender_went_round`, the SMS sender has finished a
    round); fails after `seconds`."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url) as response:
                body = await response.json()
                went = body.get("tasks", {}).get("sms_outbox", {}).get("last_success") is not None
                if response.status == status and (went or not sender_went_round):
                    return body
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz never answered {status} in {seconds:g} s: {body}")
            await asyncio.sleep(0.5)


async def test_a_sender_whose_database_is_locked_logs_reads_unhealthy_and_recovers(county: Path):
    port = free_port()
    # a send cut at 1 s and 10 a second: the sender reads stuck 2 × 1 + 5 / 10 + 10 = 12.5 s after its last round
    env = clean_env(county, ZOUFANG_SEND_TIMEOUT="1", ZOUFANG_SMS_RATE="10")
    process = await asyncio.create_subprocess_exec(
        *COMMAND, "serve", "--port", str(port), cwd=county, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/healthz"
    holder: sqlite3.Connection | None = None
    try:
        assert (await wait_healthy(url, process)).status == 200
        body = await health_until(url, 200, 30, sender_went_round=True)  # the baseline: it has gone round
        assert {"sms_outbox", "scheduler", "poll_tick", "housekeeping", "inbound_sms"} <= set(body["tasks"])

        queue_sms(county / "z.db", due_in=2)  # the sender must write to claim it: by then it is locked
        holder = await asyncio.to_thread(lock, county / "z.db")  # another process's write lock
        stuck = await health_until(url, 503, 60)
        assert stuck["database"] is True  # reads still work (WAL): it is the sender that cannot go on
        assert stuck["stuck"] == ["sms_outbox"]
        sender = stuck["tasks"]["sms_outbox"]
        assert sender["ok"] is False and sender["failures"] >= 1 and "locked" in sender["last_error"]

        holder.close()
        holder = None
        well = await health_until(url, 200, 45)  # the same process, no restart
        assert well["tasks"]["sms_outbox"]["ok"] is True and well["tasks"]["sms_outbox"]["failures"] == 0
        assert query(county / "z.db", "SELECT status FROM outbox_messages WHERE kind = 'test'") == [("sent",)]
    finally:
        if holder is not None:
            holder.close()
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    log = err.decode()
    assert "sms: sending failed; trying again" in log and "database is locked" in log


async def test_a_task_that_raises_is_logged_by_name_and_started_again(caplog: pytest.LogCaptureFixture):
    health, stop, starts = Health("telegram_outbox", stale_after=60), asyncio.Event(), []

    async def run() -> None:
        starts.append(time.monotonic())
        if len(starts) < 3:
            raise ConnectionResetError("the connection went away")
        health.beat()
        await stop.wait()

    with caplog.at_level(logging.ERROR, logger="zoufang.tasks"):
        task = asyncio.create_task(supervise(health, run, stop, first_backoff=0.05))
        while health.last_success is None:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert len(starts) == 3 and health.restarts == 2
    assert starts[2] - starts[1] >= 2 * (starts[1] - starts[0]) * 0.8  # the backoff doubles
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "background task telegram_outbox stopped (restart 1 in 0.05 s)",
        "background task telegram_outbox stopped (restart 2 in 0.1 s)",
    ]
    assert all(r.exc_info for r in caplog.records)  # the traceback goes to the log
    assert health.state()["last_error"] == "ConnectionResetError: the connection went away"


async def test_a_task_that_returns_unasked_is_a_fault_and_runs_again(caplog: pytest.LogCaptureFixture):
    health, stop, starts = Health("scheduler", stale_after=60), asyncio.Event(), []

    async def run() -> None:
        starts.append(1)
        if len(starts) == 2:
            stop.set()

    with caplog.at_level(logging.ERROR, logger="zoufang.tasks"):
        await asyncio.wait_for(supervise(health, run, stop, first_backoff=0.01), timeout=5)
    assert len(starts) == 2 and "returned before it was stopped" in (health.last_error or "")


def test_a_task_that_never_succeeds_reads_stuck_after_its_time_and_a_rest_is_not_stuck():
    now = [100.0]
    health = Health("sms_outbox", stale_after=10, clock=lambda: now[0])
    now[0] += 9
    assert not health.stuck()
    now[0] += 2
    assert health.stuck()  # never a success in 11 s
    health.beat()
    health.resting(60)  # an idle poll or a provider's pause: waiting is not being stuck
    now[0] += 65
    assert not health.stuck()
    now[0] += 10
    assert health.stuck()
    health.idle()  # nothing to do at all (the inbound writer with nothing waiting)
    assert not health.stuck()
    health.busy()
    now[0] += 5
    assert not health.stuck()
    now[0] += 6
    assert health.stuck()


class LockingSender:
    """A provider that takes every message, and whose taking coincides with another process locking the
    database for `hold` seconds (longer than SQLite's busy timeout): the outcome cannot be kept at once."""

    def __init__(self, path: Path, hold: float) -> None:
        self.path, self.hold, self.sent = path, hold, []

    async def send(self, to: str, body: str) -> str | None:
        self.sent.append(to)
        holder = await asyncio.to_thread(lock, self.path)
        asyncio.get_running_loop().call_later(self.hold, holder.close)
        return f"SM{len(self.sent):032d}"

    async def close(self) -> None:
        return None


async def test_a_sent_message_whose_outcome_cannot_be_kept_is_kept_later_not_sent_again(
    db: Database, db_path: Path, caplog: pytest.LogCaptureFixture
):
    async with db.session() as s:
        await s.run_sync(enqueue, "+8613800000002", "【示范县扶贫办】测试", "test", datetime.now(UTC))
    sender = LockingSender(db_path, hold=6.5)  # the busy timeout is 5 s: the first write of `sent` fails
    health = Health("sms_outbox", stale_after=60)
    worker = OutboxWorker(
        db, sender, rate=100, idle_poll=0.1, recover_every=0.5, send_timeout=1, health=health
    )
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="zoufang.sms"):
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(
            13
        )  # past the in-flight grace (1 s + 10 s): a row left `sending` would go out again
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert sender.sent == ["+8613800000002"]  # once
    async with db.reading() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert (row.status, row.provider_sid) == ("sent", "SM" + "1".zfill(32))
    assert any("keeping its outcome (sent) failed" in r.getMessage() for r in caplog.records)
    assert health.failures == 0 and health.last_error and "locked" in health.last_error
