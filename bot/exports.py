"""The raw exports (`zoufang export visits|polls|problems`): each is a list of sheets, a sheet is headers and a
stream of rows, and a writer puts the stream into CSV or XLSX as it goes by, so memory stays flat at any size.

Rows hold neutral values: str, int, float, local naive datetime or date, None. The CSV writer gives times as
`2026-11-02 10:31:05` and guards text a spreadsheet would run as a formula; the XLSX writer keeps numbers and
times numeric. The XLSX file is written as XML straight into the zip (one cell, one short string): openpyxl's
write-only workbook manages about 0.1 million cells a second here, far too slow for 200,000 visits of 70
columns; openpyxl reads the files back in the tests. The long layout (7 million rows at that size) also comes
as groups, a visit's (户编号, 走访编号) and its answers' tails (question, label, item, code, value), shared by
every visit that gave the same answer: each writer encodes a head once and a tail once for the whole export.

Headers, sheet titles and labels come from messages/templates/<locale>/exports/parts.txt, each read once per
locale (`words`), never per cell.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import operator
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, get_args
from zoneinfo import ZoneInfo

from messages import error_text, locale_or_default
from storage import exports as q
from survey.periods import ROLE_LABELS_EN
from survey.polls import PollState
from survey.problems import STATE_LABELS
from survey.script import CHOICE_TYPES, Question, Script, pick

FORMATS = ("csv", "xlsx")
LAYOUTS = ("wide", "long")
CHOICE_MODES = ("label", "code", "both")
SEPARATOR = "、"  # between the options of a several-of answer in one cell


@dataclass
class Sheet:
    title: str
    headers: list[str]
    rows: Callable[[], Iterable[Sequence[Any]]]  # called once, when the sheet is written: streams its rows
    # the same rows as groups sharing their parts (the long layout), which the writers then encode once
    groups: Callable[[], Iterable[Group]] | None = None


@dataclass
class Export:
    name: str  # the default file name's stem
    sheets: list[Sheet]  # CSV writes the first only
    rows: int = 0  # rows of the first sheet written (counted while writing)


# --- words: every header, title and label of the exports, from messages/templates/<locale>/exports/parts.txt

_PARTS = "exports/parts.txt"
POLL_STATES: tuple[str, ...] = get_args(PollState)  # the machine's states, in its order
PROBLEM_ACTIONS = ("resolve_on_site", "escalate", "decide", "close", "reopen", "merge", "overdue", "county")
SOURCES = ("visit", "sms")
_NOT_COUNTED = ("unclear", "expired", "opted_out")  # poll states that do not count towards satisfaction


def _word(code: str, locale: str, **params: Any) -> str:
    return error_text(code, locale, source=_PARTS, **params)


def _headers(keys: Iterable[str], locale: str) -> list[str]:
    """Column headers by key: `code` is the macro `h_code` (户编号, household id)."""
    return [_word(f"h_{key}", locale) for key in keys]


@dataclass(frozen=True)
class Words:
    """The words cells are made of, in one locale, each read once (an export writes millions of cells)."""

    yes_no: tuple[str, str]  # (no, yes): indexed by a bool
    roles: dict[str, str]  # roster role → as shown (zh-CN: the role itself)
    poll_states: dict[str, str]
    problem_states: dict[str, str]
    actions: dict[str, str]
    sources: dict[str, str]
    not_counted: dict[str, str]  # a poll state that does not count → the outcome that says so
    outcome_problem: str  # str.format patterns: {rating} {problem}
    outcome_callback: str  # {rating}
    outcome_open: str
    system: str  # the actor of a move nobody made
    meeting: str  # history line: `会议 2026-11-16`
    responsible: str
    due: str


@functools.cache
def words(locale: str) -> Words:
    locale = locale_or_default(locale)
    en = locale == "en"  # the survey's own label tables: (zh-CN, en) pairs and the English role names
    polls = {code: _word(f"poll_{code}", locale) for code in POLL_STATES}
    return Words(
        yes_no=(_word("no", locale), _word("yes", locale)),
        roles=ROLE_LABELS_EN if en else {},
        poll_states=polls,
        problem_states={code: pair[1 if en else 0] for code, pair in STATE_LABELS.items()},
        actions={code: _word(f"action_{code}", locale) for code in PROBLEM_ACTIONS},
        sources={code: _word(f"source_{code}", locale) for code in SOURCES},
        not_counted={code: _word("outcome_not_counted", locale, state=polls[code]) for code in _NOT_COUNTED},
        outcome_problem=_word("outcome_problem", locale, rating="{rating}", problem="{problem}"),
        outcome_callback=_word("outcome_callback", locale, rating="{rating}"),
        outcome_open=_word("outcome_open", locale),
        system=_word("system", locale),
        meeting=_word("history_meeting", locale),
        responsible=_word("history_responsible", locale),
        due=_word("history_due", locale),
    )


def _named(labels: dict[str, str], code: str | None) -> str | None:
    """A code's label; a code the table does not know shows as itself."""
    return None if code is None else labels.get(code, code)


def _local(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    # whole seconds: str() of it is then what the CSV shows, "2026-11-02 10:31:05"
    return None if moment is None else moment.astimezone(tz).replace(tzinfo=None, microsecond=0)


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


# --- visits ------------------------------------------------------------------------------------------------


def _head_columns(locale: str, tz: ZoneInfo) -> list[tuple[str, Callable[[q.VisitHead], Any]]]:
    roles = words(locale).roles
    columns: list[tuple[str, Callable[[q.VisitHead], Any]]] = [
        ("code", lambda h: h.code),
        ("county", lambda h: h.county),
        ("township", lambda h: h.township),
        ("village", lambda h: h.village),
        ("hamlet", lambda h: h.hamlet),
        ("head_name", lambda h: h.head_name),
        ("visit_id", lambda h: h.id),
        ("cadre_code", lambda h: h.cadre_code),
        ("cadre_name", lambda h: h.cadre_name),
        ("cadre_role", lambda h: roles.get(h.cadre_role, h.cadre_role)),
        ("channel", lambda h: h.channel),
        ("script_version", lambda h: h.script_version),
        ("started", lambda h: _local(h.started_at, tz)),
        ("submitted", lambda h: _local(h.submitted_at, tz)),
        ("lat", lambda h: h.lat),
        ("lon", lambda h: h.lon),
    ]
    return list(zip(_headers((key for key, _ in columns), locale), [get for _, get in columns], strict=True))


def value_code(question: Question | None, value: Any) -> Any:
    """An answer as stored: the choice's value, 1/0 for yes/no, the number, the text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return _number(value)
    return value


def value_label(question: Question | None, value: Any, locale: str) -> Any:
    """An answer as the cadre saw it: the choice's label, 是/否, the number, the text."""
    if isinstance(value, bool) or (question is not None and question.type in _YES_NO and value in (0, 1)):
        return words(locale).yes_no[bool(value)]
    if isinstance(value, float):
        return _number(value)
    if question is not None and question.type in CHOICE_TYPES:
        choice = next((c for c in question.choices if c.value == value), None)
        return value if choice is None else pick(choice.label, locale)
    return value


_YES_NO = ("yes_no", "confirm")


@dataclass(frozen=True)
class _Cell:
    """One answer column of the wide layout: which (field, item) it shows, and how (None: as stored)."""

    key: tuple[str, int]
    render: Callable[[Any], Any] | None
    several: bool


def _renderer(question: Question, mode: str, locale: str) -> Callable[[Any], Any] | None:
    """A cheap function per column (this runs for every cell of 200,000 rows), or None for the value itself."""
    if question.type in _YES_NO:
        no, yes = words(locale).yes_no
        table = {True: 1, False: 0} if mode == "code" else {True: yes, False: no}
        return table.get
    if question.type in CHOICE_TYPES and mode == "label":
        labels = {c.value: pick(c.label, locale) for c in question.choices}
        return lambda value: labels.get(value, value)
    if question.type == "decimal":
        return lambda value: _number(value) if isinstance(value, float) else value
    return None


def _coded(question: Question) -> bool:
    """Whether a question's code and label differ (a choice or yes/no), so `--choices both` gives both."""
    return question.type in CHOICE_TYPES or question.type in ("yes_no", "confirm")


def _question_cells(
    question: Question, item: int, header: str, choices: str, locale: str
) -> list[tuple[str, _Cell]]:
    several = question.type == "several_of"
    mode = "label" if choices == "both" else choices
    cells = [(header, _Cell((question.name, item), _renderer(question, mode, locale), several))]
    if choices == "both" and _coded(question):
        code_header = _word("code_header", locale, header=header.replace(" ", "_code ", 1))
        cells.append(
            (code_header, _Cell((question.name, item), _renderer(question, "code", locale), several))
        )
    return cells


def answer_cells(
    script: Script, repeats: dict[str, int], choices: str, locale: str
) -> list[tuple[str, _Cell]]:
    """The wide layout's answer columns in script order: `name 题目`; a repeat group's children numbered per
    item (`problems_1_category 问题类别（第1项）`), as many items as the longest answer in the export."""
    cells: list[tuple[str, _Cell]] = []
    for question in script.questions():
        if question.type != "repeat":
            header = f"{question.name} {pick(question.label, locale)}"
            cells += _question_cells(question, -1, header, choices, locale)
            continue
        for k in range(repeats.get(question.name, 0)):
            for child in question.questions:
                header = f"{question.name}_{k + 1}_{child.name} {pick(child.label, locale)}"
                header = _word("item_header", locale, header=header, n=k + 1)
                cells += _question_cells(child, k, header, choices, locale)
    return cells


def _cells_of(values: q.Answers, cells: list[_Cell]) -> list[Any]:
    row: list[Any] = []
    for cell in cells:
        found = values.get(cell.key)
        if found is None:
            row.append(None)
        elif cell.several:
            render = cell.render
            row.append(SEPARATOR.join(str(v if render is None else render(v)) for v in found))
        else:
            row.append(found[0] if cell.render is None else cell.render(found[0]))
    return row


def _others(values: q.Answers, known: set[str]) -> str | None:
    """Answers to questions the current script does not have (a visit under an older script): name=value."""
    extra = [
        f"{field}{'' if item < 0 else f'[{item + 1}]'}={SEPARATOR.join(str(value_code(None, v)) for v in vs)}"
        for (field, item), vs in values.items()
        if field not in known
    ]
    return "; ".join(extra) or None


def _script_fields(script: Script) -> set[str]:
    names = set()
    for question in script.questions():
        names.add(question.name)
        names.update(child.name for child in question.questions)
    return names


def visits_wide(
    conn: Any, script: Script, scope: q.Scope, cells: list[tuple[str, _Cell]], locale: str, tz: ZoneInfo
) -> Iterator[list[Any]]:
    """One row per submitted visit, the answers in `cells` (the columns `wide_headers` names)."""
    heads = [get for _, get in _head_columns(locale, tz)]
    known = _script_fields(script)
    plain = [cell for _, cell in cells]
    for head, values in q.submitted_visits(conn, scope):
        row = [get(head) for get in heads]
        row += _cells_of(values, plain)
        row.append(_others(values, known) if not known.issuperset(f for f, _ in values) else None)
        yield row


def repeat_counts(conn: Any, script: Script, scope: q.Scope) -> dict[str, int]:
    return {
        question.name: q.repeat_items(conn, scope, [c.name for c in question.questions])
        for question in script.questions()
        if question.type == "repeat"
    }


def wide_headers(cells: list[tuple[str, _Cell]], locale: str, tz: ZoneInfo) -> list[str]:
    heads = [header for header, _ in _head_columns(locale, tz)]
    return [*heads, *(header for header, _ in cells), _word("h_other", locale)]


def long_headers(locale: str) -> list[str]:
    return _headers(("code", "visit_id", "question", "label", "item", "value_code", "value"), locale)


def _question_index(script: Script) -> dict[str, tuple[int, int, Question]]:
    """field → (its top-level position, its position in its repeat group, the question)."""
    index: dict[str, tuple[int, int, Question]] = {}
    for position, question in enumerate(script.questions()):
        index[question.name] = (position, -1, question)
        for child_position, child in enumerate(question.questions):
            index[child.name] = (position, child_position, child)
    return index


class Tail:
    """What the long rows of one answer value share whichever visit gave it: (question, label, item, value
    code, value), its place in script order, and each writer's encoding of it, made the first time it is
    written. A county's answers repeat (~37 rows a visit, mostly the same choices), so each is made once."""

    __slots__ = ("csv", "rank", "values", "xml")

    def __init__(self, rank: int, values: tuple[Any, ...]) -> None:
        self.rank, self.values = rank, values
        self.csv: str | None = None
        self.xml: str | None = None


# A group: a visit's (户编号, 走访编号) and its answers' tails in script order; a long row is the two joined.
Group = tuple[tuple[Any, ...], list[Tail]]
_RANK = operator.attrgetter("rank")
_TAILS_MAX = 100_000  # distinct answer values kept (free text need not all stay)


def visits_long_groups(conn: Any, script: Script, scope: q.Scope, locale: str) -> Iterator[Group]:
    """The long layout by visit: one tail per answer value (a several-of answer: one per option chosen)."""
    index = _question_index(script)
    unknown = (len(index), 0, None)  # a question the script does not have: after the others, by item, name
    labels = {field: pick(question.label, locale) for field, (_, _, question) in index.items()}
    tails: dict[tuple[str, int, type, Any], Tail] = {}  # the type too: True == 1, and a yes/no shows unlike 1

    def tail(field: str, item: int, value: Any) -> Tail:
        if len(tails) >= _TAILS_MAX:
            tails.clear()
        position, child, question = index.get(field, unknown)
        # script order (position, item, child) as one int, cheap to sort by (an item below 2**20 - 1, a group of
        # fewer than 4,095 questions); the answers come by (field, item, seq) and the sort is stable, so the
        # options of an answer keep their order, and unknown fields of one item their names' order
        rank = (((position << 20) + item + 1) << 12) + child + 1
        values = (field, labels.get(field), None if item < 0 else item + 1)
        values += (value_code(question, value), value_label(question, value, locale))
        made = tails[field, item, value.__class__, value] = Tail(rank, values)
        return made

    known = tails.get
    for head, rows in q.submitted_answer_rows(conn, scope):
        if rows:
            group = [known((f, i, v.__class__, v)) or tail(f, i, v) for _, f, i, v in rows]
            group.sort(key=_RANK)
            yield (head.code, head.id), group


def visits_long(conn: Any, script: Script, scope: q.Scope, locale: str) -> Iterator[list[Any]]:
    """One row per answer value, by visit, in script order: the groups' rows."""
    for head, tails in visits_long_groups(conn, script, scope, locale):
        for t in tails:
            yield [*head, *t.values]


def visits_export(
    conn: Any,
    script: Script,
    scope: q.Scope,
    layout: str,
    choices: str,
    locale: str,
    tz: ZoneInfo,
    label: str,
) -> Export:
    """The visits export, its header read now (the repeat groups' widths come from the data)."""
    if layout == "long":
        sheet = Sheet(
            _word("sheet_answers", locale),
            long_headers(locale),
            lambda: visits_long(conn, script, scope, locale),
            lambda: visits_long_groups(conn, script, scope, locale),
        )
        return Export(f"visits-long-{label}", [sheet])
    cells = answer_cells(script, repeat_counts(conn, script, scope), choices, locale)
    rows = lambda: visits_wide(conn, script, scope, cells, locale, tz)  # noqa: E731
    sheet = Sheet(_word("sheet_visits", locale), wide_headers(cells, locale, tz), rows)
    return Export(f"visits-{label}", [sheet])


# --- polls -------------------------------------------------------------------------------------------------


def poll_outcome(poll: q.PollRow, w: Words) -> str:
    """What the poll came to, in a few words."""
    if poll.state == "answered" and poll.rating is not None:
        if poll.problem_id is not None:
            return w.outcome_problem.format(rating=poll.rating, problem=poll.problem_id)
        if poll.callback:
            return w.outcome_callback.format(rating=poll.rating)
        return poll.rating
    return w.not_counted.get(poll.state) or w.outcome_open


POLL_COLUMNS = (
    "code",
    "county",
    "township",
    "village",
    "hamlet",
    "head_name",
    "poll_id",
    "phone",
    "period",
    "state",
    "state_code",
    "rating",
    "reason",
    "comment",
    "clarified",
    "callback",
    "counted",
    "created",
    "sent",
    "reminded",
    "clarified_at",
    "asked_reason_at",
    "poll_closed",
    "rated_visit",
    "problem_id",
    "problem_state",
    "outcome",
)


def poll_headers(locale: str) -> list[str]:
    return _headers(POLL_COLUMNS, locale)


def poll_rows(conn: Any, scope: q.Scope, locale: str, tz: ZoneInfo) -> Iterator[list[Any]]:
    w = words(locale)
    yes_no, states, problem_states = w.yes_no, w.poll_states, w.problem_states
    for p in q.polls(conn, scope):
        counted = p.state == "answered" and p.rating is not None
        yield [
            p.code,
            p.county,
            p.township,
            p.village,
            p.hamlet,
            p.head_name,
            p.id,
            p.phone,
            p.period,
            _named(states, p.state),
            p.state,
            p.rating,
            p.reason,
            p.comment,
            yes_no[bool(p.clarified)],
            yes_no[bool(p.callback)],
            yes_no[counted],
            _local(p.created_at, tz),
            _local(p.asked_at, tz),
            _local(p.reminded_at, tz),
            _local(p.clarified_at, tz),
            _local(p.asked_reason_at, tz),
            _local(p.closed_at, tz),
            p.visit_id,
            p.problem_id,
            _named(problem_states, p.problem_status),
            poll_outcome(p, w),
        ]


def polls_export(conn: Any, scope: q.Scope, locale: str, tz: ZoneInfo, label: str) -> Export:
    sheet = Sheet(
        _word("sheet_polls", locale), poll_headers(locale), lambda: poll_rows(conn, scope, locale, tz)
    )
    return Export(f"polls-{label}", [sheet])


# --- problems ----------------------------------------------------------------------------------------------


def history_line(event: q.EventRow, w: Words, tz: ZoneInfo) -> str:
    """`2026-11-16 09:30 会议决定 待研究→办理中（GB001 张三）：说明；会议 2026-11-16；责任人 …；期限 …`

    The punctuation is the same in both locales (the column is read by the county's staff as it is)."""
    at, states = _local(event.at, tz), w.problem_states
    line = f"{at:%Y-%m-%d %H:%M} {_named(w.actions, event.action)} "
    line += f"{_named(states, event.from_state)}→{_named(states, event.to_state)}"
    line += f"（{event.actor or w.system}）"
    extras = [event.note or ""]
    if event.meeting_on is not None:
        extras.append(f"{w.meeting} {event.meeting_on}")
    if event.responsible is not None:
        extras.append(f"{w.responsible} {event.responsible}")
    if event.due_on is not None:
        extras.append(f"{w.due} {event.due_on}")
    if any(extras):
        line += "：" + "；".join(e for e in extras if e)
    return line


PROBLEM_COLUMNS = (
    "problem_id",
    "code",
    "county",
    "township",
    "village",
    "hamlet",
    "head_name",
    "source",
    "visit_id",
    "raised_by",
    "category",
    "description",
    "resolved_on_site",
    "resolution",
    "state",
    "state_code",
    "responsible",
    "due",
    "meeting",
    "raised",
    "escalated",
    "decided",
    "closed",
    "overdue_on",
    "merged_into",
    "history",
)


def problem_headers(locale: str) -> list[str]:
    return _headers(PROBLEM_COLUMNS, locale)


def problem_rows(conn: Any, scope: q.Scope, locale: str, tz: ZoneInfo) -> Iterator[list[Any]]:
    w = words(locale)
    for p, history in q.problems(conn, scope):
        yield [
            p.id,
            p.code,
            p.county,
            p.township,
            p.village,
            p.hamlet,
            p.head_name,
            _named(w.sources, p.source),
            p.visit_id,
            p.raised_by,
            p.category,
            p.description,
            w.yes_no[bool(p.resolved_on_site)],
            p.resolution,
            _named(w.problem_states, p.status),
            p.status,
            p.responsible,
            p.due_on,
            p.meeting_on,
            _local(p.created_at, tz),
            _local(p.escalated_at, tz),
            _local(p.decided_at, tz),
            _local(p.closed_at, tz),
            p.overdue_on,
            p.merged_into_id,
            "\n".join(history_line(e, w, tz) for e in history) or None,
        ]


EVENT_COLUMNS = (
    "problem_id",
    "code",
    "at",
    "actor",
    "action",
    "from_state",
    "to_state",
    "note",
    "meeting",
    "responsible",
    "due",
)


def event_headers(locale: str) -> list[str]:
    return _headers(EVENT_COLUMNS, locale)


def event_rows(conn: Any, scope: q.Scope, locale: str, tz: ZoneInfo) -> Iterator[list[Any]]:
    w = words(locale)
    actions, states = w.actions, w.problem_states
    for e in q.problem_events(conn, scope):
        yield [
            e.problem_id,
            e.code,
            _local(e.at, tz),
            e.actor or w.system,
            _named(actions, e.action),
            _named(states, e.from_state),
            _named(states, e.to_state),
            e.note,
            e.meeting_on,
            e.responsible,
            e.due_on,
        ]


def problems_export(conn: Any, scope: q.Scope, locale: str, tz: ZoneInfo) -> Export:
    """Each problem with its history in one column (a line a move); XLSX also has the moves as a sheet."""
    problems = Sheet(
        _word("sheet_problems", locale),
        problem_headers(locale),
        lambda: problem_rows(conn, scope, locale, tz),
    )
    events = Sheet(
        _word("sheet_history", locale), event_headers(locale), lambda: event_rows(conn, scope, locale, tz)
    )
    return Export("problems", [problems, events])


# --- CSV ---------------------------------------------------------------------------------------------------

# text a spreadsheet would run as a formula (a villager's "=…") gets a leading quote, as in bot.reports.output
_FORMULA_STARTS = frozenset(("=", "+", "-", "@", "\t", "\r"))


def _csv_row(row: Sequence[Any]) -> list[Any]:
    """None is written empty, numbers, dates and whole-second times by str(): only text needs a look."""
    return ["'" + v if v.__class__ is str and v[:1] in _FORMULA_STARTS else v for v in row]


class _Line:
    """A csv.writer's stream keeping the line it was given (the writer writes a row in one call)."""

    text = ""

    def write(self, text: str) -> None:
        self.text = text


def write_csv(export: Export, out: IO[bytes]) -> int:
    """The first sheet as UTF-8 CSV with a byte-order mark and one header row; the rows written."""
    sheet = export.sheets[0]
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    try:
        text.write("\ufeff")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(sheet.headers)
        if sheet.groups is not None:
            count = _csv_groups(sheet.groups(), text)
        else:
            count = 0
            for rows in _chunks(sheet.rows()):
                writer.writerows([_csv_row(row) for row in rows])
                count += len(rows)
        text.flush()
    finally:
        text.detach()  # the caller's stream stays open
    export.rows = count
    return count


def _chunks(rows: Iterable[Sequence[Any]]) -> Iterator[list[Sequence[Any]]]:
    """Rows 256 at a time (itertools.batched is Python 3.12)."""
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, 256)):
        yield chunk


def _csv_groups(groups: Iterable[Group], text: IO[str]) -> int:
    """Grouped rows: a visit's head encoded once, each tail once for the whole export (csv.writer encodes a
    row field by field, so the joined pieces are the bytes it would write for the whole row)."""
    line = _Line()
    writer = csv.writer(line, lineterminator="\r\n")

    def encoded(values: Sequence[Any]) -> str:
        writer.writerow(_csv_row(values))
        return line.text

    count, chunk = 0, []
    for head, tails in groups:
        prefix = encoded(head)[:-2] + ","  # without its line end
        try:
            chunk.append(prefix + prefix.join([t.csv for t in tails]))  # type: ignore[misc]
        except TypeError:  # a tail not written yet
            for t in tails:
                if t.csv is None:
                    t.csv = encoded(t.values)
            chunk.append(prefix + prefix.join([t.csv for t in tails]))  # type: ignore[misc]
        count += len(tails)
        if len(chunk) >= 256:
            text.write("".join(chunk))
            chunk = []
    text.write("".join(chunk))
    return count


# --- XLSX --------------------------------------------------------------------------------------------------

XLSX_MAX_ROWS = 1_048_576  # a sheet's rows, the header's included; more continue on a sheet "<title> (2)"
XLSX_MAX_TEXT = 32_767
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN}"><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts><fonts count="2"><font><sz val="11"/>'
    '<name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2">'
    '<fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)
# characters XML 1.0 cannot carry (a pasted SMS may hold control characters): dropped
_NOT_XML = {c: None for c in (*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF)}
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", **_NOT_XML})
_EPOCH = datetime(1899, 12, 30)


def _text_cell(text: str, style: str = "") -> str:
    text = text[:XLSX_MAX_TEXT].translate(_ESCAPES)
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() or "\n" in text else ""
    return f'<c t="inlineStr"{style}><is><t{space}>{text}</t></is></c>'


# An export repeats its cells (in the long layout each 户编号, label and choice ~37 times): a text cell is
# encoded once and kept. A plain dict emptied when full: a miss (most cells of the wide layout are unique)
# must cost next to nothing, which an LRU's bookkeeping does not.
_TEXT_CELLS: dict[str, str] = {}
_TEXT_CELLS_MAX = 1 << 16


def _str_cell(value: str) -> str:
    cell = _TEXT_CELLS.get(value)
    if cell is None:
        cell = _text_cell(value)
        if len(value) < 256:  # long text seldom repeats
            if len(_TEXT_CELLS) >= _TEXT_CELLS_MAX:
                _TEXT_CELLS.clear()
            _TEXT_CELLS[value] = cell
    return cell


def _number_cell(value: int | float) -> str:
    return f"<c><v>{value!r}</v></c>"


def _other_cell(value: Any) -> str:
    if isinstance(value, datetime):
        return f'<c s="2"><v>{(value - _EPOCH).total_seconds() / 86400:.8f}</v></c>'
    if isinstance(value, date):
        return f'<c s="3"><v>{(value - _EPOCH.date()).days}</v></c>'
    return _text_cell(str(value))


# a cell's encoder by its value's exact type (a dict lookup: this runs for every cell of millions of rows)
_CELL_OF: dict[type, Callable[[Any], str]] = {
    str: _str_cell,
    int: _number_cell,
    float: _number_cell,
    type(None): lambda _: "<c/>",
    bool: lambda value: f'<c t="b"><v>{int(value)}</v></c>',
    datetime: _other_cell,
    date: _other_cell,
}


def _xlsx_cells(row: Sequence[Any]) -> str:
    cell_of, other = _CELL_OF.get, _other_cell
    return "".join([cell_of(type(v), other)(v) for v in row])


def _xlsx_bodies(sheet: Sheet) -> Iterator[str]:
    """Each row's cells as XML; grouped rows: a visit's head encoded once, each tail once for the export."""
    if sheet.groups is None:
        yield from map(_xlsx_cells, sheet.rows())
        return
    for head, tails in sheet.groups():
        start = _xlsx_cells(head)
        for t in tails:
            xml = t.xml
            if xml is None:
                xml = t.xml = _xlsx_cells(t.values)
            yield start + xml


def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _sheet_start(headers: list[str]) -> str:
    widths = "".join(
        f'<col min="{i}" max="{i}" width="{min(40, max(8, _display_width(h) + 2))}" customWidth="1"/>'
        for i, h in enumerate(headers, start=1)
    )
    header = "".join(_text_cell(h, ' s="1"') for h in headers)
    return (
        f'{_XML}<worksheet xmlns="{_MAIN}"><sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
        f'<cols>{widths}</cols><sheetData><row r="1">{header}</row>'
    )


_SHEET_END = "</sheetData></worksheet>"


def _sheet_name(title: str, taken: list[str]) -> str:
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)[:31] or "sheet"
    name, n = cleaned, 2
    while name in taken:
        name, n = f"{cleaned[:26]} ({n})", n + 1
    return name


class _Book:
    """Sheets written one after another into the zip, the workbook's index last (it names them all)."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self.names: list[str] = []
        self.pending: str | None = None  # the first row of the next sheet, when one is full

    def sheet(self, title: str, headers: list[str], rows: Iterator[str]) -> tuple[int, bool]:
        """Write one sheet (at most XLSX_MAX_ROWS rows, each its cells' XML); the rows written, and whether
        `rows` has more."""
        self.names.append(_sheet_name(title, self.names))
        entry = f"xl/worksheets/sheet{len(self.names)}.xml"
        count, chunk, limit = 0, [_sheet_start(headers)], XLSX_MAX_ROWS - 1
        with self.zip.open(entry, "w", force_zip64=True) as out:
            for row in rows:
                chunk.append(f'<row r="{count + 2}">{row}</row>')
                count += 1
                if len(chunk) >= 512:
                    out.write("".join(chunk).encode("utf-8"))
                    chunk = []
                if count >= limit:
                    break
            chunk.append(_SHEET_END)
            out.write("".join(chunk).encode("utf-8"))
        if count < limit:
            return count, False
        self.pending = next(rows, None)  # rows are str, never None
        return count, self.pending is not None

    def close(self) -> None:
        sheets = "".join(
            f'<sheet name="{_text_escape(n)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, n in enumerate(self.names, 1)
        )
        n = len(self.names)
        self.zip.writestr(
            "xl/workbook.xml",
            f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{sheets}</sheets></workbook>',
        )
        links = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, n + 1)
        )
        links += f'<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
        self.zip.writestr(
            "xl/_rels/workbook.xml.rels", f'{_XML}<Relationships xmlns="{_PKG}">{links}</Relationships>'
        )
        self.zip.writestr("xl/styles.xml", _STYLES)
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT}.worksheet+xml"/>'
            for i in range(1, n + 1)
        )
        self.zip.writestr(
            "[Content_Types].xml",
            f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>{overrides}</Types>',
        )
        self.zip.writestr(
            "_rels/.rels",
            f'{_XML}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        self.zip.close()


def _text_escape(text: str) -> str:
    return text.translate(_ESCAPES).replace('"', "&quot;")


def write_xlsx(export: Export, path: Path) -> int:
    """Every sheet of the export, headers bold and frozen, times as spreadsheet dates; the first sheet's rows."""
    book = _Book(path)
    try:
        for index, sheet in enumerate(export.sheets):
            rows, more, written = _xlsx_bodies(sheet), True, 0
            while more:
                count, more = book.sheet(sheet.title, sheet.headers, rows)
                written += count
                if more:
                    rows = itertools.chain([book.pending], rows)
            if index == 0:
                export.rows = written
    finally:
        book.close()
    return export.rows
