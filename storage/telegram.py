"""Repositories for Telegram onboarding (invites, bound accounts, lock-outs) and processed inbound updates."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage import audit
from storage.models import Cadre, Invite, ProcessedUpdate, TelegramAccount, TelegramAttempt

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 8
INVITE_TTL = timedelta(hours=72)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def create_invite(
    session: AsyncSession, cadre: Cadre, now: datetime, ttl: timedelta = INVITE_TTL
) -> Invite:
    """A new one-time code; the code itself is returned on the object (`invite.code`) and never stored."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    invite = Invite(cadre_id=cadre.id, code_hash=_hash(code), created_at=now, expires_at=now + ttl)
    session.add(invite)
    await session.flush()
    invite.code = code  # type: ignore[attr-defined]
    return invite


async def redeem_invite(
    session: AsyncSession, code: str, user_id: int, chat_id: int, now: datetime
) -> TelegramAccount | None:
    """Bind the user to the invite's cadre, once, before it expires; None for a wrong, used or expired code."""
    query = select(Invite).where(Invite.code_hash == _hash(code), Invite.expires_at > now)
    invite = (await session.execute(query)).scalar_one_or_none()
    if invite is None or (invite.used_at is not None and invite.used_by != user_id):
        return None
    if invite.used_at is not None:  # the same user again: a redelivered /start CODE, not a new binding
        return await account_for(session, user_id)
    invite.used_at, invite.used_by = now, user_id
    # one account per cadre and one cadre per account: a new binding replaces both old ones
    replaced: list[dict[str, int]] = []
    for old in (
        await session.execute(
            select(TelegramAccount).where(
                (TelegramAccount.cadre_id == invite.cadre_id) | (TelegramAccount.user_id == user_id)
            )
        )
    ).scalars():
        replaced.append({"user_id": old.user_id, "cadre_id": old.cadre_id})
        await session.delete(old)
    await session.flush()
    audit.add(
        session,
        now,
        "telegram.bind",
        f"cadre_id:{invite.cadre_id}",
        actor=f"telegram:{user_id}",
        before={"accounts": replaced} if replaced else None,
        after={"user_id": user_id, "cadre_id": invite.cadre_id},
    )
    account = TelegramAccount(user_id=user_id, cadre_id=invite.cadre_id, chat_id=chat_id, bound_at=now)
    session.add(account)
    await session.flush()
    return await account_for(session, user_id)


async def account_for(session: AsyncSession, user_id: int) -> TelegramAccount | None:
    query = (
        select(TelegramAccount)
        .where(TelegramAccount.user_id == user_id)
        .options(
            selectinload(TelegramAccount.cadre).selectinload(Cadre.villages),
            selectinload(TelegramAccount.cadre).selectinload(Cadre.township),
        )
    )
    return (await session.execute(query)).scalar_one_or_none()


async def record_attempt(session: AsyncSession, user_id: int, kind: str, now: datetime) -> None:
    session.add(TelegramAttempt(user_id=user_id, kind=kind, at=now))


async def attempts_since(
    session: AsyncSession, user_id: int, kind: str, since: datetime
) -> tuple[int, datetime | None]:
    """How many attempts of this kind since then, and the latest one's time."""
    query = select(func.count(TelegramAttempt.id), func.max(TelegramAttempt.at)).where(
        TelegramAttempt.user_id == user_id, TelegramAttempt.kind == kind, TelegramAttempt.at >= since
    )
    count, latest = (await session.execute(query)).one()
    if isinstance(latest, str):  # SQLite hands back func.max() of a timestamp as text
        latest = datetime.fromisoformat(latest)
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return count, latest


_MARK: dict[str, Any] = {}  # the insert-or-ignore statement per dialect, built once (it runs per update)


def _mark_statement(dialect: str) -> Any:
    if dialect not in _MARK:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        _MARK[dialect] = (
            insert(ProcessedUpdate)
            .values(source=bindparam("source"), external_id=bindparam("external_id"), at=bindparam("at"))
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
        )
    return _MARK[dialect]


def record_processed(conn: Connection, source: str, external_id: str, now: datetime) -> bool:
    """Record an inbound update in the caller's transaction (sync Core, for Database.run); False when it was
    applied before."""
    statement = _mark_statement(conn.dialect.name)
    result = conn.execute(statement, {"source": source, "external_id": external_id, "at": now})
    return result.rowcount == 1


async def mark_processed(session: AsyncSession, source: str, external_id: str, now: datetime) -> bool:
    """`record_processed` in an ORM session's transaction."""
    return await session.run_sync(lambda s: record_processed(s.connection(), source, external_id, now))


async def prune_processed(session: AsyncSession, before: datetime) -> int:
    """Forget inbound ids older than `before`: Telegram redelivers for a day at most, and after a week without
    updates it may start update_ids anew, where a remembered old id would swallow a new answer."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < before))
    return result.rowcount or 0


async def chats_of(session: AsyncSession, cadre_ids: list[int]) -> dict[int, int]:
    """cadre id → the chat of their bound Telegram account, for those who have one."""
    if not cadre_ids:
        return {}
    query = select(TelegramAccount.cadre_id, TelegramAccount.chat_id).where(
        TelegramAccount.cadre_id.in_(cadre_ids)
    )
    return {cadre_id: chat_id for cadre_id, chat_id in await session.execute(query)}
