"""What a tap on a visit's button says, as typed values: packed into Telegram's callback data by `pack`, read
back by `parse` (the township queue's buttons are bot.channels.telegram.callbacks', in aiogram's CallbackData;
these are the flow's own and channel-free).

    p:<page>                       the household picker's page
    h:<household>                  a household picked
    a:<visit>:<key>:<code>         an answer: y / n / s (skip) / b (back) / submit / cancel / c<i> (choice i)
    t:<visit>:<key>:<i>[:<0|1>]    a several-of box: what it becomes (older buttons carry none: they flip)
    d:<visit>:<key>                the several-of question done
    c:<visit>:<section>            change a section from the summary

Each names the visit and the question it was made for, so a tap on an earlier question's button changes
nothing. A number is ASCII digits up to MAX_ID; anything else (forged, truncated) parses to None.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ID = 2**31 - 1  # larger numbers are nobody's row (and would not fit the database's integers)
PREFIXES = ("p:", "h:", "a:", "t:", "d:", "c:")


@dataclass(frozen=True)
class Page:
    page: int

    def pack(self) -> str:
        return f"p:{self.page}"


@dataclass(frozen=True)
class Pick:
    household_id: int

    def pack(self) -> str:
        return f"h:{self.household_id}"


@dataclass(frozen=True)
class AnswerTap:
    visit_id: int
    key: str
    code: str

    def pack(self) -> str:
        return f"a:{self.visit_id}:{self.key}:{self.code}"


@dataclass(frozen=True)
class Toggle:
    visit_id: int
    key: str
    index: int
    becomes: bool | None  # None: a button from before the boxes said what they become

    def pack(self) -> str:
        tail = "" if self.becomes is None else f":{int(self.becomes)}"
        return f"t:{self.visit_id}:{self.key}:{self.index}{tail}"


@dataclass(frozen=True)
class TogglesDone:
    visit_id: int
    key: str

    def pack(self) -> str:
        return f"d:{self.visit_id}:{self.key}"


@dataclass(frozen=True)
class ChangeSection:
    visit_id: int
    section: str

    def pack(self) -> str:
        return f"c:{self.visit_id}:{self.section}"


Tap = Page | Pick | AnswerTap | Toggle | TogglesDone | ChangeSection


def number(text: str) -> int | None:
    """ASCII digits up to MAX_ID, else None (int() would take ' 12', '+12', '1_2' and any size)."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def parse(data: str) -> Tap | None:
    """The tap a button's data names; None for anything this flow did not make."""
    kind, _, rest = data.partition(":")
    if kind in ("p", "h"):
        value = number(rest)
        return None if value is None else (Page(value) if kind == "p" else Pick(value))
    visit_text, _, rest = rest.partition(":")
    visit = number(visit_text)
    if visit is None or not rest:
        return None
    if kind == "d":
        return TogglesDone(visit, rest)
    if kind == "c":
        return ChangeSection(visit, rest)
    key, _, tail = rest.partition(":")
    if kind == "a" and tail:
        return AnswerTap(visit, key, tail)
    if kind == "t":
        return _toggle(visit, key, tail)
    return None


def _toggle(visit: int, key: str, tail: str) -> Toggle | None:
    index_text, _, becomes = tail.partition(":")
    index = number(index_text)
    if index is None or becomes not in ("", "0", "1"):
        return None
    return Toggle(visit, key, index, None if becomes == "" else becomes == "1")
