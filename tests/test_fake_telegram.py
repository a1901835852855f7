"""The fake Bot API server, driven by the real aiogram client over loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import CommandStart
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from tests.fake_telegram import (
    FakeTelegram,
    callback_update,
    edited_message_update,
    fake_telegram,  # noqa: F401  (the fixture)
    location_update,
    message_update,
    photo_update,
)


@pytest.fixture
async def bot(fake_telegram: FakeTelegram) -> AsyncIterator[Bot]:  # noqa: F811
    bot = Bot(
        fake_telegram.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(fake_telegram.base_url)),
    )
    yield bot
    await bot.session.close()


KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="是", callback_data="q1:yes"),
            InlineKeyboardButton(text="否", callback_data="q1:no"),
        ]
    ]
)


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == "zoufang_test_bot"
    assert me.is_bot
    assert me.id == bot.id


async def test_send_message_records_decoded_markup(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    first = await bot.send_message(42, "您好，[1] 请回答", reply_markup=KEYBOARD)
    second = await bot.send_message(42, "第二条")
    other = await bot.send_message(7, "别人")
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.chat.id == 42 and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.username == "zoufang_test_bot"
    assert first.reply_markup.model_dump() == KEYBOARD.model_dump()

    params = fake_telegram.sent()[0]
    assert params["chat_id"] == 42
    assert params["text"] == "您好，[1] 请回答"
    assert params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "是", "callback_data": "q1:yes"}, {"text": "否", "callback_data": "q1:no"}]
        ]
    }
    assert fake_telegram.texts() == ["您好，[1] 请回答", "第二条", "别人"]
    assert fake_telegram.texts(chat_id=7) == ["别人"]
    assert [c.method for c in fake_telegram.calls] == ["sendMessage"] * 3


async def test_edits_and_small_methods(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    sent = await bot.send_message(42, "问题一", reply_markup=KEYBOARD)
    edited = await bot.edit_message_text(text="问题一 ✓", chat_id=42, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.text == "问题一 ✓" and edited.reply_markup is None
    again = await bot.edit_message_reply_markup(chat_id=42, message_id=sent.message_id, reply_markup=KEYBOARD)
    assert isinstance(again, Message) and again.reply_markup.model_dump() == KEYBOARD.model_dump()
    assert await bot.edit_message_text(text="inline", inline_message_id="abc") is True
    assert await bot.answer_callback_query("cb-1", text="已记录") is True
    assert await bot.send_chat_action(42, "typing") is True
    assert await bot.delete_message(42, sent.message_id) is True
    assert fake_telegram.texts(chat_id=42) == ["问题一", "问题一 ✓"]
    assert fake_telegram.sent("editMessageReplyMarkup")[0]["reply_markup"]["inline_keyboard"][0][0] == {
        "text": "是",
        "callback_data": "q1:yes",
    }

    await bot.set_my_commands([BotCommand(command="start", description="开始走访")])
    assert fake_telegram.commands == [{"command": "start", "description": "开始走访"}]
    await bot.delete_my_commands()
    assert fake_telegram.commands is None

    await bot.set_webhook("https://example.org/tg", secret_token="s3cret", allowed_updates=["message"])
    assert fake_telegram.webhook is not None
    assert fake_telegram.webhook["url"] == "https://example.org/tg"
    assert fake_telegram.webhook["secret_token"] == "s3cret"
    assert fake_telegram.webhook["allowed_updates"] == ["message"]
    info = await bot.get_webhook_info()
    assert info.url == "https://example.org/tg" and info.pending_update_count == 0
    await bot.delete_webhook()
    assert fake_telegram.webhook is None
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.set_chat_menu_button() is True


async def test_fail_next_429(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    fake_telegram.fail_next("sendMessage", 429, retry_after=1)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(42, "太快了")
    assert info.value.retry_after == 1
    await bot.send_message(42, "重试成功")  # only the next call failed
    assert fake_telegram.texts() == ["重试成功"]  # failed calls are recorded but not "sent"
    assert [c.status for c in fake_telegram.calls] == [429, 200]


async def test_fail_next_500_400_403_and_times(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    fake_telegram.fail_next("sendMessage", 500, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(42, "x")
    fake_telegram.fail_next("sendMessage", 400, description="Bad Request: can't parse entities")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(42, "x")
    fake_telegram.block(99)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(99, "x")
    await bot.send_message(42, "好了")
    assert fake_telegram.texts() == ["好了"]


async def test_real_validation_errors_and_unknown_method(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(42, "长" * 4097)

    class Unknown(TelegramMethod[bool]):
        __returning__ = bool
        __api_method__ = "sendTelepathy"

    with pytest.raises(TelegramNotFound):
        await bot(Unknown())
    assert fake_telegram.calls[-1].method == "sendTelepathy"


async def test_get_updates_offset_and_long_poll(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    first = message_update(42, "/start abc")
    second = callback_update(42, "q1:yes", message_id=3)
    fake_telegram.push_update(first)
    fake_telegram.push_update(second)
    updates = await bot.get_updates(timeout=5)
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    assert updates[0].message is not None and updates[0].message.text == "/start abc"
    assert updates[1].callback_query is not None and updates[1].callback_query.data == "q1:yes"
    # confirming the first leaves the second
    updates = await bot.get_updates(offset=first["update_id"] + 1, timeout=0)
    assert [u.update_id for u in updates] == [second["update_id"]]

    # an empty long poll is capped (1 s by default; shortened here to keep the test quick)
    assert FakeTelegram.poll_cap == 1.0
    fake_telegram.poll_cap = 0.3
    started = time.monotonic()
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=30) == []
    assert 0.25 < time.monotonic() - started < 0.8

    # a push wakes a pending long poll at once
    poll = asyncio.create_task(bot.get_updates(offset=second["update_id"] + 1, timeout=30))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    fake_telegram.push_update({"message": message_update(42, "你好")["message"]})
    updates = await poll
    assert time.monotonic() - started < 0.3
    assert len(updates) == 1 and updates[0].update_id > second["update_id"]
    assert updates[0].message is not None and updates[0].message.text == "你好"


async def test_builders_validate_as_aiogram_updates() -> None:
    for raw in (
        message_update(42, "/start@zoufang_test_bot x", username="zhang"),
        callback_update(42, "q1:no"),
        location_update(42, 26.65, 106.63),
        photo_update(42, "PHOTO1", caption="门牌"),
        edited_message_update(42, "改过的答案", message_id=5),
    ):
        Update.model_validate(raw)
    command = message_update(42, "/start@zoufang_test_bot x")
    assert command["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 23}]
    assert "entities" not in message_update(42, "普通文字")["message"]
    photo = Update.model_validate(photo_update(42, "PHOTO1")).message
    assert photo is not None and photo.photo is not None and photo.photo[-1].file_id == "PHOTO1"
    location = Update.model_validate(location_update(42, 26.65, 106.63)).message
    assert location is not None and location.location is not None and location.location.latitude == 26.65
    a, b = message_update(1, "a"), message_update(1, "b")
    assert b["update_id"] > a["update_id"]


async def test_dispatcher_polling_end_to_end(bot: Bot, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"欢迎，{message.from_user.first_name if message.from_user else ''}")

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer("收到")

    fake_telegram.push_update(message_update(42, "/start", first_name="李"))
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    try:
        await fake_telegram.wait_for("sendMessage", timeout=1.5)
        assert fake_telegram.texts(chat_id=42) == ["欢迎，李"]
        fake_telegram.push_update(callback_update(42, "q1:yes"))
        answered = await fake_telegram.wait_for("answerCallbackQuery", timeout=1.5)
        assert answered[0]["text"] == "收到"
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 1.0)
    gets = fake_telegram.sent("getUpdates")
    assert set(gets[0]["allowed_updates"]) == {"message", "callback_query"}
    assert fake_telegram.calls[0].method == "getMe"
