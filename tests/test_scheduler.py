"""The scheduler inside `zoufang serve` on a clock the tests hold: digests before each meeting (once, across
restarts and racing processes; missed ones recorded, not sent), the daily overdue check, and the Telegram outbox
sender against the fake Bot API server.

东风镇 meets on the 1st and 16th (the default): the digest for 2026-12-01 is due 2026-11-30 08:00 Asia/Shanghai.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

import bot.flows.poll
from bot.app import CLOCK, SCHEDULER_EVERY, make_app
from bot.channels.telegram.sender import TelegramSender, split_text
from bot.flows.escalation import act
from bot.jobs.outbox import OutboxWorker
from bot.jobs.scheduler import Scheduler, digest_jobs, digest_key
from bot.settings import Settings
from storage.db import Database, sqlite_url
from storage.models import (
    AuditEvent,
    Cadre,
    Household,
    OutboxMessage,
    Problem,
    ProblemEvent,
    ScheduledJob,
    TelegramAccount,
    Township,
)
from storage.outbox import MAX_BACKOFF, enqueue, record_job
from storage.problems import creation_event
from survey.meetings import Calendar
from survey.script import load_script
from survey.sms_text import segments
from tests.fake_telegram import FakeTelegram

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings()
CHAT = 5550012  # GB012's Telegram chat


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def ids(db: Database) -> dict[str, int]:
    """Cadre codes and township names → ids."""
    async with db.reading() as s:
        cadres = {code: id_ for code, id_ in await s.execute(select(Cadre.code, Cadre.id))}
        townships = {name: id_ for name, id_ in await s.execute(select(Township.name, Township.id))}
    return {**cadres, **townships}


async def bind_secretary(db: Database) -> None:
    """GB012 (东风镇 乡镇党委书记) has a Telegram account; GB013 (扶贫专干) has none."""
    cadre = (await ids(db))["GB012"]
    async with db.session() as s:
        s.add(TelegramAccount(user_id=CHAT, cadre_id=cadre, chat_id=CHAT, bound_at=local("2026-11-01 09:00")))


async def digests(db: Database) -> list[tuple[str, str, str, str]]:
    """(channel, to, kind, body) of the digest rows in the outbox, in order."""
    async with db.reading() as s:
        query = (
            select(OutboxMessage.channel, OutboxMessage.to, OutboxMessage.kind, OutboxMessage.body)
            .where(OutboxMessage.kind.like("digest%"))
            .order_by(OutboxMessage.id)
        )
        return [tuple(row) for row in await s.execute(query)]


async def jobs(db: Database) -> dict[str, str]:
    async with db.reading() as s:
        return {
            key: outcome for key, outcome in await s.execute(select(ScheduledJob.key, ScheduledJob.outcome))
        }


AT_DIGEST = Clock(local("2026-11-30 08:00"))


@pytest.fixture
async def dongfeng(roster: Database) -> Database:
    await bind_secretary(roster)
    return roster


# --- the window ---------------------------------------------------------------------------------------------


def test_digest_jobs_window():
    calendar = Calendar()
    assert digest_jobs(calendar, local("2026-11-30 07:59"), TZ) == [
        (local("2026-11-16 00:00").date(), "missed")
    ]
    due = local("2026-12-01 00:00").date()
    assert (due, "due") in digest_jobs(calendar, local("2026-11-30 08:00"), TZ)
    assert (due, "due") in digest_jobs(calendar, local("2026-12-01 23:59"), TZ)  # the meeting day itself
    assert (due, "missed") in digest_jobs(calendar, local("2026-12-02 00:00"), TZ)
    # meetings on two days running: on the first one's day, the second's digest is due too
    both = digest_jobs(Calendar((15, 16)), local("2026-11-15 09:00"), TZ)
    assert [(str(m), state) for m, state in both] == [
        ("2026-10-16", "missed"),
        ("2026-11-15", "due"),
        ("2026-11-16", "due"),
    ]


# --- (a) due once at 08:00 the day before -----------------------------------------------------------------


async def test_digest_is_queued_once_at_0800_the_day_before(dongfeng: Database):
    scheduler = Scheduler(dongfeng, SETTINGS)
    await scheduler.run_once(local("2026-11-30 07:59"))
    assert await digests(dongfeng) == []

    ran = await scheduler.run_once(local("2026-11-30 08:00"))
    known = await ids(dongfeng)
    key = digest_key(known["东风镇"], local("2026-12-01 00:00").date())
    assert ran.digests[key] == "done" and not ran.failed
    rows = await digests(dongfeng)
    telegram = [r for r in rows if r[0] == "telegram"]
    sms = [r for r in rows if r[0] == "sms"]
    assert [(r[1], r[2]) for r in telegram] == [(str(CHAT), "digest")]  # only the registered secretary
    assert "<b>东风镇扶贫工作专题党委会 问题清单</b>" in telegram[0][3]
    assert sorted(r[1] for r in sms) == [
        "+8613900000012",  # 东风镇 乡镇党委书记
        "+8613900000013",  # 东风镇 扶贫专干
        "+8613900000025",  # 福顺乡
        "+8613900000026",
    ]
    assert all(r[2] == "digest/sms" and segments(r[3]) == 1 for r in sms)
    assert "东风镇12月1日专题党委会" in next(r[3] for r in sms if r[1] == "+8613900000012")

    again = await scheduler.run_once(local("2026-11-30 08:01"))
    assert again.digests == {}
    assert await digests(dongfeng) == rows
    assert (await jobs(dongfeng))[key] == "done"


# --- (b) a restart around the digest time -------------------------------------------------------------------


async def test_a_restarted_scheduler_does_not_send_the_digest_again(dongfeng: Database, db_path: Path):
    await Scheduler(dongfeng, SETTINGS).run_once(local("2026-11-30 08:00"))
    sent = await digests(dongfeng)
    assert len(sent) == 5

    restarted = Database(sqlite_url(db_path))  # a new process: fresh objects, the same database
    try:
        ran = await Scheduler(restarted, SETTINGS).run_once(local("2026-11-30 08:02"))
        assert ran.digests == {} and not ran.failed
        app = make_app(restarted, load_script(), SETTINGS)
        app[CLOCK] = Clock(local("2026-11-30 08:03"))
        app[SCHEDULER_EVERY] = 0.02
        async with TestClient(TestServer(app)):
            await asyncio.sleep(0.2)  # several ticks of the restarted server's own loop
    finally:
        await restarted.close()
    assert await digests(dongfeng) == sent


# --- (c) down across the digest time ----------------------------------------------------------------------


async def test_down_across_the_digest_time_sends_it_once_when_back(dongfeng: Database):
    scheduler = Scheduler(dongfeng, SETTINGS)
    await scheduler.run_once(local("2026-11-30 07:00"))  # then the server goes down until 15:00
    assert await digests(dongfeng) == []
    await scheduler.run_once(local("2026-11-30 15:00"))
    assert len(await digests(dongfeng)) == 5
    await scheduler.run_once(local("2026-11-30 15:01"))
    await scheduler.run_once(local("2026-12-01 09:00"))  # the meeting day: still inside the window
    assert len(await digests(dongfeng)) == 5


async def test_down_until_the_meeting_morning_still_sends_it(dongfeng: Database):
    await Scheduler(dongfeng, SETTINGS).run_once(local("2026-12-01 07:30"))
    assert len(await digests(dongfeng)) == 5


# --- (d) down until after the meeting day ---------------------------------------------------------------------


async def test_down_past_the_meeting_day_records_it_missed_and_sends_nothing(
    dongfeng: Database, caplog: pytest.LogCaptureFixture
):
    await roster_imported_at(dongfeng, local("2026-11-01 09:00"))  # the county was running before the meeting
    scheduler = Scheduler(dongfeng, SETTINGS)
    await scheduler.run_once(local("2026-11-30 07:00"))
    with caplog.at_level(logging.WARNING, logger="zoufang.scheduler"):
        ran = await scheduler.run_once(local("2026-12-02 10:00"))
    known = await ids(dongfeng)
    key = digest_key(known["东风镇"], local("2026-12-01 00:00").date())
    assert ran.digests[key] == "missed"
    assert (await jobs(dongfeng))[key] == "missed"
    assert await digests(dongfeng) == []
    missed_lines = [r for r in caplog.records if "东风镇 2026-12-01 会议的问题清单已错过" in r.getMessage()]
    assert len(missed_lines) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="zoufang.scheduler"):
        await scheduler.run_once(local("2026-12-02 10:01"))
    assert not [r for r in caplog.records if "已错过" in r.getMessage()]  # logged once


async def test_scheduler_log_lines_are_english_with_zoufang_locale_en(
    dongfeng: Database, caplog: pytest.LogCaptureFixture
):
    """Issue 16: the scheduler's lines were English whatever ZOUFANG_LOCALE said; zh-CN by default (above)."""
    await roster_imported_at(dongfeng, local("2026-11-01 09:00"))
    scheduler = Scheduler(dongfeng, Settings(locale="en"))
    await scheduler.run_once(local("2026-11-30 07:00"))
    with caplog.at_level(logging.INFO, logger="zoufang.scheduler"):
        await scheduler.run_once(local("2026-12-02 10:00"))
    lines = [r.getMessage() for r in caplog.records]
    assert any("东风镇's meeting on 2026-12-01 missed" in line for line in lines), lines


async def roster_imported_at(db: Database, at: datetime) -> None:
    async with db.session() as s:
        await s.execute(update(AuditEvent).where(AuditEvent.action.like("import.%")).values(at=at))


async def test_first_serve_does_not_warn_of_a_missed_digest_for_a_meeting_before_the_roster_came(
    dongfeng: Database, caplog: pytest.LogCaptureFixture
):
    """Issue 16: a county's first `zoufang serve` warned that the digest of the meeting before it existed was
    missed. The county's first day in the data is its first roster import: earlier meetings missed nothing."""
    await roster_imported_at(dongfeng, local("2026-12-02 09:00"))  # the day after the 1 December meeting
    with caplog.at_level(logging.WARNING, logger="zoufang.scheduler"):
        ran = await Scheduler(dongfeng, SETTINGS).run_once(local("2026-12-02 10:00"))
    key = digest_key((await ids(dongfeng))["东风镇"], local("2026-12-01 00:00").date())
    assert key not in ran.digests
    assert key not in await jobs(dongfeng)
    assert not [r for r in caplog.records if "错过" in r.getMessage()]


# --- (e) two processes racing the same tick ----------------------------------------------------------------


async def test_two_schedulers_racing_send_one_digest(dongfeng: Database, db_path: Path):
    first, second = Database(sqlite_url(db_path)), Database(sqlite_url(db_path))
    try:
        at = local("2026-11-30 08:00")
        ran = await asyncio.gather(
            Scheduler(first, SETTINGS).run_once(at), Scheduler(second, SETTINGS).run_once(at)
        )
    finally:
        await first.close()
        await second.close()
    assert not ran[0].failed and not ran[1].failed
    known = await ids(dongfeng)
    key = digest_key(known["东风镇"], local("2026-12-01 00:00").date())
    assert [r.digests.get(key) for r in ran].count("done") == 1
    assert len(await digests(dongfeng)) == 5


async def test_the_job_row_goes_in_once(db: Database):
    at = local("2026-11-30 08:00")
    async with db.session() as s:
        assert await record_job(s, "digest:1:2026-12-01", at, "done")
    async with db.session() as s:
        assert not await record_job(s, "digest:1:2026-12-01", at, "done")


async def test_a_township_without_recipients_is_recorded_and_nothing_sent(roster: Database):
    async with roster.session() as s:
        await s.execute(
            Cadre.__table__.update()
            .where(Cadre.role.in_(("乡镇党委书记", "扶贫专干")))
            .values(role="驻村工作队")
        )
    ran = await Scheduler(roster, SETTINGS).run_once(local("2026-11-30 08:00"))
    due = {key: outcome for key, outcome in ran.digests.items() if key.endswith("2026-12-01")}
    assert sorted(due.values()) == ["done", "done"]
    assert await digests(roster) == []


# --- failures -----------------------------------------------------------------------------------------------


async def test_a_failing_job_does_not_stop_the_others(dongfeng: Database, monkeypatch: pytest.MonkeyPatch):
    async def broken(*_: object) -> int:
        raise RuntimeError("poll tick broke")

    monkeypatch.setattr(bot.flows.poll, "tick", broken)
    ran = await Scheduler(dongfeng, SETTINGS).run_once(local("2026-11-30 08:00"))
    assert ran.failed == ["poll tick"]
    assert len(await digests(dongfeng)) == 5


async def test_a_failed_digest_is_retried_next_tick(dongfeng: Database, monkeypatch: pytest.MonkeyPatch):
    import bot.flows.escalation as escalation

    real = escalation.enqueue_digest
    calls = 0

    async def flaky(*args: object, **kwargs: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("outbox write failed")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(escalation, "enqueue_digest", flaky)
    scheduler = Scheduler(dongfeng, SETTINGS)
    first = await scheduler.run_once(local("2026-11-30 08:00"))
    assert first.failed == ["digest for 东风镇"]
    assert sorted(r[1] for r in await digests(dongfeng)) == ["+8613900000025", "+8613900000026"]  # 福顺乡
    known = await ids(dongfeng)
    assert digest_key(known["东风镇"], local("2026-12-01 00:00").date()) not in await jobs(dongfeng)
    await scheduler.run_once(local("2026-11-30 08:01"))
    assert len(await digests(dongfeng)) == 5


# --- (f) the daily overdue check -------------------------------------------------------------------------------


async def decided_problem(db: Database, due_days: int = 7) -> int:
    """A 东风镇 problem decided at the 2026-11-16 meeting, due 7 days later (2026-11-23)."""
    known = await ids(db)
    at = local("2026-11-02 10:00")
    async with db.session() as s:
        household = (await s.execute(select(Household.id).where(Household.code == "DEMO0002"))).scalar_one()
        problem = Problem(
            household_id=household,
            raised_by_id=known["GB001"],
            source="visit",
            category="饮水",
            description="自来水管冻裂",
            status="escalated",
            created_at=at,
            escalated_at=at,
        )
        s.add(problem)
        await s.flush()
        s.add(creation_event(problem))
        pid = problem.id
    await act(
        db,
        SETTINGS,
        known["GB012"],
        pid,
        "decide",
        local("2026-11-16 15:00"),
        responsible_id=known["GB012"],
        due_days=due_days,
    )
    return pid


async def test_overdue_check_runs_once_a_day(roster: Database):
    pid = await decided_problem(roster)
    scheduler = Scheduler(roster, SETTINGS)
    ran = await scheduler.run_once(local("2026-11-23 09:00"))  # due today: not overdue yet
    assert ran.moved == 0
    assert (await scheduler.run_once(local("2026-11-24 00:01"))).moved is None  # before 00:05
    assert (await scheduler.run_once(local("2026-11-24 00:06"))).moved == 1
    assert (await scheduler.run_once(local("2026-11-24 09:00"))).moved is None  # once a day
    async with roster.reading() as s:
        assert (await s.get(Problem, pid)).status == "overdue"
        events = list(
            await s.execute(
                select(ProblemEvent.action, ProblemEvent.actor_id)
                .where(ProblemEvent.problem_id == pid)
                .order_by(ProblemEvent.id)
            )
        )
    assert events[-1] == ("overdue", None)
    assert [a for a, _ in events].count("overdue") == 1
    assert {"overdue:2026-11-23", "overdue:2026-11-24"} <= set(await jobs(roster))


async def test_missed_days_catch_up_in_one_check(roster: Database):
    pid = await decided_problem(roster)
    # down from the 20th to 2 December: overdue (due 23 Nov), then past the 1 December meeting → county
    ran = await Scheduler(roster, SETTINGS).run_once(local("2026-12-02 08:00"))
    assert ran.moved == 2
    async with roster.reading() as s:
        assert (await s.get(Problem, pid)).status == "county"


# --- (g) the Telegram outbox -------------------------------------------------------------------------------


async def test_telegram_digest_goes_out_through_the_bot(dongfeng: Database, fake_telegram: FakeTelegram):
    await Scheduler(dongfeng, SETTINGS).run_once(local("2026-11-30 08:00"))
    bot = fake_telegram.make_bot()
    sms_sent: list[str] = []

    class Recorder:
        async def send(self, to: str, body: str) -> str | None:
            sms_sent.append(to)
            return None

        async def close(self) -> None:
            return None

    try:
        telegram = OutboxWorker(dongfeng, TelegramSender(bot), rate=1000, clock=AT_DIGEST, channel="telegram")
        assert await telegram.send_one()
        assert not await telegram.send_one()  # the SMS rows are not the Telegram sender's
        sms = OutboxWorker(dongfeng, Recorder(), rate=1000, clock=AT_DIGEST)
        while await sms.send_one():
            pass
    finally:
        await bot.session.close()
    [message] = fake_telegram.sent()
    assert message["chat_id"] == CHAT and message["parse_mode"] == "HTML"
    assert "东风镇扶贫工作专题党委会" in message["text"]
    assert len(sms_sent) == 4 and str(CHAT) not in sms_sent
    async with dongfeng.reading() as s:
        row = (await s.execute(select(OutboxMessage).where(OutboxMessage.channel == "telegram"))).scalar_one()
    assert row.status == "sent" and row.provider_sid.startswith(f"tg:{CHAT}:")


async def test_a_long_telegram_text_is_split_at_line_breaks(db: Database, fake_telegram: FakeTelegram):
    lines = [f"<b>第 {i} 行</b> " + "问题描述" * 40 for i in range(60)]
    body = "\n".join(lines)
    assert len(body) > 4096
    pieces = split_text(body)
    assert len(pieces) > 1 and all(len(p) <= 4096 for p in pieces)
    assert "\n".join(pieces) == body  # cut only at line breaks
    async with db.session() as s:
        await s.run_sync(enqueue, str(CHAT), body, "digest", local("2026-11-30 08:00"), "telegram")
    bot = fake_telegram.make_bot()
    try:
        assert await OutboxWorker(
            db, TelegramSender(bot), rate=1000, clock=AT_DIGEST, channel="telegram"
        ).send_one()
    finally:
        await bot.session.close()
    assert fake_telegram.texts(CHAT) == pieces


async def test_a_blocked_chat_fails_the_row(db: Database, fake_telegram: FakeTelegram):
    async with db.session() as s:
        await s.run_sync(enqueue, str(CHAT), "<b>清单</b>", "digest", local("2026-11-30 08:00"), "telegram")
    fake_telegram.block(CHAT)
    bot = fake_telegram.make_bot()
    try:
        await OutboxWorker(db, TelegramSender(bot), rate=1000, clock=AT_DIGEST, channel="telegram").send_one()
    finally:
        await bot.session.close()
    async with db.reading() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert (row.status, row.error_code) == ("failed", "Forbidden")


# --- inside serve -------------------------------------------------------------------------------------------------


async def wait_for_rows(db: Database, count: int, timeout: float = 5.0) -> list[tuple[str, str, str, str]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(rows := await digests(db)) < count and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return rows


async def test_serve_runs_the_scheduler_loop_on_the_app_clock(dongfeng: Database):
    app = make_app(dongfeng, load_script(), SETTINGS)  # no Telegram token: the Telegram row stays queued
    clock = Clock(local("2026-11-30 07:00"))
    app[CLOCK] = clock
    app[SCHEDULER_EVERY] = 0.02
    async with TestClient(TestServer(app)):
        await asyncio.sleep(0.1)
        assert await digests(dongfeng) == []
        clock.now = local("2026-11-30 08:00")
        assert len(await wait_for_rows(dongfeng, 5)) == 5
        await asyncio.sleep(0.1)
    assert len(await digests(dongfeng)) == 5
    async with dongfeng.reading() as s:
        status = (
            await s.execute(select(OutboxMessage.status).where(OutboxMessage.channel == "telegram"))
        ).scalar_one()
    assert status == "queued"


async def test_serve_sends_telegram_rows_with_a_bot(dongfeng: Database, fake_telegram: FakeTelegram):
    settings = replace(
        SETTINGS,
        telegram_bot_token=fake_telegram.token,
        telegram_api_base=fake_telegram.base_url,
        telegram_webhook_secret="secret",
    )
    app = make_app(dongfeng, load_script(), settings)
    app[CLOCK] = Clock(local("2026-11-30 08:00"))
    app[SCHEDULER_EVERY] = 0.02
    async with TestClient(TestServer(app)):
        [message] = await fake_telegram.wait_for("sendMessage", timeout=5)
    assert message["chat_id"] == CHAT and message["parse_mode"] == "HTML"


async def test_digests_wait_out_a_bot_api_outage_and_go_once_each(db: Database, fake_telegram: FakeTelegram):
    """The Bot API answers 502 and 429 for half an hour while two digests are due: they are kept, then each
    delivered once when it answers again (in the order they come due again, which the outage may have swapped)."""
    clock = Clock(local("2026-11-30 08:00"))
    async with db.session() as s:
        for text in ("<b>东风镇清单</b>", "<b>西岭镇清单</b>"):
            await s.run_sync(enqueue, str(CHAT), text, "digest", clock.now, "telegram")
    fake_telegram.fail_next("sendMessage", 429, times=3, retry_after=120)
    fake_telegram.fail_next("sendMessage", 502, times=1000)
    bot = fake_telegram.make_bot()
    worker = OutboxWorker(db, TelegramSender(bot), rate=1000, clock=clock, channel="telegram")
    try:
        assert await worker.send_one()  # 429, retry after 120 s: the message waits at least that
        async with db.reading() as s:
            first = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().first()
        assert first.next_attempt_at >= local("2026-11-30 08:02")
        while clock.now < local("2026-11-30 08:30"):
            while await worker.send_one():
                pass
            clock.now += timedelta(seconds=60)
        async with db.reading() as s:
            rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all()
        assert [r.status for r in rows] == ["queued", "queued"] and all(r.attempts > 3 for r in rows)
        assert fake_telegram.sent() == []
        fake_telegram.recover()
        clock.now += timedelta(seconds=MAX_BACKOFF)
        while await worker.send_one():
            pass
    finally:
        await bot.session.close()
    assert sorted(fake_telegram.texts(CHAT)) == ["<b>东风镇清单</b>", "<b>西岭镇清单</b>"]
    assert len([c for c in fake_telegram.calls if c.status == 429]) == 3
