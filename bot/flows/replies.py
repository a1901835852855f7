"""What a chat flow is given and what it answers, as plain values: no channel's types.

A flow takes a `ChatInput` (a message or a tap, already unpacked by the channel) and returns an `Answer`: what
to say (`Say`: text and buttons) or what to change on the message tapped (`Edit`), and whether the tap is
answered with a short note. The Telegram adapter turns these into Bot API calls (bot.channels.telegram.webhook for the
webhook, bot.channels.telegram.dispatcher for polling); nothing here knows a Bot API type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Button:
    text: str
    data: str  # what a tap on it sends back (Telegram's callback_data, at most 64 bytes)


Buttons = tuple[tuple[Button, ...], ...]  # rows of buttons under a message


@dataclass(frozen=True)
class LocationRequest:
    """A keyboard in place of the typing one: one button that shares the phone's location, one that skips."""

    share: str
    skip: str


Keyboard = Buttons | LocationRequest


@dataclass(frozen=True)
class Say:
    """A new message."""

    text: str
    keyboard: Keyboard | None = None


@dataclass(frozen=True)
class Edit:
    """Change the message whose button was tapped: its buttons only (text None), or its text and buttons."""

    keyboard: Buttons | None
    text: str | None = None


@dataclass(frozen=True)
class Answer:
    """A flow's whole answer to one input: `reply` (or nothing), and for a tap whether and how it is answered
    (`ack`: Telegram stops the button's spinner; `ack_text` shows a short note over the chat)."""

    reply: Say | Edit | None
    ack: bool = False
    ack_text: str | None = None


@dataclass(frozen=True)
class ChatInput:
    """One message or tap from a chat, as the channel unpacked it."""

    update_id: int
    user_id: int
    chat_id: int
    text: str | None = None  # a message's text
    data: str | None = None  # a tapped button's data
    location: tuple[float, float] | None = None  # (latitude, longitude)
    photo: str | None = None  # the channel's file id of the largest size
    message_id: int | None = None  # the message a tapped button is on
    callback_id: str | None = None  # the tap, to answer it (stop the button's spinner)

    @property
    def tapped(self) -> bool:
        return self.data is not None


def rows(buttons: list[Button], per_row: int = 2) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))
