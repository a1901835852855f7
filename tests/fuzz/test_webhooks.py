"""Any form Twilio could post and any update Telegram could send, through the real app: every answer is one
the sender understands (200, 400, 403, 413, or 503 to retry), never a 500, and the app still works after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from bot.app import SMS_CLOCK, make_app
from bot.channels.twilio import SMS_INBOUND, SMS_STATUS
from storage.db import Database
from survey.script import load_script
from tests.fake_telegram import FakeTelegram, message_update
from tests.test_sms_webhooks import BASE, Clock, inbound, sign, sms_settings
from tests.test_telegram import Webhook, settings_for

FIELD = st.text(max_size=40)
FORMS = st.dictionaries(
    st.one_of(st.sampled_from(["MessageSid", "From", "Body", "To", "MessageStatus", "ErrorCode"]), FIELD),
    FIELD,
    max_size=8,
)
KNOWN = {200, 400, 403, 413, 503}


@pytest.fixture
async def sms_app(roster: Database) -> AsyncIterator[TestClient]:
    app = make_app(roster, load_script(), sms_settings())
    app[SMS_CLOCK] = Clock()
    async with TestClient(TestServer(app)) as client:
        yield client


async def post_form(client: TestClient, path: str, form: dict[str, str]) -> int:
    """Posted as Twilio posts: urlencoded UTF-8, signed for the public URL."""
    headers = {
        "X-Twilio-Signature": sign(BASE + path, form),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = await client.post(path, data=urlencode(form).encode(), headers=headers)
    return response.status


@pytest.fixture
async def telegram_app(
    roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str
) -> AsyncIterator[Webhook]:
    app = make_app(roster, load_script(), settings_for(fake_telegram, redis_url=fsm_redis_url))
    async with TestClient(TestServer(app)) as client:
        yield Webhook(client, fake_telegram)


@given(forms=st.lists(st.tuples(st.sampled_from([SMS_INBOUND, SMS_STATUS]), FORMS), min_size=1, max_size=4))
async def test_any_signed_twilio_form_is_answered_never_500(sms_app: TestClient, forms: list) -> None:
    for path, form in forms:
        assert await post_form(sms_app, path, form) in KNOWN, (path, form)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
UPDATE_KEYS = st.sampled_from(["message", "callback_query", "edited_message", "my_chat_member", "x"])


def update_of(kind: str, payload: Any, update_id: Any) -> dict[str, Any]:
    return {"update_id": update_id, kind: payload}


UPDATES = st.one_of(
    JSON,
    st.builds(update_of, UPDATE_KEYS, JSON, st.one_of(st.integers(min_value=1, max_value=2**40), JSON)),
    st.builds(lambda user, text: message_update(user, text), st.integers(1, 2**31), st.text(max_size=300)),
)


@given(updates=st.lists(UPDATES, min_size=1, max_size=3))
async def test_any_telegram_update_is_answered_never_500(telegram_app: Webhook, updates: list) -> None:
    for update in updates:
        assert await telegram_app.post(update) in (200, 400), update


@given(forms=st.lists(FORMS, min_size=1, max_size=3))
async def test_after_any_forms_a_good_reply_is_still_stored(sms_app: TestClient, forms: list) -> None:
    for form in forms:
        await post_form(sms_app, SMS_INBOUND, form)
    assert await post_form(sms_app, SMS_INBOUND, inbound("+8613912345678", "你好")) == 200
