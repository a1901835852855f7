"""A fake Telegram Bot API server over real HTTP on loopback, for tests.

The real aiogram client talks to it unchanged::

    fake = FakeTelegram()
    await fake.start()
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    # or simply: bot = fake.make_bot()

Every request is recorded in ``fake.calls`` (JSON-typed fields decoded). ``push_update`` queues updates
for ``getUpdates`` (long polling wakes up at once), ``fail_next`` scripts errors (429 with retry_after,
400, 403, 500…), and the ``*_update`` builders make realistic incoming updates as plain dicts.

This module imports only aiohttp; aiogram is imported lazily by ``make_bot`` (it is slow to import).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

__all__ = [
    "Call",
    "FakeTelegram",
    "callback_update",
    "edited_message_update",
    "fake_telegram",
    "location_update",
    "message_update",
    "next_update_id",
    "photo_update",
]

DEFAULT_TOKEN = (
    "7123456789:AAH-TEST-token"  # a real bot id has 10 digits (telegram:<id> must fit its columns)
)
DEFAULT_BOT_USERNAME = "zoufang_test_bot"

# Fields that Telegram types as JSON objects/arrays: aiogram sends them as JSON strings.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "explanation_entities",
        "question_entities",
        "commands",
        "allowed_updates",
        "scope",
        "menu_button",
        "link_preview_options",
        "reply_parameters",
        "media",
        "results",
        "options",
        "rights",
        "permissions",
        "reaction",
        "message_ids",
        "prices",
        "button",
    }
)
# Free-text fields: never decoded or coerced, whatever they look like.
TEXT_FIELDS = frozenset(
    {
        "text",
        "caption",
        "data",
        "query",
        "url",
        "secret_token",
        "description",
        "short_description",
        "name",
        "title",
        "callback_query_id",
        "inline_message_id",
        "language_code",
        "parse_mode",
        "action",
        "ip_address",
        "certificate",
    }
)
# Integer fields coerced from their form strings when they look like integers.
INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "user_id",
        "offset",
        "limit",
        "timeout",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "max_connections",
        "until_date",
        "width",
        "height",
        "duration",
        "live_period",
        "heading",
        "proximity_alert_radius",
    }
)

# Update types Telegram leaves out unless asked for explicitly.
_OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: fake error",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: fake conflict",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_INT_RE = re.compile(r"-?\d+")

# --- module-level counters for the update builders -----------------------------------------------------

_update_ids = itertools.count(1)
_incoming_message_ids = itertools.count(100_000)  # well away from ids the fake gives the bot's own messages
_callback_ids = itertools.count(1)


def next_update_id() -> int:
    """The next value of the module-wide update_id counter (used by the builders and push_update)."""
    return next(_update_ids)


def _now() -> int:
    return int(time.time())


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the fake received. ``status`` is the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


class FakeTelegram:
    """A fake Bot API server. See the module docstring."""

    #: Longest a getUpdates long poll is held, whatever `timeout` the client asks for (keeps tests fast).
    poll_cap: float = 1.0

    def __init__(self, token: str = DEFAULT_TOKEN, bot_username: str = DEFAULT_BOT_USERNAME) -> None:
        if not re.fullmatch(r"\d+:.+", token):
            raise ValueError("a bot token looks like '<digits>:<text>'")
        self.token = token
        self.bot_username = bot_username
        self.bot_id = int(token.split(":", 1)[0])
        self.base_url = ""
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self.commands: list[dict[str, Any]] | None = None
        self.menu_button: dict[str, Any] | None = None
        #: chat ids for which every method carrying that chat_id answers 403 "bot was blocked by the user".
        self.blocked: set[int] = set()
        #: Updates dropped because their type was not in the client's allowed_updates.
        self.dropped_updates: list[dict[str, Any]] = []
        #: Messages the bot sent or edited, by (chat_id, message_id).
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}

        self._updates: list[dict[str, Any]] = []
        self._last_update_id = 0
        self._allowed_updates: list[str] = []
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._true,
            "deletemessage": self._true,
            "setmycommands": self._set_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getmycommands": self._get_my_commands,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setchatmenubutton": self._set_chat_menu_button,
        }

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._closing = False

    async def close(self) -> None:
        self._closing = True
        self._updates_changed.set()  # release pending long polls at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def make_bot(self, **kwargs: Any) -> Any:
        """A real aiogram ``Bot`` talking to this fake (close it with ``await bot.session.close()``)."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.base_url))
        return Bot(self.token, session=session, **kwargs)

    # --- inspection ----------------------------------------------------------------------------------

    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "走访", "username": self.bot_username}

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        """Params of the successful calls of `method`, in order (calls answered with an error are left out)."""
        return [c.params for c in self.calls if c.method.lower() == method.lower() and c.ok]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """`text` of the successful sendMessage and editMessageText calls, in order (optionally to one chat)."""
        out = []
        for c in self.calls:
            if c.ok and c.method.lower() in ("sendmessage", "editmessagetext"):
                if chat_id is not None and c.params.get("chat_id") != chat_id:
                    continue
                out.append(c.params.get("text", ""))
        return out

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def wait_for(self, method: str = "sendMessage", count: int = 1, timeout: float = 2.0) -> list[dict]:
        """Wait until at least `count` successful calls of `method` were recorded; return their params."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.sent(method)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(found)} {method} call(s) after {timeout}s, wanted {count}")
            self._calls_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calls_changed.wait(), remaining)
        return found

    # --- scripting -----------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` answer an error with that HTTP status.

        A 429 always carries ``parameters.retry_after`` (1 s unless given), as Telegram's do.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}").format(retry_after=retry_after)
        for _ in range(times):
            self._failures[method.lower()].append(_Failure(status, description, retry_after))

    def recover(self) -> None:
        """The scripted failures not yet used are dropped: every method answers again."""
        self._failures.clear()

    def block(self, chat_id: int) -> None:
        """From now on, calls to this chat answer 403 "Forbidden: bot was blocked by the user"."""
        self.blocked.add(chat_id)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates; assigns an increasing update_id when it has none."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = max(next_update_id(), self._last_update_id + 1)
        self._last_update_id = max(self._last_update_id, update["update_id"])
        self._updates.append(update)
        self._updates_changed.set()

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        path = request.path
        prefix = "/bot"
        if not path.startswith(prefix) or "/" not in path[len(prefix) :]:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"},
                status=404,
            )
        token, method = path[len(prefix) :].split("/", 1)
        params = await self._read_params(request)
        call = Call(method, params)
        self.calls.append(call)
        try:
            if token != self.token:
                raise _ApiError(401, "Unauthorized")
            failures = self._failures.get(method.lower())
            if failures:
                f = failures.popleft()
                raise _ApiError(f.status, f.description, f.retry_after)
            if params.get("chat_id") in self.blocked:
                raise _ApiError(403, "Forbidden: bot was blocked by the user")
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise _ApiError(404, "Not Found: method not found")
            result = await handler(params)
        except _ApiError as e:
            call.status = e.status
            self._calls_changed.set()
            body: dict[str, Any] = {"ok": False, "error_code": e.status, "description": e.description}
            if e.retry_after is not None:
                body["parameters"] = {"retry_after": e.retry_after}
            return web.json_response(body, status=e.status)
        self._calls_changed.set()
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                raw.update(await request.json())
                return raw
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    raw[key] = {"filename": value.filename, "content_type": value.content_type}
                else:
                    raw[key] = value
        return {key: _decode(key, value) for key, value in raw.items()}

    # --- methods -------------------------------------------------------------------------------------

    async def _true(self, params: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset"), 0)
        limit = min(max(_as_int(params.get("limit"), 100), 1), 100)
        timeout = max(_as_int(params.get("timeout"), 0), 0)
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._allowed_updates = params["allowed_updates"]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.poll_cap)
        while True:
            self._confirm(offset)
            self._drop_not_allowed()
            if self._updates or self._closing:
                return self._updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            self._updates_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_changed.wait(), remaining)

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    def _drop_not_allowed(self) -> None:
        kept = []
        for update in self._updates:
            kind = next((k for k in update if k != "update_id"), None)
            allowed = (
                kind in self._allowed_updates if self._allowed_updates else kind not in _OPT_IN_UPDATE_TYPES
            )
            (kept if allowed else self.dropped_updates).append(update)
        self._updates = kept

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if isinstance(chat_id, int) and chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "用户"}
        if isinstance(chat_id, int):
            return {"id": chat_id, "type": "group", "title": "group"}
        raise _ApiError(400, "Bad Request: chat not found")

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chat(chat_id)
        text = params.get("text", "")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": _now(),
            "chat": chat,
            "from": self.bot_user,
            "text": text,
        }
        if isinstance(params.get("entities"), list):
            message["entities"] = params["entities"]
        _attach_markup(message, params.get("reply_markup"))
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _edited(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The message an edit targets (None for inline messages); unknown ones are made up, leniently."""
        if params.get("inline_message_id"):
            return None
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        if not isinstance(message_id, int):
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        chat = self._chat(chat_id)
        message = self.messages.get((chat_id, message_id))
        if message is None:
            message = {"message_id": message_id, "date": _now(), "chat": chat, "from": self.bot_user}
        message = {**message, "edit_date": _now()}
        self.messages[(chat_id, message_id)] = message
        return message

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        text = params.get("text", "")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        message = self._edited(params)
        if message is None:
            return True
        message["text"] = text
        message.pop("reply_markup", None)  # as in Telegram: an edit without reply_markup removes it
        _attach_markup(message, params.get("reply_markup"))
        return message

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        message = self._edited(params)
        if message is None:
            return True
        message.pop("reply_markup", None)
        _attach_markup(message, params.get("reply_markup"))
        return message

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise _ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        return True

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: commands must be a list")
        self.commands = commands
        return True

    async def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands = None
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.commands or [])

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url", "")
        if url and not str(url).startswith("https://"):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        self.webhook = dict(params) if url else None
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        self.webhook = None
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook:
            for key in ("max_connections", "ip_address", "allowed_updates"):
                if key in self.webhook:
                    info[key] = self.webhook[key]
        return info

    async def _set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        self.menu_button = params.get("menu_button")
        return True


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    return default


async def carry_out_webhook_answer(response: Any, fake: FakeTelegram, session: Any) -> None:
    """Do what Telegram does with a webhook's answer that names a method: call it. The answer is JSON
    ({"method": …, params…}) or, as aiogram writes it, multipart form data; anything else is no call."""
    import aiohttp

    if response.status != 200:
        return
    if response.content_type == "application/json":
        params = await response.json()
        if not isinstance(params, dict) or "method" not in params:
            return
        url = f"{fake.base_url}/bot{fake.token}/{params.pop('method')}"
        async with session.post(url, json=params) as answer:
            assert answer.status == 200, await answer.text()
        return
    if not response.content_type.startswith("multipart/"):
        return
    fields: dict[str, str] = {}
    reader = aiohttp.MultipartReader.from_response(response)
    while (part := await reader.next()) is not None:
        fields[part.name] = await part.text()
    url = f"{fake.base_url}/bot{fake.token}/{fields.pop('method')}"
    async with session.post(url, data=fields) as answer:
        assert answer.status == 200, await answer.text()


def _decode(key: str, value: Any) -> Any:
    """Undo aiogram's form encoding: JSON fields decoded, ids as ints, "true"/"false" as bools."""
    if not isinstance(value, str) or key in TEXT_FIELDS:
        return value
    if key in INT_FIELDS and _INT_RE.fullmatch(value):
        return int(value)
    if key in JSON_FIELDS or value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if value in ("true", "false"):
        return value == "true"
    return value


def _attach_markup(message: dict[str, Any], markup: Any) -> None:
    # Message.reply_markup can only be an inline keyboard; reply keyboards are not echoed back.
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        message["reply_markup"] = markup


# --- builders of incoming updates ----------------------------------------------------------------------


def _user(user_id: int, first_name: str, username: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": "zh-hans",
    }
    if username:
        user["username"] = username
    return user


def _private_chat(user_id: int, first_name: str, username: str | None) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
    if username:
        chat["username"] = username
    return chat


def _message(
    user_id: int,
    *,
    message_id: int | None = None,
    first_name: str = "张",
    username: str | None = None,
    date: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "message_id": message_id if message_id is not None else next(_incoming_message_ids),
        "from": _user(user_id, first_name, username),
        "chat": _private_chat(user_id, first_name, username),
        "date": date if date is not None else _now(),
        **fields,
    }


def _update(kind: str, payload: dict[str, Any], update_id: int | None) -> dict[str, Any]:
    return {"update_id": update_id if update_id is not None else next_update_id(), kind: payload}


def message_update(
    user_id: int,
    text: str,
    *,
    update_id: int | None = None,
    first_name: str = "张",
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """A private text message; a leading /command gets its bot_command entity."""
    fields: dict[str, Any] = {"text": text}
    if text.startswith("/") and len(text) > 1:
        command = text.split(maxsplit=1)[0]
        fields["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
    message = _message(
        user_id, message_id=message_id, first_name=first_name, username=username, date=date, **fields
    )
    return _update("message", message, update_id)


def callback_update(
    user_id: int,
    data: str,
    *,
    message_id: int = 1,
    update_id: int | None = None,
    first_name: str = "张",
    username: str | None = None,
    message_text: str = "…",
    bot_id: int = int(DEFAULT_TOKEN.split(":")[0]),
    bot_username: str = DEFAULT_BOT_USERNAME,
) -> dict[str, Any]:
    """An inline-button press on the bot's message `message_id` in the user's private chat."""
    bot = {"id": bot_id, "is_bot": True, "first_name": "走访", "username": bot_username}
    query = {
        "id": str(next(_callback_ids)),
        "from": _user(user_id, first_name, username),
        "chat_instance": f"ci-{user_id}",
        "message": {
            "message_id": message_id,
            "from": bot,
            "chat": _private_chat(user_id, first_name, username),
            "date": _now(),
            "text": message_text,
        },
        "data": data,
    }
    return _update("callback_query", query, update_id)


def location_update(user_id: int, lat: float, lon: float, *, update_id: int | None = None, **kw: Any) -> dict:
    """A shared location (kw: message_id, first_name, username, date, and extra Location fields)."""
    location: dict[str, Any] = {"latitude": lat, "longitude": lon}
    for key in ("horizontal_accuracy", "live_period", "heading"):
        if key in kw:
            location[key] = kw.pop(key)
    return _update("message", _message(user_id, location=location, **kw), update_id)


def photo_update(
    user_id: int,
    file_id: str,
    *,
    update_id: int | None = None,
    caption: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A photo in three sizes; the largest (last, as in Telegram) has `file_id`."""
    sizes = [(90, 67, "_s"), (320, 240, "_m"), (1280, 960, "")]
    photo = [
        {
            "file_id": f"{file_id}{suffix}",
            "file_unique_id": f"u{file_id}{suffix}"[:32],
            "width": w,
            "height": h,
            "file_size": w * h // 8,
        }
        for w, h, suffix in sizes
    ]
    fields: dict[str, Any] = {"photo": photo}
    if caption is not None:
        fields["caption"] = caption
    return _update("message", _message(user_id, **fields, **kw), update_id)


def edited_message_update(
    user_id: int,
    text: str,
    *,
    update_id: int | None = None,
    message_id: int | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """An edit of an earlier text message (pass its message_id to match one you sent before)."""
    message = _message(user_id, message_id=message_id, text=text, edit_date=_now(), **kw)
    return _update("edited_message", message, update_id)


# --- pytest fixture ------------------------------------------------------------------------------------


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """A started FakeTelegram, closed after the test."""
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
