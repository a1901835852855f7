"""Hostile and odd input through the real webhooks: bodies over the limit get 413, a body that is no UTF-8 is
refused, and text no database can keep (NUL, lone surrogates) is stored with U+FFFD in its place, while HTML,
formula-looking text, emoji and long text are stored verbatim and shown escaped. On SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import MAX_REQUEST_BYTES, TELEGRAM_WEBHOOK, make_app
from bot.channels.twilio import SMS_INBOUND
from storage.db import Database
from storage.models import Household, Village
from survey.script import load_script
from tests.fake_telegram import FakeTelegram, message_update
from tests.test_poll_flow import VILLAGE, poll_of, problems, reply, send
from tests.test_sms_webhooks import BASE, Clock, client_for, inbound, nothing_stored, sign, sms_settings
from tests.test_telegram import (
    CADRE_USER,
    SECRET,
    Webhook,
    bound,
    pick_first_household,
    settings_for,
    stored_session,
    visit_steps,
    walk,
)


@pytest.fixture
async def sms(roster: Database):
    async with await client_for(roster, sms_settings(), Clock()) as client:
        yield client


@pytest.fixture
async def telegram(roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str):
    app = make_app(roster, load_script(), settings_for(fake_telegram, redis_url=fsm_redis_url))
    async with TestClient(TestServer(app)) as client:
        yield Webhook(client, fake_telegram)


async def a_phone(db: Database) -> str:
    """A 新华村 household's phone (the village `send` polls)."""
    async with db.reading() as s:
        query = (
            select(Household.phone)
            .join(Village, Household.village_id == Village.id)
            .where(Village.name == VILLAGE, Household.phone.is_not(None), Household.phone != "")
        )
        return (await s.execute(query.order_by(Household.id).limit(1))).scalar_one()


# HTML, a formula, emoji, an RTL override (a reason's leading and trailing punctuation is trimmed: words at both ends)
HOSTILE = "路<b>没修</b> & =cmd|' /C calc'!A0 😀👨‍👩‍👧 \u202e倒序"


async def test_an_sms_body_over_the_limit_gets_413_and_nothing_is_kept(sms: TestClient, roster: Database):
    form = inbound("+8613800138000", "满" * (MAX_REQUEST_BYTES // 3 + 10))
    signature = sign(BASE + SMS_INBOUND, form)
    response = await sms.post(SMS_INBOUND, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status == 413
    await nothing_stored(roster)


async def test_an_sms_body_that_is_no_utf8_is_refused_and_nothing_is_kept(
    sms: TestClient,
    roster: Database,
):
    form = inbound("+8613800138000", "满意")
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).encode() + b"&Extra=%FF%FE\xff"
    headers = {
        "X-Twilio-Signature": sign(BASE + SMS_INBOUND, form),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = await sms.post(SMS_INBOUND, data=body, headers=headers)
    assert response.status == 403
    await nothing_stored(roster)


async def test_hostile_reasons_are_kept_verbatim_and_nul_becomes_a_replacement_mark(
    sms: TestClient,
    roster: Database,
):
    await send(roster, sms_settings())  # 新华村
    phone = await a_phone(roster)
    long_reason = HOSTILE + "\x00" + "路" * 1500  # Twilio keeps a message to 1,600 characters
    await reply(sms, phone, "3 " + long_reason)
    (problem,) = await problems(roster)
    assert problem.description == (HOSTILE + "\ufffd" + "路" * 1500)[: 1600 - 2]
    assert (await poll_of(roster, phone)).rating == "不满意"


async def test_a_telegram_update_over_the_limit_gets_413(telegram: Webhook, roster: Database):
    await bound(telegram, roster)
    update = message_update(CADRE_USER, "x" * (MAX_REQUEST_BYTES + 1))
    response = await telegram.client.post(
        TELEGRAM_WEBHOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status == 413


async def test_telegram_text_no_database_keeps_is_stored_with_replacement_marks(
    telegram: Webhook,
    roster: Database,
):
    """An opinion typed with NUL and a lone surrogate (valid JSON escapes) is kept with U+FFFD for them; the
    HTML and the formula are kept as typed and come back as plain text in the summary."""
    await bound(telegram, roster)
    await pick_first_household(telegram)
    steps = visit_steps()
    assert steps[24] == ("tap", "跳过")  # the opinion question
    await walk(telegram, steps[:24])
    # aiohttp's json= writes with ensure_ascii: the NUL and the surrogate travel as \u escapes, as Telegram's do
    assert await telegram.post(message_update(CADRE_USER, HOSTILE + "\u0000\ud800")) == 200
    assert (await stored_session(roster))["answers"]["opinion"] == HOSTILE + "\ufffd\ufffd"
    await walk(telegram, steps[25:])
    summary = telegram.fake.sent()[-1]
    # visit messages go as plain text (no parse_mode): Telegram shows the tags and the formula as typed
    assert HOSTILE + "\ufffd\ufffd" in summary["text"] and "parse_mode" not in summary
