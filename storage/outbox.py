"""The outbox, the opt-out list and the scheduled-job record. Every outgoing SMS or scheduled Telegram message is
a row here before any network call.

A sender claims one due row at a time (queued → sending, committed), calls the provider, then records the
result (sent / retry later / failed). If the process dies in between, `recover()` puts the claimed row back
in the queue at the next start: at most the one message that was in flight is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OptOut, OutboxMessage, ScheduledJob

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claimed:
    id: int
    to: str
    body: str
    kind: str
    attempts: int


async def enqueue(
    session: AsyncSession, to: str, body: str, kind: str, now: datetime, channel: str = "sms"
) -> OutboxMessage:
    message = OutboxMessage(
        to=to, body=body, kind=kind, status="queued", created_at=now, next_attempt_at=now, channel=channel
    )
    session.add(message)
    await session.flush()
    return message


async def claim_next(session: AsyncSession, now: datetime, channel: str = "sms") -> Claimed | None:
    """The oldest due queued message of a channel, marked as being sent (commit before calling the provider)."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "queued",
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.channel == channel,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    message = (await session.execute(query)).scalar_one_or_none()
    if message is None:
        return None
    message.status, message.claimed_at = "sending", now
    message.attempts += 1
    return Claimed(message.id, message.to, message.body, message.kind, message.attempts)


async def mark_sent(session: AsyncSession, message_id: int, sid: str | None, now: datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="sent", provider_sid=sid, sent_at=now)
    )


async def mark_retry_or_failed(
    session: AsyncSession, claimed: Claimed, now: datetime, code: str | None, error: str, *, retryable: bool
) -> str:
    """Back off and retry (2 s, 4 s, …) until MAX_ATTEMPTS, then fail. Returns the new status."""
    if retryable and claimed.attempts < MAX_ATTEMPTS:
        status, due = "queued", now + timedelta(seconds=2**claimed.attempts)
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


async def recover(session: AsyncSession, claimed_before: datetime) -> int:
    """Put messages claimed by a sender that died (claimed before `claimed_before`) back in the queue."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < claimed_before)
        .values(status="queued")
    )
    return result.rowcount or 0


async def record_status(session: AsyncSession, sid: str, status: str, code: str | None) -> bool:
    """A delivery status callback; False when no message has that sid."""
    result = await session.execute(
        update(OutboxMessage).where(OutboxMessage.provider_sid == sid).values(status=status, error_code=code)
    )
    return bool(result.rowcount)


async def is_opted_out(session: AsyncSession, phone: str) -> bool:
    return (await session.get(OptOut, phone)) is not None


async def opt_out(session: AsyncSession, phone: str, source: str, now: datetime) -> None:
    if await session.get(OptOut, phone) is None:
        session.add(OptOut(phone=phone, at=now, source=source))


async def opt_in(session: AsyncSession, phone: str) -> None:
    await session.execute(delete(OptOut).where(OptOut.phone == phone))


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
