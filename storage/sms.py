"""Repositories for inbound SMS: whose number it is, numbers we do not know, delivery statuses."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Household, OutboxMessage, UnknownSender


async def household_for_phone(session: AsyncSession, phone: str) -> Household | None:
    """The household with this phone (E.164); the first one when a phone is shared."""
    query = select(Household).where(Household.phone == phone).order_by(Household.id).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


_COUNT: dict[str, Any] = {}  # the upsert per dialect, built once


def _count_statement(dialect: str) -> Any:
    if dialect not in _COUNT:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(UnknownSender).values(phone=bindparam("phone"), messages=1)
        _COUNT[dialect] = statement.on_conflict_do_update(
            index_elements=["phone"], set_={"messages": UnknownSender.messages + 1}
        )
    return _COUNT[dialect]


async def count_unknown_sender(session: AsyncSession, phone: str) -> None:
    """One more message from a number that is no household's (its text is not kept)."""
    connection = await session.connection()
    await connection.execute(_count_statement(connection.dialect.name), {"phone": phone})


async def claim_daily_reply(session: AsyncSession, phone: str, today: date) -> bool:
    """True when a counted unknown number has had no generic reply `today`, which is then marked as given:
    at most one a day. Call after `count_unknown_sender` (the row must exist)."""
    claimed = await session.execute(
        update(UnknownSender)
        .where(
            UnknownSender.phone == phone,
            or_(UnknownSender.last_reply_on.is_(None), UnknownSender.last_reply_on != today),
        )
        .values(last_reply_on=today)
    )
    return bool(claimed.rowcount)


async def unknown_sender(session: AsyncSession, phone: str) -> UnknownSender | None:
    return await session.get(UnknownSender, phone)


async def outbox_status(session: AsyncSession, sid: str) -> str | None:
    """The status of the outbox message Twilio knows as `sid`; None when there is none."""
    query = select(OutboxMessage.status).where(OutboxMessage.provider_sid == sid)
    return (await session.execute(query)).scalar_one_or_none()
