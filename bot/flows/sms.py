"""Inbound SMS from villagers (Twilio webhooks): opt-out and opt-in, strangers, delivery statuses.

The aiohttp handlers in `bot.app` check the Twilio signature and the fields, normalise the number and hand an
`InboundSms` here. Each message is applied once (its MessageSid is recorded in the same transaction as its
effects, so a Twilio retry does nothing). Replies are never the webhook's answer: every outgoing SMS is an
outbox row, sent by the outbox worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.flows import poll as poll_flow
from messages import render
from storage.db import Database
from storage.models import Household
from storage.outbox import enqueue, opt_in, opt_out, record_status
from storage.sms import claim_daily_reply, count_unknown_sender, household_for_phone, outbox_status
from storage.telegram import mark_processed
from survey.sms_text import ReplyMeaning, parse_reply

MAX_BODY = 1600  # Twilio's own limit for one message; longer bodies are cut, not refused
SOURCE = "twilio"  # processed_updates.source for MessageSids
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # an address the outbox can reply to


@dataclass(frozen=True)
class InboundSms:
    """One message as the adapter hands it in: `phone` is E.164, or None when From is no number we read."""

    sid: str
    sender: str  # From, as Twilio sent it
    phone: str | None
    body: str  # at most MAX_BODY characters


async def receive(db: Database, sms: InboundSms, now: datetime, *, tz: tzinfo, locale: str) -> None:
    """Apply one inbound SMS, once."""
    async with db.session() as s:
        if not await mark_processed(s, SOURCE, sms.sid, now):
            return  # a retry of a message already applied
        meaning, phone = parse_reply(sms.body), sms.phone
        household = await household_for_phone(s, phone) if phone else None
        if household is None or phone is None:
            await _from_stranger(s, sms, meaning, now, now.astimezone(tz).date(), locale)
        elif meaning.kind == "opt_out":
            await opt_out(s, phone, "reply", now)
            await _confirm(s, phone, "opted_out", now, locale)
            await poll_flow.on_keyword(s, phone, sms.body, now)  # the waiting poll ends (opted_out)
        elif meaning.kind == "opt_in":
            await opt_in(s, phone)
            await _confirm(s, phone, "opted_in", now, locale)
        else:
            await handle_household_reply(s, household, meaning, sms.body, now)


async def handle_household_reply(
    session: AsyncSession, household: Household, meaning: ReplyMeaning, body: str, now: datetime
) -> None:
    """Any other text from a household's phone (a rating, something unclear, an empty message).

    The satisfaction-poll flow matches it to the poll waiting on this number and records the rating, the
    reason, or asks once again. With no poll waiting nothing is stored (beyond the MessageSid) or replied.
    """
    if household.phone:
        await poll_flow.on_reply(session, household.phone, body, now)


async def _confirm(session: AsyncSession, phone: str, what: str, now: datetime, locale: str) -> None:
    # kind poll/opted_out|poll/opted_in: the outbox sends these even to a number on the opt-out list
    await enqueue(session, phone, render(f"sms/{what}.txt", locale), f"poll/{what}", now)


async def _from_stranger(
    session: AsyncSession, sms: InboundSms, meaning: ReplyMeaning, now: datetime, today: date, locale: str
) -> None:
    """A number that is no household's: counted, and one short generic reply a day at most. The text is not
    kept. A stranger's STOP is answered with nothing at all; an address we cannot text gets no reply."""
    key = sms.phone or sms.sender.strip()[:32]
    await count_unknown_sender(session, key)
    address = sms.phone or (sms.sender.strip() if _E164.fullmatch(sms.sender.strip()) else None)
    if address is None or meaning.kind == "opt_out":
        return
    if await claim_daily_reply(session, key, today):
        await enqueue(session, address, render("sms/unknown_sender.txt", locale), "sms/unknown_sender", now)


# How far a sent message has got. Status callbacks only move a message forward: they may arrive out of order,
# and Twilio's early states (accepted, queued, sending, scheduled) are behind our "sent" — the row has a sid, so
# it has left the outbox, and writing "queued" back would put it in the send queue again (sent twice).
DELIVERY_RANK = {"sent": 1, "delivered": 2, "undelivered": 2, "failed": 2}


async def record_delivery(db: Database, sid: str, status: str, error_code: str | None) -> bool:
    """A status callback: True when the outbox message `sid` took the new status; an unknown sid, or a status
    that would move the message backwards, changes nothing."""
    rank = DELIVERY_RANK.get(status)
    if rank is None:
        return False
    async with db.session() as s:
        current = await outbox_status(s, sid)
        if current is None or rank <= DELIVERY_RANK.get(current, 0):
            return False
        return await record_status(s, sid, status, error_code[:16] if error_code else None)
