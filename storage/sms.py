"""Inbound SMS in the database, many messages at once: which are new, each sender's waiting poll with its
village, and every write of the batch, in SQLAlchemy Core with statements built once.

The webhooks hand their messages to one writer (bot.group_commit) that applies them in batches, one batch one
transaction, so a burst of replies costs a few statements per batch instead of several round trips per message.
A message is answered only after its batch has committed. On PostgreSQL several workers may apply batches at
once: the MessageSids are claimed through the unique index (a retry racing its first delivery waits for it and
then counts as seen) and the waiting polls are locked, both in a fixed order, so batches never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage import audit
from storage.models import (
    EarlyStatus,
    Household,
    OptOut,
    OutboxMessage,
    Poll,
    Problem,
    ProblemEvent,
    ProcessedUpdate,
    UnknownSender,
    Village,
)
from storage.outbox import queued_values
from storage.polls import WAITING_STATES
from storage.problems import creation_values, sms_problem_values
from survey import polls as machine

_polls, _households, _villages = Poll.__table__, Household.__table__, Village.__table__
_processed, _outbox, _opt_outs = ProcessedUpdate.__table__, OutboxMessage.__table__, OptOut.__table__
_problems, _events, _unknown = Problem.__table__, ProblemEvent.__table__, UnknownSender.__table__
_early = EarlyStatus.__table__


def _dialect_insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


# --------------------------------------------------------------------------- the read


@dataclass(frozen=True)
class WaitingPoll:
    """A poll waiting for this sender's reply, as the pure machine sees it, with what its SMS are written in."""

    poll: machine.Poll
    locale: str
    village: str
    problem_id: int | None


_POLL_COLUMNS = (
    _polls.c.id,
    _polls.c.household_id,
    _polls.c.phone,
    _polls.c.state,
    _polls.c.sent_at,
    _polls.c.reminded_at,
    _polls.c.clarified_at,
    _polls.c.asked_reason_at,
    _polls.c.closed_at,
    _polls.c.rating,
    _polls.c.reason,
    _polls.c.comment,
    _polls.c.callback,
    _polls.c.locale,
    _polls.c.problem_id,
    _polls.c.send_after,
    _villages.c.name,
)
_WAITING = (
    select(*_POLL_COLUMNS)
    .join(_villages, _villages.c.id == _polls.c.village_id)  # the village it went out in: its SMS say so
    .where(
        _polls.c.phone.in_(bindparam("phones", expanding=True)), _polls.c.state.in_(sorted(WAITING_STATES))
    )
    .order_by(_polls.c.id)  # the lock order on PostgreSQL: every batch locks polls in id order
)
_WAITING_LOCKED = _WAITING.with_for_update(of=_polls)
_KNOWN = select(_households.c.phone).where(_households.c.phone.in_(bindparam("phones", expanding=True)))


def waiting_polls(conn: Connection, phones: Iterable[str]) -> dict[str, WaitingPoll]:
    """Each number's latest poll still waiting for a reply (a rating or a reason), locked on PostgreSQL."""
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    query = _WAITING_LOCKED if conn.dialect.name == "postgresql" else _WAITING
    latest: dict[str, tuple[Any, ...]] = {}
    for row in conn.execute(query, {"phones": wanted}):
        phone, send_after, poll_id = row[2], row[15], row[0]
        best = latest.get(phone)
        if best is None or (send_after, poll_id) > (best[15], best[0]):
            latest[phone] = tuple(row)
    return {phone: _waiting(row) for phone, row in latest.items()}


def _waiting(row: tuple[Any, ...]) -> WaitingPoll:
    poll = machine.Poll(
        id=row[0],
        household_id=row[1],
        phone=row[2],
        state=row[3],
        sent_at=row[4],
        reminded_at=row[5],
        clarified_at=row[6],
        reason_asked_at=row[7],
        closed_at=row[8],
        rating=row[9],
        reason=row[10],
        comment=row[11],
        callback=bool(row[12]),
    )
    return WaitingPoll(poll=poll, locale=row[13], village=row[16], problem_id=row[14])


def household_phones(conn: Connection, phones: Iterable[str]) -> set[str]:
    """Which of these numbers are a household's phone."""
    wanted = sorted(set(phones))
    if not wanted:
        return set()
    return set((conn.execute(_KNOWN, {"phones": wanted})).scalars())


# --------------------------------------------------------------------------- MessageSids


_CLAIMED: dict[str, Any] = {}


def _claim_statement(dialect: str) -> Any:
    if dialect not in _CLAIMED:
        _CLAIMED[dialect] = (
            _dialect_insert(dialect)(_processed)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(_processed.c.external_id)
        )
    return _CLAIMED[dialect]


def claim_new(conn: Connection, source: str, messages: Sequence[tuple[str, datetime]]) -> set[str]:
    """Record these (MessageSid, arrival) pairs as seen, in the caller's transaction; the sids that were new.
    A sid recorded before (a Twilio retry), or twice in `messages`, is new at most once."""
    if not messages:
        return set()
    rows = [{"source": source, "external_id": sid, "at": at} for sid, at in sorted(messages)]
    result = conn.execute(_claim_statement(conn.dialect.name), rows)
    return set(result.scalars())


# --------------------------------------------------------------------------- the writes


@dataclass
class SmsWrites:
    """Everything one batch of inbound SMS writes, gathered while the pure machine runs, written at the end."""

    polls: dict[int, dict[str, Any]] = field(default_factory=dict)  # poll id → its new columns
    before: dict[int, dict[str, Any]] = field(default_factory=dict)  # poll id → its columns as read
    outbox: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[dict[str, Any], int | None]] = field(default_factory=list)  # (row, poll it answers)
    opted: dict[str, tuple[bool, datetime]] = field(
        default_factory=dict
    )  # phone → (opted out?, when): last wins

    def poll(
        self, poll_id: int, before: dict[str, Any], after: dict[str, Any], problem_id: int | None
    ) -> None:
        """The poll's columns before the batch (the first time it is seen) and after this message."""
        self.before.setdefault(poll_id, {**before, "problem_id": problem_id})
        self.polls[poll_id] = {**after, "problem_id": problem_id}

    def changed_polls(self) -> dict[tuple[str, ...], list[dict[str, Any]]]:
        """The polls' changed columns, grouped by which columns changed: one UPDATE each group, and no column
        (a timestamp is costly to bind) written that did not change."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for poll_id, after in sorted(self.polls.items()):
            before = self.before[poll_id]
            changed = tuple(sorted(k for k, v in after.items() if before.get(k, ...) != v))
            if changed:
                groups.setdefault(changed, []).append(
                    {"poll_id": poll_id, **{f"new_{k}": after[k] for k in changed}}
                )
        return groups

    def sms(self, to: str, body: str, kind: str, now: datetime) -> None:
        self.outbox.append(queued_values(to, body, kind, now))

    def problem(
        self, household_id: int, category: str, description: str, now: datetime, poll_id: int
    ) -> None:
        self.problems.append((sms_problem_values(household_id, category, description, now), poll_id))

    def opt(self, phone: str, out: bool, now: datetime) -> None:
        self.opted[phone] = (out, now)


# executemany binds each row's values by name; a bind parameter may not share a column's name in SET
_UPDATE_POLL: dict[tuple[str, ...], Any] = {}  # one statement per set of changed columns, built once


def _update_poll(columns: tuple[str, ...]) -> Any:
    if columns not in _UPDATE_POLL:
        _UPDATE_POLL[columns] = (
            update(_polls)
            .where(_polls.c.id == bindparam("poll_id"))
            .values({name: bindparam(f"new_{name}") for name in columns})
        )
    return _UPDATE_POLL[columns]


_INSERT_OUTBOX = insert(_outbox)
_INSERT_PROBLEM = insert(_problems).returning(_problems.c.id, sort_by_parameter_order=True)
_INSERT_EVENT = insert(_events)
_OPT_IN = (
    delete(_opt_outs)
    .where(_opt_outs.c.phone.in_(bindparam("phones", expanding=True)))
    .returning(_opt_outs.c.phone)  # the numbers that were on the list
)
_OPT_OUT: dict[str, Any] = {}


def _opt_out_statement(dialect: str) -> Any:
    if dialect not in _OPT_OUT:
        _OPT_OUT[dialect] = (
            _dialect_insert(dialect)(_opt_outs)
            .on_conflict_do_nothing(index_elements=["phone"])
            .returning(_opt_outs.c.phone)  # the numbers that were not on the list yet
        )
    return _OPT_OUT[dialect]


def write(conn: Connection, writes: SmsWrites) -> None:
    """The batch's problems (then the polls that link them), polls, outgoing SMS and opt-out changes."""
    if writes.problems:
        rows = [row for row, _ in writes.problems]
        ids = list((conn.execute(_INSERT_PROBLEM, rows)).scalars())
        conn.execute(_INSERT_EVENT, [creation_values(pid, row) for pid, row in zip(ids, rows, strict=True)])
        for problem_id, (_, poll_id) in zip(ids, writes.problems, strict=True):
            if poll_id is not None and poll_id in writes.polls:
                writes.polls[poll_id]["problem_id"] = problem_id
    for columns, rows in writes.changed_polls().items():
        conn.execute(_update_poll(columns), rows)
    if writes.outbox:
        conn.execute(_INSERT_OUTBOX, writes.outbox)
    outs = [{"phone": p, "at": at, "source": "reply"} for p, (out, at) in sorted(writes.opted.items()) if out]
    ins = [p for p, (out, _) in sorted(writes.opted.items()) if not out]
    changed: set[str] = set()  # only a number whose place on the list changed is a change for the audit trail
    if outs:
        changed.update(conn.execute(_opt_out_statement(conn.dialect.name), outs).scalars())
    if ins:
        changed.update(conn.execute(_OPT_IN, {"phones": ins}).scalars())
    audit.insert_rows(
        conn,
        (
            audit.event_row(
                at, "sms.opt_out" if out else "sms.opt_in", f"phone:{phone}", actor=f"sms:{phone}"
            )
            for phone, (out, at) in sorted(writes.opted.items())
            if phone in changed
        ),
    )


# --------------------------------------------------------------------------- numbers we do not know

_COUNT: dict[str, Any] = {}  # the upsert per dialect, built once


def _count_statement(dialect: str) -> Any:
    if dialect not in _COUNT:
        statement = _dialect_insert(dialect)(_unknown).values(phone=bindparam("phone"), messages=1)
        _COUNT[dialect] = statement.on_conflict_do_update(
            index_elements=["phone"], set_={"messages": _unknown.c.messages + 1}
        )
    return _COUNT[dialect]


_CLAIM_REPLY = (
    update(_unknown)
    .where(
        _unknown.c.phone == bindparam("key"),
        or_(_unknown.c.last_reply_on.is_(None), _unknown.c.last_reply_on != bindparam("today")),
    )
    .values(last_reply_on=bindparam("today"))
)


def count_unknown_sender(conn: Connection, key: str) -> None:
    """One more message from a number that is no household's (its text is not kept)."""
    conn.execute(_count_statement(conn.dialect.name), {"phone": key})


def claim_daily_reply(conn: Connection, key: str, today: date) -> bool:
    """True when a counted unknown number has had no generic reply `today`, which is then marked as given:
    at most one a day. Call after `count_unknown_sender` (the row must exist)."""
    claimed = conn.execute(_CLAIM_REPLY, {"key": key, "today": today})
    return bool(claimed.rowcount)


# --------------------------------------------------------------------------- delivery statuses

_SET_STATUS = (
    update(_outbox)
    .where(
        _outbox.c.provider_sid == bindparam("sid"), _outbox.c.status.in_(bindparam("behind", expanding=True))
    )
    .values(status=bindparam("status"), error_code=bindparam("code"))
)


def advance_status(conn: Connection, sid: str, status: str, code: str | None, behind: list[str]) -> bool:
    """Set the status of the outbox message Twilio knows as `sid` when its current status is one of `behind`:
    one statement, so a callback racing another never moves a message backwards. True when it moved."""
    result = conn.execute(_SET_STATUS, {"sid": sid, "status": status, "code": code, "behind": behind})
    return bool(result.rowcount)


_SID_KNOWN = select(_outbox.c.id).where(_outbox.c.provider_sid == bindparam("sid"))


def sid_known(conn: Connection, sid: str) -> bool:
    return conn.execute(_SID_KNOWN, {"sid": sid}).first() is not None


def hold_early_status(
    conn: Connection, sid: str, status: str, rank: int, code: str | None, now: datetime
) -> None:
    """Keep a callback for a sid no message has yet; of several, the one that got furthest."""
    statement = _dialect_insert(conn.dialect.name)(_early).values(
        sid=sid, status=status, rank=rank, error_code=code, at=now
    )
    excluded = statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[_early.c.sid],
            set_={"status": excluded.status, "rank": excluded.rank, "error_code": excluded.error_code},
            where=_early.c.rank < excluded.rank,
        )
    )


def early_statuses(conn: Connection, sid: str | None = None) -> list[tuple[str, str, str | None]]:
    """(sid, status, error_code) of the held callbacks whose sid a message now has (that one, or all)."""
    query = select(_early.c.sid, _early.c.status, _early.c.error_code).join(
        _outbox, _outbox.c.provider_sid == _early.c.sid
    )
    if sid is not None:
        query = query.where(_early.c.sid == sid)
    return [tuple(row) for row in conn.execute(query.order_by(_early.c.sid))]  # type: ignore[misc]


def forget_early_statuses(
    conn: Connection, sids: Sequence[str] = (), *, before: datetime | None = None
) -> int:
    """Delete the held callbacks applied (`sids`), or those older than `before` (no message ever had them)."""
    if before is not None:
        return conn.execute(delete(_early).where(_early.c.at < before)).rowcount or 0
    if not sids:
        return 0
    return conn.execute(delete(_early).where(_early.c.sid.in_(list(sids)))).rowcount or 0


__all__ = [
    "SmsWrites",
    "WaitingPoll",
    "advance_status",
    "claim_daily_reply",
    "claim_new",
    "count_unknown_sender",
    "early_statuses",
    "forget_early_statuses",
    "hold_early_status",
    "household_phones",
    "sid_known",
    "waiting_polls",
    "write",
]
