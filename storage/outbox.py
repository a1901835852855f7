"""The outbox, the opt-out list and the scheduled-job record. Every outgoing SMS or scheduled Telegram message is
a row here before any network call.

A sender claims one due row at a time (queued → sending, committed), calls the provider, then records the
result (sent / retry later / failed). Several senders may share the outbox (claims skip each other's locked
rows on PostgreSQL). If a sender dies in between, `recover()` (run by every sender at start and then every
minute) puts a row claimed longer ago than the grace period back in the queue: at most the one message that
dead sender had in flight is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage import audit
from storage.models import OptOut, OutboxMessage, Poll, ScheduledJob, UTCDateTime

# A provider's outage (Twilio or the Bot API answering 5xx or 429 for minutes, or hours) must not fail the
# messages queued meanwhile: a retryable failure is tried again after 2 s, 4 s, … at most MAX_BACKOFF apart,
# about 2 h 45 min in all, before the message is marked failed. A refusal (a bad number, a blocked chat) fails
# at once.
MAX_ATTEMPTS = 24
MAX_BACKOFF = 600.0  # seconds
# A failure after the request went out (a timeout) may have been delivered: such a message is tried at most this
# many times in all, or a slow provider could deliver one SMS once per attempt
MAX_MAYBE_SENT_ATTEMPTS = 3


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """How long a message waits after its `attempts`-th failed try; never less than the provider asked."""
    return timedelta(seconds=max(min(2.0**attempts, MAX_BACKOFF), retry_after or 0.0))


@dataclass(frozen=True)
class Claimed:
    id: int
    to: str
    body: str
    kind: str
    attempts: int
    opted_out: bool = False  # the number is on the opt-out list (as the claim found it)


def queued_values(
    to: str, body: str, kind: str, now: datetime, *, due: datetime | None = None, channel: str = "sms"
) -> dict[str, Any]:
    """A new outbox row's columns: queued, never tried, due at once unless `due` says later."""
    return {
        "to": to,
        "body": body,
        "kind": kind,
        "channel": channel,
        "status": "queued",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": due or now,
    }


def enqueue(
    session: Session,
    to: str,
    body: str,
    kind: str,
    now: datetime,
    channel: str = "sms",
    due: datetime | None = None,
    poll_id: int | None = None,
) -> OutboxMessage:
    """An outgoing message, in the caller's transaction (sync: async callers use `session.run_sync(enqueue, …)`),
    due at once unless `due` says later."""
    message = OutboxMessage(**queued_values(to, body, kind, now, due=due, channel=channel), poll_id=poll_id)
    session.add(message)
    session.flush()
    return message


def _claim_statements() -> tuple[Any, Any, Any]:
    """The claim's statements, built once: the sender runs them for every message, and building a statement
    costs more than running it. Parameters: `now`, `of_channel` (and `message_id` for the update)."""
    table = OutboxMessage.__table__
    now = bindparam("now", type_=UTCDateTime())
    first_due = (
        select(table.c.id)
        .where(
            table.c.status == "queued",
            table.c.next_attempt_at <= now,
            table.c.channel == bindparam("of_channel"),
        )
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    opted_out = select(OptOut.phone).where(OptOut.phone == table.c.to).exists()
    columns = (table.c.id, table.c.to, table.c.body, table.c.kind, table.c.attempts, opted_out)
    claim = update(table).values(status="sending", claimed_at=now, attempts=table.c.attempts + 1)
    # PostgreSQL: UPDATE … WHERE id = (the first due row, locked) RETURNING …, one round trip; elsewhere
    # (SQLite before 3.35 has no RETURNING) find, then update
    claim_returning = claim.where(table.c.id == first_due).returning(*columns)
    return (
        claim_returning,
        select(*columns).where(table.c.id == first_due),
        claim.where(table.c.id == bindparam("message_id")),
    )


_CLAIM_RETURNING, _FIND_DUE, _CLAIM_ID = _claim_statements()
_MARK_SENT = (
    update(OutboxMessage.__table__)
    .where(OutboxMessage.__table__.c.id == bindparam("message_id"))
    .values(status="sent", provider_sid=bindparam("sid"), sent_at=bindparam("now", type_=UTCDateTime()))
)


_outbox = OutboxMessage.__table__
_MARK_ASKED = (
    update(Poll.__table__)
    .where(
        Poll.__table__.c.id
        == select(_outbox.c.poll_id).where(_outbox.c.id == bindparam("message_id")).scalar_subquery(),
        Poll.__table__.c.asked_at.is_(None),
    )
    .values(asked_at=bindparam("now", type_=UTCDateTime()))
)


async def claim_next(session: AsyncSession, now: datetime, channel: str = "sms") -> Claimed | None:
    """The oldest due queued message of a channel, marked as being sent (commit before calling the provider).

    Several senders may claim at once: on PostgreSQL each skips the rows the others have locked (FOR UPDATE
    SKIP LOCKED); SQLite has one writer at a time. The order (next_attempt_at, id) is the claim index's, so
    the first due row is read from it, not sorted out of every row due at that moment (a poll round queues
    thousands at one moment)."""
    await session.flush()  # the statements below go to the connection, past the ORM's autoflush
    connection = await session.connection()
    params = {"now": now, "of_channel": channel}
    if connection.dialect.name == "postgresql":
        row = (await connection.execute(_CLAIM_RETURNING, params)).one_or_none()
        return None if row is None else Claimed(*row)
    found = (await connection.execute(_FIND_DUE, params)).one_or_none()
    if found is None:
        return None
    await connection.execute(_CLAIM_ID, {"now": now, "message_id": found.id})
    message_id, to, body, kind, attempts, opted_out = found
    return Claimed(message_id, to, body, kind, attempts + 1, opted_out)


async def mark_sent(
    session: AsyncSession, message_id: int, sid: str | None, now: datetime, *, poll_question: bool = False
) -> None:
    """The provider took it. A poll's question (`poll_question`: its kind is poll/ask) stamps the poll asked,
    in the same transaction: the reports count a poll as asked once its question has left."""
    await session.flush()
    connection = await session.connection()
    values = {"message_id": message_id, "sid": sid, "now": now}
    await connection.execute(_MARK_SENT, values)
    if poll_question:
        await connection.execute(_MARK_ASKED, values)


async def mark_retry_or_failed(
    session: AsyncSession,
    claimed: Claimed,
    now: datetime,
    code: str | None,
    error: str,
    *,
    retryable: bool,
    retry_after: float | None = None,
    maybe_sent: bool = False,
) -> str:
    """Back off and retry (see `backoff`) until MAX_ATTEMPTS (MAX_MAYBE_SENT_ATTEMPTS when the failed try may have
    been delivered), then fail. Returns the new status."""
    limit = MAX_MAYBE_SENT_ATTEMPTS if maybe_sent else MAX_ATTEMPTS
    if retryable and claimed.attempts < limit:
        status, due = "queued", now + backoff(claimed.attempts, retry_after)
    else:
        status, due = "failed", now
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == claimed.id)
        .values(status=status, next_attempt_at=due, error_code=code, error=error[:500])
    )
    return status


async def mark_skipped(session: AsyncSession, message_id: int, reason: str) -> None:
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(status="skipped", error=reason)
    )


async def recover(session: AsyncSession, claimed_before: datetime, channel: str = "sms") -> int:
    """Put a channel's messages claimed by a sender that died (claimed before `claimed_before`) back in the queue
    (each channel's sender judges by its own timeout)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == "sending",
            OutboxMessage.claimed_at < claimed_before,
            OutboxMessage.channel == channel,
        )
        .values(status="queued")
    )
    return result.rowcount or 0


async def record_status(session: AsyncSession, sid: str, status: str, code: str | None) -> bool:
    """A delivery status callback; False when no message has that sid."""
    result = await session.execute(
        update(OutboxMessage).where(OutboxMessage.provider_sid == sid).values(status=status, error_code=code)
    )
    return bool(result.rowcount)


_OPTED_OUT = select(OptOut.__table__.c.phone).where(OptOut.__table__.c.phone == bindparam("phone"))


def is_opted_out(session: Session, phone: str) -> bool:
    return session.connection().execute(_OPTED_OUT, {"phone": phone}).first() is not None


async def opt_out(session: AsyncSession, phone: str, source: str, now: datetime) -> None:
    if await session.get(OptOut, phone) is None:
        session.add(OptOut(phone=phone, at=now, source=source))
        audit.add(session, now, "sms.opt_out", f"phone:{phone}", actor=source)


async def count_queued(session: AsyncSession, channel: str) -> int:
    query = select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status == "queued", OutboxMessage.channel == channel
    )
    return (await session.execute(query)).scalar_one()


# --- scheduled jobs -----------------------------------------------------------------------------------------


async def job_ran(session: AsyncSession, key: str) -> bool:
    return (await session.get(ScheduledJob, key)) is not None


async def record_job(session: AsyncSession, key: str, now: datetime, outcome: str) -> bool:
    """Record a scheduled job as run, in the caller's transaction (with what the job writes, so both or neither
    are kept). False when it is recorded already: by an earlier run, or by a concurrent transaction that
    committed first (on PostgreSQL the insert waits for it). Other databases raise IntegrityError instead."""
    connection = await session.connection()
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        session.add(ScheduledJob(key=key, ran_at=now, outcome=outcome))
        await session.flush()
        return True
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(ScheduledJob)
        .values(key=key, ran_at=now, outcome=outcome)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return (await connection.execute(statement)).rowcount == 1
