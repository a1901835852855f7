"""The outbox sender with the real twilio client against a fake Twilio REST API over HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.channels.twilio import TwilioSender
from bot.jobs.outbox import OutboxWorker, make_sender
from bot.settings import Settings
from storage.db import Database
from storage.models import OptOut, OutboxMessage
from storage.outbox import MAX_ATTEMPTS, MAX_BACKOFF, backoff, claim_next, enqueue, record_status
from tests.fake_twilio import FakeTwilio

PHONE = "+8613800138000"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def twilio_settings(fake: FakeTwilio, **extra: str) -> Settings:
    return replace(
        Settings(),
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_from_number="+15005550006",
        twilio_api_base=fake.base_url,
        **extra,
    )


async def queue(db: Database, clock: Clock, *bodies: str, to: str = PHONE, kind: str = "poll/ask") -> None:
    async with db.session() as s:
        for body in bodies:
            await s.run_sync(enqueue, to, body, kind, clock())


async def statuses(db: Database) -> list[tuple[str, str, int]]:
    async with db.reading() as s:
        rows = await s.execute(
            select(OutboxMessage.body, OutboxMessage.status, OutboxMessage.attempts).order_by(
                OutboxMessage.id
            )
        )
        return [tuple(r) for r in rows]


@pytest.fixture
async def worker(db: Database, fake_twilio: FakeTwilio):
    sender = TwilioSender(twilio_settings(fake_twilio))
    clock = Clock()
    yield OutboxWorker(db, sender, rate=1000, clock=clock), clock
    await sender.close()


async def test_queued_messages_go_out_in_order_through_twilio(worker, db: Database, fake_twilio: FakeTwilio):
    outbox, clock = worker
    await queue(db, clock, "第一条", "第二条")
    assert await outbox.send_one() and await outbox.send_one()
    assert not await outbox.send_one()
    assert [m["Body"] for m in fake_twilio.messages] == ["第一条", "第二条"]
    assert fake_twilio.messages[0]["To"] == PHONE and fake_twilio.messages[0]["From"] == "+15005550006"
    async with db.reading() as s:
        sids = list((await s.execute(select(OutboxMessage.provider_sid))).scalars())
    assert all(sid and sid.startswith("SM") for sid in sids)
    assert await statuses(db) == [("第一条", "sent", 1), ("第二条", "sent", 1)]


async def test_429_and_500_are_retried_with_backoff(worker, db: Database, fake_twilio: FakeTwilio):
    outbox, clock = worker
    await queue(db, clock, "请回复")
    fake_twilio.fail_next(429, 20429)
    fake_twilio.fail_next(500)
    assert await outbox.send_one()
    assert await statuses(db) == [("请回复", "queued", 1)]
    assert not await outbox.send_one()  # not due yet: backing off
    clock.advance(seconds=2)
    assert await outbox.send_one()
    assert await statuses(db) == [("请回复", "queued", 2)]
    clock.advance(seconds=4)
    assert await outbox.send_one()
    assert await statuses(db) == [("请回复", "sent", 3)]
    assert [status for status, _ in fake_twilio.attempts] == [429, 500, 201]


async def test_a_twilio_outage_of_two_hours_is_waited_out_and_each_message_sent_once(
    worker, db: Database, fake_twilio: FakeTwilio
):
    outbox, clock = worker
    await queue(db, clock, "第一条", "第二条")
    fake_twilio.fail_next(503, times=1000)
    waited = 0.0
    while waited < 2 * 3600:  # each try fails; the message waits longer each time, at most MAX_BACKOFF
        while await outbox.send_one():
            pass
        clock.advance(seconds=60)
        waited += 60
    assert {status for _, status, _ in await statuses(db)} == {"queued"}  # none given up
    fake_twilio.recover()
    clock.advance(seconds=MAX_BACKOFF)
    while await outbox.send_one():
        pass
    assert [status for _, status, _ in await statuses(db)] == ["sent", "sent"]
    assert sorted(m["Body"] for m in fake_twilio.messages) == ["第一条", "第二条"]  # each once


async def test_a_provider_failing_past_the_retry_window_fails_the_message(
    worker, db: Database, fake_twilio: FakeTwilio
):
    outbox, clock = worker
    await queue(db, clock, "总是失败")
    fake_twilio.fail_next(503, times=MAX_ATTEMPTS + 5)
    for _ in range(MAX_ATTEMPTS):
        assert await outbox.send_one()
        clock.advance(seconds=MAX_BACKOFF)
    assert await statuses(db) == [("总是失败", "failed", MAX_ATTEMPTS)]
    assert sum(backoff(n).total_seconds() for n in range(1, MAX_ATTEMPTS)) > 2.5 * 3600  # tried for hours
    assert not await outbox.send_one()
    assert fake_twilio.messages == []


async def test_21610_opts_the_number_out_and_later_messages_are_skipped(
    worker, db: Database, fake_twilio: FakeTwilio
):
    outbox, clock = worker
    await queue(db, clock, "第一条", "第二条")
    fake_twilio.fail_next(400, 21610)
    assert await outbox.send_one() and await outbox.send_one()
    assert await statuses(db) == [("第一条", "failed", 1), ("第二条", "skipped", 1)]
    async with db.reading() as s:
        assert (await s.get(OptOut, PHONE)).source == "carrier"
    await queue(db, clock, "您已退订", kind="poll/opted_out")  # a confirmation still goes out
    assert await outbox.send_one()
    assert fake_twilio.to(PHONE) == ["您已退订"]


async def test_a_message_claimed_by_a_dead_sender_is_sent_after_restart(
    worker, db: Database, fake_twilio: FakeTwilio
):
    outbox, clock = worker
    await queue(db, clock, "在途", "排队")
    async with db.session() as s:
        assert (await claim_next(s, clock())).body == "在途"  # the sender dies right after claiming
    clock.advance(minutes=5)
    assert await outbox.recover() == 1
    while await outbox.send_one():
        pass
    assert [m["Body"] for m in fake_twilio.messages] == ["在途", "排队"]


async def test_worker_keeps_the_rate(db: Database, fake_twilio: FakeTwilio):
    sender = TwilioSender(twilio_settings(fake_twilio))
    await queue(db, Clock(), *[f"消息{i}" for i in range(6)])
    # made after the queueing: its bucket fills from its making, and queueing on PostgreSQL takes a while
    outbox = OutboxWorker(db, sender, rate=20, idle_poll=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    started = asyncio.get_running_loop().time()
    while len(fake_twilio.messages) < 6:
        await asyncio.sleep(0.01)
    elapsed = asyncio.get_running_loop().time() - started
    stop.set()
    await task
    await sender.close()
    assert elapsed >= 5 / 20 * 0.9  # six messages at 20 a second take at least five intervals


async def test_status_callbacks_update_the_message(worker, db: Database, fake_twilio: FakeTwilio):
    outbox, clock = worker
    await queue(db, clock, "送达了吗")
    await outbox.send_one()
    async with db.reading() as s:
        sid = (await s.execute(select(OutboxMessage.provider_sid))).scalar_one()
    async with db.session() as s:
        assert await record_status(s, sid, "undelivered", "30003")
        assert not await record_status(s, "SMunknown", "delivered", None)
    async with db.reading() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert (row.status, row.error_code) == ("undelivered", "30003")


def test_backend_choice():
    assert type(make_sender(Settings())).__name__ == "ConsoleSender"
    with pytest.raises(ValueError, match="SMS_BACKEND"):
        make_sender(replace(Settings(), sms_backend="pigeon"))


async def test_worker_killed_mid_batch_repeats_at_most_the_message_in_flight(
    tmp_path, fake_twilio: FakeTwilio
):
    """`zoufang worker` killed with SIGKILL while sending, then started again: nothing lost, at most one twice."""
    import os
    import signal

    from tests.cli_support import COMMAND, clean_env, ok, zoufang

    ok(zoufang(tmp_path, "init"))
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'z.db'}")
    bodies = [f"第{i}条" for i in range(30)]
    await queue(db, Clock(), *bodies)
    await db.close()
    env = clean_env(
        tmp_path,
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_API_BASE=fake_twilio.base_url,
        ZOUFANG_SMS_RATE="40",
    )

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *COMMAND,
            "worker",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    first = await start()
    while len(fake_twilio.messages) < 8:
        await asyncio.sleep(0.005)
    os.kill(first.pid, signal.SIGKILL)
    await first.wait()
    # the claimed row is recovered once it is older than the grace period; make it so
    import sqlite3

    with sqlite3.connect(tmp_path / "z.db") as conn:
        conn.execute("UPDATE outbox_messages SET claimed_at = '2000-01-01 00:00:00' WHERE status = 'sending'")
    second = await start()
    try:
        for _ in range(1000):
            if len({m["Body"] for m in fake_twilio.messages}) == len(bodies):
                break
            await asyncio.sleep(0.01)
    finally:
        second.terminate()
        await second.wait()
    sent = [m["Body"] for m in fake_twilio.messages]
    assert set(sent) == set(bodies)  # nothing lost
    assert len(sent) - len(set(sent)) <= 1  # at most the one in flight went twice


async def test_old_processed_updates_are_forgotten(db: Database):
    from storage.models import ProcessedUpdate
    from storage.telegram import mark_processed, prune_processed

    old, recent = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
    async with db.session() as s:
        assert await mark_processed(s, "telegram:1", "100", old)
        assert await mark_processed(s, "telegram:1", "101", recent)
        assert not await mark_processed(s, "telegram:1", "101", recent)
    async with db.session() as s:
        assert await prune_processed(s, datetime(2026, 11, 17, tzinfo=UTC)) == 1
    async with db.session() as s:
        assert await mark_processed(s, "telegram:1", "100", recent)  # a reused id counts as new again
        assert [r.external_id for r in (await s.execute(select(ProcessedUpdate))).scalars()] == ["101", "100"]


async def test_while_twilio_is_down_the_sender_probes_instead_of_failing_every_message(
    db: Database, fake_twilio: FakeTwilio
):
    """100 SMS due and Twilio answering 503: the running sender pauses the channel (2 s, 4 s, …) after each
    failure, so a few calls probe; when Twilio answers again every message goes out, once."""
    clock = Clock()
    await queue(db, clock, *(f"第{i}条" for i in range(100)))
    fake_twilio.fail_next(503, times=1000)
    sender = TwilioSender(twilio_settings(fake_twilio))
    worker = OutboxWorker(db, sender, rate=1000, idle_poll=0.05)  # on the real clock
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(3)
        assert 1 <= len(fake_twilio.attempts) <= 3  # at 0 s and 2 s (then 4 s later): no storm of 100
        fake_twilio.recover()
        for _ in range(200):
            await asyncio.sleep(0.1)
            if len(fake_twilio.messages) == 100:
                break
    finally:
        stop.set()
        await running
        await sender.close()
    assert sorted(m["Body"] for m in fake_twilio.messages) == sorted(f"第{i}条" for i in range(100))


async def test_a_send_that_may_have_gone_out_is_tried_three_times_not_for_hours(
    db: Database, fake_twilio: FakeTwilio
):
    """Twilio takes the message but answers too late: each try may have delivered it, so after three the message
    is failed rather than sent up to 24 times."""
    clock = Clock()
    await queue(db, clock, "慢回应")

    async def slow(sid: str, form: dict[str, str]) -> None:
        await asyncio.sleep(0.5)

    fake_twilio.before_answer = slow
    sender = TwilioSender(twilio_settings(fake_twilio))
    worker = OutboxWorker(db, sender, rate=1000, clock=clock, send_timeout=0.1)
    try:
        for _ in range(5):
            await worker.send_one()
            clock.advance(seconds=MAX_BACKOFF)
    finally:
        await sender.close()
    assert await statuses(db) == [("慢回应", "failed", 3)]
    assert len(fake_twilio.messages) == 3  # what a slow provider may have delivered: at most three


async def test_the_channel_pause_waits_as_long_as_a_429_asks(db: Database, fake_telegram) -> None:
    from bot.channels.telegram.sender import TelegramSender

    clock = Clock()
    await queue(db, clock, "一", "二", to="5550012", kind="digest")
    async with db.session() as s:
        await s.execute(OutboxMessage.__table__.update().values(channel="telegram"))
    fake_telegram.fail_next("sendMessage", 429, times=5, retry_after=30)
    bot = fake_telegram.make_bot()
    worker = OutboxWorker(db, TelegramSender(bot), rate=1000, idle_poll=0.05, channel="telegram")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(3)  # the pause after the 429 is 30 s, not 2 s: the second message is not tried
    finally:
        stop.set()
        await running
        await bot.session.close()
    assert len([c for c in fake_telegram.calls if c.method.lower() == "sendmessage"]) == 1
