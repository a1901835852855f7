"""The life of one SMS satisfaction poll, as a pure state machine.

Every step takes the poll and the time (an aware datetime from the caller: nothing here reads the
clock) and returns the new poll plus the actions the caller carries out (send an SMS, raise a
problem on the township queue, record an opt-out). Nothing is sent or stored here.

    queued → sent → (reminded) → answered                       (满意 / 基本满意, or 不满意 with its reason)
                               → awaiting_reason → answered     (reason received, or a call-back after 48 h)
                               → clarifying → answered | unclear (a second unreadable reply)
                               → expired                        (7 days without a rating)
                               → opted_out                      (TD / 退订 / STOP … during the poll)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, tzinfo
from typing import Literal

from survey.sms_text import Rating, ReplyMeaning, parse_reply

__all__ = [
    "CLOSED_STATES",
    "OPEN_STATES",
    "Action",
    "MarkOptIn",
    "MarkOptOut",
    "Poll",
    "PollState",
    "PollTimings",
    "RaiseProblem",
    "SendSms",
    "counts_as_response",
    "is_satisfied",
    "new_poll",
    "next_deadline",
    "next_outside_quiet",
    "on_message",
    "on_reply",
    "on_reply_outside_poll",
    "on_sent",
    "on_tick",
    "parse_quiet_hours",
]

PollState = Literal[
    "queued",
    "sent",
    "reminded",
    "clarifying",
    "awaiting_reason",
    "answered",
    "unclear",
    "expired",
    "opted_out",
]
# Still waiting for a rating: reminders, clarification and expiry apply.
OPEN_STATES: frozenset[str] = frozenset({"queued", "sent", "reminded", "clarifying"})
CLOSED_STATES: frozenset[str] = frozenset({"answered", "unclear", "expired", "opted_out"})


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class PollTimings:
    """The waits, as settings; the defaults are the issue's."""

    remind_after: timedelta = timedelta(hours=48)
    expire_after: timedelta = timedelta(days=7)
    reason_wait: timedelta = timedelta(hours=48)


@dataclass
class Poll:
    """Plain data, as stored; the functions below never mutate it but return a changed copy."""

    id: int | None = None
    household_id: int | None = None
    phone: str | None = None
    state: PollState = "queued"
    sent_at: datetime | None = None
    reminded_at: datetime | None = None
    clarified_at: datetime | None = None
    reason_asked_at: datetime | None = None
    closed_at: datetime | None = None
    rating: Rating | None = None
    reason: str | None = None
    # Text that came with 满意 / 基本满意 ("1 谢谢"): kept, but it raises nothing.
    comment: str | None = None
    # 不满意 and no reason within the wait: a cadre is to call back.
    callback: bool = False

    @property
    def clarified(self) -> bool:
        """The one clarifying SMS has been sent."""
        return self.clarified_at is not None


@dataclass(frozen=True)
class SendSms:
    """Send the named template (messages/templates) to the poll's phone."""

    template: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RaiseProblem:
    """Put a problem on the township queue: the villager's reason, or a call-back task (text None)."""

    kind: Literal["reason", "callback"]
    text: str | None = None


@dataclass(frozen=True)
class MarkOptOut:
    """Record that this number receives no more SMS."""

    phone: str | None


@dataclass(frozen=True)
class MarkOptIn:
    """Record that this number may receive SMS again."""

    phone: str | None


Action = SendSms | RaiseProblem | MarkOptOut | MarkOptIn
Step = tuple[Poll, list[Action]]


# --------------------------------------------------------------------------- steps


def new_poll(
    phone: str | None = None, *, household_id: int | None = None, poll_id: int | None = None
) -> Step:
    """A queued poll and its question (the caller writes the SMS row, then calls `on_sent`)."""
    poll = Poll(id=poll_id, household_id=household_id, phone=phone)
    return poll, [SendSms("poll/ask")]


def on_sent(poll: Poll, at: datetime) -> Poll:
    """The question left; the reminder and expiry clocks start. Repeated status callbacks change nothing."""
    if poll.state != "queued":
        return poll
    return replace(poll, state="sent", sent_at=at)


def on_reply_outside_poll(phone: str | None, text: str) -> list[Action]:
    """A reply with no open poll: only opt-out/opt-in keywords act; anything else is the caller's call."""
    return _outside_poll(phone, parse_reply(text))


def _outside_poll(phone: str | None, meaning: ReplyMeaning) -> list[Action]:
    if meaning.kind == "opt_out":
        # The confirmation goes first, so a sender that checks the opt-out list still delivers it.
        return [SendSms("poll/opted_out"), MarkOptOut(phone)]
    if meaning.kind == "opt_in":
        return [MarkOptIn(phone), SendSms("poll/opted_in")]
    if meaning.kind == "help":
        return [SendSms("poll/help")]
    return []


def on_message(
    poll: Poll | None, phone: str | None, text: str, at: datetime
) -> tuple[Poll | None, list[Action]]:
    """Any message from a household's number: its waiting poll takes it when there is one; otherwise only the
    opt-out and opt-in keywords act. The one owner of what a household's SMS does."""
    meaning = parse_reply(text)  # once: every step below reads this meaning
    if poll is None:
        return None, _outside_poll(phone, meaning)
    return _reply(poll, text, meaning, at)


def on_reply(poll: Poll, text: str, at: datetime) -> Step:
    """A villager's reply to this poll."""
    return _reply(poll, text, parse_reply(text), at)


def _reply(poll: Poll, text: str, meaning: ReplyMeaning, at: datetime) -> Step:
    if meaning.kind in ("opt_out", "opt_in"):
        return _on_keyword(poll, meaning, at)
    if meaning.kind == "help":  # how to answer; the question still waits
        return poll, _outside_poll(poll.phone, meaning)
    if poll.state == "awaiting_reason":
        return _on_reason(poll, text, meaning, at)
    if poll.state not in OPEN_STATES:
        return poll, []
    if poll.sent_at is None:
        # A reply can beat the delivery callback; it proves the question arrived.
        poll = replace(poll, sent_at=at)
    if meaning.kind == "rating" and meaning.rating is not None:
        return _on_rating(poll, meaning.rating, meaning.extra, at)
    return _on_unclear(poll, at)


def on_tick(poll: Poll, now: datetime, timings: PollTimings | None = None) -> Step:
    """Time passing: the reminder, expiry, and the call-back when no reason came."""
    reason_by, remind_at, expiry = _deadlines(poll, timings or PollTimings())
    if reason_by is not None:
        if now >= reason_by:
            closed = replace(poll, state="answered", callback=True, closed_at=reason_by)
            return closed, [RaiseProblem("callback"), SendSms("poll/thanks")]
        return poll, []
    if expiry is not None and now >= expiry:
        # Closed at the deadline, not at the (possibly late) tick, so reports do not depend on the scheduler.
        return replace(poll, state="expired", closed_at=expiry), []
    if remind_at is not None and now >= remind_at:
        return replace(poll, state="reminded", reminded_at=now), [SendSms("poll/reminder")]
    return poll, []


def next_deadline(poll: Poll, timings: PollTimings | None = None) -> datetime | None:
    """The next moment `on_tick` may change this poll; None when only a reply (or nothing) can. Stored with the
    poll, so the tick reads only the polls that are due."""
    reason_by, remind_at, expiry = _deadlines(poll, timings or PollTimings())
    if reason_by is not None:
        return reason_by
    if remind_at is not None and expiry is not None:
        return min(remind_at, expiry)
    return expiry


def _deadlines(poll: Poll, timings: PollTimings) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(the reason's call-back deadline, the reminder's moment, the expiry) that apply to the poll as it is:
    the one definition both the tick and the stored deadline read."""
    if poll.state == "awaiting_reason":
        return (poll.reason_asked_at + timings.reason_wait if poll.reason_asked_at else None), None, None
    if poll.state not in OPEN_STATES or poll.sent_at is None:
        return None, None, None
    expiry = poll.sent_at + timings.expire_after
    remind = poll.state == "sent" and poll.reminded_at is None
    return None, (poll.sent_at + timings.remind_after if remind else None), expiry


# --------------------------------------------------------------------------- helpers


def _on_keyword(poll: Poll, meaning: ReplyMeaning, at: datetime) -> Step:
    """Opt-out ends an open poll; on a closed one it still opts out. Opt-in never reopens a poll."""
    kind = meaning.kind
    if kind == "opt_out" and poll.state == "opted_out":
        return poll, []
    if kind == "opt_in" and poll.state in OPEN_STATES:
        # A number with a question waiting is on no opt-out list of ours; Twilio lifts its own block on YES /
        # START / UNSTOP, so the list is kept in step, but "yes" to "are you satisfied?" is no rating: ask again.
        asked, actions = _on_unclear(replace(poll, sent_at=poll.sent_at or at), at)
        return asked, [MarkOptIn(poll.phone), *actions]
    actions = _outside_poll(poll.phone, meaning)
    if kind == "opt_out" and poll.state == "awaiting_reason":
        # The 不满意 already given stands (dropping it would inflate the rate); a call needs no SMS.
        closed = replace(poll, state="answered", callback=True, closed_at=at)
        return closed, [*actions, RaiseProblem("callback")]
    if kind == "opt_out" and poll.state not in CLOSED_STATES:
        return replace(poll, state="opted_out", closed_at=at), actions
    return poll, actions


def _on_rating(poll: Poll, rating: Rating, extra: str | None, at: datetime) -> Step:
    if rating != "不满意":
        answered = replace(poll, state="answered", rating=rating, comment=extra, closed_at=at)
        return answered, [SendSms("poll/thanks")]
    if extra:
        # "3 路没修": the reason came along with the rating.
        answered = replace(poll, state="answered", rating=rating, reason=extra, closed_at=at)
        return answered, [RaiseProblem("reason", extra), SendSms("poll/thanks")]
    asking = replace(poll, state="awaiting_reason", rating=rating, reason_asked_at=at)
    return asking, [SendSms("poll/ask_reason")]


def _on_reason(poll: Poll, text: str, meaning: ReplyMeaning, at: datetime) -> Step:
    """Any words are the reason; a bare rating or an emoji alone is not (the call-back still covers it)."""
    if meaning.kind == "empty" or (meaning.kind == "rating" and not meaning.extra):
        return poll, []
    reason = meaning.extra if meaning.kind == "rating" and meaning.extra else text.strip()
    answered = replace(poll, state="answered", reason=reason, closed_at=at)
    return answered, [RaiseProblem("reason", reason), SendSms("poll/thanks")]


def _on_unclear(poll: Poll, at: datetime) -> Step:
    """One clarifying SMS; a second unreadable reply closes the poll as unclear (no more questions: guessing
    would inflate the rate), with the thank-you that ends every poll the villager took part in."""
    if poll.clarified:
        return replace(poll, state="unclear", closed_at=at), [SendSms("poll/thanks")]
    return replace(poll, state="clarifying", clarified_at=at), [SendSms("poll/clarify")]


# --------------------------------------------------------------------------- quiet hours
# Outgoing poll SMS are never due inside the quiet hours (ZOUFANG_QUIET_HOURS).


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """ "21:00-08:00" → (21:00, 08:00); empty (or a zero-length range) → None: no quiet hours."""
    text = text.strip()
    if not text:
        return None
    try:
        start_text, end_text = text.split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as exc:
        raise ValueError(f"ZOUFANG_QUIET_HOURS={text!r}: use HH:MM-HH:MM, e.g. 21:00-08:00") from exc
    return None if start == end else (start, end)


def next_outside_quiet(at: datetime, quiet: tuple[time, time] | None, tz: tzinfo) -> datetime:
    """`at` itself when it is outside the quiet hours [start, end) in `tz`, else the end of those quiet hours."""
    if quiet is None:
        return at
    start, end = quiet
    local = at.astimezone(tz)
    now, day = local.time().replace(tzinfo=None), local.date()
    if start < end:  # e.g. 12:00-14:00, within one day
        inside, end_day = start <= now < end, day
    elif now >= start:  # across midnight, evening part: ends tomorrow
        inside, end_day = True, day + timedelta(days=1)
    else:  # across midnight, morning part
        inside, end_day = now < end, day
    if not inside:
        return at
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(at.tzinfo)


# --------------------------------------------------------------------------- the rate


def counts_as_response(poll: Poll) -> bool:
    """Only an answered poll with a rating enters the rate; expired, unclear and opted-out ones do not."""
    return poll.state == "answered" and poll.rating is not None


def is_satisfied(rating: Rating | None) -> bool:
    """The rate's numerator: 满意 or 基本满意."""
    return rating in ("满意", "基本满意")
