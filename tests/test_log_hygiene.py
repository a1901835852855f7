"""No secret and no full phone number in what the processes write: `zoufang demo`, `zoufang config` and a
`zoufang serve` driven through every path (Telegram updates with an invite code, outbox SMS sent to the fake
Twilio API with failures among them, signed replies, status callbacks, a bad signature, malformed requests, and
on SQLite a write that fails on a locked database) have their standard output and error captured and searched.

Phones may show masked (138****5678) or by their last digits; the Twilio account SID is an identifier, printed
by `zoufang config` on purpose, and is not searched for.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from bot.app import TELEGRAM_WEBHOOK
from bot.channels.twilio import SMS_INBOUND, SMS_STATUS
from bot.demo import inbound_form
from bot.logs import MaskingFormatter
from storage.db import Database
from storage.outbox import enqueue
from storage.telegram import create_invite
from storage.visits import cadre_by_code
from survey.phones import mask_phones_in
from tests.cli_support import COMMAND, clean_env, query, zoufang
from tests.fake_telegram import (
    FakeTelegram,
    callback_update,
    carry_out_webhook_answer,
    location_update,
    message_update,
)
from tests.fake_twilio import FakeTwilio
from tests.test_serve_workers import free_port, start_serve, stop, wait_healthy

# a real bot's 10-digit id (migration 0014 widened processed_updates.source, which overflowed with it)
BOT_TOKEN = "7123456780:AAH-logHygieneBotTokenSecret_9x"
WEBHOOK_SECRET = "webhook-secret-Qz81mK"
AUTH_TOKEN = "twilio-auth-secret-7hQ2pL"
ACCOUNT_SID = "AC" + "5e" * 16
PUBLIC = "https://zoufang.example.cn"
STRANGER = "+8613987654321"  # not on the roster: a villager's number all the same


class RealisticTwilio(FakeTwilio):
    """Errors worded as Twilio words them: the number is in the message (21211, 21610)."""

    def _error(self, status: int, code: int | None, message: str, form: dict[str, str]) -> web.Response:
        to = form.get("To", "")
        if code == 21211:
            message = f"The 'To' number {to} is not a valid phone number."
        elif code == 21610:
            message = f"Attempt to send to unsubscribed recipient {to}"
        return super()._error(status, code, message, form)


@pytest.fixture
async def twilio() -> AsyncIterator[RealisticTwilio]:
    fake = RealisticTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=BOT_TOKEN)
    await fake.start()
    yield fake
    await fake.close()


def secret_env(folder: Path, db_url: str, telegram: FakeTelegram, twilio: FakeTwilio) -> dict[str, str]:
    return clean_env(
        folder,
        ZOUFANG_DB_URL=db_url,
        ZOUFANG_QUIET_HOURS="",
        ZOUFANG_SMS_RATE="50",
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_API_BASE=telegram.base_url,
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+8610690000000",
        TWILIO_API_BASE=twilio.base_url,
        PUBLIC_BASE_URL=PUBLIC,
        SMS_BACKEND="twilio",
    )


# --- the search ---


def phone_forms(e164: str) -> list[str]:
    """The digits of a mainland mobile as logs could show them: 13812345678 (inside +86…, 86…, %2B86… too),
    138 1234 5678, 138-1234-5678."""
    national = e164.removeprefix("+86")
    spaced = f"{national[:3]} {national[3:7]} {national[7:]}"
    return [national, spaced, spaced.replace(" ", "-")]


def leaks(text: str, secrets: list[str], phones: list[str]) -> list[str]:
    found = [f"secret {s[:4]}…" for s in secrets if s in text]
    joined = re.sub(r"(?<=\d)[ \-](?=\d)", "", text)  # 138 1234 5678 and 138-1234-5678 as 13812345678
    for phone in phones:
        if any(form in text for form in phone_forms(phone)) or phone.removeprefix("+86") in joined:
            found.append(f"phone {phone[:6]}…{phone[-2:]}")
    return found


def roster_phones(db: Path) -> list[str]:
    rows = query(db, "SELECT phone FROM households WHERE phone <> '' UNION SELECT phone FROM cadres")
    return [phone for (phone,) in rows if phone]


def test_phone_forms_find_every_spelling() -> None:
    phones = ["+8613812345678"]
    for line in ("to +8613812345678", "13812345678", "138 1234 5678", "138-1234-5678", "To=%2B8613812345678"):
        assert leaks(line, [], phones), line
        assert not leaks(mask_phones_in(line), [], phones), line
    assert not leaks("138****5678 …5678", [], phones)


def test_the_log_formatter_masks_phones_and_secrets_in_tracebacks_too() -> None:
    formatter = MaskingFormatter("%(levelname)s %(message)s", [BOT_TOKEN, BOT_TOKEN.split(":")[1]])
    try:
        raise ValueError(f"POST /bot{BOT_TOKEN}/sendMessage for +8613812345678")
    except ValueError:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "to %s", ("138 1234 5678",), sys.exc_info()
        )
    line = formatter.format(record)
    assert "Traceback" in line and "138****5678" in line
    assert not leaks(line, [BOT_TOKEN, BOT_TOKEN.split(":")[1]], ["+8613812345678"]), line


# --- the run ---


class Traffic:
    """Requests to a running `zoufang serve`, as Telegram and Twilio make them."""

    def __init__(
        self, base: str, session: aiohttp.ClientSession, telegram: FakeTelegram, twilio: FakeTwilio
    ) -> None:
        self.base, self.session, self.telegram, self.fake_twilio = base, session, telegram, twilio
        self.validator = RequestValidator(AUTH_TOKEN)

    async def update(self, update: dict[str, Any], secret: str = WEBHOOK_SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with self.session.post(self.base + TELEGRAM_WEBHOOK, json=update, headers=headers) as response:
            await carry_out_webhook_answer(response, self.telegram, self.session)
            return response.status

    async def twilio(self, path: str, form: dict[str, str], *, signature: str | None = None) -> int:
        signed = self.validator.compute_signature(PUBLIC + path, form)
        headers = {"X-Twilio-Signature": signature if signature is not None else signed}
        async with self.session.post(self.base + path, data=form, headers=headers) as response:
            await response.read()
            return response.status

    def last_text(self, chat: int) -> str:
        texts = self.telegram.texts(chat)
        return texts[-1] if texts else ""


async def invite(db: Database, cadre: str) -> str:
    """A one-time code, as `zoufang invite` makes it (whose standard output shows the code by design)."""
    async with db.session() as s:
        found = await cadre_by_code(s, cadre)
        assert found is not None
        return (await create_invite(s, found, datetime.now(UTC))).code  # type: ignore[attr-defined]


async def run_demo(folder: Path, env: dict[str, str]) -> str:
    """`zoufang demo` in a subprocess (beside the serve run): its standard output and error."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        "demo",
        "--db",
        str(folder / "demo.db"),
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode() + err.decode()


async def queue_sms(db: Database, phones: list[str]) -> None:
    now = datetime.now(UTC)

    def write(sync: Session) -> None:
        for i, phone in enumerate(phones):
            enqueue(sync, phone, f"您好，这是第 {i} 条回访短信。", "poll/ask", now)

    async with db.session() as s:
        await s.run_sync(write)


async def drive(traffic: Traffic, db: Database, phones: list[str]) -> list[str]:
    """Every path once or more; the invite codes used (secrets too)."""
    code = await invite(db, "GB001")
    other = await invite(db, "GB002")  # issued, never used: must not show either
    cadre_chat, stranger_chat = 5_550_001, 5_550_002
    # Telegram: a bad secret, a malformed update, a wrong code, the right one, a visit begun
    assert await traffic.update(message_update(cadre_chat, f"/start {code}"), secret="wrong") in (401, 403)
    assert await traffic.update({"update_id": "x", "message": {"chat": 1}}) == 400
    assert await traffic.update(message_update(stranger_chat, "/start ZZZZ2222")) == 200
    assert await traffic.update(message_update(cadre_chat, f"/start {code}")) == 200
    assert traffic.last_text(cadre_chat).startswith("绑定成功"), traffic.telegram.texts(cadre_chat)
    assert await traffic.update(message_update(cadre_chat, "/visit")) == 200
    keyboard = traffic.telegram.sent()[-1].get("reply_markup", {}).get("inline_keyboard", [])
    assert keyboard, traffic.telegram.sent()[-1]
    pick = callback_update(cadre_chat, keyboard[0][0]["callback_data"], bot_id=traffic.telegram.bot_id)
    traffic.telegram.fail_next("answerCallbackQuery", 502, times=2)  # the Bot API away: retried, then dropped
    assert await traffic.update(pick) == 200
    assert await traffic.update(location_update(cadre_chat, 24.55, 107.04)) == 200

    # the outbox: a bad number, a server error, an unsubscribed number, then the rest
    twilio = traffic.fake_twilio
    twilio.fail_next(400, 21211)
    twilio.fail_next(500, 20500)
    twilio.fail_next(400, 21610)
    await queue_sms(db, phones[:8])
    for _ in range(200):
        if len(twilio.messages) >= 5:
            break
        await asyncio.sleep(0.05)
    assert len(twilio.messages) >= 5, twilio.attempts

    # Twilio's callbacks and replies: delivered, failed, unknown; replies from the roster and a stranger
    for i, message in enumerate(twilio.messages[:3]):
        status = {"MessageSid": f"SM{i + 1:032x}", "MessageStatus": ["delivered", "failed", "undelivered"][i]}
        status |= {"To": message["To"], "From": "+8610690000000", "AccountSid": ACCOUNT_SID}
        if i:
            status["ErrorCode"] = "30003"
        assert await traffic.twilio(SMS_STATUS, status) == 200
    assert await traffic.twilio(SMS_STATUS, {"MessageSid": "SMunknown", "MessageStatus": "delivered"}) == 200
    for i, (sender, body) in enumerate(
        [(phones[0], "1"), (phones[1], "满意"), (phones[2], "TD"), (STRANGER, "你好")]
    ):
        form = inbound_form(f"SM{9000 + i:032x}", sender, body, account_sid=ACCOUNT_SID)
        assert await traffic.twilio(SMS_INBOUND, form) == 200
    bad = inbound_form(f"SM{9100:032x}", phones[3], "1", account_sid=ACCOUNT_SID)
    assert await traffic.twilio(SMS_INBOUND, bad, signature="bm90IGEgc2lnbmF0dXJl") == 403
    assert await traffic.twilio(SMS_INBOUND, {"From": phones[3], "Body": "1"}) == 400
    return [code, other]


async def fail_a_write(traffic: Traffic, sqlite_file: Path, phone: str) -> None:
    """A reply that cannot be stored: the database locked by another writer past the busy timeout (503)."""
    lock = sqlite3.connect(sqlite_file, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        form = inbound_form(f"SM{9200:032x}", phone, "2", account_sid=ACCOUNT_SID)
        assert await traffic.twilio(SMS_INBOUND, form) == 503
    finally:
        lock.rollback()
        lock.close()


async def test_no_secret_and_no_full_phone_in_any_output(
    roster: Database, backend: str, tmp_path: Path, telegram: FakeTelegram, twilio: RealisticTwilio
) -> None:
    env = secret_env(tmp_path, roster.url, telegram, twilio)
    outputs: dict[str, str] = {}

    demo = asyncio.create_task(run_demo(tmp_path, env))
    config = zoufang(tmp_path, "config", env=env)
    assert config.returncode == 0, config.stderr
    outputs["config"] = config.stdout + config.stderr
    async with roster.reading() as s:
        rows = await s.execute(text("SELECT phone FROM households UNION SELECT phone FROM cadres"))
        served = sorted({phone for (phone,) in rows if phone})

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, log = await start_serve(tmp_path, env, "--port", str(port))
    codes: list[str] = []
    try:
        await wait_healthy(base, process, log)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            traffic = Traffic(base, session, telegram, twilio)
            codes = await drive(traffic, roster, [p for p in served if p.startswith("+861")])
            if backend == "sqlite":
                await fail_a_write(traffic, tmp_path / "zoufang.db", served[5])
            await asyncio.sleep(0.5)  # the outbox's retries and the writers' warnings
    finally:
        stopped = await stop(process)
        outputs["demo"] = await demo
    assert stopped == 0, log.read_text()
    outputs["serve"] = log.read_text()
    phones = sorted(set(roster_phones(tmp_path / "demo.db")) | set(served) | {STRANGER})

    for path in ("bad X-Twilio-Signature", "Bot API AnswerCallbackQuery failed", "21211", "21610"):
        assert path in outputs["serve"], path  # the run took the paths it meant to
    secrets = [BOT_TOKEN, BOT_TOKEN.split(":")[1], WEBHOOK_SECRET, AUTH_TOKEN, *codes]
    found = {name: leaks(output, secrets, phones) for name, output in outputs.items()}
    assert found == {name: [] for name in outputs}, "\n\n".join(f"== {n}\n{t}" for n, t in outputs.items())
