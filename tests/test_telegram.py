"""Telegram end to end: zoufang's aiohttp app (its webhook, with aiogram's handler behind it) over HTTP, the real aiogram client
talking to a fake Bot API server on loopback. Nothing of aiogram is mocked."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import bot.flows.visit
from bot.app import TELEGRAM_WEBHOOK, make_app
from bot.settings import Settings
from storage.db import Database
from storage.models import Answer, AuditEvent, TelegramAccount, Visit, WebLink, utcnow
from storage.telegram import create_invite
from storage.visits import cadre_by_code
from survey.script import load_script
from tests.fake_telegram import (
    FakeTelegram,
    callback_update,
    carry_out_webhook_answer,
    edited_message_update,
    location_update,
    message_update,
    photo_update,
)

SECRET = "webhook-secret-1"
CADRE_USER = 7001
STRANGER = 9009


def settings_for(fake: FakeTelegram, **extra: Any) -> Settings:
    return replace(
        Settings(),
        telegram_bot_token=fake.token,
        telegram_api_base=fake.base_url,
        telegram_webhook_secret=SECRET,
        **extra,
    )


class Webhook:
    """Posts updates to /telegram/webhook as Telegram does, and carries out a method given as the webhook's
    answer the way Telegram does, so the fake Bot API server sees every message the cadre would."""

    def __init__(self, client: TestClient, fake: FakeTelegram) -> None:
        self.client, self.fake = client, fake

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        response = await self.client.post(TELEGRAM_WEBHOOK, json=update, headers=headers)
        async with aiohttp.ClientSession() as session:
            await carry_out_webhook_answer(response, self.fake, session)
        return response.status

    async def say(self, text: str, user: int = CADRE_USER) -> str:
        before = len(self.fake.sent())
        assert await self.post(message_update(user, text)) == 200
        return self.last_since(before)

    async def tap(self, data: str, user: int = CADRE_USER) -> str:
        before = len(self.fake.sent())
        assert await self.post(callback_update(user, data)) == 200
        return self.last_since(before)

    def last_since(self, before: int) -> str:
        sent = self.fake.sent()[before:]
        return sent[-1]["text"] if sent else ""

    def last_markup(self) -> dict[str, Any]:
        return self.fake.sent()[-1].get("reply_markup") or {}

    def button(self, label: str) -> str:
        """The callback data of the last message's button whose text contains `label`."""
        for row in self.last_markup().get("inline_keyboard", []):
            for button in row:
                if label in button["text"]:
                    return button["callback_data"]
        raise AssertionError(f"no button {label!r} in {self.last_markup()}")


@pytest.fixture
async def webhook(roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str):
    app = make_app(roster, load_script(), settings_for(fake_telegram, redis_url=fsm_redis_url))
    async with TestClient(TestServer(app)) as client:
        yield Webhook(client, fake_telegram)


async def invite_code(db: Database, cadre_code: str = "GB001") -> str:
    async with db.session() as s:
        cadre = await cadre_by_code(s, cadre_code)
        return (await create_invite(s, cadre, utcnow())).code


async def bound(webhook: Webhook, db: Database) -> None:
    reply = await webhook.say(f"/start {await invite_code(db)}")
    assert reply.startswith("绑定成功")


# answers for the default script after the household is picked (location and photos are sent as such)
def visit_steps() -> list[tuple[str, Any]]:
    return [
        ("location", (45.1, 122.5)),
        ("say", "3"),
        ("say", "2"),
        ("tap", "因病"),
        ("toggle", "低保"),
        ("tap", "完成"),
        ("tap", "是"),
        ("tap", "是"),
        ("say", "1"),
        ("tap", "否"),
        ("tap", "是"),
        ("tap", "否"),
        ("tap", "是"),
        ("tap", "是"),
        ("say", "1.2万"),
        ("say", "5千"),
        ("say", "0"),
        ("say", "0"),
        ("say", "1000"),
        ("say", "500"),
        ("say", "3000"),
        ("say", "0"),
        ("tap", "基本满意"),
        ("tap", "是"),
        ("tap", "跳过"),
        ("tap", "是"),
        ("tap", "是"),
        ("toggle", "教育资助"),
        ("toggle", "危房改造"),
        ("tap", "完成"),
        ("tap", "否"),  # talk_hope not given: said so, not refused
        ("tap", "是"),
        ("tap", "否"),
        ("tap", "D级"),
        ("photo", "AgAD-house"),
        ("tap", "是"),
        ("tap", "是"),
        ("tap", "是"),
        ("tap", "是"),
        ("tap", "跳过"),
        ("tap", "是"),
        ("tap", "饮水"),
        ("say", "水管冻裂"),
        ("tap", "否"),
        ("tap", "否"),
    ]


async def walk(webhook: Webhook, steps: list[tuple[str, Any]]) -> None:
    for kind, value in steps:
        if kind == "say":
            await webhook.say(value)
        elif kind == "tap":
            await webhook.tap(webhook.button(value))
        elif kind == "toggle":
            before = len(webhook.fake.sent("editMessageReplyMarkup"))
            assert await webhook.post(callback_update(CADRE_USER, webhook.button(value))) == 200
            assert len(webhook.fake.sent("editMessageReplyMarkup")) == before + 1
            edited = webhook.fake.sent("editMessageReplyMarkup")[-1]["reply_markup"]
            webhook.fake.sent()[-1]["reply_markup"] = edited  # the chat now shows the ticked keyboard
        elif kind == "location":
            assert await webhook.post(location_update(CADRE_USER, *value)) == 200
        elif kind == "photo":
            assert await webhook.post(photo_update(CADRE_USER, value)) == 200


async def pick_first_household(webhook: Webhook) -> str:
    picker = await webhook.say("/visit")
    assert "请选择要走访的户" in picker
    return await webhook.tap(webhook.last_markup()["inline_keyboard"][0][0]["callback_data"])


async def test_a_whole_visit_through_the_webhook(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    first = await pick_first_household(webhook)
    assert "请发送您当前的位置" in first
    assert first.startswith("第 1/39 题\n")  # its place: Telegram asks the location and photos too
    assert webhook.last_markup()["keyboard"][0][0]["request_location"] is True
    await walk(webhook, visit_steps())
    summary = webhook.fake.sent()[-1]["text"]
    assert "请核对本次走访" in summary and "享受的兜底保障（可多选）：低保" in summary
    assert "讲希望：已宣讲？：否" in summary
    done = await webhook.tap(webhook.button("提交"))
    assert done.startswith("走访已提交")
    async with roster.session() as s:
        visit = (await s.execute(select(Visit))).scalar_one()
        assert visit.status == "submitted" and visit.channel == "telegram"
        assert (visit.lat, visit.lon) == (45.1, 122.5)
        photo = (
            await s.execute(select(Answer.value_text).where(Answer.field == "housing_photo"))
        ).scalar_one()
        assert photo == "AgAD-house"
        assert visit.satisfaction == "基本满意"
    todo = await webhook.say("/todo")
    assert "1/22" in todo
    log = await webhook.say("/log")
    assert "扶贫日志" in log and "入户走访" in log
    async with roster.reading() as s:  # the binding and the submission are in the audit trail, by the cadre
        trail = (await s.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
    bind, submit = [e for e in trail if e.action in ("telegram.bind", "visit.submit")]
    assert (bind.action, bind.actor, json.loads(bind.after)["user_id"]) == (
        "telegram.bind",
        f"telegram:{CADRE_USER}",
        CADRE_USER,
    )
    assert submit.action == "visit.submit" and submit.subject.startswith("household:DEMO")
    assert json.loads(submit.after)["channel"] == "telegram"
    assert submit.actor_cadre_id == json.loads(bind.after)["cadre_id"]  # the bound cadre submitted it


async def test_wrong_or_missing_secret_is_refused(webhook: Webhook):
    assert await webhook.post(message_update(CADRE_USER, "/help"), secret="wrong") == 401
    assert await webhook.post(message_update(CADRE_USER, "/help"), secret=None) == 401
    assert webhook.fake.sent() == []


async def test_a_stranger_gets_one_short_refusal_and_nothing_more(webhook: Webhook):
    first = await webhook.say("你好", user=STRANGER)
    assert first == "本机器人仅供登记的帮扶干部使用。"
    assert await webhook.say("/visit", user=STRANGER) == ""
    assert await webhook.say("/whoami", user=STRANGER) == ""


async def test_five_wrong_codes_lock_the_user_out(webhook: Webhook, roster: Database):
    replies = [await webhook.say(f"/start WRONG{n}", user=STRANGER) for n in range(5)]
    assert "还可再试 4 次" in replies[0] and "请一小时后再试" in replies[4]
    good = await invite_code(roster)
    locked = await webhook.say(f"/start {good}", user=STRANGER)
    assert "分钟后再试" in locked
    assert (await webhook.say(f"/start {good}", user=CADRE_USER)).startswith(
        "绑定成功"
    )  # the code still works


async def test_invite_codes_are_single_use(webhook: Webhook, roster: Database):
    code = await invite_code(roster)
    assert (await webhook.say(f"/start {code}")).startswith("绑定成功")
    assert "邀请码无效" in await webhook.say(f"/start {code}", user=STRANGER)
    whoami = await webhook.say("/whoami")
    assert "GB001" in whoami and "第一书记" in whoami


async def test_a_stale_button_changes_nothing(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    await pick_first_household(webhook)
    await webhook.post(location_update(CADRE_USER, 45.1, 122.5))
    await webhook.say("3")
    await webhook.say("2")
    cause_button = webhook.button("因病")
    await webhook.tap(cause_button)
    reply = await webhook.tap(cause_button)  # the main_cause question has passed
    assert reply.startswith("这道题已经过去了") and "享受的兜底保障" in reply
    async with roster.session() as s:
        count = (await s.execute(select(func.count(Answer.id)))).scalar_one()
        assert count == 0  # nothing submitted, nothing duplicated


async def test_edited_messages_are_ignored(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    before = len(webhook.fake.calls)
    assert await webhook.post(edited_message_update(CADRE_USER, "5")) == 200
    assert len(webhook.fake.calls) == before


async def test_restart_mid_visit_resumes_at_the_same_question(roster: Database, fake_telegram: FakeTelegram):
    script = load_script()
    async with TestClient(TestServer(make_app(roster, script, settings_for(fake_telegram)))) as client:
        hook = Webhook(client, fake_telegram)
        await bound(hook, roster)
        await pick_first_household(hook)
        await hook.post(location_update(CADRE_USER, 45.1, 122.5))
        await hook.say("4")
    # a new application and dispatcher (in-memory FSM state is gone), same database
    async with TestClient(TestServer(make_app(roster, script, settings_for(fake_telegram)))) as client:
        hook = Webhook(client, fake_telegram)
        resumed = await hook.say("/resume")
        assert "其中有劳动能力的人数" in resumed
        assert "劳动能力" in await hook.say("9")  # 9 > 4 members: the reason and the question again
        assert "主要致贫原因" in await hook.say("2")


async def test_redelivered_update_is_applied_once(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    await pick_first_household(webhook)
    await webhook.post(location_update(CADRE_USER, 45.1, 122.5))
    update = message_update(CADRE_USER, "3")
    assert await webhook.post(update) == 200
    assert await webhook.post(update) == 200  # Telegram delivers it again
    async with roster.session() as s:
        visit = (await s.execute(select(Visit))).scalar_one()
        session = json.loads(visit.session)
    assert session["answers"] == {"location": {"lat": 45.1, "lon": 122.5}, "members": 3}


async def test_a_redelivered_tick_of_a_several_of_question_ticks_once(webhook: Webhook, roster: Database):
    """Telegram redelivers a tap whose webhook answer it did not get: the box must stay ticked, not flip back."""
    await bound(webhook, roster)
    await pick_first_household(webhook)
    await walk(webhook, [("location", (45.1, 122.5)), ("say", "3"), ("say", "2"), ("tap", "因病")])
    update = callback_update(CADRE_USER, webhook.button("低保"))
    for _ in range(3):  # the tap, then two redeliveries of the very same update
        assert await webhook.post(update) == 200
        edited = webhook.fake.sent("editMessageReplyMarkup")[-1]["reply_markup"]
        webhook.fake.sent()[-1]["reply_markup"] = edited
        assert [b["text"] for row in edited["inline_keyboard"] for b in row if "低保" in b["text"]] == [
            "☑ 低保"
        ]
    # a second tap on the ticked box (its button now says "untick") unticks it
    await walk(webhook, [("toggle", "低保"), ("toggle", "残疾人补贴")])
    await webhook.tap(webhook.button("完成"))
    assert (await stored_session(roster))["answers"]["support"] == ["残疾人补贴"]


async def test_bot_api_429_and_500_are_retried_not_dropped(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    await webhook.say("/visit")
    webhook.fake.fail_next("answerCallbackQuery", 429, retry_after=1)
    webhook.fake.fail_next("answerCallbackQuery", 500)
    reply = await webhook.tap(webhook.last_markup()["inline_keyboard"][0][0]["callback_data"])
    assert "位置" in reply
    attempts = [c for c in webhook.fake.calls if c.method == "answerCallbackQuery"]
    assert [c.status for c in attempts] == [429, 500, 200]


async def test_a_failing_update_apologises_and_answers_500(
    webhook: Webhook, roster: Database, monkeypatch: pytest.MonkeyPatch
):
    await bound(webhook, roster)
    await pick_first_household(webhook)
    await webhook.post(location_update(CADRE_USER, 45.1, 122.5))
    await webhook.say("3")
    await webhook.say("2")
    # saving the answer fails once (the database went away): the cadre gets an apology, nothing is kept,
    # Telegram is told to redeliver (500), and the redelivery is applied once and shows the next question
    real_save = bot.flows.visit.save_session
    failures = [OperationalError("UPDATE visits", {}, Exception("disk I/O error"))]

    def save_once_failing(*args: Any) -> None:
        if failures:
            raise failures.pop()
        real_save(*args)

    monkeypatch.setattr(bot.flows.visit, "save_session", save_once_failing)
    update = callback_update(CADRE_USER, webhook.button("因病"))
    assert await webhook.post(update) == 500
    assert "抱歉" in webhook.fake.sent()[-1]["text"]
    assert "main_cause" not in (await stored_session(roster))["answers"]
    assert await webhook.post(update) == 200
    assert "享受的兜底保障" in webhook.fake.sent()[-1]["text"]
    assert await webhook.post(update) == 200  # a third delivery changes nothing
    assert (await stored_session(roster))["answers"] == {
        "location": {"lat": 45.1, "lon": 122.5},
        "members": 3,
        "labour_members": 2,
        "main_cause": "因病",
    }


async def stored_session(db: Database) -> dict[str, Any]:
    async with db.reading() as s:
        return json.loads((await s.execute(select(Visit))).scalar_one().session)


async def test_commands_are_registered_as_the_menu(webhook: Webhook):
    commands = webhook.fake.sent("setMyCommands")
    assert commands, "setMyCommands was not called at start-up"
    names = [c["command"] for c in commands[0]["commands"]]
    assert names[:3] == ["visit", "resume", "todo"] and {"web", "help"} <= set(names)


async def web_links(db: Database) -> list[WebLink]:
    async with db.reading() as s:
        return list((await s.execute(select(WebLink).order_by(WebLink.id))).scalars())


async def test_web_gives_a_bound_cadre_a_one_time_dashboard_link_and_a_stranger_nothing(
    roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str
):
    settings = settings_for(
        fake_telegram,
        redis_url=fsm_redis_url,
        public_base_url="https://zf.example.cn/",
        web_secret="web-secret-for-tests",
        web_link_minutes=20,
    )
    async with TestClient(TestServer(make_app(roster, load_script(), settings))) as client:
        webhook = Webhook(client, fake_telegram)
        assert await webhook.say("/web", user=STRANGER) == "本机器人仅供登记的帮扶干部使用。"
        assert await webhook.say("/web", user=STRANGER) == ""  # one refusal a day, as for any command
        assert await web_links(roster) == []

        await bound(webhook, roster)
        reply = await webhook.say("/web")
        found = re.search(r"https://zf\.example\.cn/dash/login/([\w-]+)", reply)
        assert found and "20 分钟" in reply, reply
        assert fake_telegram.sent()[-1]["link_preview_options"] == {"is_disabled": True}
        [link] = await web_links(roster)
        async with roster.reading() as s:
            assert link.cadre_id == (await cadre_by_code(s, "GB001")).id
        assert link.expires_at - link.created_at == timedelta(minutes=20)
        async with roster.reading() as s:
            event = (
                await s.execute(select(AuditEvent).where(AuditEvent.action == "web.invite"))
            ).scalar_one()
        assert (event.actor, event.actor_cadre_id, event.subject) == (
            f"telegram:{CADRE_USER}",
            link.cadre_id,
            "cadre:GB001",
        )

        # the link is the dashboard's own: it opens a session there
        assert (await client.get(f"/dash/login/{found[1]}")).status == 200  # its confirm page
        signed = await client.post("/dash/login", data={"token": found[1]}, allow_redirects=False)
        assert signed.status == 303 and "zoufang_session" in signed.headers.get("Set-Cookie", "")


async def test_web_without_public_base_url_says_so_and_makes_no_link(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    reply = await webhook.say("/web")
    assert "PUBLIC_BASE_URL" in reply and "/dash/login/" not in reply
    assert await web_links(roster) == []
    await webhook.say("/lang en")
    assert "(PUBLIC_BASE_URL) is not set" in await webhook.say("/web")


async def test_healthz(webhook: Webhook):
    response = await webhook.client.get("/healthz")
    assert response.status == 200 and (await response.json())["database"] is True


async def test_polling_walks_a_visit(roster: Database, fake_telegram: FakeTelegram):
    from bot.channels.telegram.dispatcher import make_bot, make_dispatcher

    settings = settings_for(fake_telegram)
    bot, dp = make_bot(settings), make_dispatcher(roster, load_script(), settings)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        fake_telegram.push_update(message_update(CADRE_USER, f"/start {await invite_code(roster)}"))
        assert (await fake_telegram.wait_for("sendMessage", 1))[-1]["text"].startswith("绑定成功")
        fake_telegram.push_update(message_update(CADRE_USER, "/visit"))
        picker = (await fake_telegram.wait_for("sendMessage", 2))[-1]
        first = picker["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake_telegram.push_update(callback_update(CADRE_USER, first))
        assert "位置" in (await fake_telegram.wait_for("sendMessage", 3))[-1]["text"]
        fake_telegram.push_update(message_update(CADRE_USER, "跳过"))
        assert "家庭共同生活人口数" in (await fake_telegram.wait_for("sendMessage", 4))[-1]["text"]
    finally:
        await dp.stop_polling()
        await task
        await bot.session.close()


async def test_any_message_after_a_restart_continues_the_visit(roster: Database, fake_telegram: FakeTelegram):
    script = load_script()
    async with TestClient(TestServer(make_app(roster, script, settings_for(fake_telegram)))) as client:
        hook = Webhook(client, fake_telegram)
        await bound(hook, roster)
        await pick_first_household(hook)
        await hook.post(location_update(CADRE_USER, 45.1, 122.5))
    async with TestClient(TestServer(make_app(roster, script, settings_for(fake_telegram)))) as client:
        hook = Webhook(client, fake_telegram)
        assert "其中有劳动能力的人数" in await hook.say("4")


async def test_picker_pages_and_search(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    first = await webhook.say("/visit")
    assert "共 22 户" in first and "第 1/3 页" in first
    page2 = webhook.button("▶")
    before = len(webhook.fake.sent("editMessageText"))
    assert await webhook.post(callback_update(CADRE_USER, page2)) == 200
    edited = webhook.fake.sent("editMessageText")[before:]
    assert edited and "第 2/3 页" in edited[-1]["text"]
    async with roster.session() as s:
        cadre = await cadre_by_code(s, "GB001")
        from storage.visits import households_in_scope

        someone = (await households_in_scope(s, cadre, "villages"))[5]
    found = await webhook.say(someone.code)  # no visit in progress: text searches
    assert "共 1 户" in found
    assert someone.code in webhook.last_markup()["inline_keyboard"][0][0]["text"]


async def test_lang_switches_prompts_to_english(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    assert await webhook.say("/lang en") == "Language set to English."
    assert "Choose a household" in await webhook.say("/visit")
    await webhook.tap(webhook.last_markup()["inline_keyboard"][0][0]["callback_data"])
    assert "Please share your current location" in webhook.fake.sent()[-1]["text"]
    assert "Share location" in webhook.last_markup()["keyboard"][0][0]["text"]


async def test_whoami_lists_the_villages_in_the_cadres_language_and_lang_alone_switches(
    webhook: Webhook, roster: Database
):
    assert (await webhook.say(f"/start {await invite_code(roster, 'GB010')}")).startswith("绑定成功")
    villages = ("新华村", "永安村", "红旗村")  # a 乡镇包保干部: every village of 东风镇
    zh = await webhook.say("/whoami")
    assert zh.startswith("您是") and zh.count("、") == 2 and all(v in zh for v in villages)
    assert await webhook.say("/lang") == "Language set to English."  # no argument: the other language
    en = await webhook.say("/whoami")
    assert (
        en.startswith("You are") and "、" not in en and en.count(", ") >= 2 and all(v in en for v in villages)
    )
    assert await webhook.say("/lang") == "已切换为中文。"


async def test_updates_of_one_chat_are_handled_in_order(roster: Database, fake_telegram: FakeTelegram):
    """Two answers arriving together (one getUpdates batch) are applied in the order they were sent."""
    from bot.channels.telegram.dispatcher import make_bot, make_dispatcher

    settings = settings_for(fake_telegram)
    bot, dp = make_bot(settings), make_dispatcher(roster, load_script(), settings)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        fake_telegram.push_update(message_update(CADRE_USER, f"/start {await invite_code(roster)}"))
        await fake_telegram.wait_for("sendMessage", 1)
        fake_telegram.push_update(message_update(CADRE_USER, "/visit"))
        picker = (await fake_telegram.wait_for("sendMessage", 2))[-1]
        fake_telegram.push_update(
            callback_update(CADRE_USER, picker["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
        )
        await fake_telegram.wait_for("sendMessage", 3)
        for text in ("跳过", "5", "2", "因病"):  # one batch: location skipped, members 5, labour 2, cause
            fake_telegram.push_update(message_update(CADRE_USER, text))
        replies = await fake_telegram.wait_for("sendMessage", 7)
        assert "享受的兜底保障" in replies[-1]["text"]
    finally:
        await dp.stop_polling()
        await task
        await bot.session.close()
    async with roster.session() as s:
        answers = json.loads((await s.execute(select(Visit))).scalar_one().session)["answers"]
    assert answers == {"members": 5, "labour_members": 2, "main_cause": "因病"}


def redis_url() -> str | None:
    import os
    import socket

    if os.environ.get("ZOUFANG_TEST_REDIS_URL"):
        return os.environ["ZOUFANG_TEST_REDIS_URL"]
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()
    except OSError:
        return None
    return "redis://127.0.0.1:6379/15"


@pytest.mark.skipif(redis_url() is None, reason="no Redis on 127.0.0.1:6379")
async def test_redis_fsm_keeps_the_picker_search_across_dispatchers(
    roster: Database, fake_telegram: FakeTelegram
):
    """With ZOUFANG_REDIS_URL, FSM state lives in Redis: a second application sees the first one's search."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url())
    await redis.flushdb()
    settings = settings_for(fake_telegram, redis_url=redis_url())
    script = load_script()
    try:
        async with TestClient(TestServer(make_app(roster, script, settings))) as client:
            hook = Webhook(client, fake_telegram)
            await bound(hook, roster)
            await hook.say("/visit 不存在的名字")
        async with TestClient(TestServer(make_app(roster, script, settings))) as client:
            hook = Webhook(client, fake_telegram)
            assert await hook.post(callback_update(CADRE_USER, "p:0")) == 200
            assert "没有找到符合的户" in fake_telegram.sent("editMessageText")[-1]["text"]
        assert await redis.keys("fsm:*")
    finally:
        await redis.flushdb()
        await redis.aclose()


async def test_a_button_telegram_will_not_let_us_answer_does_not_fail_the_update(
    webhook: Webhook, roster: Database
):
    """answerCallbackQuery is cosmetic: a late or refused one must not make Telegram redeliver forever."""
    await bound(webhook, roster)
    await pick_first_household(webhook)
    await webhook.post(location_update(CADRE_USER, 45.1, 122.5))
    await webhook.say("3")
    await webhook.say("2")
    webhook.fake.fail_next("answerCallbackQuery", 400, times=3, description="Bad Request: query is too old")
    statuses = [await webhook.post(callback_update(CADRE_USER, webhook.button("因病"))) for _ in range(1)]
    assert statuses == [200]
    assert "享受的兜底保障" in webhook.fake.sent()[-1]["text"]


async def test_text_never_lands_in_another_households_visit(webhook: Webhook, roster: Database):
    """After the visit in this chat ends, free text searches; it does not answer some other open draft."""
    await bound(webhook, roster)
    await pick_first_household(webhook)
    await webhook.post(location_update(CADRE_USER, 45.1, 122.5))
    async with roster.session() as s:  # another draft of this cadre, e.g. begun on the console
        from bot.flows.visit import VisitFlow
        from storage.visits import households_in_scope

        cadre = await cadre_by_code(s, "GB001")
        other = (await households_in_scope(s, cadre, "villages"))[3]
    await VisitFlow(roster, load_script(), Settings()).start(cadre, other, channel="console")
    await webhook.say("/cancel")
    assert "走访已取消" in await webhook.tap(webhook.button("是"))
    found = await webhook.say("4")
    assert "没有找到符合的户" in found or "请选择要走访的户" in found
    async with roster.session() as s:
        sessions = [json.loads(v.session) for v in (await s.execute(select(Visit))).scalars()]
    assert all("members" not in session["answers"] for session in sessions)


def test_a_long_text_is_split_in_utf16_units_with_the_buttons_on_the_last_part():
    from bot.channels.telegram.dispatcher import TEXT_LIMIT, answer_calls
    from bot.flows.replies import Answer, Button, ChatInput, Say

    def units(text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    where = ChatInput(update_id=1, user_id=7, chat_id=7)
    buttons = ((Button("提交", "a:1:summary:submit"),),)
    text = "\n".join(f"{n}. 问题描述😀：" + "长" * 480 for n in range(12))  # an emoji is 2 UTF-16 units
    calls = answer_calls(where, Answer(Say(text, buttons)))
    assert len(calls) > 1 and all(units(c["text"]) <= TEXT_LIMIT for c in calls)
    assert "\n".join(c["text"] for c in calls) == text
    assert [("reply_markup" in c) for c in calls] == [False] * (len(calls) - 1) + [True]
    emoji = answer_calls(where, Answer(Say("😀" * 3000)))  # 3,000 characters, 6,000 units: two messages
    assert len(emoji) == 2 and all(units(c["text"]) <= TEXT_LIMIT for c in emoji)
    assert [c["text"] for c in answer_calls(where, Answer(Say("短")))] == ["短"]


async def test_a_redelivered_start_code_is_not_counted_as_a_wrong_code(webhook: Webhook, roster: Database):
    update = message_update(STRANGER, f"/start {await invite_code(roster)}")
    assert await webhook.post(update) == 200
    assert await webhook.post(update) == 200
    texts = [m["text"] for m in webhook.fake.sent()]
    assert texts[0].startswith("绑定成功") and texts[1].startswith("绑定成功")
    async with roster.session() as s:
        from storage.models import TelegramAttempt

        assert (await s.execute(select(func.count(TelegramAttempt.id)))).scalar_one() == 0


async def test_rebinding_a_cadre_stops_the_old_phone_at_once(webhook: Webhook, roster: Database):
    await bound(webhook, roster)
    assert "GB001" in await webhook.say("/whoami")
    assert (await webhook.say(f"/start {await invite_code(roster)}", user=STRANGER)).startswith("绑定成功")
    assert "GB001" in await webhook.say("/whoami", user=STRANGER)
    assert "GB001" not in await webhook.say("/whoami")  # the old phone is a stranger now


async def test_the_lock_out_lasts_an_hour_from_the_fifth_wrong_code(webhook: Webhook, roster: Database):
    from datetime import timedelta

    from storage.models import TelegramAttempt

    async with roster.session() as s:  # four wrong codes almost an hour ago
        for _ in range(4):
            s.add(TelegramAttempt(user_id=STRANGER, kind="bad_code", at=utcnow() - timedelta(minutes=59)))
    assert "请一小时后再试" in await webhook.say("/start WRONGAGAIN", user=STRANGER)
    async with roster.session() as s:  # the four old ones age out of the window …
        from sqlalchemy import update

        await s.execute(
            update(TelegramAttempt)
            .where(TelegramAttempt.kind == "bad_code")
            .values(at=utcnow() - timedelta(minutes=61))
        )
    locked = await webhook.say(f"/start {await invite_code(roster)}", user=STRANGER)
    assert "分钟后再试" in locked  # … but the lock-out taken at the fifth code still holds


async def test_the_lock_out_survives_a_restart_and_an_expired_code_binds_nobody(
    roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str
):
    from datetime import timedelta

    settings = settings_for(fake_telegram, redis_url=fsm_redis_url)
    async with TestClient(TestServer(make_app(roster, load_script(), settings))) as client:
        webhook = Webhook(client, fake_telegram)
        for n in range(5):
            await webhook.say(f"/start WRONG{n}", user=STRANGER)
    good = await invite_code(roster, "GB002")
    async with roster.session() as s:  # a code made 73 hours ago (invites are valid 72)
        cadre = await cadre_by_code(s, "GB003")
        stale = (await create_invite(s, cadre, utcnow() - timedelta(hours=73))).code
    # a new server process on the same database: the lock-out is in the database, not in memory
    async with TestClient(TestServer(make_app(roster, load_script(), settings))) as client:
        webhook = Webhook(client, fake_telegram)
        assert "分钟后再试" in await webhook.say(f"/start {good}", user=STRANGER)
        expired = await webhook.say(f"/start {stale}", user=CADRE_USER)
        assert not expired.startswith("绑定成功") and "还可再试" in expired
        assert (await webhook.say(f"/start {good}", user=CADRE_USER)).startswith("绑定成功")
    async with roster.reading() as s:
        bound_to = (await s.execute(select(TelegramAccount.cadre_id))).scalars().all()
        assert bound_to == [(await cadre_by_code(s, "GB002")).id]  # the stale code bound nobody


async def test_todo_follows_the_role_period_settings_as_the_coverage_report_does(
    roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str
):
    from datetime import datetime

    from survey.periods import current_period

    tz = Settings().tz
    month = current_period("month", datetime.now(tz), tz).label
    quarter = current_period("quarter", datetime.now(tz), tz).label
    for period, label in (("month", month), ("quarter", quarter)):
        settings = settings_for(fake_telegram, redis_url=fsm_redis_url, helper_period=period)
        async with TestClient(TestServer(make_app(roster, load_script(), settings))) as client:
            webhook = Webhook(client, fake_telegram)
            user = 7100 + len(period)
            reply = await webhook.say(f"/start {await invite_code(roster, 'GB002')}", user=user)  # 帮扶责任人
            assert reply.startswith("绑定成功")
            assert f"本期（{label}）入户" in await webhook.say("/todo", user=user)
