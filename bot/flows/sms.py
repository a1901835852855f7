"""Inbound SMS from villagers (Twilio webhooks): replies to polls, opt-out and opt-in, strangers, statuses.

The aiohttp handlers in `bot.app` check the Twilio signature and the fields, normalise the number and hand an
`InboundSms` here, through one writer that applies the messages waiting at that moment together
(bot.group_commit): one read of their polls, the pure machine (survey.polls.on_message) for each message in
arrival order, and one transaction for everything they write. Each message is applied once: its MessageSid is
recorded in the same transaction as its effects, so a Twilio retry does nothing. Replies are never the
webhook's answer: every outgoing SMS is an outbox row, sent by the outbox worker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from functools import lru_cache

from bot.flows.poll import CALLBACK_DESCRIPTION, PROBLEM_CATEGORY, TIMINGS, render_sms
from storage import sms as store
from storage.db import Connection, Database
from storage.models import utcnow
from storage.polls import WAITING_STATES, state_columns
from survey import polls as machine
from survey.sms_text import parse_reply

MAX_BODY = 1600  # Twilio's own limit for one message; longer bodies are cut, not refused
SOURCE = "twilio"  # processed_updates.source for MessageSids
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # an address the outbox can reply to
# The machine names SMS by what they are; the opt-out confirmations' texts live with the other SMS texts.
_TEMPLATE_FILES = {
    "poll/opted_out": "sms/opted_out",
    "poll/opted_in": "sms/opted_in",
    "poll/help": "sms/help",
}


@dataclass(frozen=True)
class InboundSms:
    """One message as the adapter hands it in: `phone` is E.164, or None when From is no number we read."""

    sid: str
    sender: str  # From, as Twilio sent it
    phone: str | None
    body: str  # at most MAX_BODY characters


@dataclass(frozen=True)
class Arrival:
    """A message and the moment it arrived (the app's clock): what it is applied at."""

    sms: InboundSms
    at: datetime


async def receive(db: Database, sms: InboundSms, now: datetime, *, tz: tzinfo, locale: str) -> None:
    """Apply one inbound SMS, once."""
    await receive_batch(db, [Arrival(sms, now)], tz=tz, locale=locale)


async def receive_batch(db: Database, arrivals: Sequence[Arrival], *, tz: tzinfo, locale: str) -> None:
    """Apply these inbound SMS, in order, each once, in one transaction."""
    await db.run(lambda conn: apply_batch(conn, arrivals, tz, locale))


def apply_batch(conn: Connection, arrivals: Sequence[Arrival], tz: tzinfo, locale: str) -> None:
    new = store.claim_new(conn, SOURCE, [(a.sms.sid, a.at) for a in arrivals])
    fresh = _first_of_each(arrivals, new)
    phones = {a.sms.phone for a in fresh if a.sms.phone}
    waiting = store.waiting_polls(conn, phones)
    known = set(waiting) | store.household_phones(conn, phones - waiting.keys())
    writes = store.SmsWrites()
    for arrival in fresh:
        phone = arrival.sms.phone
        if phone is None or phone not in known:
            _from_stranger(conn, writes, arrival, tz, locale)
        else:
            _from_household(writes, waiting, phone, arrival, locale)
    store.write(conn, writes)


def _first_of_each(arrivals: Sequence[Arrival], new: set[str]) -> list[Arrival]:
    """The arrivals whose MessageSid is new, each sid once (a retry may come in the same batch)."""
    seen: set[str] = set()
    fresh = []
    for arrival in arrivals:
        if arrival.sms.sid in new and arrival.sms.sid not in seen:
            seen.add(arrival.sms.sid)
            fresh.append(arrival)
    return fresh


def _from_household(
    writes: store.SmsWrites, waiting: dict[str, store.WaitingPoll], phone: str, arrival: Arrival, locale: str
) -> None:
    """A household's message: its waiting poll takes it (or, with none, only TD / 订阅 act), as the machine says."""
    current = waiting.get(phone)
    before = state_columns(current.poll, TIMINGS) if current else {}
    poll, actions = machine.on_message(current.poll if current else None, phone, arrival.sms.body, arrival.at)
    if current is not None and poll is not None:
        current = replace(current, poll=poll)
        writes.poll(poll.id or 0, before, state_columns(poll, TIMINGS), current.problem_id)
        if poll.state in WAITING_STATES:
            waiting[phone] = current
        else:  # closed: the sender's next message in this batch finds no waiting poll, as it would later
            del waiting[phone]
    for action in actions:
        _carry_out(writes, action, phone, current, arrival.at, locale)


def _carry_out(
    writes: store.SmsWrites,
    action: machine.Action,
    phone: str,
    poll: store.WaitingPoll | None,
    now: datetime,
    locale: str,
) -> None:
    """SMS become outbox rows, due at once (a reply answers a villager who just wrote); problems go on the
    township queue, linked to the household and the poll; opt-outs and opt-ins go on the list."""
    if isinstance(action, machine.SendSms):
        village = poll.village if poll else ""
        body = sms_text(
            action.template, poll.locale if poll else locale, village, tuple(action.params.items())
        )
        writes.sms(phone, body, action.template, now)
    elif isinstance(action, machine.RaiseProblem) and poll is not None and poll.poll.household_id is not None:
        text = action.text if action.kind == "reason" and action.text else CALLBACK_DESCRIPTION
        writes.problem(poll.poll.household_id, PROBLEM_CATEGORY, text, now, poll.poll.id or 0)
    elif isinstance(action, machine.MarkOptOut | machine.MarkOptIn):
        writes.opt(action.phone or phone, isinstance(action, machine.MarkOptOut), now)


@lru_cache(maxsize=4096)
def sms_text(template: str, locale: str, village: str, params: tuple[tuple[str, object], ...] = ()) -> str:
    """An SMS template rendered (the same few texts for every village, over and over: rendered once each)."""
    name = _TEMPLATE_FILES.get(template, template)
    return render_sms(f"{name}.txt", locale, village=village, **dict(params))


def _from_stranger(
    conn: Connection, writes: store.SmsWrites, arrival: Arrival, tz: tzinfo, locale: str
) -> None:
    """A number that is no household's: counted, and one short generic reply a day at most. The text is not
    kept. A stranger's STOP is answered with nothing at all; an address we cannot text gets no reply."""
    sms = arrival.sms
    key = sms.phone or sms.sender.strip()[:32]
    store.count_unknown_sender(conn, key)
    address = sms.phone or (sms.sender.strip() if _E164.fullmatch(sms.sender.strip()) else None)
    if address is None or parse_reply(sms.body).kind == "opt_out":
        return
    if store.claim_daily_reply(conn, key, arrival.at.astimezone(tz).date()):
        writes.sms(address, sms_text("sms/unknown_sender", locale, ""), "sms/unknown_sender", arrival.at)


# How far a sent message has got. Status callbacks only move a message forward: they may arrive out of order,
# and Twilio's early states (accepted, queued, sending, scheduled) are behind our "sent" — the row has a sid, so
# it has left the outbox, and writing "queued" back would put it in the send queue again (sent twice).
DELIVERY_RANK = {"sent": 1, "delivered": 2, "undelivered": 2, "failed": 2}
_BEFORE_SENT = ["queued", "sending", "skipped"]  # rank 0: the outbox's own states


async def record_delivery(db: Database, sid: str, status: str, error_code: str | None) -> bool:
    """A status callback: True when the outbox message `sid` took the new status. A status that would move the
    message backwards changes nothing; one for a sid no message has yet (Twilio called back before the sender
    stored what its REST call returned) is held and applied when the sid is stored (`apply_early_statuses`)."""
    rank = DELIVERY_RANK.get(status)
    if rank is None:
        return False
    code = error_code[:16] if error_code else None

    def work(conn: Connection) -> bool:
        if store.advance_status(conn, sid, status, code, _behind(status)):
            return True
        if not store.sid_known(conn, sid):
            store.hold_early_status(conn, sid, status, rank, code, utcnow())
        return False

    return await db.run(work)


def apply_early_statuses(conn: Connection, sid: str | None = None) -> int:
    """Apply the held callbacks whose sid a message now has (that sid's, or every one), then forget them."""
    held = store.early_statuses(conn, sid)
    for known, status, code in held:
        store.advance_status(conn, known, status, code, _behind(status))
    store.forget_early_statuses(conn, [known for known, _, _ in held])
    return len(held)


def _behind(status: str) -> list[str]:
    """The statuses a message may leave for `status`."""
    return _BEFORE_SENT + [s for s, r in DELIVERY_RANK.items() if r < DELIVERY_RANK[status]]
