"""The township queue's buttons as typed callback data (aiogram's CallbackData): each button's fields declared
once, packed by `.pack()` and checked by `.filter()`, instead of strings built and split by hand.

The packed form is the one these buttons always had (`eo:12`, `ew:12:5:7`), so buttons already in a chat keep
working. A field is a number of ASCII digits up to MAX_ID: anything else (a forged or truncated button) matches
no handler and is only acknowledged.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiogram.filters.callback_data import CallbackData
from pydantic import BeforeValidator, Field

from bot.flows.taps import MAX_ID

PREFIXES = ("eq", "eo", "ed", "er", "ew", "ec", "eu", "em")  # every prefix of this module: one catch-all


def _digits(value: Any) -> Any:
    """'12' → '12'; ' 12', '+12', '1_2', '12.0' (which pydantic alone would read as 12) are refused."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("not a number of digits")
    return value


Id = Annotated[int, BeforeValidator(_digits), Field(ge=0, le=MAX_ID)]


class QueuePage(CallbackData, prefix="eq"):
    page: Id


class OpenProblem(CallbackData, prefix="eo"):
    problem_id: Id


class Decide(CallbackData, prefix="ed"):
    """Open the responsible picker as a new message."""

    problem_id: Id


class DecidePage(CallbackData, prefix="ed"):
    """Turn the responsible picker's pages (edits the message)."""

    problem_id: Id
    page: Id


class Responsible(CallbackData, prefix="er"):
    problem_id: Id
    cadre_id: Id


class DueIn(CallbackData, prefix="ew"):
    problem_id: Id
    cadre_id: Id
    days: Id


class Close(CallbackData, prefix="ec"):
    problem_id: Id


class Reopen(CallbackData, prefix="eu"):
    problem_id: Id


class Merge(CallbackData, prefix="em"):
    problem_id: Id


# the move each text-asking button asks a note (or a number) for
ASKS: dict[type[CallbackData], str] = {Close: "close", Reopen: "reopen", Merge: "merge"}
