"""The Telegram channel adapter: the aiogram Bot and Dispatcher, wired to zoufang's flows. Thin by design.

- The Bot API base URL is a setting (a self-hosted telegram-bot-api server, or the fake one in tests).
- Sending that meets 429 (retry_after) or 5xx / network errors is retried with backoff, not dropped.
- Updates of one chat are handled in order (event isolation), across workers too when Redis is configured.
- A failing update gets a short apology and re-raises, so the webhook answers 500 and Telegram redelivers;
  answers are recorded with their update_id, so a redelivered update is applied once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import BotCommand, TelegramObject

from bot.flows import escalation_telegram, onboarding, visit_telegram
from bot.flows.visit import VisitFlow
from bot.settings import Settings
from messages import render
from storage.db import Database
from storage.models import TelegramAccount, utcnow
from storage.telegram import account_for
from survey.script import Script

log = logging.getLogger("zoufang.telegram")

# aiogram validates each Bot API answer as Response[T]; pydantic caches those generic classes only weakly, so
# without a reference they are rebuilt (schema and all) on most calls. Keeping them costs nothing.
_RESPONSE_TYPES = [
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        methods.SendMessage,
        methods.AnswerCallbackQuery,
        methods.EditMessageText,
        methods.EditMessageReplyMarkup,
        methods.SetMyCommands,
        methods.SetWebhook,
        methods.DeleteWebhook,
        methods.GetMe,
        methods.GetUpdates,
    )
]

COMMANDS = ("visit", "resume", "todo", "log", "queue", "problem", "cancel", "whoami", "lang", "help")


class RetryMiddleware(BaseRequestMiddleware):
    """Retry a Bot API call on 429 (after retry_after) and on 5xx or network errors (exponential backoff)."""

    def __init__(self, attempts: int = 5, base_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.attempts, self.base_delay, self.max_delay = attempts, base_delay, max_delay

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts:
                    raise
                delay = min(float(exc.retry_after), self.max_delay)
            except (TelegramServerError, TelegramNetworkError):
                if attempt == self.attempts:
                    raise
                delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
            log.warning(
                "Bot API %s failed (attempt %d), retrying in %.2fs", type(method).__name__, attempt, delay
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def make_bot(settings: Settings, *, retry: RetryMiddleware | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base.rstrip("/")))
    session.middleware(retry or RetryMiddleware())
    return Bot(settings.telegram_bot_token, session=session)


def _fsm(settings: Settings) -> tuple[BaseStorage, BaseEventIsolation]:
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

        storage = RedisStorage.from_url(settings.redis_url)
        return storage, RedisEventIsolation(redis=storage.redis)
    return MemoryStorage(), SimpleEventIsolation()


class Accounts:
    """Who is behind a Telegram user, remembered for a short while: every update needs it.

    A binding changed in this process (/start, /lang) is forgotten at once. Without Redis another process's
    change is seen within `ttl` seconds; with Redis (several workers) a change bumps a generation there
    (`publish`, before the update is answered) and every worker's copies older than it are dropped: one GET
    an update instead of a query."""

    GENERATION = "zoufang:telegram:accounts"

    def __init__(self, db: Database, ttl: float = 30.0, redis: Any = None) -> None:
        self.db, self.ttl, self.redis = db, ttl, redis
        self._known: dict[int, tuple[float, TelegramAccount, Any]] = {}
        self._changed = False

    async def get(self, user_id: int) -> TelegramAccount | None:
        now = time.monotonic()
        generation = await self.redis.get(self.GENERATION) if self.redis is not None else None
        hit = self._known.get(user_id)
        if hit is not None and hit[0] > now and hit[2] == generation:
            return hit[1]
        async with self.db.reading() as s:  # after reading the generation: a change racing this read bumps it
            account = await account_for(s, user_id)
        if account is not None:  # strangers are not remembered: their /start must reach the database
            self._known[user_id] = (now + self.ttl, account, generation)
        return account

    def forget(self, user_id: int) -> None:
        self._known.pop(user_id, None)
        self._changed = True

    def clear(self) -> None:
        self._known.clear()
        self._changed = True

    async def publish(self) -> None:
        """Tell the other workers that a binding changed here (called before the update is answered)."""
        if self._changed and self.redis is not None:
            await self.redis.incr(self.GENERATION)
            self._changed = False


class CadreMiddleware(BaseMiddleware):
    """Every message and tap: find the cadre behind the Telegram user (strangers only reach onboarding),
    hand the handler the update's dedupe key, send what the handler returns through the retrying client,
    and apologise when anything fails before re-raising (the webhook then answers 500 and Telegram
    redelivers; answers are recorded with the dedupe key, so the redelivery does not apply them twice)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        if user is None:
            return None
        account = await self.accounts.get(user.id)
        bot: Bot = data["bot"]
        data["cadre"] = account.cadre if account else None
        data["locale"] = (account.cadre.locale if account else None) or data["settings"].locale
        data["dedupe"] = (f"telegram:{bot.id}", str(data["event_update"].update_id))
        try:
            if account is None and not onboarding.is_start(event):
                result = await onboarding.refuse_stranger(event, data["db"], user.id, data["locale"])
            else:
                try:
                    result = await handler(event, data)
                finally:
                    await self.accounts.publish()
            await deliver(bot, result)
        except Exception:
            await _apologise(bot, data)
            raise
        return None


async def _apologise(bot: Bot, data: dict[str, Any]) -> None:
    chat = data.get("event_chat")
    if chat is None:
        return
    try:
        await bot.send_message(chat.id, render("telegram/apology.txt", data["locale"]))
    except Exception:  # the apology is best effort; the original error is what matters
        log.exception("could not send the apology")


TEXT_LIMIT = 4096


async def deliver(bot: Bot, method: Any) -> None:
    """Send a handler's reply through the retrying client (429/5xx are retried, not dropped). A text over
    Telegram's 4,096 characters goes as several messages, the keyboard on the last."""
    if not isinstance(method, TelegramMethod):
        return
    if isinstance(method, methods.SendMessage) and len(method.text) > TEXT_LIMIT:
        *first, last = _chunks(method.text)
        for part in first:
            await bot.send_message(method.chat_id, part)
        method = method.model_copy(update={"text": last})
    await bot(method)


def _chunks(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Whole lines together where they fit; a line longer than the limit is cut."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        for piece in [line[i : i + limit] for i in range(0, len(line), limit)] or [""]:
            if current and len(current) + 1 + len(piece) > limit:
                chunks.append(current)
                current = piece
            else:
                current = f"{current}\n{piece}" if current else piece
    return [*chunks, current]


def make_dispatcher(
    db: Database, script: Script, settings: Settings, *, clock: Callable[..., Any] = utcnow
) -> Dispatcher:
    storage, isolation = _fsm(settings)
    dp = Dispatcher(storage=storage, events_isolation=isolation)
    dp["db"], dp["settings"], dp["clock"] = db, settings, clock
    dp["flow"] = VisitFlow(db, script, settings, clock)
    dp["script"] = script
    dp["accounts"] = accounts = Accounts(db, redis=getattr(storage, "redis", None))  # RedisStorage's client
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(CadreMiddleware(accounts))
    # the escalation router before the visit's: while a note is pending, /cancel and text are its
    dp.include_routers(
        onboarding.make_router(), escalation_telegram.make_router(), visit_telegram.make_router()
    )
    return dp


async def set_commands(bot: Bot) -> None:
    """The command menu (setMyCommands), in Chinese by default and in English for English clients."""
    for locale, language in (("zh_CN", None), ("en", "en")):
        commands = [
            BotCommand(command=c, description=render(f"telegram/command_{c}.txt", locale)) for c in COMMANDS
        ]
        await bot.set_my_commands(commands, language_code=language)


def used_update_types() -> list[str]:
    """The update types the handlers use (message, callback_query): the webhook asks for just these."""
    return ["message", "callback_query"]
