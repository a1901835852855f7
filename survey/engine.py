"""The interview engine: walks a Script for one household, one answer at a time. Pure: it sends nothing.

`start()` makes a session (a plain JSON-able dict) and `answer()` feeds it one input; both return the new
session and a `Reply` saying what to show next. The caller saves the session after every answer, so a visit
resumes anywhere: `current()` re-shows where it stands.

The next question is never stored: it is the first *relevant* key, in script order, that is not yet in the
session's `visited` list. Back pops `visited`; changing an answer from the summary removes its key from
`visited`; answers that stop being relevant are pruned. Keys are `members` for a plain question,
`problems#2` for "add item 3 to the repeat group?" and `problems.2.category` for a question inside item 3.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from survey.answers import (
    PARSERS,
    AnswerError,
    is_blank,
    normalize,
    parse_choice,
    parse_choices,
    parse_yes_no,
)
from survey.script import CAPABILITY_TYPES, NUMERIC_TYPES, Question, Script

SESSION_FORMAT = 1

BACK = frozenset({"返回", "上一题", "上一步", "back"})
SKIP = frozenset({"跳过", "skip"})
CANCEL = frozenset({"取消", "取消走访", "cancel"})
SUBMIT = frozenset({"提交", "确认提交", "submit"})
CHANGE = frozenset({"修改", "change"})
CONFIRM_WORDS = frozenset({"已讲", "已宣讲", "已讲解", "讲了", "确认", "完成", "done", "ok"})
SUMMARY_ACTIONS = ("submit", "change", "cancel")  # numbered after the answer lines on the summary
_CHANGE_LINE = re.compile(r"^(?:修改|change)\s*(\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True)
class Photo:
    file_id: str


Input = str | Location | Photo


@dataclass(frozen=True)
class Ask:
    """Ask one question. `adding` marks the "add an item to the repeat group?" prompt."""

    key: str
    question: Question
    item: int | None = None
    adding: bool = False
    current: Any = None
    number: int = 0  # the question's place, 1…total (see _progress)
    total: int = 0

    @property
    def skippable(self) -> bool:
        return not self.question.required and not self.adding


@dataclass(frozen=True)
class SummaryLine:
    number: int
    key: str
    section: str
    question: Question
    item: int | None
    value: Any


@dataclass(frozen=True)
class Summary:
    """The answers numbered 1…N; the actions follow them (N+1 submit, N+2 change, N+3 cancel), so a number
    typed to change an answer can never submit the visit by accident."""

    lines: tuple[SummaryLine, ...]
    choosing_line: bool = False  # waiting for the number of the answer to change

    @property
    def actions(self) -> dict[str, int]:
        return {action: len(self.lines) + 1 + i for i, action in enumerate(SUMMARY_ACTIONS)}


@dataclass(frozen=True)
class ConfirmCancel:
    """Cancelling throws a visit away, so it is asked once more."""


@dataclass(frozen=True)
class Submitted:
    answers: dict[str, Any]


@dataclass(frozen=True)
class Cancelled:
    pass


Step = Ask | Summary | ConfirmCancel | Submitted | Cancelled


@dataclass(frozen=True)
class Reply:
    step: Step
    error: AnswerError | None = None
    notice: str | None = None  # "stale": a button of an earlier question was pressed


class SessionError(ValueError):
    """A session that does not belong to this script, or that is already finished."""


# --- public API --------------------------------------------------------------------------------------------


def start(
    script: Script, household: str, *, locale: str = "zh_CN", capabilities: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], Reply]:
    """A new session for `household`. `capabilities` lists what the channel can collect: location, photo."""
    session: dict[str, Any] = {
        "format": SESSION_FORMAT,
        "script_id": script.id,
        "script_version": script.version,
        "household": household,
        "locale": locale,
        "capabilities": sorted(capabilities & set(CAPABILITY_TYPES)),
        "answers": {},
        "visited": [],
        "state": "asking",
    }
    return session, current(script, session)


def current(script: Script, session: dict[str, Any]) -> Reply:
    """What the session is waiting for now (for resuming). A finished visit needs no script: it says so
    under any script (a redelivered update of a visit finished before the county changed its script)."""
    state = session.get("state")
    if state == "submitted":
        return Reply(Submitted(answers=copy.deepcopy(session["answers"])))
    if state == "cancelled":
        return Reply(Cancelled())
    _check(script, session)
    if state == "confirm_cancel":
        return Reply(ConfirmCancel())
    key = _next_key(script, session)
    if key is None:
        return Reply(_summary(script, session, choosing=state == "choose_line"))
    return Reply(_ask(script, session, key))


def answer(
    script: Script, session: dict[str, Any], given: Input, *, for_key: str | None = None
) -> tuple[dict[str, Any], Reply]:
    """Feed one input. Returns a new session (the given one is not changed) and the reply.

    `for_key` is the key a button was made for: a tap on a button of an earlier question changes nothing.
    """
    _check(script, session)
    if session["state"] in ("submitted", "cancelled"):
        raise SessionError(f"the visit is already {session['state']}")
    session = copy.deepcopy(session)
    if for_key is not None and for_key != _waiting_for(script, session):
        return session, _with(current(script, session), notice="stale")
    if session["state"] == "confirm_cancel":
        return session, _confirm_cancel(script, session, given)
    key = _next_key(script, session)
    if key is None:
        return session, _at_summary(script, session, given)
    return session, _at_question(script, session, key, given)


def change(script: Script, session: dict[str, Any], keys: list[str]) -> tuple[dict[str, Any], Reply]:
    """Ask these keys again (their answers stay as the current value until replaced)."""
    _check(script, session)
    session = copy.deepcopy(session)
    session["visited"] = [k for k in session["visited"] if k not in set(keys)]
    session["state"] = "asking"
    return session, current(script, session)


def change_section(script: Script, session: dict[str, Any], section: str) -> tuple[dict[str, Any], Reply]:
    """Ask a section's questions again; a section the script does not have (a button left from before the script
    changed, or forged) changes nothing and shows where the visit is."""
    if section not in {s.name for s in script.sections}:
        _check(script, session)
        return copy.deepcopy(session), _with(current(script, session), notice="stale")
    names = {q.name for q in script.section(section).questions}
    keys = [k for k in _relevant_keys(script, session) if _top_name(k) in names]
    return change(script, session, keys)


def waiting_for(script: Script, session: dict[str, Any]) -> str:
    """The key the session waits on: a question key, or "summary", "confirm_cancel", "submitted"…"""
    _check(script, session)
    return _waiting_for(script, session)


# --- a draft begun under another script or version ----------------------------------------------------------


@dataclass(frozen=True)
class Reconciled:
    """A draft brought under the script in force: the answers that still fit are kept (and not asked again),
    the others dropped and asked anew, with new questions, in the script's order."""

    session: dict[str, Any]
    from_version: str
    kept: tuple[str, ...]  # question names
    dropped: tuple[str, ...]  # names (a repeat item's answer as name[item].child) whose answer no longer fits


def needs_reconcile(script: Script, session: dict[str, Any]) -> bool:
    """Whether an unfinished session was begun under another script or another version of it."""
    if session.get("state") in ("submitted", "cancelled"):
        return False
    return (session.get("script_id"), session.get("script_version")) != (script.id, script.version)


def reconcile(script: Script, session: dict[str, Any]) -> Reconciled:
    """Keep each answer whose question still exists and whose value still fits it (its type, its choices,
    its bounds, its length); drop the rest. Questions skipped before stay skipped unless now required."""
    if session.get("format") != SESSION_FORMAT:
        raise SessionError("this session was made by another format")
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in session["answers"].items():
        question = script._index.get(name)
        fitted = (
            _fitted(question, value, dropped, name, session["answers"]) if question is not None else _MISSING
        )
        if fitted is _MISSING:
            dropped.append(name)
        else:
            kept[name] = fitted
    for name in list(kept):  # a bound may name another answer, itself kept or not
        question = script.question(name)
        if question.type in NUMERIC_TYPES:
            try:
                _check_bounds(question, kept, kept[name])
            except AnswerError:
                del kept[name]
                dropped.append(name)
    new = copy.deepcopy(session)
    new["answers"] = kept
    before = session["answers"]
    new["visited"] = [k for k in session["visited"] if _still_visited(script, k, kept, before)]
    new["state"] = "asking"
    new["script_id"], new["script_version"] = script.id, script.version
    return Reconciled(new, str(session.get("script_version", "")), tuple(kept), tuple(dropped))


_MISSING = object()


def _fitted(question: Question, value: Any, dropped: list[str], name: str, answers: dict[str, Any]) -> Any:
    """The value if it is still an answer to `question` (a repeat: its items with the children that fit)."""
    if question.type == "repeat":
        if not isinstance(value, list):
            return _MISSING
        items = []
        for k, item in enumerate(value):
            fitted_item: dict[str, Any] = {}
            for child_name, child_value in (item or {}).items():
                child = question.find_child(child_name)
                fitted = (
                    _fitted(child, child_value, dropped, name, answers) if child is not None else _MISSING
                )
                if fitted is not _MISSING and child is not None and child.type in NUMERIC_TYPES:
                    try:  # a bound may name a sibling in the item (kept before it) or a number
                        _check_bounds(child, {**answers, **fitted_item}, fitted)
                    except AnswerError:
                        fitted = _MISSING
                if fitted is _MISSING:
                    dropped.append(f"{name}[{k + 1}].{child_name}")
                else:
                    fitted_item[child_name] = fitted
            items.append(fitted_item)
        return items
    return value if _fits(question, value) else _MISSING


def _fits(question: Question, value: Any) -> bool:
    kind = question.type
    if kind in ("yes_no", "confirm"):
        return isinstance(value, bool)
    if kind in NUMERIC_TYPES:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (kind == "decimal" or isinstance(value, int))
        )
    if kind == "one_of":
        return value in question.choice_values
    if kind == "several_of":
        return isinstance(value, list) and bool(value) and all(v in question.choice_values for v in value)
    if kind == "text":
        return isinstance(value, str) and len(value) <= question.max_length
    if kind == "date":
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
    if kind == "location":
        return isinstance(value, dict) and {"lat", "lon"} <= set(value)
    if kind == "photo":
        return isinstance(value, dict) and "file_id" in value
    return False


def _still_visited(script: Script, key: str, kept: dict[str, Any], before: dict[str, Any]) -> bool:
    """A key stays answered if its question exists and its answer was kept, or it was skipped (no answer
    before) and may still be; a dropped answer is asked again."""
    name, k, child, adding = _split(key)
    question = script._index.get(name)
    if question is None:
        return False
    if adding:
        items = kept.get(name)
        return question.type == "repeat" and isinstance(items, list) and k is not None and k <= len(items)
    if child is None:
        return name in kept or (name not in before and not question.required)
    items, old_items = kept.get(name), before.get(name)
    found = question.find_child(child)
    if found is None or not isinstance(items, list) or k is None or k >= len(items):
        return False
    skipped = not (isinstance(old_items, list) and k < len(old_items) and child in (old_items[k] or {}))
    return child in items[k] or (skipped and not found.required)


# --- the walk ----------------------------------------------------------------------------------------------


def _check(script: Script, session: dict[str, Any]) -> None:
    if session.get("format") != SESSION_FORMAT or session.get("script_id") != script.id:
        raise SessionError("this session was made by another script or format")


def _waiting_for(script: Script, session: dict[str, Any]) -> str:
    if session["state"] not in ("asking", "summary", "choose_line"):
        return session["state"]
    return _next_key(script, session) or "summary"


def _relevant(question: Question, session: dict[str, Any], context: dict[str, Any]) -> bool:
    if question.type in CAPABILITY_TYPES and question.type not in session["capabilities"]:
        return False
    return question.relevant is None or question.relevant.holds(context)


def _relevant_keys(script: Script, session: dict[str, Any]) -> Iterator[str]:
    answers = session["answers"]
    for question in script.questions():
        if not _relevant(question, session, answers):
            continue
        if question.type != "repeat":
            yield question.name
            continue
        items = answers.get(question.name, [])
        for k in range(len(items) + 1):
            yield f"{question.name}#{k}"
            if k < len(items):
                context = {**answers, **items[k]}
                for child in question.questions:
                    if _relevant(child, session, context):
                        yield f"{question.name}.{k}.{child.name}"


def _next_key(script: Script, session: dict[str, Any]) -> str | None:
    visited = set(session["visited"])
    return next((k for k in _relevant_keys(script, session) if k not in visited), None)


def _top_name(key: str) -> str:
    return re.split(r"[#.]", key, maxsplit=1)[0]


def _split(key: str) -> tuple[str, int | None, str | None, bool]:
    """`problems.2.category` → ("problems", 2, "category", False); `problems#2` → ("problems", 2, None, True)."""
    if "#" in key:
        name, k = key.split("#")
        return name, int(k), None, True
    if "." in key:
        name, k, child = key.split(".")
        return name, int(k), child, False
    return key, None, None, False


def _question_for(script: Script, key: str) -> Question:
    name, _, child, _ = _split(key)
    question = script.question(name)
    return question.child(child) if child else question


def _get(session: dict[str, Any], key: str) -> Any:
    name, k, child, adding = _split(key)
    answers = session["answers"]
    if adding:
        return None
    if child is None:
        return answers.get(name)
    return answers[name][k].get(child)


def _set(session: dict[str, Any], key: str, value: Any) -> None:
    name, k, child, _ = _split(key)
    if child is None:
        session["answers"][name] = value
    else:
        session["answers"][name][k][child] = value


def _clear(session: dict[str, Any], key: str) -> None:
    name, k, child, _ = _split(key)
    if child is None:
        session["answers"].pop(name, None)
    else:
        session["answers"][name][k].pop(child, None)


def _ask(script: Script, session: dict[str, Any], key: str) -> Ask:
    _, k, _, adding = _split(key)
    number, total = _progress(script, session, key)
    return Ask(
        key=key,
        question=_question_for(script, key),
        item=k,
        adding=adding,
        current=_get(session, key),
        number=number,
        total=total,
    )


def _progress(script: Script, session: dict[str, Any], key: str) -> tuple[int, int]:
    """ "Question x of N": N is the script's questions this channel can ask (a location or photo question is
    left out where the channel cannot send one), x the question's place among them. N counts the conditional
    questions whatever the answers, so it stays the same all visit long (counting only the relevant ones
    would make it jump as answers come in); x skips past a question that does not apply. A repeat group (the
    problems of 一化解) is one question: its every prompt shows the group's place."""
    names = [
        q.name
        for q in script.questions()
        if q.type not in CAPABILITY_TYPES or q.type in session["capabilities"]
    ]
    return names.index(_top_name(key)) + 1, len(names)


def _summary(script: Script, session: dict[str, Any], *, choosing: bool = False) -> Summary:
    lines = []
    visited = set(session["visited"])
    for key in _relevant_keys(script, session):
        value = _get(session, key)
        # skipped optional answers are listed too (as unanswered), so they can still be changed
        if "#" in key or (value is None and key not in visited):
            continue
        question = _question_for(script, key)
        lines.append(SummaryLine(len(lines) + 1, key, question.section, question, _split(key)[1], value))
    return Summary(lines=tuple(lines), choosing_line=choosing)


def _prune(script: Script, session: dict[str, Any]) -> None:
    """Drop answers and visits that are no longer relevant (e.g. `dropout` once `school_children` is 0)."""
    relevant = set(_relevant_keys(script, session))
    session["visited"] = [k for k in session["visited"] if k in relevant]
    answers = session["answers"]
    for question in script.questions():
        if question.type == "repeat" and f"{question.name}#0" not in relevant:
            answers.pop(question.name, None)
        elif question.type == "repeat":
            for k, item in enumerate(answers.get(question.name, [])):
                for child in list(item):
                    if f"{question.name}.{k}.{child}" not in relevant:
                        del item[child]
        elif question.name in answers and question.name not in relevant:
            del answers[question.name]


def _with(reply: Reply, *, error: AnswerError | None = None, notice: str | None = None) -> Reply:
    return Reply(reply.step, error=error or reply.error, notice=notice or reply.notice)


def _command(given: Input) -> str | None:
    if not isinstance(given, str):
        return None
    word = normalize(given).lower().lstrip("/")
    for name, words in (("back", BACK), ("skip", SKIP), ("cancel", CANCEL), ("submit", SUBMIT)):
        if word in words:
            return name
    return None


# --- inputs at a question ----------------------------------------------------------------------------------


def _at_question(script: Script, session: dict[str, Any], key: str, given: Input) -> Reply:
    command = _command(given)
    if command == "back":
        return _back(script, session)
    if command == "cancel":
        session["state"] = "confirm_cancel"
        return Reply(ConfirmCancel())
    ask = _ask(script, session, key)
    if command == "skip" or (isinstance(given, str) and is_blank(given)):
        return _skip(script, session, ask, explicit=command == "skip")
    try:
        value = _parse(script, session, ask, given)
    except AnswerError as exc:
        return Reply(ask, error=exc)
    _record(session, ask, value)
    _recheck_dependents(script, session, ask.key)
    _prune(script, session)
    session["state"] = "asking"
    return current(script, session)


def _skip(script: Script, session: dict[str, Any], ask: Ask, *, explicit: bool) -> Reply:
    if ask.current is not None and not explicit:
        # An empty line while changing an answer keeps the answer it had, if it still holds.
        if ask.question.type in NUMERIC_TYPES:
            try:
                _check_bounds(ask.question, session["answers"], ask.current)
            except AnswerError as exc:
                return Reply(ask, error=exc)
        session["visited"].append(ask.key)
        return current(script, session)
    if not ask.skippable:
        return Reply(ask, error=AnswerError("required" if explicit else "empty"))
    _clear(session, ask.key)
    session["visited"].append(ask.key)
    return current(script, session)


def _back(script: Script, session: dict[str, Any]) -> Reply:
    if not session["visited"]:
        return _with(current(script, session), error=AnswerError("at_start"))
    session["visited"].pop()
    session["state"] = "asking"
    return current(script, session)


def _recheck_dependents(script: Script, session: dict[str, Any], key: str) -> None:
    """Ask again any answer whose bound names this key and no longer holds (labour_members ≤ members)."""
    answers = session["answers"]
    for question in script.questions():
        if question.type not in NUMERIC_TYPES or key not in (question.min, question.max):
            continue
        if question.name in session["visited"] and answers.get(question.name) is not None:
            try:
                _check_bounds(question, answers, answers[question.name])
            except AnswerError:
                session["visited"].remove(question.name)


def _record(session: dict[str, Any], ask: Ask, value: Any) -> None:
    if ask.adding:
        name, k, _, _ = _split(ask.key)
        items = session["answers"].setdefault(name, [])
        if value and k == len(items):
            items.append({})
        elif not value:
            del items[k:]
    else:
        _set(session, ask.key, value)
    session["visited"].append(ask.key)


def _parse(script: Script, session: dict[str, Any], ask: Ask, given: Input) -> Any:
    question = ask.question
    if ask.adding:
        return parse_yes_no(_text(given))
    if question.type == "location":
        if isinstance(given, Location):
            return {"lat": given.lat, "lon": given.lon}
        lat, lon = PARSERS["location"](_text(given))
        return {"lat": lat, "lon": lon}
    if question.type == "photo":
        if isinstance(given, Photo):
            return {"file_id": given.file_id}
        raise AnswerError("photo_expected")
    text = _text(given)
    if question.type == "confirm":
        return _confirm(text)
    if question.type == "one_of":
        return parse_choice(text, question.choice_values, [c.texts() for c in question.choices])
    if question.type == "several_of":
        return _several(question, text)
    if question.type == "text":
        return PARSERS["text"](text, question.max_length)
    value = PARSERS[question.type](text)
    if question.type in NUMERIC_TYPES:
        _check_bounds(question, session["answers"], value)
        return int(value) if question.type == "integer" else float(value)
    return value


def _text(given: Input) -> str:
    if not isinstance(given, str):
        raise AnswerError("text_expected")
    return given


def _confirm(text: str) -> bool:
    if normalize(text).lower() in CONFIRM_WORDS:
        return True
    try:
        if parse_yes_no(text):
            return True
    except AnswerError:
        pass
    raise AnswerError("confirm_needed")


def _several(question: Question, text: str) -> list[str]:
    values = parse_choices(text, question.choice_values, [c.texts() for c in question.choices])
    exclusive = [v for v in values if question.choice(v).exclusive]
    if exclusive and len(values) > 1:
        raise AnswerError("exclusive_choice", choice=exclusive[0])
    return values


def _check_bounds(question: Question, answers: dict[str, Any], value: Any) -> None:
    lo, hi = _bound(question.min, answers), _bound(question.max, answers)
    if lo is not None and value < lo:
        raise AnswerError("too_small", min=lo)
    if hi is not None and value > hi:
        raise AnswerError("too_large", max=hi)


def _bound(bound: float | str | None, answers: dict[str, Any]) -> float | None:
    """A bound is a number, or the name of an earlier answer (e.g. labour_members ≤ members)."""
    if isinstance(bound, str):
        return answers.get(bound)
    return bound


# --- the summary and the end -------------------------------------------------------------------------------


def _at_summary(script: Script, session: dict[str, Any], given: Input) -> Reply:
    text = given if isinstance(given, str) else ""
    word = normalize(text).lower().lstrip("/")
    command = _command(text)
    summary = _summary(script, session)
    actions = summary.actions
    if session["state"] == "choose_line" and command in ("back", "submit", "cancel"):
        session["state"] = "summary"  # leave "which number?" without changing anything
        if command == "back":
            return current(script, session)
    if command == "back":
        return _back(script, session)
    match = _CHANGE_LINE.match(word)
    if match:
        return _change_line(script, session, match.group(1))
    if command == "submit" or word == str(actions["submit"]):
        return _submit(script, session)
    if word in CHANGE or word == str(actions["change"]):
        session["state"] = "choose_line"
        return current(script, session)
    if command == "cancel" or word == str(actions["cancel"]):
        session["state"] = "confirm_cancel"
        return Reply(ConfirmCancel())
    if word.isdecimal() or session["state"] == "choose_line":
        return _change_line(script, session, word)
    return Reply(summary, error=AnswerError("unknown_action", **actions))


def _change_line(script: Script, session: dict[str, Any], which: str) -> Reply:
    summary = _summary(script, session)
    line = next((ln for ln in summary.lines if str(ln.number) == which or ln.key == which), None)
    if line is None:
        session["state"] = "choose_line"
        return Reply(
            _summary(script, session, choosing=True),
            error=AnswerError("no_such_line", count=len(summary.lines)),
        )
    session["visited"].remove(line.key)
    session["state"] = "asking"
    return current(script, session)


def _submit(script: Script, session: dict[str, Any]) -> Reply:
    _prune(script, session)
    session["state"] = "submitted"
    return Reply(Submitted(answers=copy.deepcopy(session["answers"])))


def _confirm_cancel(script: Script, session: dict[str, Any], given: Input) -> Reply:
    try:
        sure = parse_yes_no(_text(given))
    except AnswerError as exc:
        return Reply(ConfirmCancel(), error=exc)
    if sure:
        session["state"] = "cancelled"
        return Reply(Cancelled())
    session["state"] = "asking"
    return current(script, session)
