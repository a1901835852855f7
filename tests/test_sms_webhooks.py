"""The Twilio webhooks over HTTP: zoufang's real aiohttp app, requests signed with twilio's own RequestValidator.

The flow's clock is the app's `SMS_CLOCK` (set before the app starts); the tests move it across local days.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.app import SMS_CLOCK, make_app
from bot.channels.twilio import SMS_INBOUND, SMS_STATUS, TwilioSender
from bot.demo import inbound_form
from bot.jobs.outbox import ConsoleSender, OutboxWorker
from bot.settings import Settings
from messages import render
from storage.db import Database
from storage.models import (
    Base,
    EarlyStatus,
    Household,
    OptOut,
    OutboxMessage,
    ProcessedUpdate,
    UnknownSender,
)
from storage.outbox import enqueue
from survey.script import load_script
from survey.sms_text import encoding, segments
from tests.fake_twilio import ACCOUNT_SID, FakeTwilio
from tests.test_outbox import twilio_settings

TOKEN = "test-twilio-auth-token"
BASE = "https://zoufang.example.cn"
TEMPLATES = Path(__file__).resolve().parents[1] / "messages" / "templates"
STRANGER = "+8613912340000"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def phone(roster: Database) -> str:
    async with roster.reading() as s:
        query = select(Household.phone).where(Household.phone.is_not(None)).order_by(Household.id)
        return (await s.execute(query.limit(1))).scalar_one()


def sms_settings(**extra: Any) -> Settings:
    return replace(Settings(), **{"twilio_auth_token": TOKEN, "public_base_url": BASE + "/", **extra})


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def client_for(db: Database, settings: Settings, clock: Clock) -> TestClient:
    app = make_app(db, load_script(), settings)
    app[SMS_CLOCK] = clock
    return TestClient(TestServer(app))


@pytest.fixture
async def client(roster: Database, clock: Clock):
    async with await client_for(roster, sms_settings(), clock) as test_client:
        yield test_client


_sids = iter(range(1, 10**6))


def inbound(sender: str, body: str, sid: str | None = None) -> dict[str, str]:
    return inbound_form(sid or f"SM{next(_sids):032x}", sender, body, account_sid=ACCOUNT_SID)


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


async def post(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    signed_params: dict[str, str] | None = None,
    signature: str | None = None,
) -> Any:
    """POST a form as Twilio does; signed for BASE + path (with its query) unless told otherwise."""
    if signature is None:
        signature = sign(signed_url or BASE + path, params if signed_params is None else signed_params)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return await client.post(path, data=params, headers=headers)


async def count(db: Database, model: type[Base]) -> int:
    async with db.reading() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def outbox(db: Database) -> list[tuple[str, str, str]]:
    async with db.reading() as s:
        query = select(OutboxMessage.to, OutboxMessage.kind, OutboxMessage.body).order_by(OutboxMessage.id)
        return [tuple(row) for row in await s.execute(query)]


async def nothing_stored(db: Database) -> None:
    for model in (ProcessedUpdate, OutboxMessage, OptOut, UnknownSender):
        assert await count(db, model) == 0, model.__tablename__


# --------------------------------------------------------------------------- signature


async def test_signed_message_answers_empty_twiml(client: TestClient, roster: Database, phone: str):
    response = await post(client, SMS_INBOUND, inbound(phone, "1"))
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert (await response.text()).endswith("<Response/>")
    assert await count(roster, ProcessedUpdate) == 1
    assert await outbox(roster) == []  # a household's ordinary reply: nothing said (the polls come later)


async def test_signature_with_a_query_string_covers_the_query(
    client: TestClient, roster: Database, phone: str
):
    params = inbound(phone, "1")
    path = SMS_INBOUND + "?county=demo"
    assert (await post(client, path, params)).status == 200
    assert (await post(client, path, params, signed_url=BASE + SMS_INBOUND)).status == 403


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "wrong-token"])
async def test_bad_or_missing_signature_is_refused_and_nothing_stored(
    client: TestClient, roster: Database, phone: str, signature: str
):
    params = inbound(phone, "TD")
    if signature == "wrong-token":
        signature = sign(BASE + SMS_INBOUND, params, token="another-token")
    response = await post(client, SMS_INBOUND, params, signature=signature)
    assert response.status == 403
    await nothing_stored(roster)


@pytest.mark.parametrize(
    "signed_url",
    [
        "http://zoufang.example.cn/sms/inbound",  # http instead of https
        "https://zoufang.example.cn/sms/status",  # another path
        "https://other.example.cn/sms/inbound",  # another host
        "https://zoufang.example.cn/sms/inbound/",
    ],
)
async def test_signature_for_another_url_is_refused(
    client: TestClient, roster: Database, phone: str, signed_url: str
):
    response = await post(client, SMS_INBOUND, inbound(phone, "TD"), signed_url=signed_url)
    assert response.status == 403
    await nothing_stored(roster)


async def test_signature_over_part_of_the_form_is_refused(client: TestClient, roster: Database, phone: str):
    params = inbound(phone, "TD")
    part = {k: params[k] for k in ("MessageSid", "From", "Body")}
    assert (await post(client, SMS_INBOUND, params, signed_params=part)).status == 403
    await nothing_stored(roster)


@pytest.mark.parametrize("missing", ["twilio_auth_token", "public_base_url"])
async def test_without_token_or_public_url_every_request_is_refused(
    roster: Database, phone: str, clock: Clock, missing: str
):
    async with await client_for(roster, sms_settings(**{missing: ""}), clock) as unconfigured:
        assert (await post(unconfigured, SMS_INBOUND, inbound(phone, "TD"))).status == 403
        assert (
            await post(unconfigured, SMS_STATUS, {"MessageSid": "SM1", "MessageStatus": "sent"})
        ).status == 403
    await nothing_stored(roster)


# --------------------------------------------------------------------------- fields and retries


@pytest.mark.parametrize("missing", ["MessageSid", "From", "Body"])
async def test_missing_field_is_a_400_and_nothing_stored(
    client: TestClient, roster: Database, phone: str, missing: str
):
    params = inbound(phone, "TD")
    del params[missing]
    assert (await post(client, SMS_INBOUND, params)).status == 400
    await nothing_stored(roster)


async def test_an_empty_body_is_accepted(client: TestClient, roster: Database, phone: str):
    assert (await post(client, SMS_INBOUND, inbound(phone, ""))).status == 200
    assert await count(roster, ProcessedUpdate) == 1


async def test_replayed_message_sid_is_applied_once(client: TestClient, roster: Database, phone: str):
    params = inbound(phone, "TD")
    for _ in range(3):  # Twilio retrying the same webhook
        response = await post(client, SMS_INBOUND, params)
        assert response.status == 200
        assert (await response.text()).endswith("<Response/>")
    assert await count(roster, OptOut) == 1
    assert [kind for _, kind, _ in await outbox(roster)] == ["poll/opted_out"]


# --------------------------------------------------------------------------- opt-out and opt-in


@pytest.mark.parametrize("word", ["TD", "退订", "STOP", " stop! ", "取消", "UNSUBSCRIBE"])
async def test_opt_out_word_records_opt_out_and_queues_one_confirmation(
    client: TestClient, roster: Database, phone: str, word: str
):
    assert (await post(client, SMS_INBOUND, inbound(phone, word))).status == 200
    async with roster.reading() as s:
        opted = (await s.execute(select(OptOut))).scalar_one()
    assert (opted.phone, opted.source) == (phone, "reply")
    assert await outbox(roster) == [(phone, "poll/opted_out", render("sms/opted_out.txt"))]


async def test_from_written_nationally_is_the_same_household(
    client: TestClient, roster: Database, phone: str
):
    national = phone.removeprefix("+86")
    national = f"{national[:3]} {national[3:7]} {national[7:]}"
    assert (await post(client, SMS_INBOUND, inbound(national, "退订"))).status == 200
    async with roster.reading() as s:
        assert await s.get(OptOut, phone) is not None


@pytest.mark.parametrize("word", ["订阅", "START"])
async def test_subscribe_removes_the_opt_out_and_confirms(
    client: TestClient, roster: Database, phone: str, word: str
):
    await post(client, SMS_INBOUND, inbound(phone, "TD"))
    assert (await post(client, SMS_INBOUND, inbound(phone, word))).status == 200
    assert await count(roster, OptOut) == 0
    assert [kind for _, kind, _ in await outbox(roster)] == ["poll/opted_out", "poll/opted_in"]
    assert (await outbox(roster))[-1] == (phone, "poll/opted_in", render("sms/opted_in.txt"))


@pytest.mark.parametrize("word", ["STOPALL", "cancel", "End", "QUIT", "REVOKE", "OPTOUT", "Stop All"])
async def test_twilio_s_opt_out_keywords_put_the_number_on_our_list(
    client: TestClient, roster: Database, phone: str, word: str
):
    assert (await post(client, SMS_INBOUND, inbound(phone, word))).status == 200
    async with roster.reading() as s:
        assert await s.get(OptOut, phone) is not None
    assert [kind for _, kind, _ in await outbox(roster)] == ["poll/opted_out"]


async def test_yes_and_unstop_lift_the_opt_out_and_help_says_how_to_reply(
    client: TestClient, roster: Database, phone: str
):
    for word in ("TD", "YES", "STOPALL", "UNSTOP", "HELP"):
        assert (await post(client, SMS_INBOUND, inbound(phone, word))).status == 200
    assert await count(roster, OptOut) == 0
    kinds = [kind for _, kind, _ in await outbox(roster)]
    assert kinds == ["poll/opted_out", "poll/opted_in", "poll/opted_out", "poll/opted_in", "poll/help"]
    assert (await outbox(roster))[-1] == (phone, "poll/help", render("sms/help.txt"))


async def test_replies_follow_the_locale_setting(roster: Database, phone: str, clock: Clock):
    async with await client_for(roster, sms_settings(locale="en"), clock) as english:
        await post(english, SMS_INBOUND, inbound(phone, "STOP"))
    assert (await outbox(roster))[0][2] == render("sms/opted_out.txt", "en")


# --------------------------------------------------------------------------- unknown numbers


async def stored_text(db: Database) -> str:
    """Every value in every table, as one text: to show a stranger's words are nowhere."""
    parts = []
    async with db.reading() as s:
        for table in Base.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in await s.execute(select(table))]
    return "\n".join(parts)


async def test_unknown_number_gets_one_generic_reply_a_day(
    client: TestClient, roster: Database, clock: Clock
):
    async with roster.reading() as s:
        assert (await s.execute(select(Household).where(Household.phone == STRANGER))).first() is None
    generic = (STRANGER, "sms/unknown_sender", render("sms/unknown_sender.txt"))

    assert (await post(client, SMS_INBOUND, inbound(STRANGER, "请问低保怎么申请"))).status == 200
    assert await outbox(roster) == [generic]

    clock.now += timedelta(hours=11)  # 21:00 local: still the same day
    assert (await post(client, SMS_INBOUND, inbound(STRANGER, "在吗"))).status == 200
    assert await outbox(roster) == [generic]

    clock.now += timedelta(hours=3)  # 00:00 local: the next day (Asia/Shanghai), though not yet in UTC
    assert (await post(client, SMS_INBOUND, inbound(STRANGER, "在吗？"))).status == 200
    assert await outbox(roster) == [generic, generic]

    async with roster.reading() as s:
        sender = await s.get(UnknownSender, STRANGER)
    assert (sender.messages, sender.last_reply_on) == (3, date(2026, 11, 21))
    everything = await stored_text(roster)
    assert "低保" not in everything and "在吗" not in everything


async def test_unknown_number_saying_stop_gets_no_reply(client: TestClient, roster: Database):
    assert (await post(client, SMS_INBOUND, inbound(STRANGER, "TD"))).status == 200
    assert await outbox(roster) == []
    assert await count(roster, OptOut) == 0
    async with roster.reading() as s:
        assert (await s.get(UnknownSender, STRANGER)).messages == 1


@pytest.mark.parametrize("sender", ["whatsapp:+8613912340000", "10086", "+1 (415) 555-0100"])
async def test_unparseable_from_is_an_unknown_number(client: TestClient, roster: Database, sender: str):
    assert (await post(client, SMS_INBOUND, inbound(sender, "你好"))).status == 200
    async with roster.reading() as s:
        assert (await s.get(UnknownSender, sender)).messages == 1
    # no reply to an address the outbox cannot text
    assert await outbox(roster) == []


async def test_unparseable_e164_from_gets_the_generic_reply(client: TestClient, roster: Database):
    assert (await post(client, SMS_INBOUND, inbound("+14155550100", "hello"))).status == 200
    assert [(to, kind) for to, kind, _ in await outbox(roster)] == [("+14155550100", "sms/unknown_sender")]


# --------------------------------------------------------------------------- status callbacks


async def sent_message(db: Database, sid: str, status: str = "sent") -> int:
    async with db.session() as s:
        now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        message = OutboxMessage(
            to="+8613800138000", body="请回复", kind="poll/ask", status=status, attempts=1,
            created_at=now, next_attempt_at=now, sent_at=now, provider_sid=sid,
        )  # fmt: skip
        s.add(message)
        await s.flush()
        return message.id


async def row(db: Database, message_id: int) -> tuple[str, str | None]:
    async with db.reading() as s:
        message = await s.get(OutboxMessage, message_id)
        return message.status, message.error_code


async def test_status_callback_records_status_and_error_code(client: TestClient, roster: Database):
    delivered, failed = await sent_message(roster, "SMdelivered"), await sent_message(roster, "SMfailed")
    params = {"MessageSid": "SMdelivered", "MessageStatus": "delivered", "AccountSid": "AC1"}
    assert (await post(client, SMS_STATUS, params)).status == 200
    params = {"MessageSid": "SMfailed", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert (await post(client, SMS_STATUS, params)).status == 200
    assert await row(roster, delivered) == ("delivered", None)
    assert await row(roster, failed) == ("undelivered", "30003")


async def test_status_callback_for_an_unknown_sid_changes_nothing(client: TestClient, roster: Database):
    message = await sent_message(roster, "SMknown")
    params = {"MessageSid": "SMunknown", "MessageStatus": "failed", "ErrorCode": "30008"}
    assert (await post(client, SMS_STATUS, params)).status == 200
    assert await row(roster, message) == ("sent", None)


async def test_status_callback_refuses_bad_signature_and_missing_fields(client: TestClient, roster: Database):
    message = await sent_message(roster, "SMx")
    params = {"MessageSid": "SMx", "MessageStatus": "failed"}
    assert (await post(client, SMS_STATUS, params, signed_url=BASE + SMS_INBOUND)).status == 403
    assert (await post(client, SMS_STATUS, {"MessageSid": "SMx"})).status == 400
    assert (await post(client, SMS_STATUS, {"MessageStatus": "failed"})).status == 400
    assert await row(roster, message) == ("sent", None)


async def test_late_queued_callback_does_not_requeue_a_sent_message(client: TestClient, roster: Database):
    """Regression guard: "queued" written onto a sent row would put it back in the outbox queue (sent twice);
    callbacks arriving out of order must not move a delivered message back to sent either."""
    message = await sent_message(roster, "SMlate")
    for status in ("queued", "sending", "accepted"):
        assert (
            await post(client, SMS_STATUS, {"MessageSid": "SMlate", "MessageStatus": status})
        ).status == 200
        assert await row(roster, message) == ("sent", None)
    await post(client, SMS_STATUS, {"MessageSid": "SMlate", "MessageStatus": "delivered"})
    await post(client, SMS_STATUS, {"MessageSid": "SMlate", "MessageStatus": "sent"})
    assert await row(roster, message) == ("delivered", None)


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize("path", sorted((TEMPLATES / "zh_CN" / "sms").glob("*.txt")), ids=lambda p: p.name)
def test_every_zh_cn_sms_template_fits_one_segment(path: Path):
    text = render(f"sms/{path.name}", "zh_CN")
    assert encoding(text) == "UCS-2"
    assert segments(text) == 1, f"{path.name}: {len(text)} characters"


@pytest.mark.parametrize("path", sorted((TEMPLATES / "en" / "sms").glob("*.txt")), ids=lambda p: p.name)
def test_every_en_sms_template_fits_one_segment(path: Path):
    assert segments(render(f"sms/{path.name}", "en")) == 1


def test_zh_cn_and_en_have_the_same_sms_templates():
    names = {p.name for p in (TEMPLATES / "zh_CN" / "sms").glob("*.txt")}
    assert names == {p.name for p in (TEMPLATES / "en" / "sms").glob("*.txt")}
    assert {"opted_out.txt", "opted_in.txt", "unknown_sender.txt"} <= names


@pytest.mark.parametrize(
    "fields",
    [
        [("Body", "满意"), ("From", "+8613800000000"), ("MessageSid", "SM1")],
        [("Body", ""), ("To", "+1 (415) 555-0100"), ("Extra", "a&b=c")],
        [("Body", "😀 3 路没修\n第二行"), ("NumMedia", "0"), ("Body2", "\u0000"), ("A", "x"), ("a", "y")],
        [("MediaUrl", "https://a/1"), ("MediaUrl", "https://a/0"), ("MediaUrl", "https://a/1")],  # repeated
    ],
)
@pytest.mark.parametrize(
    "url", [BASE + SMS_INBOUND, BASE + SMS_INBOUND + "?x=1&y=%E4%B8%AD", "https://h.cn:443/p"]
)
def test_our_signature_is_twilios(fields: list[tuple[str, str]], url: str):
    from multidict import MultiDict, MultiDictProxy

    from bot.channels.twilio import Signatures

    form = MultiDictProxy(MultiDict(fields))
    ours = Signatures(sms_settings())
    validator = RequestValidator(TOKEN)
    assert ours.signature(url, form) == validator.compute_signature(url, form)
    assert ours.valid(url, form, validator.compute_signature(url, form))
    assert validator.validate(url, form, validator.compute_signature(url, form))
    tampered = MultiDictProxy(MultiDict([*fields, ("Body", "1")]))
    assert not ours.valid(url, tampered, validator.compute_signature(url, form))
    # twilio accepts the URL signed with or without the default port; so do we
    for spelling in ours.urls(url):
        assert ours.valid(url, form, validator.compute_signature(spelling, form))


@pytest.fixture
async def quiet_client(roster: Database, clock: Clock):
    """The webhooks without the app's own outbox sender (which would race the test's sender for the row)."""
    app = make_app(roster, load_script(), sms_settings(), primary=False)
    app[SMS_CLOCK] = clock
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_callback_before_the_sender_kept_the_sid_is_applied_once_the_sid_is_stored(
    quiet_client: TestClient, roster: Database, fake_twilio: FakeTwilio
):
    """Twilio answers the REST call and may call back "delivered" before the sender has written the sid down:
    the early callback is held, not lost, and the message reads delivered once the sender has stored it."""
    answers: list[int] = []

    async def deliver_first(sid: str, _: dict[str, str]) -> None:
        response = await post(quiet_client, SMS_STATUS, {"MessageSid": sid, "MessageStatus": "delivered"})
        answers.append(response.status)

    fake_twilio.before_answer = deliver_first
    sender = TwilioSender(twilio_settings(fake_twilio))
    try:
        async with roster.session() as s:
            await s.run_sync(enqueue, "+8613800138000", "请回复", "poll/ask", datetime.now(UTC))
        assert await OutboxWorker(roster, sender).send_one()
    finally:
        await sender.close()
    assert answers == [200]
    async with roster.reading() as s:
        message = (await s.execute(select(OutboxMessage))).scalar_one()
        held = (await s.execute(select(func.count()).select_from(EarlyStatus))).scalar_one()
    assert (message.status, held) == ("delivered", 0)


async def test_an_early_callback_that_raced_the_sender_is_applied_by_its_next_sweep(
    client: TestClient, roster: Database
):
    """A callback held while the sender's own transaction was storing the sid (it saw none): the worker's
    periodic sweep applies it; one for a sid no message ever gets is dropped after two days."""
    params = {"MessageSid": "SMraced", "MessageStatus": "undelivered", "ErrorCode": "30005"}
    assert (await post(client, SMS_STATUS, params)).status == 200
    assert (await post(client, SMS_STATUS, {"MessageSid": "SMraced", "MessageStatus": "sent"})).status == 200
    assert (await post(client, SMS_STATUS, {"MessageSid": "SMnever", "MessageStatus": "sent"})).status == 200
    message = await sent_message(roster, "SMraced")  # the sid stored after the callbacks came
    worker = OutboxWorker(roster, ConsoleSender(io.StringIO()), clock=lambda: datetime.now(UTC))
    await worker.recover()
    assert await row(roster, message) == ("undelivered", "30005")  # the furthest status, not the last
    later = OutboxWorker(
        roster, ConsoleSender(io.StringIO()), clock=lambda: datetime.now(UTC) + timedelta(days=3)
    )
    await later.recover()
    async with roster.reading() as s:
        assert (await s.execute(select(func.count()).select_from(EarlyStatus))).scalar_one() == 0
