"""Every parser either returns a well-formed value or refuses with a ValueError carrying a reason: never
another exception, never a value outside what the question allows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from survey.answers import (
    parse_choice,
    parse_choices,
    parse_date,
    parse_decimal,
    parse_integer,
    parse_location,
    parse_number,
    parse_text,
    parse_yes_no,
)
from survey.conditions import ConditionError, parse_condition
from survey.periods import parse_period
from survey.phones import normalize_phone
from survey.polls import new_poll, on_reply
from survey.roster import CADRE_COLUMNS, HOUSEHOLD_COLUMNS, validate_cadres, validate_households
from survey.script import ScriptError
from survey.sms_text import RATING_WORDS, parse_reply
from survey.xlsform import (
    build_located,
    condition_to_relevant,
    definition_from_sheets,
    relevant_to_condition,
    sheet_of,
)

# Text as people type it: CJK, full-width forms, digits, punctuation, emoji, controls and everything else.
TYPED = st.one_of(
    st.text(),
    st.text(
        alphabet=st.sampled_from(
            "0123456789０１２３４５６７８９.,，。万千百十亿元块-+ 　eE一二三四五六七八九零两"
        )
    ),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
)


def refused_with_a_reason(error: ValueError) -> None:
    assert str(error).strip(), f"{type(error).__name__} without a reason"


@given(TYPED)
def test_numbers(text: str) -> None:
    for parse in (parse_number, parse_decimal):
        try:
            value = parse(text)
        except ValueError as error:
            refused_with_a_reason(error)
        else:
            assert isinstance(value, Decimal) and value.is_finite()
    try:
        integer = parse_integer(text)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert isinstance(integer, int)


@given(st.integers(min_value=0, max_value=10**12))
def test_an_integer_written_plainly_reads_back(number: int) -> None:
    assert parse_integer(str(number)) == number
    assert parse_integer(f"{number:,}".replace(",", "")) == number


@given(TYPED)
def test_yes_no(text: str) -> None:
    try:
        assert parse_yes_no(text) in (True, False)
    except ValueError as error:
        refused_with_a_reason(error)


OPTIONS = st.lists(st.text(min_size=1, max_size=8).filter(str.strip), min_size=1, max_size=6, unique=True)


@given(TYPED, OPTIONS)
def test_choices(text: str, options: list[str]) -> None:
    try:
        assert parse_choice(text, options) in options
    except ValueError as error:
        refused_with_a_reason(error)
    try:
        chosen = parse_choices(text, options)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert chosen and set(chosen) <= set(options) and len(chosen) == len(set(chosen))


@given(OPTIONS, st.data())
def test_an_option_typed_by_its_number_is_chosen(options: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(options) - 1))
    assume(not any(o.strip().isdigit() for o in options))  # an option that is itself a number may win
    assert parse_choice(str(index + 1), options) == options[index]


@given(TYPED, st.integers(min_value=1, max_value=2000))
def test_text_and_location(text: str, limit: int) -> None:
    try:
        kept = parse_text(text, limit)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert len(kept) <= limit
    try:
        lat, lon = parse_location(text)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert -90 <= lat <= 90 and -180 <= lon <= 180


@given(st.one_of(TYPED, st.from_regex(r"20[0-9]{2}[-/.年][01]?[0-9][-/.月][0-3]?[0-9]日?", fullmatch=True)))
def test_dates(text: str) -> None:
    try:
        iso = parse_date(text)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert date.fromisoformat(iso).isoformat() == iso  # a real calendar day, written as ISO


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(["-", "/", "."]))
def test_a_date_written_plainly_reads_back(day: date, sep: str) -> None:
    assert parse_date(f"{day.year}{sep}{day.month}{sep}{day.day}") == day.isoformat()
    assert parse_date(f"{day.year}年{day.month}月{day.day}日") == day.isoformat()


@given(st.one_of(TYPED, st.from_regex(r"20[0-9]{2}(Q[1-4]|-[01][0-9]|H[12])?", fullmatch=True)))
def test_periods(text: str) -> None:
    try:
        period = parse_period(text)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert period.start < period.end
        assert parse_period(period.label) == period  # its own label reads back as itself


PHONES = st.one_of(
    TYPED,
    st.from_regex(r"(\+86|0086|86)?[ -]?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}", fullmatch=True),
)


@given(PHONES)
def test_phones(text: str) -> None:
    try:
        e164 = normalize_phone(text)
    except ValueError as error:
        refused_with_a_reason(error)
    else:
        assert re.fullmatch(r"\+861[0-9]{10}", e164)
        assert normalize_phone(e164) == e164


NOISE = st.text(alphabet=st.sampled_from(" 　!！。，,~～😀\n\t"), max_size=3)


@given(
    st.one_of(
        TYPED, st.builds(lambda a, w, b: a + w + b, NOISE, st.sampled_from(sorted(RATING_WORDS)), NOISE)
    )
)
def test_sms_replies(text: str) -> None:
    meaning = parse_reply(text)
    assert meaning.kind in ("rating", "opt_out", "opt_in", "help", "unclear", "empty")
    assert (meaning.rating is not None) == (meaning.kind == "rating")
    if meaning.kind == "rating":
        assert meaning.rating in set(RATING_WORDS.values())


@given(NOISE, st.sampled_from(sorted(RATING_WORDS)), NOISE)
def test_a_rating_word_with_noise_around_it_is_that_rating(before: str, word: str, after: str) -> None:
    assert parse_reply(before + word + after).rating == RATING_WORDS[word]


@given(st.lists(TYPED, min_size=1, max_size=5))
def test_any_replies_leave_the_poll_in_a_known_state(replies: list[str]) -> None:
    from datetime import UTC, datetime, timedelta

    poll, _ = new_poll("+8613800138000", household_id=1, poll_id=1)
    at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    for i, text in enumerate(replies):
        poll, actions = on_reply(poll, text, at + timedelta(minutes=i))
        assert poll.state in {"queued", "sent", "reminded", "clarifying", "awaiting_reason", "answered",
                              "unclear", "expired", "opted_out"}  # fmt: skip
        assert len(actions) <= 3
    if poll.state == "answered":
        assert poll.rating is not None and poll.closed_at is not None


XPATH = st.one_of(
    TYPED,
    st.lists(
        st.sampled_from(
            ["${a}", "${b}", "${s}", "=", "!=", ">", ">=", "<", "<=", "'x'", "'yes'", "3", "-1.5", "and", "or",
             "selected(", ",", ")", "(", "not(", "+", "."]
        ),
        max_size=12,
    ).map(" ".join),
)  # fmt: skip
TYPES = {"a": "integer", "b": "yes_no", "s": "several_of"}


@given(XPATH)
def test_relevant_expressions(text: str) -> None:
    """An XLSForm `relevant` becomes a condition zoufang parses to the same clauses, or is refused with a reason."""
    try:
        ours = relevant_to_condition(text, TYPES)
    except ValueError as error:
        refused_with_a_reason(error)
        return
    try:
        condition = parse_condition(ours)
    except ConditionError as error:
        refused_with_a_reason(error)  # e.g. a literal the language cannot hold
        return
    assert parse_condition(relevant_to_condition(condition_to_relevant(condition, TYPES), TYPES)) == condition


# --- roster cells and script workbooks: whole tables of what people type ------------------------------------

CELL = st.one_of(
    TYPED, st.sampled_from(["", "DEMO0001", "示范县", "东风镇", "新华村", "3", "脱贫户", "13800138000"])
)


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]

    def numbered_rows(self):
        return enumerate(self.rows, start=2)


@given(st.lists(st.lists(CELL, min_size=13, max_size=13), max_size=6), st.booleans())
def test_roster_rows(rows: list[list[str]], cadres: bool) -> None:
    """Any cells under the roster's headers: each row is a good row or named in an error, never an exception."""
    spec = CADRE_COLUMNS if cadres else HOUSEHOLD_COLUMNS
    headers = [c.label for c in spec]
    table = Table(headers, [row[: len(headers)] for row in rows])
    result = (validate_cadres if cadres else validate_households)(table)
    good, bad = {r.row for r in result.rows}, {e.row for e in result.errors}
    typed = {n for n, row in table.numbered_rows() if any(c.strip() for c in row)}
    assert typed <= good | bad  # every row typed in is imported or refused, by its row number
    assert bad <= set(range(2, len(rows) + 2)) and all(e.message for e in result.errors)


SURVEY_WORDS = ["type", "name", "label", "relevant", "constraint", "required", "choice_filter", "label::en"]
TYPE_WORDS = ["integer", "text", "begin_group", "end_group", "begin_repeat", "end_repeat", "select_one yn",
              "select_multiple yn", "note", "date", "rank", "geopoint", ""]  # fmt: skip
FORM_CELL = st.one_of(CELL, st.sampled_from([*TYPE_WORDS, "${a} > 1", ". >= 0", "yes", "a", "b"]))


@given(
    st.lists(st.sampled_from(SURVEY_WORDS), min_size=1, max_size=6, unique=True),
    st.lists(st.lists(FORM_CELL, min_size=6, max_size=6), max_size=8),
    st.lists(st.lists(FORM_CELL, min_size=3, max_size=3), max_size=4),
)
def test_script_workbooks(header: list[str], survey: list[list[str]], choices: list[list[str]]) -> None:
    """Any survey and choices sheets: a script, or a refusal whose every fault names where it is."""
    sheets = {
        "survey": sheet_of("survey", [header, *[row[: len(header)] for row in survey]]),
        "choices": sheet_of("choices", [["list_name", "name", "label"], *choices]),
        "settings": sheet_of("settings", [["form_id", "version"], ["f", "1"]]),
    }
    try:
        build_located(definition_from_sheets(sheets))
    except ScriptError as error:
        assert error.errors and all(e.strip() for e in error.errors)
