"""The database away while villagers reply and cadres answer: SQLite locked by another process, PostgreSQL
refusing connections (a TCP gate in front of the real server is shut: the connections it carried are cut and
new ones are refused, as when PostgreSQL restarts). Twilio gets 503 and retries; Telegram gets 500 and delivers
again, and the cadre is told; nothing is acknowledged that was not stored; once the database is back the same
running app stores the retry, once — no restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.app import make_app
from storage.db import Database
from storage.models import Visit
from survey.script import load_script
from tests.fake_telegram import FakeTelegram, location_update, message_update
from tests.test_poll_flow import lock, poll_of, problems, send, stored_sids, village_phones
from tests.test_sms_webhooks import SMS_INBOUND, Clock, client_for, inbound, post, sms_settings
from tests.test_telegram import Webhook, bound, pick_first_household, settings_for


class Gate:
    """A TCP forwarder on loopback in front of the database server; `shut()` cuts every connection it carries
    and stops listening (new connections are refused), `open()` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._carry, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._pipes):
            writer.transport.abort()  # as a server restart does: the client sees the connection reset
        self._pipes.clear()

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._pipes.discard(writer)


@pytest.fixture
async def gated(roster: Database) -> AsyncIterator[tuple[Database, Gate]]:
    """The same PostgreSQL database as `roster`, reached through a gate the test can shut."""
    if roster.engine.dialect.name != "postgresql":
        pytest.skip("the gate is for PostgreSQL; SQLite is locked instead")
    url = make_url(roster.url)
    gate = Gate(url.host or "127.0.0.1", url.port or 5432)
    await gate.open()
    db = Database(url.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False))
    yield db, gate
    await db.close()
    with contextlib.suppress(AssertionError):
        await gate.shut()


async def test_inbound_sms_while_postgresql_refuses_connections(
    roster: Database, gated: tuple[Database, Gate]
):
    db, gate = gated
    settings = sms_settings()
    await send(roster, settings)
    phone = (await village_phones(roster))[0]
    async with await client_for(db, settings, Clock()) as client:
        assert (await client.get("/healthz")).status == 200  # a pooled connection, to be cut
        form = inbound(phone, "3 路没修")
        await gate.shut()
        for _ in range(2):  # the cut connection, then a refused one
            response = await post(client, SMS_INBOUND, form)
            assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert form["MessageSid"] not in await stored_sids(roster)
        assert (await poll_of(roster, phone)).state == "sent"
        await gate.open()
        for _ in range(2):  # Twilio's retry once PostgreSQL is back (same app, no restart), then a duplicate
            assert (await post(client, SMS_INBOUND, form)).status == 200
    poll = await poll_of(roster, phone)
    assert (poll.state, poll.rating, poll.reason) == ("answered", "不满意", "路没修")
    assert [p.description for p in await problems(roster)] == ["路没修"]


# --- a cadre's answer ---------------------------------------------------------------------------------------


@pytest.fixture
async def gated_webhook(gated: tuple[Database, Gate], fake_telegram: FakeTelegram, fsm_redis_url: str):
    db, gate = gated
    app = make_app(db, load_script(), settings_for(fake_telegram, redis_url=fsm_redis_url))
    async with TestClient(TestServer(app)) as client:
        yield Webhook(client, fake_telegram), gate


async def stored_answers(db: Database) -> dict[str, Any]:
    async with db.reading() as s:
        return json.loads((await s.execute(select(Visit))).scalar_one().session)["answers"]


async def begin_visit(webhook: Webhook, db: Database) -> dict[str, Any]:
    await bound(webhook, db)
    await pick_first_household(webhook)
    assert await webhook.post(location_update(7001, 45.1, 122.5)) == 200
    await webhook.say("3")
    assert "劳动能力" in webhook.fake.sent()[-1]["text"]
    return await stored_answers(db)


async def test_a_telegram_answer_while_postgresql_refuses_connections(
    roster: Database, gated_webhook: tuple[Webhook, Gate]
):
    webhook, gate = gated_webhook
    before = await begin_visit(webhook, roster)
    answer = message_update(7001, "2")
    await gate.shut()
    assert await webhook.post(answer) == 500  # Telegram delivers it again
    assert "抱歉" in webhook.fake.sent()[-1]["text"]  # the cadre is told it was not kept
    assert await stored_answers(roster) == before
    await gate.open()
    assert await webhook.post(answer) == 200  # the redelivery, same app: stored, the next question shown
    assert "主要致贫原因" in webhook.fake.sent()[-1]["text"]
    assert await webhook.post(answer) == 200  # a third delivery changes nothing
    assert await stored_answers(roster) == {**before, "labour_members": 2}


async def test_a_telegram_answer_while_sqlite_is_locked(
    roster: Database, db_path: Path, fake_telegram: FakeTelegram
):
    app = make_app(roster, load_script(), settings_for(fake_telegram))
    async with TestClient(TestServer(app)) as client:
        webhook = Webhook(client, fake_telegram)
        before = await begin_visit(webhook, roster)
        async with roster.engine.connect() as connection:  # the writer's one connection gives up after 0.2 s
            await connection.exec_driver_sql("PRAGMA busy_timeout=200")
        answer = message_update(7001, "2")
        holder = await asyncio.to_thread(lock, db_path)  # another process's write transaction
        try:
            assert await webhook.post(answer) == 500
            assert "抱歉" in webhook.fake.sent()[-1]["text"]
        finally:
            holder.close()
        assert await stored_answers(roster) == before
        assert await webhook.post(answer) == 200
        assert "主要致贫原因" in webhook.fake.sent()[-1]["text"]
        assert await webhook.post(answer) == 200
    assert await stored_answers(roster) == {**before, "labour_members": 2}
