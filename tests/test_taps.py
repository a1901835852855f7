"""The visit's button data (bot.flows.taps): what the keyboards pack is what a tap parses back; forged or
truncated data parses to nothing, so the tap is only acknowledged."""

from __future__ import annotations

import pytest

from bot.flows import taps


@pytest.mark.parametrize(
    "tap",
    [
        taps.Page(3),
        taps.Pick(120),
        taps.AnswerTap(7, "main_cause", "c2"),
        taps.AnswerTap(7, "summary", "submit"),
        taps.Toggle(7, "support", 1, True),
        taps.Toggle(7, "support", 0, False),
        taps.Toggle(7, "support", 4, None),
        taps.TogglesDone(7, "support"),
        taps.ChangeSection(7, "basic"),
    ],
)
def test_what_is_packed_parses_back(tap: taps.Tap) -> None:
    assert taps.parse(tap.pack()) == tap


def test_the_wire_format_of_buttons_already_in_chats() -> None:
    assert taps.parse("t:12:support:3") == taps.Toggle(
        12, "support", 3, None
    )  # before boxes said what they become
    assert taps.parse("a:12:main_cause:c0") == taps.AnswerTap(12, "main_cause", "c0")
    assert taps.parse("d:12:a:b") == taps.TogglesDone(12, "a:b")  # the rest is the key


@pytest.mark.parametrize(
    "data",
    [
        "",
        "x:1",
        "p:",
        "p:-1",
        "p: 1",
        "h:+5",
        "h:1_0",
        "h:99999999999",
        "a:1:key",
        "a:x:key:y",
        "t:1:k",
        "t:1:k:x",
        "t:1:k:1:2",
        "d:1",
        "d:1:",
        "c:",
        "a:１:k:y",
    ],
)
def test_forged_or_truncated_data_is_nothing(data: str) -> None:
    assert taps.parse(data) is None
