from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from survey.polls import (
    MarkOptIn,
    MarkOptOut,
    Poll,
    PollTimings,
    RaiseProblem,
    SendSms,
    counts_as_response,
    is_satisfied,
    new_poll,
    on_reply,
    on_reply_outside_poll,
    on_sent,
    on_tick,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PHONE = "+8613800138000"


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def sent_poll() -> Poll:
    poll, actions = new_poll(PHONE, household_id=7, poll_id=1)
    assert poll.state == "queued"
    assert actions == [SendSms("poll/ask")]
    return on_sent(poll, T0)


def templates(actions: list) -> list[str]:
    return [a.template for a in actions if isinstance(a, SendSms)]


# --------------------------------------------------------------------------- sending


def test_on_sent_starts_the_clock_once() -> None:
    poll = sent_poll()
    assert (poll.state, poll.sent_at) == ("sent", T0)
    assert on_sent(poll, hours(1)) == poll  # a retried status callback


def test_nothing_happens_while_queued() -> None:
    poll, _ = new_poll(PHONE)
    assert on_tick(poll, hours(24 * 30)) == (poll, [])


# --------------------------------------------------------------------------- the whole life


def test_unsatisfied_with_a_reason_later() -> None:
    poll = sent_poll()
    assert on_tick(poll, hours(47)) == (poll, [])

    poll, actions = on_tick(poll, hours(48))
    assert (poll.state, poll.reminded_at, actions) == ("reminded", hours(48), [SendSms("poll/reminder")])
    assert on_tick(poll, hours(49)) == (poll, [])  # once, not twice
    assert on_tick(poll, hours(100)) == (poll, [])

    poll, actions = on_reply(poll, "3", hours(50))
    assert (poll.state, poll.rating, actions) == ("awaiting_reason", "不满意", [SendSms("poll/ask_reason")])
    assert not counts_as_response(poll)

    poll, actions = on_reply(poll, "村里的路没修好。", hours(51))
    assert poll.state == "answered"
    assert poll.reason == "村里的路没修好。"
    assert poll.closed_at == hours(51)
    assert actions == [RaiseProblem("reason", "村里的路没修好。"), SendSms("poll/thanks")]
    assert counts_as_response(poll)
    assert not is_satisfied(poll.rating)

    # Closed: no more reminders, no expiry, no reaction to chatter.
    assert on_tick(poll, hours(24 * 8)) == (poll, [])
    assert on_reply(poll, "谢谢", hours(52)) == (poll, [])


def test_unsatisfied_and_silent_gets_a_callback_after_48_hours() -> None:
    poll, _ = on_reply(sent_poll(), "不满意", hours(2))
    assert on_tick(poll, hours(2 + 47)) == (poll, [])
    poll, actions = on_tick(poll, hours(2 + 60))  # a late tick
    assert poll.state == "answered"
    assert poll.callback
    assert poll.reason is None
    assert poll.closed_at == hours(50)  # the deadline, not the tick
    assert actions == [RaiseProblem("callback"), SendSms("poll/thanks")]
    assert counts_as_response(poll)


def test_reason_in_the_same_message() -> None:
    poll, actions = on_reply(sent_poll(), "3 路没修", hours(1))
    assert (poll.state, poll.rating, poll.reason) == ("answered", "不满意", "路没修")
    assert actions == [RaiseProblem("reason", "路没修"), SendSms("poll/thanks")]


@pytest.mark.parametrize("reply", ["1", "满意！", "２", "比较满意", "1 👍"])
def test_satisfied_ends_with_thanks(reply: str) -> None:
    poll, actions = on_reply(sent_poll(), reply, hours(3))
    assert poll.state == "answered"
    assert is_satisfied(poll.rating)
    assert actions == [SendSms("poll/thanks")]
    assert counts_as_response(poll)


def test_comment_with_a_good_rating_raises_nothing() -> None:
    poll, actions = on_reply(sent_poll(), "1 谢谢政府", hours(3))
    assert (poll.rating, poll.comment, poll.reason) == ("满意", "谢谢政府", None)
    assert actions == [SendSms("poll/thanks")]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("3", []),  # a bare rating is not a reason
        ("👎", []),
        ("3 还是没修", [RaiseProblem("reason", "还是没修"), SendSms("poll/thanks")]),
        ("一般", [RaiseProblem("reason", "一般"), SendSms("poll/thanks")]),
    ],
)
def test_what_counts_as_a_reason(reply: str, expected: list) -> None:
    poll, _ = on_reply(sent_poll(), "3", hours(1))
    _, actions = on_reply(poll, reply, hours(2))
    assert actions == expected


def test_unclear_is_clarified_once_then_unclear() -> None:
    poll, actions = on_reply(sent_poll(), "一般", hours(1))
    assert (poll.state, poll.clarified, actions) == ("clarifying", True, [SendSms("poll/clarify")])

    poll, actions = on_reply(poll, "还行吧", hours(2))
    # no third question: the thank-you ends it
    assert (poll.state, poll.closed_at, actions) == ("unclear", hours(2), [SendSms("poll/thanks")])
    assert not counts_as_response(poll)
    assert on_reply(poll, "还可以", hours(3)) == (poll, [])


def test_clarified_then_answered() -> None:
    poll, _ = on_reply(sent_poll(), "ok", hours(1))
    poll, actions = on_reply(poll, "2", hours(2))
    assert (poll.state, poll.rating, actions) == ("answered", "基本满意", [SendSms("poll/thanks")])


def test_emoji_only_is_unclear() -> None:
    poll, actions = on_reply(sent_poll(), "👍", hours(1))
    assert (poll.state, actions) == ("clarifying", [SendSms("poll/clarify")])


def test_no_reminder_after_a_clarification() -> None:
    poll, _ = on_reply(sent_poll(), "一般", hours(1))
    assert on_tick(poll, hours(48)) == (poll, [])


def test_reply_before_the_delivery_callback() -> None:
    poll, _ = new_poll(PHONE)
    poll, _ = on_reply(poll, "一般", hours(1))
    assert (poll.state, poll.sent_at) == ("clarifying", hours(1))
    assert on_tick(poll, hours(1 + 24 * 7))[0].state == "expired"


# --------------------------------------------------------------------------- expiry


def test_expiry_at_exactly_seven_days() -> None:
    poll, _ = on_tick(sent_poll(), hours(48))
    just_before = T0 + timedelta(days=7) - timedelta(seconds=1)
    assert on_tick(poll, just_before) == (poll, [])

    poll, actions = on_tick(poll, T0 + timedelta(days=7))
    assert (poll.state, poll.closed_at, actions) == ("expired", T0 + timedelta(days=7), [])
    assert not counts_as_response(poll)

    assert on_reply(poll, "1", hours(24 * 7 + 1)) == (poll, [])  # too late: no action
    assert on_tick(poll, hours(24 * 9)) == (poll, [])


def test_a_late_first_tick_expires_without_a_reminder() -> None:
    poll, actions = on_tick(sent_poll(), hours(24 * 8))
    assert (poll.state, poll.reminded_at, actions) == ("expired", None, [])


def test_clarifying_expires_too() -> None:
    poll, _ = on_reply(sent_poll(), "一般", hours(1))
    assert on_tick(poll, T0 + timedelta(days=7))[0].state == "expired"


def test_timings_are_settings() -> None:
    timings = PollTimings(remind_after=timedelta(hours=24), expire_after=timedelta(days=3))
    poll, actions = on_tick(sent_poll(), hours(24), timings)
    assert actions == [SendSms("poll/reminder")]
    assert on_tick(poll, hours(72), timings)[0].state == "expired"

    asking, _ = on_reply(sent_poll(), "3", hours(1))
    quick = PollTimings(reason_wait=timedelta(hours=1))
    assert on_tick(asking, hours(2), quick)[1] == [RaiseProblem("callback"), SendSms("poll/thanks")]


# --------------------------------------------------------------------------- opting out and in


@pytest.mark.parametrize("reply", ["TD", "退订", "ＳＴＯＰ", "td", "取消", "unsubscribe"])
def test_opt_out_mid_poll(reply: str) -> None:
    poll, _ = on_tick(sent_poll(), hours(48))
    poll, actions = on_reply(poll, reply, hours(50))
    assert (poll.state, poll.closed_at) == ("opted_out", hours(50))
    # The confirmation is listed before the opt-out, so a sender checking the list still delivers it.
    assert actions == [SendSms("poll/opted_out"), MarkOptOut(PHONE)]
    assert not counts_as_response(poll)
    assert on_tick(poll, hours(24 * 8)) == (poll, [])
    assert on_reply(poll, "1", hours(51)) == (poll, [])
    assert on_reply(poll, "TD", hours(52)) == (poll, [])  # one confirmation


def test_opt_in_after_opting_out_does_not_reopen_the_poll() -> None:
    poll, _ = on_reply(sent_poll(), "TD", hours(1))
    poll2, actions = on_reply(poll, "订阅", hours(2))
    assert poll2 == poll
    assert actions == [MarkOptIn(PHONE), SendSms("poll/opted_in")]


def test_opt_out_while_asked_for_a_reason_keeps_the_rating() -> None:
    poll, _ = on_reply(sent_poll(), "3", hours(1))
    poll, actions = on_reply(poll, "退订", hours(2))
    assert (poll.state, poll.rating, poll.callback) == ("answered", "不满意", True)
    assert actions == [SendSms("poll/opted_out"), MarkOptOut(PHONE), RaiseProblem("callback")]
    assert counts_as_response(poll)
    assert on_tick(poll, hours(100)) == (poll, [])


@pytest.mark.parametrize("make_closed", ["answered", "expired", "unclear"])
def test_opt_out_after_the_poll_still_opts_out(make_closed: str) -> None:
    poll = replace(sent_poll(), state=make_closed, closed_at=hours(5))
    after, actions = on_reply(poll, "STOP", hours(6))
    assert after == poll
    assert actions == [SendSms("poll/opted_out"), MarkOptOut(PHONE)]
    assert on_reply(poll, "你好", hours(6)) == (poll, [])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("订阅", [MarkOptIn(PHONE), SendSms("poll/opted_in")]),
        ("start", [MarkOptIn(PHONE), SendSms("poll/opted_in")]),
        (" START！", [MarkOptIn(PHONE), SendSms("poll/opted_in")]),
        ("退订", [SendSms("poll/opted_out"), MarkOptOut(PHONE)]),
        ("1", []),
        ("你好", []),
    ],
)
def test_reply_outside_a_poll(reply: str, expected: list) -> None:
    assert on_reply_outside_poll(PHONE, reply) == expected


# --------------------------------------------------------------------------- the rate


@pytest.mark.parametrize(
    ("rating", "satisfied"), [("满意", True), ("基本满意", True), ("不满意", False), (None, False)]
)
def test_is_satisfied(rating: str | None, satisfied: bool) -> None:
    assert is_satisfied(rating) is satisfied


def test_functions_do_not_mutate_the_poll() -> None:
    poll = sent_poll()
    snapshot = replace(poll)
    on_reply(poll, "3", hours(1))
    on_tick(poll, hours(24 * 8))
    assert poll == snapshot


# --------------------------------------------------------------------------- Twilio's own keywords

TWILIO_OPT_OUT = ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
TWILIO_OPT_IN = ["START", "YES", "UNSTOP"]


@pytest.mark.parametrize(
    "word", TWILIO_OPT_OUT + [w.lower() for w in TWILIO_OPT_OUT] + ["Opt-Out", "ＱＵＩＴ"]
)
def test_every_twilio_opt_out_keyword_opts_out_and_ends_the_poll(word: str) -> None:
    """Twilio blocks the number on these before our webhook sees them: our list must say the same."""
    poll, actions = on_reply(sent_poll(), word, hours(1))
    assert poll.state == "opted_out"
    assert actions == [SendSms("poll/opted_out"), MarkOptOut(PHONE)]
    assert on_reply_outside_poll(PHONE, word) == [SendSms("poll/opted_out"), MarkOptOut(PHONE)]


@pytest.mark.parametrize("word", [*TWILIO_OPT_IN, "yes", "Unstop"])
def test_every_twilio_opt_in_keyword_lifts_the_opt_out(word: str) -> None:
    opted_out, _ = on_reply(sent_poll(), "STOP", hours(1))
    assert on_reply(opted_out, word, hours(2)) == (opted_out, [MarkOptIn(PHONE), SendSms("poll/opted_in")])
    assert on_reply_outside_poll(PHONE, word) == [MarkOptIn(PHONE), SendSms("poll/opted_in")]


def test_yes_to_the_question_is_no_rating_it_is_asked_again() -> None:
    """ "YES" to "are you satisfied?" is Twilio's opt-in word, not a rating: the list is kept in step with
    Twilio (nothing to lift) and the villager is asked to reply with a digit."""
    poll, actions = on_reply(sent_poll(), "Yes", hours(1))
    assert (poll.state, poll.rating) == ("clarifying", None)
    assert actions == [MarkOptIn(PHONE), SendSms("poll/clarify")]
    answered, _ = on_reply(poll, "1", hours(2))
    assert (answered.state, answered.rating) == ("answered", "满意")


@pytest.mark.parametrize("word", ["HELP", "help", "INFO", "帮助", " Help! "])
def test_help_gets_how_to_reply_and_the_question_still_waits(word: str) -> None:
    poll = sent_poll()
    assert on_reply(poll, word, hours(1)) == (poll, [SendSms("poll/help")])
    assert on_reply_outside_poll(PHONE, word) == [SendSms("poll/help")]
