"""The outbox's sending side: senders (Twilio, console, the Telegram bot) and the outbox worker.

The worker sends one channel's rows (`sms` or `telegram`) at a configured rate (SMS: default 1 message a
second, a long code's rate), retries 429, 5xx and network errors with exponential backoff up to 3 attempts,
then marks the message failed. Twilio's error 21610 (the recipient replied STOP to the carrier) marks the
number opted out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO

from bot.settings import Settings
from storage.db import Database
from storage.models import utcnow
from storage.outbox import (
    Claimed,
    claim_next,
    is_opted_out,
    mark_retry_or_failed,
    mark_sent,
    mark_skipped,
    opt_out,
    recover,
)

log = logging.getLogger("zoufang.sms")

OPTED_OUT = "21610"  # Twilio: "Attempt to send to unsubscribed recipient"
# These go to a number that has just opted out or in: they must not be held back by the opt-out list.
OPT_CONFIRMATIONS = frozenset({"poll/opted_out", "poll/opted_in"})
IN_FLIGHT_GRACE = timedelta(minutes=2)


class SendError(Exception):
    """A message the provider did not take: its error code, and whether another try may succeed."""

    def __init__(self, message: str, *, code: str | None, retryable: bool) -> None:
        super().__init__(message)
        self.code, self.retryable = code, retryable


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


class TwilioSender:
    """The real twilio library's async REST client; TWILIO_API_BASE points it elsewhere (a fake, in tests)."""

    def __init__(self, settings: Settings) -> None:
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        self.http = AsyncTwilioHttpClient(timeout=30)
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=self.http)
        if settings.twilio_api_base:
            self.client.api.base_url = settings.twilio_api_base.rstrip("/")
        self.origin: dict[str, str] = (
            {"messaging_service_sid": settings.twilio_messaging_service_sid}
            if settings.twilio_messaging_service_sid
            else {"from_": settings.twilio_from_number}
        )
        if settings.public_base_url:
            self.origin["status_callback"] = settings.public_base_url.rstrip("/") + "/sms/status"

    async def send(self, to: str, body: str) -> str | None:
        from twilio.base.exceptions import TwilioRestException

        try:
            message = await self.client.messages.create_async(to=to, body=body, **self.origin)
        except TwilioRestException as exc:
            retryable = exc.status == 429 or exc.status >= 500
            raise SmsError(str(exc.msg), code=str(exc.code or exc.status), retryable=retryable) from exc
        except (TimeoutError, OSError) as exc:  # the network: worth another try
            raise SmsError(str(exc), code=None, retryable=True) from exc
        return message.sid

    async def close(self) -> None:
        await self.http.close()


def make_sender(settings: Settings) -> Sender:
    """SMS_BACKEND=twilio|console; console when unset and no Twilio credentials are configured."""
    backend = settings.sms_backend or ("twilio" if settings.twilio_account_sid else "console")
    if backend == "twilio":
        return TwilioSender(settings)
    if backend == "console":
        return ConsoleSender()
    raise ValueError(f"SMS_BACKEND={backend!r}: use twilio or console")


TELEGRAM_MAX_TEXT = 4096  # the Bot API's limit for one message, in UTF-16 code units


def split_text(text: str, limit: int = TELEGRAM_MAX_TEXT) -> list[str]:
    """`text` in pieces of at most `limit` UTF-16 units, cut at line breaks (a longer line is cut where it must)."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while _units(line) > limit:  # one line alone is too long: cut it hard
            if current:
                pieces.append(current)
                current = ""
            cut = _prefix_within(line, limit)
            pieces.append(line[:cut])
            line = line[cut:]
        if _units(current) + _units(line) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return [p.rstrip("\n") for p in pieces if p.strip()]


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _telegram_code(exc: Exception) -> str:
    """TelegramForbiddenError → "Forbidden" (outbox error codes are short)."""
    return type(exc).__name__.removeprefix("Telegram").removesuffix("Error")[:16]


class TelegramSender:
    """Sends outbox rows of the `telegram` channel through the bot: `to` is the chat id, the body HTML.

    A text over Telegram's limit goes as several messages, cut at line breaks. The bot's session (and its retry
    middleware) belong to the caller, who closes it."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def send(self, to: str, body: str) -> str | None:
        from aiogram.exceptions import (
            TelegramAPIError,
            TelegramNetworkError,
            TelegramRetryAfter,
            TelegramServerError,
        )

        if not to.lstrip("-").isdigit():
            raise SendError(f"not a Telegram chat id: {to!r}", code="bad_chat", retryable=False)
        message_id = None
        try:
            for piece in split_text(body):
                sent = await self.bot.send_message(chat_id=int(to), text=piece, parse_mode="HTML")
                message_id = sent.message_id
        except (TelegramRetryAfter, TelegramServerError, TelegramNetworkError) as exc:
            raise SendError(str(exc), code=_telegram_code(exc), retryable=True) from exc
        # blocked by the user, chat not found, bad HTML: another try won't help
        except TelegramAPIError as exc:
            raise SendError(str(exc), code=_telegram_code(exc), retryable=False) from exc
        return None if message_id is None else f"tg:{to}:{message_id}"  # message ids are per chat

    async def close(self) -> None:
        return None


@dataclass
class OutboxWorker:
    """Sends one channel of the outbox, one message at a time, at `rate` messages a second."""

    db: Database
    sender: Sender
    rate: float = 1.0
    clock: Callable[[], datetime] = utcnow
    idle_poll: float = 1.0
    channel: str = "sms"

    async def recover(self) -> int:
        """At start: messages a dead sender had claimed go back in the queue."""
        async with self.db.session() as s:
            return await recover(s, self.clock() - IN_FLIGHT_GRACE)

    async def send_one(self) -> bool:
        """Send the next due message; False when there is none."""
        now = self.clock()
        async with self.db.session() as s:
            claimed = await claim_next(s, now, self.channel)
            if (
                claimed is not None
                and self.channel == "sms"
                and claimed.kind not in OPT_CONFIRMATIONS
                and await is_opted_out(s, claimed.to)
            ):
                await mark_skipped(s, claimed.id, "opted out")
                return True
        if claimed is None:
            return False
        await self._deliver(claimed)
        return True

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            sid = await self.sender.send(claimed.to, claimed.body)
        except SendError as exc:
            async with self.db.session() as s:
                status = await mark_retry_or_failed(
                    s, claimed, self.clock(), exc.code, str(exc), retryable=exc.retryable
                )
                if self.channel == "sms" and exc.code == OPTED_OUT:
                    await opt_out(s, claimed.to, "carrier", self.clock())
            log.warning(
                "%s %d to %s: %s (%s) → %s", self.channel, claimed.id, claimed.to, exc, exc.code, status
            )
            return
        async with self.db.session() as s:
            await mark_sent(s, claimed.id, sid, self.clock())

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: send due messages at the rate, and look for new ones every `idle_poll` s."""
        await self.recover()
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        while not stop.is_set():
            sent = await self.send_one()
            pause = interval if sent else self.idle_poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
