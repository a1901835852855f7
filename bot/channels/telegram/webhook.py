"""`POST /telegram/webhook`: the visit's updates straight to the flow, the rest through aiogram's dispatcher.

Most updates are a cadre answering the visit (a tap, a typed number, a location). aiogram would validate each
into its pydantic models, run its middlewares and try every router's filters (each sync filter in a thread),
then validate the reply into a method model again: several times the work of the answer itself. So this
handler reads the update as JSON, and when it is the visit's (bot.flows.visit_telegram.is_visit_input) from a
bound cadre with no other conversation pending, it calls the visit chat directly, under the same per-chat lock
and with the same FSM storage as aiogram's dispatcher, and answers with the reply as the webhook's JSON answer
(Telegram carries it out: no Bot API call of ours). The tap itself is answered through aiogram's client (with
its retries). Everything else — onboarding, the township queue, strangers, other update types — goes to
aiogram's own handler (`SimpleRequestHandler`), unchanged.

A failing update gets the same apology as through aiogram and is answered 500, so Telegram delivers it again;
answers are recorded with their update_id, so the redelivery is applied once.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any

from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot.channels.telegram.dispatcher import Accounts, ack, answer_calls, apologise, call
from bot.flows.replies import ChatInput
from bot.flows.visit_telegram import is_visit_input
from survey.text import storable_json

log = logging.getLogger("zoufang.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# NUL or a surrogate escape in the JSON: text no database keeps (survey.text); a raw NUL byte is no JSON
_MAYBE_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def chat_input(update: Any) -> ChatInput | None:
    """A message or tap as the flows' plain input; None for anything else, or anything malformed (aiogram's
    handler then sees it, as before)."""
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return None
    try:
        if "callback_query" in update:
            return _tap(update["update_id"], update["callback_query"])
        if "message" in update:
            return _message(update["update_id"], update["message"])
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    return None


def _tap(update_id: int, query: dict[str, Any]) -> ChatInput | None:
    user, message, data = query["from"]["id"], query.get("message"), query.get("data")
    if not isinstance(user, int) or not isinstance(data, str) or not isinstance(query["id"], str):
        return None
    chat = message["chat"]["id"] if message else user
    return ChatInput(
        update_id=update_id,
        user_id=user,
        chat_id=int(chat),
        data=data,
        message_id=message["message_id"] if message else None,
        callback_id=query["id"],
    )


def _message(update_id: int, message: dict[str, Any]) -> ChatInput | None:
    user, chat = message["from"]["id"], message["chat"]["id"]
    if not isinstance(user, int) or not isinstance(chat, int):
        return None
    text, location, photo = message.get("text"), message.get("location"), message.get("photo")
    return ChatInput(
        update_id=update_id,
        user_id=user,
        chat_id=chat,
        text=text if isinstance(text, str) else None,
        location=(float(location["latitude"]), float(location["longitude"])) if location else None,
        photo=str(photo[-1]["file_id"]) if photo else None,  # the largest size comes last
        message_id=message.get("message_id"),
    )


_EVENT_KINDS = tuple(name for name in Update.model_fields if name != "update_id")


class TelegramWebhook:
    def __init__(self, bot: Any, dispatcher: Any, secret: str) -> None:
        self.bot, self.dispatcher, self.secret = bot, dispatcher, secret
        self.accounts: Accounts = dispatcher["accounts"]
        self.chat = dispatcher["visit_chat"]
        self.settings = dispatcher["settings"]
        self.source = f"telegram:{bot.id}"
        self.aiogram = SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token=secret)

    def register(self, app: web.Application, path: str) -> None:
        app.router.add_post(path, self.handle)  # aiogram's handler is called for the updates left to it

    async def _to_aiogram(self, request: web.Request) -> web.StreamResponse:
        """aiogram's handler for the rest; an update it cannot read is answered, not raised as a 500 (Telegram
        would deliver it again and again): a kind aiogram does not know is ignored (200), a malformed one 400."""
        try:
            return await self.aiogram.handle(request)
        except ValidationError as error:
            log.warning("Telegram update refused (400): %d fields malformed", error.error_count())
            return web.Response(status=400, text="malformed update")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), self.secret):
            return web.Response(status=401, text="Unauthorized")
        try:
            body = await request.read()  # over the app's client_max_size: 413
            update = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(update, dict) or type(update.get("update_id")) is not int:
            return web.Response(status=400, text="not a Telegram update")  # no retry can make it one
        if not any(isinstance(update.get(kind), dict) for kind in _EVENT_KINDS):
            return web.json_response({})  # a kind of update this aiogram does not know: nothing to do
        if _MAYBE_UNSTORABLE.search(body):  # rare: only then is every string looked at
            update = storable_json(update)
            # aiogram's handler reads the body aiohttp keeps: hand it the cleaned update
            request._read_bytes = _dumps(update).encode()
        inp = chat_input(update)
        # a group's update goes to aiogram too, whose CadreMiddleware ignores it
        if inp is None or not is_visit_input(inp) or inp.chat_id != inp.user_id:
            return await self._to_aiogram(request)  # the body read above is kept by aiohttp
        account = await self.accounts.get(inp.user_id)
        if account is None:
            return await self._to_aiogram(request)  # a stranger: onboarding's refusal
        fsm = self.dispatcher.fsm
        context = fsm.resolve_context(self.bot, inp.chat_id, inp.user_id)
        if not inp.tapped and await context.get_state() is not None:
            return await self._to_aiogram(request)  # another conversation (a secretary's note) is pending
        cadre = account.cadre
        locale = cadre.locale or self.settings.locale
        async with fsm.events_isolation.lock(context.key):
            try:
                answer = await self.chat.handle(
                    inp, cadre, locale, context, (self.source, str(inp.update_id))
                )
                await ack(self.bot, inp, answer)
                calls = answer_calls(inp, answer)
                for params in calls[:-1]:  # all but the last go now, so they arrive first
                    await call(self.bot, params)
            except Exception:
                log.exception(
                    "Telegram update %s failed (answered 500: Telegram delivers it again)", inp.update_id
                )
                await apologise(self.bot, inp.chat_id, locale)
                return web.Response(status=500, text="failed")
        if not calls:
            return web.json_response({}, dumps=_dumps)
        return web.json_response(calls[-1], dumps=_dumps)
