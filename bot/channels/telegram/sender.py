"""The Telegram bot as an outbox sender, and the one text splitter (Telegram counts a message's 4,096 in UTF-16
code units)."""

from __future__ import annotations

from typing import Any

from bot.jobs.outbox import SendError

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
        except TelegramRetryAfter as exc:
            code = _telegram_code(exc)
            raise SendError(str(exc), code=code, retryable=True, retry_after=exc.retry_after) from exc
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise SendError(str(exc), code=_telegram_code(exc), retryable=True) from exc
        # blocked by the user, chat not found, bad HTML: another try won't help
        except TelegramAPIError as exc:
            raise SendError(str(exc), code=_telegram_code(exc), retryable=False) from exc
        return None if message_id is None else f"tg:{to}:{message_id}"  # message ids are per chat

    async def close(self) -> None:
        return None
