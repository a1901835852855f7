"""Cadre onboarding in Telegram: `/start CODE` binds the account, `/whoami`, `/lang`, `/help`, and `/web` (a
one-time sign-in link to the dashboard, as `zoufang web invite` prints).

Strangers get one short refusal a day and nothing more; five wrong codes within an hour lock a user out for
an hour (counted in the database, so a restart or a second worker does not reset the count).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, LinkPreviewOptions, Message, TelegramObject

from bot.settings import Settings
from messages import LOCALES, locale_or_default, render
from storage.db import Database
from storage.models import Cadre, utcnow
from storage.telegram import attempts_since, record_attempt, redeem_invite
from storage.web import create_link

MAX_BAD_CODES = 5
LOCKOUT = timedelta(hours=1)
REFUSAL_EVERY = timedelta(days=1)


def is_start(event: TelegramObject) -> bool:
    return isinstance(event, Message) and (event.text or "").split(maxsplit=1)[:1] == ["/start"]


async def refuse_stranger(event: TelegramObject, db: Database, user_id: int, locale: str) -> Any:
    """One short refusal a day to someone who is not a bound cadre; nothing else is said or stored."""
    now = utcnow()
    async with db.reading() as s:  # most strangers' messages need only this read
        count, _ = await attempts_since(s, user_id, "refused", now - REFUSAL_EVERY)
    if count == 0:
        async with db.session() as s:
            await record_attempt(s, user_id, "refused", now)
    if isinstance(event, CallbackQuery):
        return event.answer()
    if count == 0 and isinstance(event, Message):
        return event.answer(render("telegram/refused.txt", locale))
    return None


async def start(
    message: Message, command: CommandObject, cadre: Cadre | None, db: Database, locale: str, accounts: Any
) -> Any:
    code = (command.args or "").strip()
    if cadre is not None and not code:
        return message.answer(render("telegram/welcome.txt", locale, name=cadre.name, role=cadre.role))
    if not code:
        return await refuse_stranger(message, db, message.from_user.id, locale)  # type: ignore[union-attr]
    answer = await _redeem(message, code, db, locale)
    accounts.clear()  # a binding may have moved from another Telegram user: nobody keeps a stale cadre
    return answer


async def _redeem(message: Message, code: str, db: Database, locale: str) -> SendMessage:
    user_id, now = message.from_user.id, utcnow()  # type: ignore[union-attr]
    async with db.session() as s:
        locks, locked_at = await attempts_since(s, user_id, "locked", now - LOCKOUT)
        if locks and locked_at is not None:
            minutes = max(1, int((locked_at + LOCKOUT - now).total_seconds() // 60) + 1)
            return message.answer(render("telegram/locked.txt", locale, minutes=minutes))
        account = await redeem_invite(s, code, user_id, message.chat.id, now)
        if account is None:
            bad, _ = await attempts_since(s, user_id, "bad_code", now - LOCKOUT)
            await record_attempt(s, user_id, "bad_code", now)
            if (
                bad + 1 >= MAX_BAD_CODES
            ):  # the fifth wrong code within the hour locks for a full hour from now
                await record_attempt(s, user_id, "locked", now)
            return message.answer(render("telegram/bad_code.txt", locale, left=MAX_BAD_CODES - bad - 1))
    cadre = account.cadre
    return message.answer(
        render(
            "telegram/bound.txt",
            cadre.locale or locale,
            name=cadre.name,
            role=cadre.role,
            township=cadre.township.name,
        )
    )


async def whoami(message: Message, cadre: Cadre, locale: str) -> SendMessage:
    villages = [v.name for v in cadre.villages]
    return message.answer(
        render("telegram/whoami.txt", locale, cadre=cadre, township=cadre.township.name, villages=villages)
    )


async def help_(message: Message, locale: str) -> SendMessage:
    return message.answer(render("telegram/help.txt", locale))


async def lang(
    message: Message, command: CommandObject, cadre: Cadre, db: Database, locale: str, accounts: Any
) -> SendMessage:
    wanted = (command.args or "").strip().lower()
    new = {"zh": "zh_CN", "zh_cn": "zh_CN", "中文": "zh_CN", "en": "en", "english": "en"}.get(wanted)
    if new is None:  # no argument: the other language
        new = next(other for other in LOCALES if other != locale_or_default(locale))
    async with db.session() as s:
        stored = await s.get(Cadre, cadre.id)
        stored.locale = new  # type: ignore[union-attr]
    accounts.forget(message.from_user.id)  # type: ignore[union-attr]
    return message.answer(render("telegram/lang.txt", new))


async def web_link(
    message: Message, cadre: Cadre, db: Database, settings: Settings, locale: str, clock: Any
) -> SendMessage:
    """A one-time dashboard sign-in link for the cadre (ZOUFANG_WEB_LINK_MINUTES). Without PUBLIC_BASE_URL
    there is no address a phone could open (the CLI's 127.0.0.1 fallback would be a broken link): say so."""
    base = settings.public_base_url.rstrip("/")
    if not base:
        return message.answer(render("telegram/web_no_url.txt", locale))
    now, ttl = clock(), timedelta(minutes=settings.web_link_minutes)
    async with db.session() as s:
        user = f"telegram:{message.from_user.id}"  # type: ignore[union-attr]
        token = await create_link(s, cadre.id, now, ttl, actor=user, actor_cadre_id=cadre.id)
    until = (now + ttl).astimezone(settings.tz)
    text = render(
        "telegram/web_link.txt",
        locale,
        url=f"{base}/dash/login/{token}",
        minutes=settings.web_link_minutes,
        until=f"{until:%Y-%m-%d %H:%M}",
    )
    # no preview: Telegram's fetch of the link should not be what opens it (the link page asks to confirm too)
    return message.answer(text, link_preview_options=LinkPreviewOptions(is_disabled=True))


def make_router() -> Router:
    """A new router each time: an aiogram router belongs to one dispatcher (tests and workers make several)."""
    router = Router(name="onboarding")
    router.message.register(start, CommandStart())
    router.message.register(whoami, Command("whoami"))
    router.message.register(help_, Command("help"))
    router.message.register(lang, Command("lang"))
    router.message.register(web_link, Command("web"))
    return router
