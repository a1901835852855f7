"""The Telegram channel adapter: the aiogram Bot and Dispatcher, wired to zoufang's flows. Thin by design.

- The Bot API base URL is a setting (a self-hosted telegram-bot-api server, or the fake one in tests).
- Sending that meets 429 (retry_after) or 5xx / network errors is retried with backoff, not dropped.
- Updates of one chat are handled in order (event isolation), across workers too when Redis is configured.
- A failing update gets a short apology and re-raises, so the webhook answers 500 and Telegram redelivers;
  answers are recorded with their update_id, so a redelivered update is applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, Router, methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import BotCommand, CallbackQuery, Message, TelegramObject

from bot.channels.telegram import escalation as escalation_telegram
from bot.channels.telegram import onboarding
from bot.channels.telegram.sender import TELEGRAM_MAX_TEXT, split_text
from bot.flows.replies import Answer, Buttons, ChatInput, Edit, Keyboard, LocationRequest, Say
from bot.flows.visit import VisitFlow
from bot.flows.visit_telegram import ChatState, VisitChat, is_visit_input
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

COMMANDS = ("visit", "resume", "todo", "log", "queue", "problem", "cancel", "whoami", "web", "lang", "help")


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
        user, chat = data.get("event_from_user"), data.get("event_chat")
        if user is None or (chat is not None and chat.type != "private"):
            return None  # a group's members are nobody's cadres: nothing is said (or taken) there
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
    if chat is not None:
        await apologise(bot, chat.id, data["locale"])


async def apologise(bot: Bot, chat_id: int, locale: str) -> None:
    """Tell the chat that its last message was not taken (the update is answered 500 and comes again)."""
    try:
        await bot.send_message(chat_id, render("telegram/apology.txt", locale))
    except Exception:  # the apology is best effort; the original error is what matters
        log.exception("could not send the apology")


TEXT_LIMIT = TELEGRAM_MAX_TEXT


async def deliver(bot: Bot, method: Any) -> None:
    """Send a handler's reply through the retrying client (429/5xx are retried, not dropped). A text over
    Telegram's 4,096 UTF-16 units goes as several messages, the keyboard on the last."""
    if not isinstance(method, TelegramMethod):
        return
    if isinstance(method, methods.SendMessage):
        *first, last = pieces(method.text)
        for part in first:
            await bot.send_message(method.chat_id, part)
        method = method.model_copy(update={"text": last})
    await bot(method)


def pieces(text: str) -> list[str]:
    """The text as messages Telegram takes (at most 4,096 UTF-16 units each), cut at line breaks."""
    if len(text) <= TEXT_LIMIT // 2:  # a UTF-16 unit count is at most twice the length: it fits
        return [text]
    return split_text(text) or [text]


# --- a flow's Answer as Bot API calls ------------------------------------------------------------------------


def markup_json(keyboard: Keyboard | None) -> dict[str, Any] | None:
    """Buttons as the Bot API's reply_markup."""
    if keyboard is None:
        return None
    if isinstance(keyboard, LocationRequest):
        return {
            "keyboard": [[{"text": keyboard.share, "request_location": True}], [{"text": keyboard.skip}]],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
    return {"inline_keyboard": [[{"text": b.text, "callback_data": b.data} for b in row] for row in keyboard]}


def _inline(keyboard: Buttons | None) -> dict[str, Any]:
    return markup_json(keyboard) or {"inline_keyboard": []}


def answer_calls(inp: ChatInput, answer: Answer) -> list[dict[str, Any]]:
    """The Bot API calls that carry out `answer`, as {"method": …, params…}, in order. A long text is several
    messages, the buttons on the last; an edit of a message we cannot name (an inline one) is dropped."""
    reply = answer.reply
    if isinstance(reply, Say):
        *first, last = pieces(reply.text)
        calls: list[dict[str, Any]] = [
            {"method": "sendMessage", "chat_id": inp.chat_id, "text": t} for t in first
        ]
        final = {"method": "sendMessage", "chat_id": inp.chat_id, "text": last}
        if reply.keyboard is not None:
            final["reply_markup"] = markup_json(reply.keyboard)
        return [*calls, final]
    if isinstance(reply, Edit) and inp.message_id is not None:
        where = {
            "chat_id": inp.chat_id,
            "message_id": inp.message_id,
            "reply_markup": _inline(reply.keyboard),
        }
        if reply.text is None:
            return [{"method": "editMessageReplyMarkup", **where}]
        return [{"method": "editMessageText", "text": reply.text, **where}]
    return []


_METHODS = {
    "sendMessage": methods.SendMessage,
    "editMessageText": methods.EditMessageText,
    "editMessageReplyMarkup": methods.EditMessageReplyMarkup,
}


async def call(bot: Bot, params: dict[str, Any]) -> None:
    """One call of `answer_calls` through the retrying client."""
    params = dict(params)
    await bot(_METHODS[params.pop("method")].model_validate(params))


async def ack(bot: Bot, inp: ChatInput, answer: Answer) -> None:
    """Stop the tapped button's spinner. Cosmetic: a refused or late answer (Telegram allows one, within
    seconds) must not fail an update whose answer is already saved, or Telegram would redeliver it forever."""
    if answer.ack and inp.callback_id is not None:
        with contextlib.suppress(TelegramAPIError):
            await bot.answer_callback_query(inp.callback_id, text=answer.ack_text)


async def deliver_answer(bot: Bot, inp: ChatInput, answer: Answer) -> None:
    await ack(bot, inp, answer)
    for params in answer_calls(inp, answer):
        await call(bot, params)


# --- the visit, through aiogram (polling, and webhook updates the fast path leaves to aiogram) ---------------


def chat_input_of(event: TelegramObject, update_id: int) -> ChatInput | None:
    """An aiogram message or tap as the flows' plain input."""
    if isinstance(event, CallbackQuery):
        message = event.message if isinstance(event.message, Message) else None
        return ChatInput(
            update_id=update_id,
            user_id=event.from_user.id,
            chat_id=message.chat.id if message else event.from_user.id,
            data=event.data or "",
            message_id=message.message_id if message else None,
            callback_id=event.id,
        )
    if isinstance(event, Message) and event.from_user is not None:
        location = (event.location.latitude, event.location.longitude) if event.location else None
        photo = event.photo[-1].file_id if event.photo else None  # the largest size comes last
        return ChatInput(
            update_id=update_id,
            user_id=event.from_user.id,
            chat_id=event.chat.id,
            text=event.text,
            location=location,
            photo=photo,
            message_id=event.message_id,
        )
    return None


def visit_router() -> Router:
    """Every message and tap the other routers left: the visit's (VisitChat), delivered over HTTP."""
    router = Router(name="visit")

    async def visit(
        event: TelegramObject,
        event_update: Any,
        bot: Bot,
        cadre: Any,
        locale: str,
        state: ChatState,
        dedupe: tuple[str, str],
        visit_chat: VisitChat,
    ) -> None:
        inp = chat_input_of(event, event_update.update_id)
        if inp is None or not is_visit_input(inp):
            return
        await deliver_answer(bot, inp, await visit_chat.handle(inp, cadre, locale, state, dedupe))

    router.message.register(visit)
    router.callback_query.register(visit)
    return router


def make_dispatcher(
    db: Database, script: Script, settings: Settings, *, clock: Callable[..., Any] = utcnow
) -> Dispatcher:
    storage, isolation = _fsm(settings)
    dp = Dispatcher(storage=storage, events_isolation=isolation)
    dp["db"], dp["settings"], dp["clock"] = db, settings, clock
    dp["flow"] = flow = VisitFlow(db, script, settings, clock)
    dp["visit_chat"] = VisitChat(db, flow, script, settings)
    dp["script"] = script
    dp["accounts"] = accounts = Accounts(db, redis=getattr(storage, "redis", None))  # RedisStorage's client
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(CadreMiddleware(accounts))
    # the escalation router before the visit's: while a note is pending, /cancel and text are its
    dp.include_routers(onboarding.make_router(), escalation_telegram.make_router(), visit_router())
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
