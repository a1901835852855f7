"""The problem's life (survey.problems) and the meeting calendar (survey.meetings), with a clock the tests set."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from survey import problems as p
from survey.meetings import Calendar, CalendarError

CAL = Calendar()  # the 1st and the 16th
SECRETARY = p.Actor(cadre_id=1, role="乡镇党委书记", township_id=10)
OTHER_SECRETARY = p.Actor(cadre_id=2, role="乡镇党委书记", township_id=20)
SPECIALIST = p.Actor(cadre_id=3, role="扶贫专干", township_id=10)
CADRE = p.Actor(cadre_id=4, role="第一书记", township_id=10)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)


def queued(on: date = date(2026, 11, 3)) -> p.Problem:
    problem, move = p.escalate(p.Problem(id=7, township_id=10, raised_by_id=4), at(on), on)
    assert (move.from_state, move.to_state, move.actor_id) == ("raised", "escalated", 4)
    return problem


def decided(today: date = date(2026, 11, 16), due: date = date(2026, 11, 23)) -> p.Problem:
    problem, _ = p.decide(
        queued(), SECRETARY, responsible_id=5, due_on=due, at=at(today), today=today, calendar=CAL
    )
    return problem


# --- calendar --------------------------------------------------------------------------------------------------


def test_calendar_next_and_latest_meetings_across_months():
    assert CAL.next_on_or_after(date(2026, 11, 3)) == date(2026, 11, 16)
    assert CAL.next_on_or_after(date(2026, 11, 16)) == date(2026, 11, 16)
    assert CAL.next_on_or_after(date(2026, 12, 17)) == date(2027, 1, 1)
    assert CAL.latest_on_or_before(date(2026, 11, 15)) == date(2026, 11, 1)
    assert CAL.latest_on_or_before(date(2026, 11, 16)) == date(2026, 11, 16)


def test_a_day_past_the_months_end_falls_on_its_last_day():
    cal = Calendar.parse("15，31")
    assert cal.days == (15, 31)
    assert cal.in_month(2027, 2) == [date(2027, 2, 15), date(2027, 2, 28)]
    assert cal.next_on_or_after(date(2027, 2, 16)) == date(2027, 2, 28)


@pytest.mark.parametrize("text", ["0", "32", "1,x", "周一"])
def test_bad_calendars_are_refused(text: str):
    with pytest.raises(CalendarError):
        Calendar.parse(text)


def test_empty_calendar_text_is_the_default():
    assert Calendar.parse("") == Calendar.parse(None) == Calendar((1, 16))


# --- lifecycle -------------------------------------------------------------------------------------------------


def test_resolved_on_site_closes_at_once():
    problem, move = p.resolve_on_site(
        p.Problem(id=1, township_id=10, raised_by_id=4), at(date(2026, 11, 3)), "修好了"
    )
    assert problem.state == "closed" and move.action == "resolve_on_site" and move.note == "修好了"


def test_escalated_is_on_the_next_meetings_agenda_and_carries_over():
    problem = queued(date(2026, 11, 3))
    assert p.agenda_meeting(problem, date(2026, 11, 3), CAL) == date(2026, 11, 16)
    # not decided at the 16th: on the agenda of the 1st
    assert p.agenda_meeting(problem, date(2026, 11, 20), CAL) == date(2026, 12, 1)


def test_decision_belongs_to_the_meeting_held_and_cannot_come_before_it():
    problem = queued(date(2026, 11, 3))
    with pytest.raises(p.MoveError) as refused:
        p.decide(
            problem,
            SECRETARY,
            responsible_id=5,
            due_on=date(2026, 11, 30),
            at=at(date(2026, 11, 10)),
            today=date(2026, 11, 10),
            calendar=CAL,
        )
    assert refused.value.code == "not_yet_met" and refused.value.params["meeting"] == date(2026, 11, 16)
    changed, move = p.decide(
        problem,
        SECRETARY,
        responsible_id=5,
        due_on=date(2026, 12, 1),
        at=at(date(2026, 11, 16)),
        today=date(2026, 11, 16),
        calendar=CAL,
    )
    assert (changed.state, changed.responsible_id, changed.due_on, changed.meeting_on) == (
        "decided",
        5,
        date(2026, 12, 1),
        date(2026, 11, 16),
    )
    assert (move.action, move.actor_id, move.meeting_on) == ("decide", 1, date(2026, 11, 16))


def test_a_problem_raised_on_meeting_day_waits_for_the_next_meeting():
    problem = queued(date(2026, 11, 16))
    changed, _ = p.decide(
        problem,
        SECRETARY,
        responsible_id=5,
        due_on=date(2026, 11, 30),
        at=at(date(2026, 11, 16)),
        today=date(2026, 11, 16),
        calendar=CAL,
    )
    assert changed.meeting_on == date(
        2026, 11, 16
    )  # the same day counts: it was raised before or at the meeting


def test_due_date_must_be_after_today():
    with pytest.raises(p.MoveError, match="due_in_past"):
        p.decide(
            queued(),
            SECRETARY,
            responsible_id=5,
            due_on=date(2026, 11, 16),
            at=at(date(2026, 11, 16)),
            today=date(2026, 11, 16),
            calendar=CAL,
        )


def test_close_needs_a_decision_and_a_note_and_keeps_the_meeting():
    with pytest.raises(p.MoveError, match="not_decided"):
        p.close(queued(), SECRETARY, note="已解决", at=at(date(2026, 11, 20)))
    with pytest.raises(p.MoveError, match="note_required"):
        p.close(decided(), SECRETARY, note="  ", at=at(date(2026, 11, 20)))
    closed, move = p.close(decided(), SECRETARY, note=" 已修好水管 ", at=at(date(2026, 11, 20)))
    assert (closed.state, closed.resolution, move.meeting_on) == ("closed", "已修好水管", date(2026, 11, 16))
    with pytest.raises(p.MoveError, match="bad_state"):
        p.close(closed, SECRETARY, note="again", at=at(date(2026, 11, 21)))


def test_overdue_after_the_due_date_then_county_after_the_next_meeting():
    problem = decided(due=date(2026, 11, 23))
    assert p.on_day(problem, at(date(2026, 11, 23)), date(2026, 11, 23), CAL) == []  # due today: not yet
    ((overdue, move),) = p.on_day(problem, at(date(2026, 11, 24)), date(2026, 11, 24), CAL)
    assert (overdue.state, overdue.overdue_on, move.actor_id) == ("overdue", date(2026, 11, 24), None)
    # the next meeting after it fell overdue is 1 December: on the county list the day after
    assert p.on_day(overdue, at(date(2026, 12, 1)), date(2026, 12, 1), CAL) == []
    ((county, move),) = p.on_day(overdue, at(date(2026, 12, 2)), date(2026, 12, 2), CAL)
    assert (county.state, move.action, move.meeting_on) == ("county", "county", date(2026, 12, 1))
    assert p.on_day(county, at(date(2026, 12, 3)), date(2026, 12, 3), CAL) == []  # idempotent
    # a server down for weeks: both steps at once
    steps = p.on_day(problem, at(date(2026, 12, 20)), date(2026, 12, 20), CAL)
    assert [m.to_state for _, m in steps] == ["overdue", "county"]
    # an overdue problem can still be closed
    closed, _ = p.close(county, SECRETARY, note="终于修好", at=at(date(2026, 12, 5)))
    assert closed.state == "closed"


def test_redecided_at_a_later_meeting_clears_overdue():
    ((overdue, _),) = p.on_day(
        decided(due=date(2026, 11, 23)), at(date(2026, 11, 24)), date(2026, 11, 24), CAL
    )
    again, _ = p.decide(
        overdue,
        SECRETARY,
        responsible_id=6,
        due_on=date(2026, 12, 15),
        at=at(date(2026, 12, 1)),
        today=date(2026, 12, 1),
        calendar=CAL,
    )
    assert (again.state, again.responsible_id, again.meeting_on, again.overdue_on) == (
        "decided",
        6,
        date(2026, 12, 1),
        None,
    )


def test_reopen_puts_it_back_on_the_agenda_and_forgets_the_decision():
    closed, _ = p.close(decided(), SECRETARY, note="已解决", at=at(date(2026, 11, 20)))
    reopened, move = p.reopen(
        closed, SECRETARY, note="群众反映又坏了", at=at(date(2026, 11, 25)), today=date(2026, 11, 25)
    )
    assert (reopened.state, reopened.escalated_on, reopened.responsible_id, reopened.meeting_on) == (
        "escalated",
        date(2026, 11, 25),
        None,
        None,
    )
    assert p.agenda_meeting(reopened, date(2026, 11, 25), CAL) == date(2026, 12, 1)
    assert (move.action, move.from_state, move.note) == ("reopen", "closed", "群众反映又坏了")
    with pytest.raises(p.MoveError, match="bad_state"):
        p.reopen(queued(), SECRETARY, note="x", at=at(date(2026, 11, 25)), today=date(2026, 11, 25))


def test_merge_a_duplicate_into_an_open_problem_of_the_same_township():
    target = p.Problem(id=8, township_id=10, state="escalated")
    merged, move = p.merge(queued(), SECRETARY, into=target, at=at(date(2026, 11, 16)))
    assert (merged.state, merged.merged_into_id, move.note) == ("merged", 8, "#8")
    for into, code in (
        (queued(), "merge_self"),
        (p.Problem(id=9, township_id=20, state="escalated"), "merge_other_township"),
        (p.Problem(id=9, township_id=10, state="closed"), "merge_target_closed"),
    ):
        with pytest.raises(p.MoveError) as refused:
            p.merge(queued(), SECRETARY, into=into, at=at(date(2026, 11, 16)))
        assert refused.value.code == code


# --- permissions -----------------------------------------------------------------------------------------------


def test_who_sees_and_who_acts():
    problem = queued()
    assert p.may_view(SECRETARY, problem) and p.may_act(SECRETARY, problem)
    assert p.may_view(SPECIALIST, problem) and not p.may_act(SPECIALIST, problem)
    assert not p.may_view(OTHER_SECRETARY, problem) and not p.may_act(OTHER_SECRETARY, problem)
    assert p.may_view(CADRE, problem) and not p.may_act(CADRE, problem)  # raised it
    stranger = p.Actor(cadre_id=99, role="第一书记", township_id=10)
    assert not p.may_view(stranger, problem)


@pytest.mark.parametrize("actor", [OTHER_SECRETARY, CADRE, SPECIALIST])
def test_only_the_townships_secretary_moves_a_problem(actor: p.Actor):
    with pytest.raises(p.MoveError, match="not_allowed"):
        p.close(decided(), actor, note="x", at=at(date(2026, 11, 20)))
    with pytest.raises(p.MoveError, match="not_allowed"):
        p.decide(
            queued(),
            actor,
            responsible_id=5,
            due_on=date(2026, 12, 1),
            at=at(date(2026, 11, 16)),
            today=date(2026, 11, 16),
            calendar=CAL,
        )
