"""The scheduler inside `zoufang serve`: one loop, every minute, on the app's clock.

Jobs:
- poll reminders, expiries and call-backs (`bot.flows.poll.tick`, idempotent by the polls' own state);
- the daily overdue check (`overdue:<local date>`, once a local day from 00:05; days the server missed catch up
  by themselves, since every problem past its due date is moved);
- the digest before each township meeting (`digest:<township id>:<meeting date>`), from 08:00 local the day
  before until the end of the meeting day.

A job that runs once is recorded in `scheduled_jobs` in the same transaction as what it writes (the outbox rows,
the problem moves): a crash leaves both or neither, a restart finds the row and does not run it again, and a
second process racing the same tick loses on the primary key and sends nothing. A digest whose whole window
passed while the server was down is recorded as `missed` and not sent: after the meeting it is of no use.
A failing job is logged and tried again next tick; the other jobs run regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from bot.jobs.supervise import Health
from bot.settings import Settings
from storage.db import Database
from storage.models import Township, utcnow
from storage.outbox import job_ran, record_job
from storage.problems import all_townships
from survey.meetings import Calendar, digest_time

log = logging.getLogger("zoufang.scheduler")

EVERY = 60.0  # seconds between ticks
DIGEST_AT = time(8, 0)  # local time, DIGEST_DAYS_BEFORE the meeting (escalation.md)
DIGEST_DAYS_BEFORE = 1
POLL_TICK = "poll tick"
OVERDUE_FROM = time(0, 5)  # the day's overdue check runs after this local time


@dataclass
class Ran:
    """What one tick did (for tests and logs)."""

    polls: int = 0
    moved: int | None = None  # problems the day's overdue check moved; None when it did not run this tick
    digests: dict[str, str] = field(default_factory=dict)  # job key → done / missed, for those recorded now
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # job → what it raised


def digest_jobs(calendar: Calendar, now: datetime, tz: ZoneInfo) -> list[tuple[date, str]]:
    """The meetings whose digest is due at `now` ("due": inside its window, from 08:00 the day before to the
    end of the meeting day) or was missed ("missed": the latest meeting before today, its window over)."""
    today = now.astimezone(tz).date()
    meetings = {calendar.next_on_or_after(today), calendar.next_after(today)}  # today's and the coming one
    last = calendar.latest_on_or_before(today - timedelta(days=1))
    if last is not None:
        meetings.add(last)
    jobs = []
    for meeting in sorted(meetings):
        if now < digest_time(meeting, tz, DIGEST_AT, DIGEST_DAYS_BEFORE):
            continue
        end = datetime.combine(meeting + timedelta(days=1), time(0), tzinfo=tz)
        jobs.append((meeting, "due" if now < end else "missed"))
    return jobs


def digest_key(township_id: int, meeting: date) -> str:
    return f"digest:{township_id}:{meeting.isoformat()}"


@dataclass
class Scheduler:
    db: Database
    settings: Settings
    clock: Callable[[], datetime] = utcnow
    interval: float = EVERY
    health: Health | None = None  # beats after a tick whose jobs all ran (bot.jobs.supervise)
    poll_health: Health | None = None  # beats after each poll tick that ran

    @property
    def stale_after(self) -> float:
        """A tick may take a while (the digests build reports): two ticks and two minutes."""
        return 2 * self.interval + 120

    async def run(self, stop: asyncio.Event, first_delay: float | None = None) -> None:
        """Tick every `interval` seconds until `stop` is set; the first tick after `first_delay` (default: one
        interval)."""
        delay = self.interval if first_delay is None else first_delay
        while True:
            for health in (self.health, self.poll_health):
                if health is not None:
                    health.resting(delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return
            self._report(await self.run_once())
            delay = self.interval

    def _report(self, ran: Ran) -> None:
        if self.health is not None:
            if ran.failed:
                self.health.failed("failed: " + ", ".join(ran.failed))
            else:
                self.health.beat()
        if self.poll_health is not None:
            if POLL_TICK in ran.failed:
                self.poll_health.failed(ran.errors.get(POLL_TICK, POLL_TICK))
            else:
                self.poll_health.beat()

    async def run_once(self, now: datetime | None = None) -> Ran:
        """Every job once, at `now` (the clock's time by default)."""
        now = self.clock() if now is None else now
        ran = Ran()
        await self._guarded(POLL_TICK, lambda: self._polls(now, ran), ran)
        await self._guarded("overdue check", lambda: self._overdue(now, ran), ran)
        await self._guarded("digests", lambda: self._digests(now, ran), ran)
        return ran

    def _line(self, key: str, **params: object) -> str:
        """A log line in the settings' language (messages/templates/<locale>/jobs/scheduler.txt)."""
        from messages import error_text

        return error_text(key, self.settings.locale, source="jobs/scheduler.txt", **params)

    async def _guarded(
        self, name: str, job: Callable[[], Awaitable[None]], ran: Ran, township: str = ""
    ) -> None:
        try:
            await job()
        except Exception as exc:  # retried next tick; the other jobs and the server go on
            log.exception("%s", self._line("job_failed", job=name, township=township))
            ran.failed.append(name)
            ran.errors[name] = f"{type(exc).__name__}: {exc}"

    async def _polls(self, now: datetime, ran: Ran) -> None:
        from bot.flows.poll import tick

        ran.polls = await tick(self.db, now, self.settings)

    async def _overdue(self, now: datetime, ran: Ran) -> None:
        from bot.flows.escalation import check_day

        local = now.astimezone(self.settings.tz)
        if local.time() < OVERDUE_FROM:
            return
        key = f"overdue:{local.date().isoformat()}"
        if await self._ran(key):
            return
        async with self.db.session() as s:
            if not await record_job(s, key, now, "done"):
                return
            moved = await check_day(s, self.settings, now)
        ran.moved = moved
        if moved:
            log.info("%s", self._line("overdue_moved", day=local.date(), moved=moved))

    async def _digests(self, now: datetime, ran: Ran) -> None:
        async with self.db.reading() as s:
            townships = await all_townships(s)
        for township in townships:
            await self._guarded(
                f"digest for {township.name}",
                lambda t=township: self._digest(t, now, ran),
                ran,
                township=township.name,
            )

    async def _digest(self, township: Township, now: datetime, ran: Ran) -> None:
        tz = self.settings.tz
        for meeting, state in digest_jobs(Calendar.parse(township.meeting_days), now, tz):
            key = digest_key(township.id, meeting)
            if await self._ran(key):
                continue
            if state == "missed" and not await self._roster_before(meeting):
                continue  # the county was not here yet (its roster came later): nothing was missed
            outcome = await (self._send_digest if state == "due" else self._miss_digest)(
                township, meeting, key, now
            )
            if outcome is not None:
                ran.digests[key] = outcome

    async def _send_digest(self, township: Township, meeting: date, key: str, now: datetime) -> str | None:
        from bot.flows.escalation import build_digest, enqueue_digest

        digest = await build_digest(self.db, self.settings, township, now, meeting=meeting)
        try:
            async with self.db.session() as s:
                if not await record_job(s, key, now, "done"):
                    return None  # another process sent it a moment ago
                queued = await enqueue_digest(s, self.settings, digest, township.id, now)
        except IntegrityError:  # the same, on a database without insert-or-ignore
            return None
        log.info("%s", self._line("digest_queued", township=township.name, meeting=meeting, queued=queued))
        return "done"

    async def _miss_digest(self, township: Township, meeting: date, key: str, now: datetime) -> str | None:
        try:
            async with self.db.session() as s:
                if not await record_job(s, key, now, "missed"):
                    return None
        except IntegrityError:
            return None
        since = digest_time(meeting, self.settings.tz, DIGEST_AT, DIGEST_DAYS_BEFORE).isoformat()
        log.warning("%s", self._line("digest_missed", township=township.name, meeting=meeting, since=since))
        return "missed"

    async def _roster_before(self, meeting: date) -> bool:
        """Whether a roster was imported before the meeting day ended: the county's first day in the data is
        its first `import.*` audit event (townships have no creation date of their own)."""
        from sqlalchemy import func, select

        from storage.models import AuditEvent

        end = datetime.combine(meeting + timedelta(days=1), time(0), tzinfo=self.settings.tz)
        async with self.db.reading() as s:
            first = (
                await s.execute(select(func.min(AuditEvent.at)).where(AuditEvent.action.like("import.%")))
            ).scalar_one()
        return first is not None and first < end

    async def _ran(self, key: str) -> bool:
        async with self.db.reading() as s:
            return await job_ran(s, key)
