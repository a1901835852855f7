"""A fake Twilio REST API over HTTP on loopback: the real twilio client sends to it unchanged.

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth answers 201 and a message
resource (after awaiting `before_answer(sid, form)` when set); `fail_next(status, code)` scripts errors (429, 500, 400 with 21610 …) in Twilio's JSON shape.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import BasicAuth, web

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-auth-token"


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[dict[str, str]] = field(default_factory=list)  # accepted (201) sends, in order
    attempts: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # every request: (status, form)
    _failures: deque[tuple[int, int | None]] = field(default_factory=deque)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    base_url: str = ""
    # awaited with the new sid before the 201 goes back: Twilio may call the status callback that early
    before_answer: Callable[[str, dict[str, str]], Awaitable[None]] | None = None

    def fail_next(self, status: int, code: int | None = None, times: int = 1) -> None:
        self._failures.extend([(status, code)] * times)

    def recover(self) -> None:
        """The scripted failures not yet used are dropped: the API answers again."""
        self._failures.clear()

    def to(self, phone: str) -> list[str]:
        return [m["Body"] for m in self.messages if m["To"] == phone]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _create(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        if request.match_info["sid"] != self.account_sid or (auth.login, auth.password) != (
            self.account_sid,
            self.auth_token,
        ):
            return self._error(401, 20003, "Authenticate", form)
        if self._failures:
            status, code = self._failures.popleft()
            return self._error(status, code, f"scripted failure {status}", form)
        sid = f"SM{next(self._ids):032x}"
        self.messages.append(form)
        self.attempts.append((201, form))
        if self.before_answer is not None:
            await self.before_answer(sid, form)
        body = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "uri": f"/Messages/{sid}.json",
        }
        return web.json_response(body, status=201)

    def _error(self, status: int, code: int | None, message: str, form: dict[str, str]) -> web.Response:
        self.attempts.append((status, form))
        body = {
            "code": code,
            "message": message,
            "more_info": "https://www.twilio.com/docs/errors",
            "status": status,
        }
        return web.json_response(body, status=status)


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.close()
