"""Faults with real processes: `zoufang serve` killed with SIGKILL in the middle of a stream of signed inbound
replies, then started again. Every reply it answered 200 is stored once; every other is posted again (as Twilio
retries) and stored once; Twilio's duplicate deliveries of replies already stored change nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from bot.demo import inbound_form, write_roster
from tests.cli_support import clean_env, ok, query, zoufang
from tests.test_serve_workers import free_port, start_serve, stop, wait_healthy

TOKEN = "fault-test-token"
REPLIES = 3000
CONCURRENCY = 40
TEXTS = ["1", "满意", "2", "3 路没修", "你好", "收到", "谢谢", "不满意"]


def replies(households: list[str]) -> list[dict[str, str]]:
    """REPLIES forms: half from the roster's households (no poll is waiting: only keywords would act), half
    from strangers, whose messages are counted one by one (a reply applied twice would count twice)."""
    rng = random.Random(11)
    forms = []
    for i in range(REPLIES):
        sender = rng.choice(households) if i % 2 else f"+861390000{i % 997:04d}"
        forms.append(inbound_form(f"SM{i:032x}", sender, rng.choice(TEXTS)))
    return forms


async def post_all(base: str, forms: list[dict[str, str]], public: str) -> dict[str, int]:
    """Post each form once (CONCURRENCY at a time); the status each got, or 0 when the connection failed."""
    validator = RequestValidator(TOKEN)
    url = public + "/sms/inbound"
    statuses: dict[str, int] = {}
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(session: aiohttp.ClientSession, form: dict[str, str]) -> None:
        async with slots:
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
            try:
                async with session.post(base + "/sms/inbound", data=form, headers=headers) as response:
                    await response.read()
                    statuses[form["MessageSid"]] = response.status
            except (TimeoutError, aiohttp.ClientError):
                statuses[form["MessageSid"]] = 0

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session, form) for form in forms))
    return statuses


async def test_serve_killed_mid_stream_loses_and_doubles_no_reply(tmp_path: Path):
    write_roster(tmp_path, random.Random(7))
    ok(zoufang(tmp_path, "init"))
    ok(zoufang(tmp_path, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(tmp_path, "import", "households", "households.csv"))
    households = [
        phone for (phone,) in query(tmp_path / "z.db", "SELECT phone FROM households WHERE phone <> ''")
    ]
    forms = replies(households)
    port = free_port()
    base, public = f"http://127.0.0.1:{port}", "https://zoufang.example.cn"
    env = clean_env(tmp_path, TWILIO_AUTH_TOKEN=TOKEN, PUBLIC_BASE_URL=public + "/")

    first, log = await start_serve(tmp_path, env, "--host", "127.0.0.1", "--port", str(port))
    await wait_healthy(base, first, log)
    stream = asyncio.create_task(post_all(base, forms, public))
    db = tmp_path / "z.db"
    while query(db, "SELECT count(*) FROM processed_updates")[0][0] < REPLIES // 3:
        await asyncio.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)  # mid-stream: some requests in a batch, some in flight, some not sent
    await first.wait()
    statuses = await stream
    answered = {sid for sid, status in statuses.items() if status == 200}
    assert 0 < len(answered) < REPLIES, "the kill came before or after the stream"

    stored = {
        sid for (sid,) in query(db, "SELECT external_id FROM processed_updates WHERE source = 'twilio'")
    }
    assert answered <= stored  # nothing answered 200 was lost

    second, log = await start_serve(tmp_path, env, "--host", "127.0.0.1", "--port", str(port))
    try:
        await wait_healthy(base, second, log)
        # Twilio posts again what got no 200, and (duplicate deliveries) some of what did
        again = [f for f in forms if f["MessageSid"] not in answered] + [
            f for i, f in enumerate(forms) if f["MessageSid"] in answered and i % 5 == 0
        ]
        retried = await post_all(base, again, public)
        assert set(retried.values()) == {200}
    finally:
        assert await stop(second) == 0

    rows = query(db, "SELECT external_id, count(*) FROM processed_updates WHERE source = 'twilio' GROUP BY 1")
    assert len(rows) == REPLIES and {n for _, n in rows} == {1}  # every reply stored, each once
    strangers = sum(1 for f in forms if f["From"] not in set(households))
    counted = query(db, "SELECT sum(messages) FROM unknown_senders")[0][0]
    assert counted == strangers  # applied once each: none lost, none doubled
