"""Twilio, the SMS channel: the inbound and status webhooks (signature first, then the fields, then a plain
message for the SMS flow) and the REST sender. The channel only translates; what a reply means is the flow's.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlparse

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import add_port, remove_port

from bot.flows.sms import MAX_BODY, Arrival, InboundSms, receive_batch, record_delivery
from bot.group_commit import GroupCommit, Overloaded
from bot.jobs.outbox import SmsError
from bot.keys import DB, INBOUND_WRITER, SMS_CLOCK
from bot.settings import Settings
from survey.phones import normalize_phone
from survey.text import storable

log = logging.getLogger("zoufang.serve")

SMS_INBOUND = "/sms/inbound"
SMS_STATUS = "/sms/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
INBOUND_WAIT = 10.0  # seconds a reply may wait for its batch before 503: Twilio gives a webhook 15 s
INBOUND_MAX_BATCH = 256
# Replies waiting to be written: beyond 2,000, or once the oldest has waited 1 s, a new one gets 503 at once
INBOUND_MAX_PENDING, INBOUND_MAX_DELAY = 2000, 1.0
STORE_FAILED = (SQLAlchemyError, OSError, TimeoutError, Overloaded)  # the database away, busy or swamped


def mount_sms(app: web.Application, settings: Settings) -> None:
    """Twilio's webhooks: signature first, then the fields, then a plain message handed to the SMS flow, whose
    writes are grouped (bot.group_commit): a reply is answered 200 only once it is stored, else 503."""
    signatures = Signatures(settings)

    async def apply(arrivals: Sequence[Arrival]) -> None:
        await receive_batch(app[DB], arrivals, tz=settings.tz, locale=settings.locale)

    writer: GroupCommit[Arrival] = GroupCommit(
        apply,
        name="inbound SMS",
        max_batch=INBOUND_MAX_BATCH,
        max_pending=INBOUND_MAX_PENDING,
        max_delay=INBOUND_MAX_DELAY,
    )
    app[INBOUND_WRITER] = writer

    async def inbound(request: web.Request) -> web.Response:
        if writer.overloaded():  # swamped: refuse before any work, Twilio tries again
            return _busy()
        form = await signatures.signed_form(request, SMS_INBOUND)
        if form is None:
            return web.Response(status=403, text="invalid signature")
        if not form.get("MessageSid") or not form.get("From") or "Body" not in form:
            return web.Response(status=400, text="MessageSid, From and Body are required")
        sms = _inbound_sms(form["MessageSid"], form["From"], form["Body"])
        try:
            async with asyncio.timeout(INBOUND_WAIT):  # no task of its own, unlike wait_for
                await writer.submit(Arrival(sms, request.app[SMS_CLOCK]()))
        except STORE_FAILED as exc:
            log.warning("inbound SMS %s not stored (503, Twilio retries): %r", sms.sid, exc)
            return _busy()
        return _empty_twiml()  # replies go through the outbox

    async def status(request: web.Request) -> web.Response:
        form = await signatures.signed_form(request, SMS_STATUS)
        if form is None:
            return web.Response(status=403, text="invalid signature")
        if not form.get("MessageSid") or not form.get("MessageStatus"):
            return web.Response(status=400, text="MessageSid and MessageStatus are required")
        code = form.get("ErrorCode") or None
        try:
            await record_delivery(request.app[DB], form["MessageSid"], form["MessageStatus"], code)
        except STORE_FAILED as exc:
            log.warning("status callback %s not stored (503): %r", form["MessageSid"], exc)
            return _busy()
        return _empty_twiml()

    async def stop_writer(_: web.Application) -> None:
        await writer.close()

    app.router.add_post(SMS_INBOUND, inbound)
    app.router.add_post(SMS_STATUS, status)
    app.on_cleanup.append(stop_writer)


_EMPTY_TWIML = EMPTY_TWIML.encode()


def _empty_twiml() -> web.Response:
    return web.Response(body=_EMPTY_TWIML, content_type="text/xml", charset="utf-8")


def _busy() -> web.Response:
    return web.Response(status=503, text="busy, try again", headers={"Retry-After": "1"})


class Signatures:
    """X-Twilio-Signature, checked against the public URL Twilio called: PUBLIC_BASE_URL + the path (behind a
    proxy the request's own host and scheme are not the ones Twilio signed). The whole form is signed, never
    a filtered copy.

    The signature is twilio's (`RequestValidator.compute_signature`: HMAC-SHA1 over the URL and every
    distinct field name and value, sorted), computed in one pass with the standard library's one-shot HMAC;
    tests check it against twilio's own. `RequestValidator.validate` also parses the URL and signs it twice
    (with and without the port) on every request; our URL is fixed, so its two spellings are worked out once
    and the second is only tried when the first fails."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token = settings.twilio_auth_token.encode() if settings.twilio_auth_token else None
        self._urls: dict[str, tuple[str, ...]] = {}

    def urls(self, url: str) -> tuple[str, ...]:
        if url not in self._urls:
            parsed = urlparse(url)
            self._urls[url] = tuple(dict.fromkeys((remove_port(parsed), add_port(parsed))))
        return self._urls[url]

    def signature(self, url: str, form: Any) -> str:
        signed = url + "".join(name + value for name, value in sorted(set(form.items())))
        return base64.b64encode(hmac.digest(self.token, signed.encode(), "sha1")).decode()  # type: ignore[arg-type]

    def valid(self, url: str, form: Any, signature: str) -> bool:
        return any(hmac.compare_digest(self.signature(u, form), signature) for u in self.urls(url))

    async def signed_form(self, request: web.Request, path: str) -> MultiDictProxy[str] | None:
        """The posted form when X-Twilio-Signature signs it; None otherwise."""
        if self.token is None or not self.settings.public_base_url:
            log.warning("%s refused: TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL must both be set", path)
            return None
        signature = request.headers.get("X-Twilio-Signature", "")
        form = await _form(request)
        if not signature or form is None or any(not isinstance(value, str) for value in form.values()):
            return None
        url = self.settings.public_base_url.rstrip("/") + path
        if request.rel_url.raw_query_string:
            url += "?" + request.rel_url.raw_query_string
        if not self.valid(url, form, signature):
            log.info("%s refused: bad X-Twilio-Signature", path)
            return None
        return form  # type: ignore[return-value]  # every value is a str (checked above)


async def _form(request: web.Request) -> MultiDictProxy[Any] | None:
    """The posted form. Twilio posts UTF-8 urlencoded forms: read straight from the body (aiohttp's own
    reader does the same work behind more checks); anything else goes through aiohttp's. None when the body
    is no form we can read (not UTF-8)."""
    if (
        request.content_type != "application/x-www-form-urlencoded"
        or (request.charset or "utf-8").lower() != "utf-8"
    ):
        return await request.post()
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return MultiDictProxy(MultiDict(parse_qsl(text, keep_blank_values=True)))


@lru_cache(maxsize=65536)
def _phone_of(sender: str) -> str | None:
    """From as E.164, None when it is no mainland mobile (a villager writes several times: parsed once)."""
    try:
        return normalize_phone(sender)
    except ValueError:
        return None  # not a mainland mobile: an unknown number


def _inbound_sms(sid: str, sender: str, body: str) -> InboundSms:
    """The adapter's part: From as E.164 (None when it is no mainland mobile), the body cut to Twilio's limit."""
    return InboundSms(
        sid=sid, sender=storable(sender), phone=_phone_of(sender), body=storable(body[:MAX_BODY])
    )


# --- the REST sender ---------------------------------------------------------------------------------------

# twilio's HTTP client logs every request and response at INFO (about ten lines a message): warnings only
_TWILIO_HTTP_LOG = logging.getLogger("zoufang.sms.twilio_http")
_TWILIO_HTTP_LOG.setLevel(logging.WARNING)


class TwilioSender:
    """The real twilio library's async REST client; TWILIO_API_BASE points it elsewhere (a fake, in tests)."""

    def __init__(self, settings: Settings) -> None:
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        self.http = AsyncTwilioHttpClient(timeout=30, logger=_TWILIO_HTTP_LOG)
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=self.http)
        if settings.twilio_api_base:
            self.client.api.base_url = settings.twilio_api_base.rstrip("/")
        self.origin: dict[str, str] = (
            {"messaging_service_sid": settings.twilio_messaging_service_sid}
            if settings.twilio_messaging_service_sid
            else {"from_": settings.twilio_from_number}
        )
        if settings.public_base_url:
            self.origin["status_callback"] = settings.public_base_url.rstrip("/") + "/sms/status"

    async def send(self, to: str, body: str) -> str | None:
        from twilio.base.exceptions import TwilioRestException

        try:
            message = await self.client.messages.create_async(to=to, body=body, **self.origin)
        except TwilioRestException as exc:  # the library keeps no Retry-After: our backoff it is
            retryable = exc.status == 429 or exc.status >= 500
            raise SmsError(str(exc.msg), code=str(exc.code or exc.status), retryable=retryable) from exc
        except (TimeoutError, OSError) as exc:  # the network: worth another try
            # a connection never made sent nothing; any other break may have come after Twilio took the message
            refused = isinstance(exc, ConnectionRefusedError) or type(exc).__name__ == "ClientConnectorError"
            raise SmsError(str(exc), code=None, retryable=True, maybe_sent=not refused) from exc
        return message.sid

    async def close(self) -> None:
        await self.http.close()
