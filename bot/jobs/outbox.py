"""The outbox's sending side: the outbox worker and the senders' protocol (the console sender here; Twilio's in
bot.channels.twilio, the Telegram bot's in bot.channels.telegram.sender).

The worker sends one channel's rows (`sms` or `telegram`) at a configured rate (SMS: default 1 message a
second, a long code's rate), retries 429, 5xx and network errors with exponential backoff for hours (see
storage.outbox.backoff), then marks the message failed. While the provider keeps failing, the worker pauses the
whole channel (2 s, 4 s, … up to a minute) instead of failing every queued message in turn: one message probes,
the rest wait their turn, in order. Twilio's error 21610 (the recipient replied STOP to the carrier) marks the
number opted out.

Several workers (processes, machines) may send one outbox: each claims one row per transaction (PostgreSQL
skips rows another has locked), and with a Redis bucket (bot.ratelimit) they share one rate between them.
A row left `sending` by a worker that died goes back in the queue after twice the send timeout
(ZOUFANG_SEND_TIMEOUT, 60 s); a live worker's send is cut off at the timeout, so a row is only sent twice when
its sender really died (and then at most that one row: a worker has one message in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO, TypeVar

from bot.flows.sms import apply_early_statuses
from bot.jobs.supervise import Health
from bot.ratelimit import LocalBucket, RateBucket
from bot.settings import Settings
from storage.db import Database
from storage.models import utcnow
from storage.outbox import (
    Claimed,
    claim_next,
    mark_retry_or_failed,
    mark_sent,
    mark_skipped,
    opt_out,
    recover,
)
from storage.sms import forget_early_statuses
from survey.phones import mask_phones_in

log = logging.getLogger("zoufang.sms")
T = TypeVar("T")

OPTED_OUT = "21610"  # Twilio: "Attempt to send to unsubscribed recipient"
# These go to a number that has just opted out or in: they must not be held back by the opt-out list.
POLL_QUESTION = "poll/ask"  # its sending stamps the poll asked (storage.outbox.mark_sent)
OPT_CONFIRMATIONS = frozenset({"poll/opted_out", "poll/opted_in"})
SEND_TIMEOUT = 60.0  # seconds one provider call may take (the default of ZOUFANG_SEND_TIMEOUT)
IN_FLIGHT_GRACE = timedelta(
    seconds=2 * SEND_TIMEOUT
)  # the default `in_flight_grace`: after it, a sender died
RECOVER_EVERY = 60.0  # seconds between a running worker's looks for rows a dead sender left
MAX_PAUSE = 60.0  # seconds the longest pause of a channel whose provider keeps failing


class SendError(Exception):
    """A message the provider did not take: its error code, and whether another try may succeed."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        retryable: bool,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.code, self.retryable, self.retry_after = code, retryable, retry_after
        # no answer after the request went out (a timeout, a dropped connection): it may have been delivered
        self.maybe_sent = maybe_sent


class SmsError(SendError):
    pass


class Sender(Protocol):
    async def send(self, to: str, body: str) -> str | None:
        """Send one message; the provider's message id. Raises SendError."""

    async def close(self) -> None: ...


class ConsoleSender:
    """Prints each SMS (the default with no Twilio credentials, so the demo works offline)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    async def send(self, to: str, body: str) -> str | None:
        print(f"[短信 → {to}] {body}", file=self.out, flush=True)
        return None

    async def close(self) -> None:
        return None


def make_sender(settings: Settings) -> Sender:
    """SMS_BACKEND=twilio|console; console when unset and no Twilio credentials are configured."""
    backend = settings.sms_backend or ("twilio" if settings.twilio_account_sid else "console")
    if backend == "twilio":
        from bot.channels.twilio import TwilioSender

        return TwilioSender(settings)
    if backend == "console":
        return ConsoleSender()
    raise ValueError(f"SMS_BACKEND={backend!r}: use twilio or console")


# a held callback whose sid no message has after this long was for no message of ours
EARLY_STATUS_KEPT = timedelta(days=2)


def _sweep_early_statuses(conn: Any, now: datetime) -> None:
    apply_early_statuses(conn)
    forget_early_statuses(conn, before=now - EARLY_STATUS_KEPT)


@dataclass
class OutboxWorker:
    """Sends one channel of the outbox, one message at a time, at `rate` messages a second.

    The rate is kept by `bucket`: by default this process's own; pass a shared one (bot.ratelimit.make_bucket
    with a Redis URL) to give several workers one budget. `run` closes the bucket when it stops."""

    db: Database
    sender: Sender
    rate: float = 1.0
    clock: Callable[[], datetime] = utcnow
    idle_poll: float = 1.0
    channel: str = "sms"
    bucket: RateBucket | None = None
    recover_every: float = RECOVER_EVERY
    send_timeout: float = SEND_TIMEOUT
    wait_asked: float = 0.0  # seconds the provider last asked us to wait (a 429's retry_after)
    health: Health | None = None  # told of each round (bot.jobs.supervise), for /healthz
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)

    @property
    def stale_after(self) -> float:
        """Seconds a working round may take at most: a token, a send cut at the timeout, its recording."""
        return 2 * self.send_timeout + 5 / max(self.rate, 0.01) + 10

    def __post_init__(self) -> None:
        if self.bucket is None:
            self.bucket = LocalBucket(self.rate)

    @property
    def in_flight_grace(self) -> timedelta:
        """A row `sending` for longer than this was claimed by a sender that died: no live send lasts it (the call
        is cut at the timeout, and recording its result gets at least 10 s more, for a database lock)."""
        return timedelta(seconds=self.send_timeout + max(self.send_timeout, 10.0))

    async def recover(self) -> int:
        """Messages a dead sender had claimed (longer ago than `in_flight_grace`) go back in the queue; held
        delivery callbacks whose sid is now stored are applied (one that raced the storing of its sid), and
        those no message has had for EARLY_STATUS_KEPT are dropped."""
        async with self.db.session() as s:
            recovered = await recover(s, self.clock() - self.in_flight_grace, self.channel)
            if self.channel == "sms":
                await s.run_sync(lambda sync: _sweep_early_statuses(sync.connection(), self.clock()))
            return recovered

    async def send_one(self) -> bool:
        """Send the next due message; False when there is none."""
        return await self._send_next() != "none"

    async def _send_next(self) -> str:
        """`none` (nothing due), `skipped` (opted out: no provider call), `called` (the provider took it or
        refused it) or `unavailable` (the provider failed in a way worth retrying: it may be down)."""
        now = self.clock()
        async with self.db.session() as s:
            claimed = await claim_next(s, now, self.channel)
            if (
                claimed
                and claimed.opted_out
                and self.channel == "sms"
                and claimed.kind not in OPT_CONFIRMATIONS
            ):
                await mark_skipped(s, claimed.id, "opted out")
                return "skipped"
        if claimed is None:
            return "none"
        return await self._deliver(claimed)

    async def _deliver(self, claimed: Claimed) -> str:
        try:
            sending = self.sender.send(claimed.to, claimed.body)
            sid = await asyncio.wait_for(sending, timeout=self.send_timeout)
        except TimeoutError:  # it may have gone out: the retry may send it twice
            error = SendError(
                f"no answer within {self.send_timeout:g} s", code="timeout", retryable=True, maybe_sent=True
            )
            await self._record_failure(claimed, error)
            return "unavailable"
        except SendError as exc:
            await self._record_failure(claimed, exc)
            self.wait_asked = exc.retry_after or 0.0
            return "unavailable" if exc.retryable else "called"

        async def record() -> None:
            async with self.db.session() as s:
                await mark_sent(s, claimed.id, sid, self.clock(), poll_question=claimed.kind == POLL_QUESTION)
                if (
                    sid is not None and self.channel == "sms"
                ):  # a callback may have come before the sid was kept
                    await s.run_sync(lambda sync: apply_early_statuses(sync.connection(), sid))

        await self._until_recorded(claimed, "sent", record)
        return "called"

    async def _until_recorded(self, claimed: Claimed, what: str, record: Callable[[], Awaitable[T]]) -> T:
        """The provider has the message: its outcome must be kept, or the row, still claimed, goes back in the
        queue after the grace and is sent twice. So the write is tried again (0.5 s, 1 s, … 5 s apart) until
        the database takes it, or the worker is stopped (then the row may be sent again, and the log says so)."""
        delay = 0.5
        while True:
            try:
                return await record()
            except Exception as exc:
                if self.health is not None:
                    self.health.failed(exc)
                if self._stop is not None and self._stop.is_set():
                    log.error(
                        "%s %d: stopped before its outcome (%s) was kept: it may be sent again",
                        self.channel,
                        claimed.id,
                        what,
                    )
                    raise
                log.exception(
                    "%s %d: keeping its outcome (%s) failed; trying again in %g s",
                    self.channel,
                    claimed.id,
                    what,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _record_failure(self, claimed: Claimed, exc: SendError) -> None:
        status = await self._until_recorded(
            claimed, f"failed: {exc.code}", lambda: self._keep_failure(claimed, exc)
        )
        # a provider's error may name the number ("The 'To' number +86… is not valid"): logs show it masked
        to, reason = mask_phones_in(claimed.to), mask_phones_in(str(exc))
        log.warning("%s %d to %s: %s (%s) → %s", self.channel, claimed.id, to, reason, exc.code, status)

    async def _keep_failure(self, claimed: Claimed, exc: SendError) -> str:
        async with self.db.session() as s:
            status = await mark_retry_or_failed(
                s,
                claimed,
                self.clock(),
                exc.code,
                str(exc),
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                maybe_sent=exc.maybe_sent,
            )
            if self.channel == "sms" and exc.code == OPTED_OUT:
                await opt_out(s, claimed.to, "carrier", self.clock())
        return status

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: send due messages as the bucket allows, look for new ones every `idle_poll` s,
        and every `recover_every` s put back the rows dead senders left.

        A token is taken before a row is claimed, so a claimed row never waits on the budget (other workers
        may hold the tokens). A token not spent on a provider call (nothing due, or the number opted out) is
        kept for the next message. After a retryable failure the channel pauses, longer while failures go on.
        """
        assert self.bucket is not None
        self._stop = stop
        try:
            await self._rounds(stop)
        except Exception:
            raise  # its supervisor starts it again, with the same bucket
        except BaseException:
            await self.bucket.close()
            raise
        await self.bucket.close()

    async def _rounds(self, stop: asyncio.Event) -> None:
        assert self.bucket is not None
        loop = asyncio.get_running_loop()
        next_recovery, holding, failing = loop.time(), False, 0
        while not stop.is_set():
            if loop.time() >= next_recovery:
                try:
                    recovered = await self.recover()
                except Exception as exc:  # as below: logged, tried again at the next look
                    log.exception("%s: putting back dead senders' messages failed", self.channel)
                    self._failed(exc)
                    recovered = 0
                if recovered:
                    log.warning(
                        "%s: %d message(s) a dead sender claimed are queued again", self.channel, recovered
                    )
                next_recovery = loop.time() + self.recover_every
            if not holding and not await self.bucket.acquire(stop):
                break
            try:
                outcome = await self._send_next()
            except Exception as exc:  # the database away or locked: say so and try again, never stop sending
                log.exception("%s: sending failed; trying again in %g s", self.channel, self.idle_poll)
                self._failed(exc)
                outcome = "failed"
            else:
                if self.health is not None:
                    self.health.beat()
            holding = outcome in ("none", "skipped", "failed")
            failing = failing + 1 if outcome == "unavailable" else 0 if outcome == "called" else failing
            pause = self.idle_poll if outcome in ("none", "failed") else 0.0
            if outcome == "unavailable":  # the provider may be down: one probe per pause, not a storm
                # never sooner than it asked (a 429's retry_after): flood control punishes probes
                pause = max(min(2.0**failing, MAX_PAUSE), self.wait_asked)
                self.wait_asked = 0.0
                log.warning("%s: provider unavailable; next try in %g s", self.channel, pause)
            if pause:
                if self.health is not None and outcome != "failed":  # a failing database is no rest
                    self.health.resting(pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)

    def _failed(self, exc: Exception) -> None:
        if self.health is not None:
            self.health.failed(exc)
