"""The life of a problem (一化解, escalation.md) as a pure state machine, and who may see or move it.

    raised → closed                                   (resolved on site)
           → escalated → decided → closed (销号)       (the township meeting decides who and by when)
                       ↘ merged                       (a duplicate folded into another problem)
             decided → overdue → county               (not closed by the due date; still not by the next meeting)
             closed | merged → escalated              (reopened: back on the next meeting's agenda)

Every function takes the problem and the time from the caller (nothing here reads the clock) and returns the
changed problem and the move to record; an invalid move raises MoveError with a code and the reason's values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from survey.meetings import Calendar

__all__ = [
    "ACTING_ROLES",
    "OPEN_STATES",
    "STATES",
    "Actor",
    "Move",
    "MoveError",
    "Problem",
    "agenda_meeting",
    "close",
    "decide",
    "escalate",
    "may_act",
    "may_view",
    "merge",
    "on_day",
    "reopen",
    "resolve_on_site",
]

State = Literal["raised", "closed", "escalated", "decided", "overdue", "county", "merged"]
STATES: tuple[str, ...] = ("raised", "closed", "escalated", "decided", "overdue", "county", "merged")
OPEN_STATES: frozenset[str] = frozenset({"escalated", "decided", "overdue", "county"})
# each state as reports and exports name it: (zh-CN, en)
STATE_LABELS: dict[str, tuple[str, str]] = {
    "raised": ("已提出", "raised"),
    "escalated": ("待研究", "awaiting the meeting"),
    "decided": ("办理中", "in hand"),
    "overdue": ("逾期", "overdue"),
    "county": ("已报县督查", "county list"),
    "closed": ("已销号", "closed"),
    "merged": ("已合并", "merged"),
}
DECIDABLE: frozenset[str] = OPEN_STATES
CLOSABLE: frozenset[str] = frozenset({"decided", "overdue", "county"})
DUE_CHOICES_DAYS: tuple[int, ...] = (7, 15, 30)


class MoveError(ValueError):
    """A move the rules refuse; `code` names the reason for the message templates, `params` fill it."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(f"{code}: {params}" if params else code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Problem:
    """Plain data, as stored; moves return a changed copy."""

    id: int | None
    township_id: int
    state: State = "raised"
    raised_by_id: int | None = None
    escalated_on: date | None = None  # local day it joined the queue (its first agenda is the next meeting)
    responsible_id: int | None = None
    due_on: date | None = None
    meeting_on: date | None = None  # the meeting that decided it
    resolution: str | None = None
    merged_into_id: int | None = None
    overdue_on: date | None = None


@dataclass(frozen=True)
class Move:
    """One recorded step: who, when, from, to, what they said."""

    action: str  # resolve_on_site / escalate / decide / close / reopen / merge / overdue / county
    from_state: str
    to_state: str
    at: datetime
    actor_id: int | None = None  # None: the system (the scheduler)
    note: str | None = None
    meeting_on: date | None = None


@dataclass(frozen=True)
class Actor:
    cadre_id: int
    role: str
    township_id: int


ACTING_ROLES: frozenset[str] = frozenset({"乡镇党委书记"})  # decide, close, merge, reopen
QUEUE_ROLES: frozenset[str] = ACTING_ROLES | {"扶贫专干"}  # see the whole township's queue


def may_view(actor: Actor, problem: Problem) -> bool:
    """A secretary (and the township's poverty specialist) sees their own township; a cadre what they raised."""
    if actor.role in QUEUE_ROLES:
        return actor.township_id == problem.township_id
    return problem.raised_by_id == actor.cadre_id


def may_act(actor: Actor, problem: Problem) -> bool:
    return actor.role in ACTING_ROLES and actor.township_id == problem.township_id


def _require_actor(actor: Actor | None, problem: Problem) -> int | None:
    if actor is None:
        return None
    if not may_act(actor, problem):
        raise MoveError("not_allowed")
    return actor.cadre_id


def _move(problem: Problem, action: str, to: State, at: datetime, actor_id: int | None, **kw: object) -> Move:
    return Move(action, problem.state, to, at, actor_id, kw.get("note"), kw.get("meeting_on"))  # type: ignore[arg-type]


def resolve_on_site(problem: Problem, at: datetime, note: str | None = None) -> tuple[Problem, Move]:
    if problem.state != "raised":
        raise MoveError("bad_state", state=problem.state)
    return replace(problem, state="closed", resolution=note), _move(
        problem, "resolve_on_site", "closed", at, problem.raised_by_id, note=note
    )


def escalate(problem: Problem, at: datetime, today: date) -> tuple[Problem, Move]:
    if problem.state != "raised":
        raise MoveError("bad_state", state=problem.state)
    changed = replace(problem, state="escalated", escalated_on=today)
    return changed, _move(problem, "escalate", "escalated", at, problem.raised_by_id)


def agenda_meeting(problem: Problem, today: date, calendar: Calendar) -> date | None:
    """The meeting whose agenda holds the problem: the next one from today, for a problem awaiting a decision."""
    if problem.state != "escalated":
        return None
    return calendar.next_on_or_after(today)


def decide(
    problem: Problem,
    actor: Actor | None,
    *,
    responsible_id: int,
    due_on: date,
    at: datetime,
    today: date,
    calendar: Calendar,
    note: str | None = None,
) -> tuple[Problem, Move]:
    """The meeting's decision: who is responsible and by when. It belongs to the latest meeting held on or
    before today, which must not precede the day the problem joined the queue (it was on that agenda)."""
    actor_id = _require_actor(actor, problem)
    if problem.state not in DECIDABLE:
        raise MoveError("bad_state", state=problem.state)
    meeting = calendar.latest_on_or_before(today)
    if problem.escalated_on is not None and (meeting is None or meeting < problem.escalated_on):
        raise MoveError("not_yet_met", meeting=calendar.next_on_or_after(today))
    if due_on <= today:
        raise MoveError("due_in_past", due=due_on)
    changed = replace(
        problem,
        state="decided",
        responsible_id=responsible_id,
        due_on=due_on,
        meeting_on=meeting,
        overdue_on=None,
    )
    return changed, _move(problem, "decide", "decided", at, actor_id, note=note, meeting_on=meeting)


def close(problem: Problem, actor: Actor | None, *, note: str, at: datetime) -> tuple[Problem, Move]:
    """销号: only a decided problem closes, with a resolution note; the deciding meeting stays on it."""
    actor_id = _require_actor(actor, problem)
    if problem.state == "escalated":
        raise MoveError("not_decided")
    if problem.state not in CLOSABLE:
        raise MoveError("bad_state", state=problem.state)
    if not note.strip():
        raise MoveError("note_required")
    changed = replace(problem, state="closed", resolution=note.strip())
    return changed, _move(
        problem, "close", "closed", at, actor_id, note=note.strip(), meeting_on=problem.meeting_on
    )


def reopen(
    problem: Problem, actor: Actor | None, *, note: str, at: datetime, today: date
) -> tuple[Problem, Move]:
    """Back on the queue (the next meeting's agenda); the earlier decision stays in the history only."""
    actor_id = _require_actor(actor, problem)
    if problem.state not in ("closed", "merged"):
        raise MoveError("bad_state", state=problem.state)
    if not note.strip():
        raise MoveError("note_required")
    changed = replace(
        problem,
        state="escalated",
        escalated_on=today,
        responsible_id=None,
        due_on=None,
        meeting_on=None,
        merged_into_id=None,
        overdue_on=None,
    )
    return changed, _move(problem, "reopen", "escalated", at, actor_id, note=note.strip())


def merge(problem: Problem, actor: Actor | None, *, into: Problem, at: datetime) -> tuple[Problem, Move]:
    """Fold a duplicate into another open problem of the same township."""
    actor_id = _require_actor(actor, problem)
    if problem.state not in OPEN_STATES:
        raise MoveError("bad_state", state=problem.state)
    if into.id == problem.id:
        raise MoveError("merge_self")
    if into.township_id != problem.township_id:
        raise MoveError("merge_other_township")
    if into.state not in OPEN_STATES:
        raise MoveError("merge_target_closed", target=into.id, state=into.state)
    changed = replace(problem, state="merged", merged_into_id=into.id)
    return changed, _move(problem, "merge", "merged", at, actor_id, note=f"#{into.id}")


def on_day(problem: Problem, at: datetime, today: date, calendar: Calendar) -> list[tuple[Problem, Move]]:
    """The scheduler's daily look: decided past its due date → overdue; overdue still open after the first meeting
    that followed → county (督查指挥中心). Idempotent: a problem already moved is left alone."""
    steps: list[tuple[Problem, Move]] = []
    if problem.state == "decided" and problem.due_on is not None and today > problem.due_on:
        overdue_on = problem.due_on + timedelta(days=1)
        changed = replace(problem, state="overdue", overdue_on=overdue_on)
        steps.append((changed, _move(problem, "overdue", "overdue", at, None)))
        problem = changed
    if problem.state == "overdue" and problem.overdue_on is not None:
        meeting = calendar.next_on_or_after(problem.overdue_on)
        if today > meeting:
            changed = replace(problem, state="county")
            steps.append((changed, _move(problem, "county", "county", at, None, meeting_on=meeting)))
    return steps
