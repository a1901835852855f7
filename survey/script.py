"""The visit script as data: load a JSON definition, validate it, build an immutable model.

Like XLSForm, a definition goes file → dict → validate → model, and every error names the question it is about.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from survey.conditions import Condition, ConditionError, parse_condition
from survey.facts import (
    BUILTIN_ROLES,
    FACT_LABELS,
    ROLES,
    SAFETY_NET_SUPPORT,
    FactRoles,
    facts_missing,
)

SPEC_VERSIONS = (1,)
DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")

QUESTION_TYPES = (
    "integer",
    "decimal",
    "yes_no",
    "one_of",
    "several_of",
    "text",
    "confirm",
    "location",
    "photo",
    "repeat",
    "date",
)
CHOICE_TYPES = ("one_of", "several_of")
NUMERIC_TYPES = ("integer", "decimal")
# Types a channel may be unable to collect (the console has no camera or GPS); they are optional by nature.
CAPABILITY_TYPES = ("location", "photo")
DEFAULT_TEXT_MAX = 1000
SATISFACTION_VALUES = frozenset({"满意", "基本满意", "不满意"})  # what storage.reports counts as satisfied


class ScriptError(ValueError):
    """A script definition that cannot be used; `errors` lists every problem found, each naming its question."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("脚本无效 / invalid script:\n" + "\n".join(f"- {e}" for e in errors))
        self.errors = errors


Label = Mapping[str, str]


def pick(label: Label, locale: str) -> str:
    """The label in `locale`, falling back to zh-CN (every label has it)."""
    return label.get(locale) or label[DEFAULT_LOCALE]


@dataclass(frozen=True)
class Choice:
    value: str
    label: Label
    aliases: tuple[str, ...] = ()
    exclusive: bool = False  # e.g. 无 ("none") cannot be chosen together with another option

    def texts(self) -> tuple[str, ...]:
        return (*self.label.values(), *self.aliases)


@dataclass(frozen=True)
class Question:
    name: str
    type: str
    label: Label
    section: str
    required: bool = True
    choices: tuple[Choice, ...] = ()
    min: float | str | None = None
    max: float | str | None = None
    max_length: int = DEFAULT_TEXT_MAX
    relevant: Condition | None = None
    hint: Label | None = None
    # said instead of the engine's own reason when a bound (min, max, max_length) refuses an answer
    constraint_message: Label | None = None
    # repeat groups only: the children, and the prompt asking for another item
    questions: tuple[Question, ...] = ()
    again: Label | None = None
    # which derived fact this question feeds (survey.facts.ROLES: "income", "members", "water_safe", …)
    role: str | None = None

    @property
    def choice_values(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.choices)

    def choice(self, value: str) -> Choice:
        return next(c for c in self.choices if c.value == value)

    def child(self, name: str) -> Question:
        return next(q for q in self.questions if q.name == name)

    def find_child(self, name: str) -> Question | None:
        """The repeat group's child of that name, or None (an answer kept from another script version)."""
        return next((q for q in self.questions if q.name == name), None)


@dataclass(frozen=True)
class Section:
    name: str
    label: Label
    part: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Script:
    id: str
    version: str
    spec_version: int
    title: Label
    sections: tuple[Section, ...]
    _index: dict[str, Question] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for q in self.questions():
            self._index[q.name] = q

    def questions(self) -> Iterator[Question]:
        """Top-level questions in order (repeat groups are one question each)."""
        for section in self.sections:
            yield from section.questions

    def question(self, name: str) -> Question:
        return self._index[name]

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    @property
    def roles(self) -> FactRoles:
        """Role → the questions carrying it, which the derived facts read. A script that tags no role at
        all is read by the built-in names (those of its questions that exist with a fitting type)."""
        tagged: dict[str, list[str]] = {}
        for q in self.questions():
            if q.role:
                tagged.setdefault(q.role, []).append(q.name)
        if tagged:
            return FactRoles({role: tuple(names) for role, names in tagged.items()})
        found = {
            role: tuple(n for n in names if n in self._index and self._index[n].type in ROLES[role].types)
            for role, names in BUILTIN_ROLES.items()
        }
        return FactRoles({role: names for role, names in found.items() if names}, fallback=True)


def role_warnings(script: Script) -> list[str]:
    """What `script check` says about the roles beside the faults: the built-in names read for want of any
    role tag, and every fact that will not be computed (未采集) with the roles it lacks."""
    roles = script.roles
    notes: list[str] = []
    if roles.fallback:
        read = "、".join(f"{role}={'+'.join(names)}" for role, names in roles.fields.items()) or "无 / none"
        notes.append(
            "没有题目标注 role：派生指标按内置题名读取 / no question carries a role: the facts read the "
            f"built-in names ({read})"
        )
    for fact, lacking in facts_missing(roles).items():
        notes.append(
            f"未采集 / not collected: {FACT_LABELS[fact]} ({fact}) — 缺少角色 / missing role: {', '.join(lacking)}"
        )
    if roles.has("income") and not roles.has("income_guaranteed"):
        notes.append(
            "没有 role income_guaranteed 的题：计入保底收益的县，收入不含保底收益 / no income_guaranteed "
            "question: where a county counts 保底收益, income leaves it out"
        )
    support = roles.first("support")
    if support is not None and not set(script.question(support).choice_values) & SAFETY_NET_SUPPORT:
        wanted = "、".join(sorted(SAFETY_NET_SUPPORT))
        notes.append(
            f"question '{support}': role support 没有选项 {wanted}，不会有户分入政策兜底 / has no option "
            f"{wanted}: no household will be grouped 政策兜底"
        )
    return notes


# --- loading -------------------------------------------------------------------------------------------------


def load_script(source: str | Path | None = None) -> Script:
    """Load and validate a script file; None means the built-in default script."""
    if source is None:
        text = resources.files("survey").joinpath("default_script.json").read_text(encoding="utf-8")
        origin = "default_script.json"
    else:
        path = Path(source)
        if path.suffix.lower() == ".xlsx":  # read by bot.script_files (survey/ does no spreadsheet I/O)
            raise ScriptError(
                [f"{path}: an XLSForm workbook: load it with bot.script_files.load_script_file"]
            )
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ScriptError([f"{path}: 无法读取 / cannot read: {exc.strerror}"]) from exc
        origin = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(
            [f"{origin}: 不是有效的 JSON / not valid JSON (line {exc.lineno}): {exc.msg}"]
        ) from exc
    return build_script(data)


def build_script(data: Any) -> Script:
    """Validate a decoded definition and build the model, or raise ScriptError listing every problem."""
    errors: list[str] = []
    if not isinstance(data, dict):
        raise ScriptError(["the script must be a JSON object"])
    spec = data.get("spec_version")
    if spec not in SPEC_VERSIONS:
        errors.append(
            f"spec_version: {spec!r} is not supported (supported: {', '.join(map(str, SPEC_VERSIONS))})"
        )
    for key in ("id", "version"):
        if not isinstance(data.get(key), str) or not data.get(key):
            errors.append(f"{key}: a non-empty string is required")
    sections_data = data.get("sections")
    if not isinstance(sections_data, list) or not sections_data:
        errors.append("sections: a non-empty list is required")
        sections_data = []
    builder = _Builder(errors)
    sections = tuple(builder.section(s, i) for i, s in enumerate(sections_data))
    title = builder.label(data.get("title", {"zh_CN": str(data.get("id", ""))}), "title")
    if errors:
        raise ScriptError(errors)
    return Script(id=data["id"], version=data["version"], spec_version=spec, title=title, sections=sections)


class _Builder:
    """Collects errors while building, so one pass reports all of them."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.types: dict[str, str] = {}  # every field seen so far (children as well) → type
        self.choice_values: dict[str, tuple[str, ...]] = {}
        self.roles: dict[str, str] = {}  # role → the first question carrying it

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def label(self, raw: Any, where: str) -> dict[str, str]:
        if isinstance(raw, str):
            return {DEFAULT_LOCALE: raw}
        if not isinstance(raw, dict) or not isinstance(raw.get(DEFAULT_LOCALE), str):
            self.error(where, f"a label with a {DEFAULT_LOCALE} text is required")
            return {DEFAULT_LOCALE: "?"}
        return {k: str(v) for k, v in raw.items() if k in LOCALES}

    def section(self, raw: Any, index: int) -> Section:
        where = f"section #{index + 1}"
        if not isinstance(raw, dict):
            self.error(where, "must be an object")
            return Section(name=f"s{index}", label={DEFAULT_LOCALE: "?"}, part="", questions=())
        name = str(raw.get("name") or f"s{index}")
        where = f"section '{name}'"
        questions = raw.get("questions")
        if not isinstance(questions, list) or not questions:
            self.error(where, "a non-empty list of questions is required")
            questions = []
        built = tuple(self.question(q, name, outer=None) for q in questions)
        return Section(
            name=name,
            label=self.label(raw.get("label"), where),
            part=str(raw.get("part", "")),
            questions=tuple(q for q in built if q is not None),
        )

    def question(self, raw: Any, section: str, outer: str | None) -> Question | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            self.error(f"section '{section}'", f"a question without a name: {str(raw)[:60]}")
            return None
        name = raw["name"]
        where = f"question '{name}'"
        qtype = raw.get("type")
        if qtype not in QUESTION_TYPES:
            self.error(where, f"unknown type {qtype!r} (known: {', '.join(QUESTION_TYPES)})")
            return None
        if name in self.types:
            self.error(where, "duplicate name")
        relevant = self.condition(raw.get("relevant"), where, outer)
        self.types[name] = qtype
        choices = self.choices(raw, qtype, where)
        self.choice_values[name] = tuple(c.value for c in choices)
        children: tuple[Question, ...] = ()
        if qtype == "repeat":
            children = self.children(raw, section, where, outer, name)
        lo, hi = self.bounds(raw, qtype, where)
        max_length = raw.get("max_length", DEFAULT_TEXT_MAX)
        if not isinstance(max_length, int) or max_length < 1:
            self.error(where, f"max_length must be a positive integer, not {max_length!r}")
            max_length = DEFAULT_TEXT_MAX
        required = raw.get("required", qtype not in CAPABILITY_TYPES)
        if not isinstance(required, bool):
            self.error(where, "required must be true or false")
        return Question(
            name=name,
            type=qtype,
            label=self.label(raw.get("label"), where),
            section=section,
            required=bool(required),
            choices=choices,
            min=lo,
            max=hi,
            max_length=max_length,
            relevant=relevant,
            hint=self.label(raw["hint"], where) if "hint" in raw else None,
            constraint_message=(
                self.label(raw["constraint_message"], where) if "constraint_message" in raw else None
            ),
            questions=children,
            again=self.label(raw["again"], where) if "again" in raw else None,
            role=self.role(raw, qtype, where, name, outer, choices),
        )

    def role(
        self, raw: dict, qtype: str, where: str, name: str, outer: str | None, choices: tuple[Choice, ...]
    ) -> str | None:
        role = raw.get("role")
        if role is None or role == "":
            return None
        if not isinstance(role, str) or role not in ROLES:
            self.error(where, f"unknown role {role!r} (known: {', '.join(ROLES)})")
            return None
        spec = ROLES[role]
        if outer is not None:
            self.error(
                where, f"role {role!r}: a question inside the repeat group '{outer}' cannot feed a fact"
            )
            return None
        if qtype not in spec.types:
            self.error(where, f"role {role!r} needs a {' or '.join(spec.types)} question, not {qtype}")
            return None
        if not spec.many and role in self.roles:
            self.error(where, f"role {role!r} is already on question '{self.roles[role]}' (only one allowed)")
            return None
        if role == "satisfaction" and set(c.value for c in choices) != SATISFACTION_VALUES:
            wanted = ", ".join(sorted(SATISFACTION_VALUES))
            self.error(
                where, f"role 'satisfaction' needs exactly the choices {wanted} (the reports count them)"
            )
            return None
        self.roles.setdefault(role, name)
        return role

    def children(
        self, raw: dict, section: str, where: str, outer: str | None, name: str
    ) -> tuple[Question, ...]:
        if outer is not None:
            self.error(where, "a repeat group cannot be nested in another repeat group")
        items = raw.get("questions")
        if not isinstance(items, list) or not items:
            self.error(where, "a repeat group needs a non-empty list of questions")
            return ()
        built = (self.question(q, section, outer=name) for q in items)
        return tuple(q for q in built if q is not None)

    def choices(self, raw: dict, qtype: str, where: str) -> tuple[Choice, ...]:
        items = raw.get("choices")
        if qtype not in CHOICE_TYPES:
            if items:
                self.error(where, f"choices are only for {' and '.join(CHOICE_TYPES)} questions")
            return ()
        if not isinstance(items, list) or not items:
            self.error(where, "the choice list is missing")
            return ()
        built = tuple(self.choice(item, where) for item in items)
        values = [c.value for c in built]
        for value in sorted({v for v in values if values.count(v) > 1}):
            self.error(where, f"choice {value!r} is listed twice")
        return built

    def choice(self, item: Any, where: str) -> Choice:
        if isinstance(item, str):
            return Choice(value=item, label={DEFAULT_LOCALE: item})
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            self.error(where, f"a choice needs a value: {item!r}")
            return Choice(value="?", label={DEFAULT_LOCALE: "?"})
        label = self.label(item.get("label", item["value"]), where)
        return Choice(
            value=item["value"],
            label=label,
            aliases=tuple(item.get("aliases", ())),
            exclusive=bool(item.get("exclusive", False)),
        )

    def bounds(self, raw: dict, qtype: str, where: str) -> tuple[float | str | None, float | str | None]:
        lo, hi = raw.get("min"), raw.get("max")
        if qtype not in NUMERIC_TYPES:
            if lo is not None or hi is not None:
                self.error(where, "min/max are only for integer and decimal questions")
            return None, None
        for bound in (lo, hi):
            if isinstance(bound, str) and self.types.get(bound) not in NUMERIC_TYPES:
                self.error(where, f"bound {bound!r} must name an earlier integer or decimal question")
            elif bound is not None and not isinstance(bound, int | float | str):
                self.error(where, f"bound {bound!r} must be a number or a question name")
        if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
            self.error(where, f"the bounds cannot hold: min {lo} is greater than max {hi}")
        return lo, hi

    def condition(self, raw: Any, where: str, outer: str | None) -> Condition | None:
        if raw is None:
            return None
        try:
            condition = parse_condition(str(raw))
        except ConditionError as exc:
            self.error(where, f"relevant: {exc}")
            return None
        for ref in condition.fields():
            if ref not in self.types:
                self.error(where, f"relevant: the condition names an unknown or later field '{ref}'")
            elif self.types[ref] == "repeat":
                self.error(where, f"relevant: the condition cannot test the repeat group '{ref}'")
            else:
                self.check_literal(condition, ref, where)
        return condition

    def check_literal(self, condition: Condition, ref: str, where: str) -> None:
        for op, literal in condition.tests_of(ref):
            ftype = self.types[ref]
            if ftype in CHOICE_TYPES and literal not in self.choice_values.get(ref, ()):
                self.error(where, f"relevant: '{ref}' has no choice {literal!r}")
            elif ftype in ("yes_no", "confirm") and not isinstance(literal, bool):
                self.error(where, f"relevant: '{ref}' is yes/no; compare it with yes or no")
            elif ftype in NUMERIC_TYPES and (
                isinstance(literal, bool) or not isinstance(literal, int | float)
            ):
                self.error(where, f"relevant: '{ref}' is a number; compare it with a number")
            elif op == "contains" and ftype != "several_of":
                self.error(where, f"relevant: 'contains' needs a several-of question, '{ref}' is {ftype}")
