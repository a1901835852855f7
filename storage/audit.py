"""The audit trail: one `audit_events` row per change worth answering for (who, when, what, before, after).

Rows are written in the transaction of the change they record, so both or neither are kept. `before` and
`after` are JSON objects of the values that changed (None: nothing before, as for a new row)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from storage.models import AuditEvent, Cadre

_audit = AuditEvent.__table__


def operator() -> str:
    """Who runs a command on this machine: the CLI's actor."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a container's passwd
        return "cli"


def _json(values: dict[str, Any] | None) -> str | None:
    if values is None:
        return None
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)


def event_row(
    at: datetime,
    action: str,
    subject: str,
    *,
    cadre_id: int | None = None,
    actor: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit row's values; `actor` defaults to "cadre" when a cadre acted, else "system"."""
    return {
        "at": at,
        "actor_cadre_id": cadre_id,
        "actor": actor or ("cadre" if cadre_id is not None else "system"),
        "action": action,
        "subject": subject[:120],
        "before": _json(before),
        "after": _json(after),
    }


def add(session: Session | AsyncSession, at: datetime, action: str, subject: str, **details: Any) -> None:
    """One audit row in the session's transaction (ORM: flushed with the change it records)."""
    session.add(AuditEvent(**event_row(at, action, subject, **details)))


def insert_rows(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Audit rows made with `event_row`, in one statement (the batched SMS writes)."""
    rows = list(rows)
    if rows:
        conn.execute(insert(_audit), rows)


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str  # 干部编号 and name for a cadre, else the actor as stored
    action: str
    subject: str
    before: str
    after: str


async def entries(session: AsyncSession, since: datetime, until: datetime | None = None) -> list[Entry]:
    """The audit rows from `since` (inclusive) to `until` (exclusive), oldest first."""
    who = aliased(Cadre)
    query = (
        select(AuditEvent, who.code, who.name)
        .outerjoin(who, who.id == AuditEvent.actor_cadre_id)
        .where(AuditEvent.at >= since)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    if until is not None:
        query = query.where(AuditEvent.at < until)
    found = []
    for event, code, name in await session.execute(query):
        actor = f"{code} {name}" if code else event.actor
        found.append(
            Entry(event.at, actor, event.action, event.subject, event.before or "", event.after or "")
        )
    return found
