"""The visit script as an XLSForm workbook (the `survey`, `choices` and `settings` sheets ODK, KoboToolbox and
SurveyCTO read), both ways: a county edits ours in Excel and zoufang reads it back into the same definition the
JSON holds, validated by survey.script.

Reading follows pyxform's rules where the engine can carry them and refuses the rest with the sheet, row and
column named; nothing is dropped silently. What maps to what:

    integer, decimal, text, date      the same types            min / max    constraint `. >= 1 and . <= ${members}`
    select_one L, select_multiple L   one_of, several_of       max_length   constraint `string-length(.) <= 200`
    select_one with a yes/no list     yes_no                   relevant     `${a} = 'x'`, `${n} > 0`, `selected(${s}, 'x')`,
    acknowledge (trigger), note       confirm                               joined by and / or (and binds tighter)
    geopoint, image                   location, photo          required     yes / true / true() (blank: optional)
    begin_group … end_group           a section (part column: 五问, 四讲 …; one level)
    begin_repeat … end_repeat         a repeat group (again::… column: the "add another?" prompt)
    bind::zoufang:role                which derived fact a question feeds (survey.facts.ROLES; settings namespaces)
    start, end, today                 nothing: zoufang keeps its own start and submit times

Labels come from `label` (the default language), `label::zh`/`label::中文`/`label::Chinese (zh)` and
`label::en`/`label::English (en)`; hints and constraint messages likewise. The choices sheet may carry `aliases`
(other words for the option, separated by ; or 、) and `exclusive` (yes: the option cannot go with another).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from survey.conditions import Condition
from survey.script import (
    DEFAULT_LOCALE,
    DEFAULT_TEXT_MAX,
    Question,
    Script,
    ScriptError,
    build_script,
)
from survey.text import cell_text

SURVEY, CHOICES, SETTINGS = "survey", "choices", "settings"
YES_NO_LIST = "yes_no"
LANGUAGE_COLUMNS = {"zh_CN": "中文 (zh)", "en": "English (en)"}
TRANSLATED = ("label", "hint", "constraint_message", "again")
# A question's role (which derived fact it feeds, survey.facts.ROLES) is a custom bind attribute, the XLSForm
# convention for a tool's own column (OpenClinica's `bind::oc:itemgroup`): pyxform writes it on the question's
# <bind> as zoufang:role, in the namespace the settings sheet's `namespaces` declares.
ROLE_COLUMN = "bind::zoufang:role"
NAMESPACES = 'zoufang="urn:zoufang:xforms"'
SURVEY_COLUMNS = frozenset(
    {"type", "name", "required", "relevant", "constraint", "appearance", "part", ROLE_COLUMN}
)
CHOICE_COLUMNS = frozenset({"list_name", "name", "aliases", "exclusive"})
SETTINGS_COLUMNS = frozenset(
    {"form_id", "version", "default_language", "style", "instance_name", "namespaces"}
)
IGNORED_TYPES = frozenset({"start", "end", "today"})  # metadata zoufang records itself
PLAIN_TYPES = {
    "integer": "integer",
    "int": "integer",
    "decimal": "decimal",
    "text": "text",
    "string": "text",
    "date": "date",
    "geopoint": "location",
    "gps": "location",
    "image": "photo",
    "photo": "photo",
    "acknowledge": "confirm",
    "trigger": "confirm",
    "note": "confirm",
}
_TRUE = frozenset({"yes", "true", "true()", "1", "是"})
_FALSE = frozenset({"", "no", "false", "false()", "0", "否"})
_ALIAS_SPLIT = re.compile(r"\s*[;；、]\s*")


class FormError(ScriptError):
    """An XLSForm the engine cannot carry; every fault names its sheet, row and column."""


# --- the workbook as rows -----------------------------------------------------------------------------------


@dataclass
class Sheet:
    name: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (spreadsheet row, column → text)
    # cells Excel kept as a fraction (2026.10 is the number 2026.1: trailing zeros are gone), by (row, column)
    fractions: set[tuple[int, str]] = field(default_factory=set)


def sheet_of(name: str, rows: Iterable[Sequence[Any]]) -> Sheet:
    """A sheet from its rows of cell values, top to bottom: the first non-blank row is the header."""
    sheet = Sheet(name.strip().lower())
    header: list[str] | None = None
    for number, row in enumerate(rows, start=1):
        texts = [cell_text(value) for value in row]  # as the roster reader reads cells
        if header is None:
            if any(texts):
                header = [_column(t) for t in texts]
            continue
        if any(texts):
            sheet.rows.append((number, {h: t for h, t in zip(header, texts, strict=False) if h and t}))
            for h, value in zip(header, row, strict=False):
                if isinstance(value, float) and not value.is_integer():
                    sheet.fractions.add((number, h))
    return sheet


def _column(header: str) -> str:
    """A header as the reader compares it: `label::Chinese (zh)` → `label::zh_CN`, `Type` → `type`."""
    base, sep, language = header.strip().partition("::")
    base = re.sub(r"\s+", "_", base.strip().lower())
    if not sep:
        return base
    return f"{base}::{_locale(language) or language.strip()}"


def _locale(language: str) -> str | None:
    text = language.strip().lower()
    code = re.search(r"\(([^)]+)\)", text)
    text = code.group(1).strip() if code else text
    if text in ("zh", "zh_cn", "zh-cn", "zh-hans", "中文", "chinese", "简体中文"):
        return "zh_CN"
    if text in ("en", "english"):
        return "en"
    return None


# --- reading: sheets → definition ---------------------------------------------------------------------------


def build_located(reading: Reading) -> Script:
    """survey.script's checks, with each fault it finds pointed at the row of the question it names."""
    try:
        return build_script(reading.definition)
    except ScriptError as exc:
        raise FormError([reading.locate(e) for e in exc.errors]) from exc


@dataclass
class Reading:
    definition: dict[str, Any]
    rows: dict[str, int]  # question name → its survey row
    section_rows: dict[str, int]

    def locate(self, error: str) -> str:
        found = re.match(r"(question|section) '([^']+)': (.*)", error, re.S)
        if found is None:
            return error
        kind, name, message = found.groups()
        row = (self.rows if kind == "question" else self.section_rows).get(name)
        return error if row is None else f"{SURVEY} 第 {row} 行（{name}）：{message}"


def definition_from_sheets(sheets: dict[str, Sheet]) -> Reading:
    """The JSON definition of the form (survey.script's input), or FormError listing every fault."""
    reader = _Reader(sheets)
    definition = reader.read()
    if reader.errors:
        raise FormError(reader.errors)
    return Reading(definition, reader.rows, reader.section_rows)


class _Reader:
    def __init__(self, sheets: dict[str, Sheet]) -> None:
        self.sheets = sheets
        self.errors: list[str] = []
        self.rows: dict[str, int] = {}  # question name → its row
        self.section_rows: dict[str, int] = {}
        self.maybe_empty: set[str] = set()  # questions that may stay unanswered (optional or conditional)
        self.types: dict[str, str] = {}  # question name → zoufang type, as met (relevant names earlier ones)
        self.lists: dict[str, list[dict[str, Any]]] = {}
        self.default_locale = DEFAULT_LOCALE

    def error(self, sheet: str, row: int, column: str, message: str) -> None:
        self.errors.append(
            f"{sheet} 第 {row} 行 {column} 列：{message}" if column else f"{sheet} 第 {row} 行：{message}"
        )

    def read(self) -> dict[str, Any]:
        if SURVEY not in self.sheets:
            self.errors.append(f"缺少 {SURVEY} 表 / the workbook has no '{SURVEY}' sheet")
            return {}
        settings = self.settings()
        self.choices()
        sections = self.survey()
        title = {
            k: v for k, v in (("zh_CN", settings.get("title_zh")), ("en", settings.get("title_en"))) if v
        }
        return {
            "spec_version": 1,
            "id": settings.get("form_id", ""),
            "version": settings.get("version", ""),
            "title": title or {DEFAULT_LOCALE: settings.get("form_id", "")},
            "sections": sections,
        }

    # settings

    def settings(self) -> dict[str, str]:
        sheet = self.sheets.get(SETTINGS)
        if sheet is None or not sheet.rows:
            self.errors.append(f"缺少 {SETTINGS} 表或它没有数据行：需要 form_id 和 version")
            return {}
        row, values = sheet.rows[0]
        language = values.get("default_language", "")
        if language and _locale(language):
            self.default_locale = _locale(language) or DEFAULT_LOCALE
        found: dict[str, str] = {}
        for column, value in values.items():
            base, _, locale = column.partition("::")
            if base == "form_title":
                found["title_en" if (locale or self.default_locale) == "en" else "title_zh"] = value
            elif column == "form_title_en":
                found["title_en"] = value
            elif column in SETTINGS_COLUMNS:
                found[column] = value
            else:
                self.error(SETTINGS, row, column, f"zoufang 不使用这一设置（{value!r}），请删去")
        if (row, "version") in sheet.fractions:
            self.error(
                SETTINGS,
                row,
                "version",
                f"版本号请写成文本（如 '2026.10'）：数字 {found.get('version')} 丢了末尾的 0",
            )
        for needed in ("form_id", "version"):
            if not found.get(needed):
                self.error(SETTINGS, row, needed, "必须填写（version 是脚本版本，例如 2026.1）")
        return found

    # choices

    def choices(self) -> None:
        sheet = self.sheets.get(CHOICES)
        for row, values in sheet.rows if sheet else ():
            self.unknown_columns(CHOICES, row, values, CHOICE_COLUMNS)
            list_name, name = values.get("list_name", ""), values.get("name", "")
            if not list_name or not name:
                self.error(CHOICES, row, "list_name" if not list_name else "name", "必须填写")
                continue
            items = self.lists.setdefault(list_name, [])
            if any(item["value"] == name for item in items):
                self.error(CHOICES, row, "name", f"选项 {name!r} 在列表 {list_name} 中重复")
                continue
            item: dict[str, Any] = {
                "value": name,
                "label": self.label(values, "label") or {DEFAULT_LOCALE: name},
            }
            if values.get("aliases"):
                item["aliases"] = [a for a in _ALIAS_SPLIT.split(values["aliases"]) if a]
            exclusive = self.flag(CHOICES, row, "exclusive", values.get("exclusive", ""))
            if exclusive:
                item["exclusive"] = True
            items.append(item)

    # survey

    def survey(self) -> list[dict[str, Any]]:
        sections: list[dict[str, Any]] = []
        section: dict[str, Any] | None = None  # the open begin_group, or an implicit one
        repeat: tuple[int, dict[str, Any]] | None = None
        group_row = 0
        for row, values in self.sheets[SURVEY].rows:
            kind = re.sub(r"\s+", " ", values.get("type", "").strip())
            word = kind.replace("_", " ").lower()
            if not kind:
                self.error(SURVEY, row, "type", "这一行没有题型")
                continue
            if word in ("begin group", "end group", "begin repeat", "end repeat"):
                self.unknown_columns(SURVEY, row, values, SURVEY_COLUMNS)
            if word == "begin group":
                if section is not None and not section.get("implicit"):
                    self.error(SURVEY, row, "type", "分组不能嵌套：每个 begin_group 是一个部分，先 end_group")
                    continue
                if repeat is not None:
                    self.error(SURVEY, row, "type", "重复组里不能再分组")
                    continue
                section, group_row = self.section(row, values), row
                sections.append(section)
            elif word == "end group":
                if repeat is not None:
                    self.error(SURVEY, row, "type", f"第 {repeat[0]} 行的 begin_repeat 还没有 end_repeat")
                    repeat = None
                if section is None or section.get("implicit"):
                    self.error(SURVEY, row, "type", "end_group 前面没有 begin_group")
                section = None
            elif word == "begin repeat":
                if repeat is not None:
                    self.error(SURVEY, row, "type", "重复组不能嵌套")
                    continue
                section = section or self.implicit(sections)
                question = self.repeat(row, values)
                section["questions"].append(question)
                repeat = (row, question)
            elif word == "end repeat":
                if repeat is None:
                    self.error(SURVEY, row, "type", "end_repeat 前面没有 begin_repeat")
                repeat = None
            elif kind.lower() in IGNORED_TYPES:
                continue
            else:
                question = self.question(row, values, kind)
                if question is None:
                    continue
                if repeat is not None:
                    repeat[1]["questions"].append(question)
                else:
                    section = section if section is not None else self.implicit(sections)
                    section["questions"].append(question)
        if repeat is not None:
            self.error(SURVEY, repeat[0], "type", "begin_repeat 没有对应的 end_repeat")
        if section is not None and not section.get("implicit"):
            self.error(SURVEY, group_row, "type", "begin_group 没有对应的 end_group")
        for found in sections:
            found.pop("implicit", None)
        return sections

    def section(self, row: int, values: dict[str, str]) -> dict[str, Any]:
        name = values.get("name", "") or f"group{row}"
        if name in self.section_rows:
            self.error(SURVEY, row, "name", f"分组名 {name!r} 与第 {self.section_rows[name]} 行重复")
        self.section_rows.setdefault(name, row)
        label = self.label(values, "label")
        if not label:
            self.error(SURVEY, row, "label", "分组需要标签（中文）")
        return {
            "name": name,
            "label": label or {DEFAULT_LOCALE: name},
            "part": values.get("part", ""),
            "questions": [],
        }

    def implicit(self, sections: list[dict[str, Any]]) -> dict[str, Any]:
        """Questions outside any group form a section of their own (named after their place in the form)."""
        section = {"name": f"section{len(sections) + 1}", "label": {DEFAULT_LOCALE: "走访"}, "part": "",
                   "questions": [], "implicit": True}  # fmt: skip
        sections.append(section)
        return section

    def repeat(self, row: int, values: dict[str, str]) -> dict[str, Any]:
        question = self.common(row, values, "repeat")
        question["questions"] = []
        again = self.label(values, "again")
        if again:
            question["again"] = again
        return question

    def question(self, row: int, values: dict[str, str], kind: str) -> dict[str, Any] | None:
        self.unknown_columns(SURVEY, row, values, SURVEY_COLUMNS)
        parts = kind.split(" ")
        head = parts[0].lower()
        if head in ("select_one", "select_multiple", "select"):
            return self.select(row, values, parts)
        qtype = PLAIN_TYPES.get(kind.lower())
        if qtype is None:
            known = "、".join(sorted({*PLAIN_TYPES, "select_one", "select_multiple", *IGNORED_TYPES}))
            self.error(
                SURVEY,
                row,
                "type",
                f"zoufang 不支持题型 {kind!r}（支持：{known}、begin_group、begin_repeat）",
            )
            return None
        question = self.common(row, values, qtype)
        if kind.lower() == "note" and "required" not in values:
            question["required"] = False  # a note asks for nothing: the cadre may go on
        self.constraint(row, values, question)
        return question

    def select(self, row: int, values: dict[str, str], parts: list[str]) -> dict[str, Any] | None:
        if parts[0].lower() == "select":  # "select one L" written with a space
            parts = [f"select_{parts[1].lower()}", *parts[2:]] if len(parts) > 1 else parts
        if len(parts) != 2 or parts[0] not in ("select_one", "select_multiple"):
            self.error(
                SURVEY,
                row,
                "type",
                f"写成 select_one 列表名 或 select_multiple 列表名（不支持 or_other）：{' '.join(parts)!r}",
            )
            return None
        list_name = parts[1]
        if list_name not in self.lists:
            self.error(SURVEY, row, "type", f"choices 表里没有选项列表 {list_name!r}")
            return None
        items = self.lists[list_name]
        if parts[0] == "select_one" and {i["value"].lower() for i in items} == {"yes", "no"}:
            question = self.common(row, values, "yes_no")
        else:
            question = self.common(row, values, "one_of" if parts[0] == "select_one" else "several_of")
            question["choices"] = [dict(item) for item in items]
        if values.get("constraint"):
            self.error(SURVEY, row, "constraint", "选择题不能有 constraint（zoufang 只认选项本身）")
        return question

    def common(self, row: int, values: dict[str, str], qtype: str) -> dict[str, Any]:
        name = values.get("name", "")
        if not name:
            self.error(SURVEY, row, "name", "必须填写题名（英文字母、数字、下划线）")
            name = f"row{row}"
        elif name in self.rows:
            self.error(SURVEY, row, "name", f"题名 {name!r} 与第 {self.rows[name]} 行重复")
        self.rows.setdefault(name, row)
        question: dict[str, Any] = {"name": name, "type": qtype}
        label = self.label(values, "label")
        if label:
            question["label"] = label
        else:
            self.error(SURVEY, row, "label", "必须有标签（中文）")
        if hint := self.label(values, "hint"):
            question["hint"] = hint
        if qtype != "repeat":
            question["required"] = self.flag(SURVEY, row, "required", values.get("required", ""))
        if values.get("relevant"):
            relevant = self.relevant(row, values["relevant"])
            if relevant is not None:
                question["relevant"] = relevant
        if values.get(ROLE_COLUMN):
            question["role"] = values[ROLE_COLUMN].strip()
        self.types[name] = qtype
        if qtype != "repeat" and (not question.get("required") or "relevant" in question):
            self.maybe_empty.add(name)
        return question

    def constraint(self, row: int, values: dict[str, str], question: dict[str, Any]) -> None:
        message = self.label(values, "constraint_message")
        text = values.get("constraint", "")
        if not text:
            if message:
                self.error(SURVEY, row, "constraint_message", "没有 constraint，这条提示用不上")
            return
        bounds = _bounds(text, question["type"])
        if bounds is None:
            allowed = (
                ". >= 数、. <= 数 或 ${题名}，用 and 连接"
                if question["type"] in ("integer", "decimal")
                else "string-length(.) <= 数"
            )
            self.error(
                SURVEY, row, "constraint", f"zoufang 读不懂 {text!r}：{question['type']} 题只支持 {allowed}"
            )
            return
        question.update(bounds)
        if message:
            question["constraint_message"] = message

    def relevant(self, row: int, text: str) -> str | None:
        try:
            return relevant_to_condition(text, self.types, frozenset(self.maybe_empty))
        except ValueError as exc:
            self.error(SURVEY, row, "relevant", str(exc))
            return None

    def label(self, values: dict[str, str], base: str) -> dict[str, str]:
        found = {}
        for column, value in values.items():
            name, _, locale = column.partition("::")
            if name == base:
                found[locale or self.default_locale] = value
        return {k: v for k, v in found.items() if k in ("zh_CN", "en")}

    def flag(self, sheet: str, row: int, column: str, value: str) -> bool:
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word not in _FALSE:
            self.error(sheet, row, column, f"写 yes 或留空（zoufang 不计算表达式 {value!r}）")
        return False

    def unknown_columns(self, sheet: str, row: int, values: dict[str, str], known: frozenset[str]) -> None:
        for column, value in values.items():
            name, _, locale = column.partition("::")
            if column in known or (name in TRANSLATED and (not locale or locale in ("zh_CN", "en"))):
                continue
            if name in TRANSLATED:
                self.error(sheet, row, column, f"不支持的语言 {locale!r}（zoufang 有中文和英文）")
            else:
                self.error(sheet, row, column, f"zoufang 不支持这一列（{value!r}），请删去或留空")


_NUMBER = r"-?\d+(?:\.\d+)?"
_BOUND = re.compile(rf"\.\s*(>=|<=|>|<)\s*({_NUMBER}|\$\{{([A-Za-z_][\w.-]*)\}})")
_LENGTH = re.compile(r"string-length\(\s*\.\s*\)\s*<=\s*(\d+)")


def _bounds(text: str, qtype: str) -> dict[str, Any] | None:
    """`constraint` as the engine's bounds: min/max for numbers, max_length for text; None if it is more."""
    if qtype == "text":
        found = _LENGTH.fullmatch(text.strip())
        return {"max_length": int(found.group(1))} if found else None
    if qtype not in ("integer", "decimal"):
        return None
    bounds: dict[str, Any] = {}
    for part in re.split(r"\s+and\s+", text.strip()):
        found = _BOUND.fullmatch(part.strip())
        if found is None:
            return None
        op, raw, ref = found.groups()
        value: Any = ref or (float(raw) if "." in raw else int(raw))
        if op in (">", "<"):  # strict: only a whole-number question can move the bound by one
            if ref or qtype != "integer":
                return None
            value = value + 1 if op == ">" else value - 1
        key = "min" if op.startswith(">") else "max"
        if key in bounds:
            return None
        bounds[key] = value
    return bounds


# --- relevant: XLSForm's XPath subset ↔ survey.conditions ----------------------------------------------------

_XPATH_TOKEN = re.compile(
    r"""\s*(?:(?P<field>\$\{[A-Za-z_][\w.-]*\})|(?P<str>'[^']*'|"[^"]*")|(?P<num>-?\d+(?:\.\d+)?)"""
    r"""|(?P<op>!=|>=|<=|=|>|<)|(?P<call>selected\s*\()|(?P<comma>,)|(?P<close>\))|(?P<word>[A-Za-z_-]+\(?)|(?P<bad>\S))"""
)


def relevant_to_condition(text: str, types: dict[str, str], maybe_empty: frozenset[str] = frozenset()) -> str:
    """`${a} = 'x' and ${n} > 0 or selected(${s}, 'y')` → `a == 'x' and n > 0 or s contains 'y'`.

    Raises ValueError (a reason in Chinese) for what survey.conditions cannot say: not(), parentheses,
    arithmetic, comparing two questions, functions other than selected()."""
    tokens = [(m.lastgroup or "", m.group(m.lastgroup or 0).strip()) for m in _XPATH_TOKEN.finditer(text)]
    tokens = [t for t in tokens if t[1]]
    out: list[str] = []
    i = 0
    expect_clause = True
    while i < len(tokens):
        kind, raw = tokens[i]
        if expect_clause:
            clause, i = _xpath_clause(tokens, i, types, text, maybe_empty)
            out.append(clause)
            expect_clause = False
        elif kind == "word" and raw in ("and", "or"):
            out.append(raw)
            i += 1
            expect_clause = True
        else:
            raise ValueError(
                f"{text!r} 中 {raw!r} 读不懂：只支持 ${{题名}} 比较值、selected()、and、or（不支持括号和 not()）"
            )
    if expect_clause:
        raise ValueError(f"{text!r} 不完整")
    return " ".join(out)


def _xpath_clause(
    tokens: list[tuple[str, str]], i: int, types: dict[str, str], text: str, maybe_empty: frozenset[str]
) -> tuple[str, int]:
    kind, raw = tokens[i]
    if kind == "call":  # selected(${field}, 'value')
        shape = [k for k, _ in tokens[i + 1 : i + 5]]
        if shape != ["field", "comma", "str", "close"]:
            raise ValueError(f"{text!r}：selected 要写成 selected(${{题名}}, '选项')")
        name, value = tokens[i + 1][1][2:-1], tokens[i + 3][1][1:-1]
        op = "contains" if types.get(name) == "several_of" else "=="
        return f"{name} {op} {_quote(value)}", i + 5
    if kind == "field" and i + 2 < len(tokens) and tokens[i + 1][0] == "op":
        name, op, (lit_kind, lit) = raw[2:-1], tokens[i + 1][1], tokens[i + 2]
        if lit_kind not in ("str", "num"):
            raise ValueError(f"{text!r}：{raw} 只能和一个值比较（不能和另一题比较或计算）")
        ours = "==" if op == "=" else op
        kind_of = types.get(name)
        if (
            kind_of == "several_of"
        ):  # ODK compares the whole space-separated list: zoufang asks for one option
            raise ValueError(f"{text!r}：{raw} 是多选题，请写 selected({raw}, '选项')")
        if ours == "!=" and name in maybe_empty:
            raise ValueError(
                f"{text!r}：{raw} 可能没有回答（选答或有条件），ODK 把未答当作空值而 zoufang 当作条件不成立；"
                "请改写为对选项的肯定比较，例如 ${题名} = '其他选项'"
            )
        if lit_kind == "num" and kind_of not in ("one_of",):
            return f"{name} {ours} {lit}", i + 3
        value = lit if lit_kind == "num" else lit[1:-1]  # a choice code typed as a number is still a code
        if types.get(name) in ("yes_no", "confirm") and value.lower() in (
            "yes",
            "no",
            "true",
            "false",
            "1",
            "0",
        ):
            return f"{name} {ours} {'yes' if value.lower() in ('yes', 'true', '1') else 'no'}", i + 3
        return f"{name} {ours} {_quote(value)}", i + 3
    raise ValueError(
        f"{text!r} 中 {raw!r} 读不懂：只支持 ${{题名}} 比较值、selected()、and、or（不支持括号和 not()）"
    )


def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def condition_to_relevant(condition: Condition, types: dict[str, str]) -> str:
    """survey.conditions back as XLSForm's XPath: the inverse of relevant_to_condition."""
    groups = []
    for group in condition.any_of:
        clauses = []
        for clause in group:
            field = f"${{{clause.field}}}"
            literal = clause.literal
            if clause.op == "contains":
                clauses.append(f"selected({field}, {_quote(str(literal))})")
                continue
            op = "=" if clause.op == "==" else clause.op
            if isinstance(literal, bool):
                text = "'yes'" if literal else "'no'"
            elif isinstance(literal, int | float):
                text = str(literal)
            else:
                text = _quote(literal)
            clauses.append(f"{field} {op} {text}")
        groups.append(" and ".join(clauses))
    return " or ".join(groups)


# --- writing: script → workbook -----------------------------------------------------------------------------

SURVEY_HEADER = [
    "type",
    "name",
    *(f"label::{LANGUAGE_COLUMNS[loc]}" for loc in ("zh_CN", "en")),
    *(f"hint::{LANGUAGE_COLUMNS[loc]}" for loc in ("zh_CN", "en")),
    "required",
    "relevant",
    "constraint",
    *(f"constraint_message::{LANGUAGE_COLUMNS[loc]}" for loc in ("zh_CN", "en")),
    "part",
    *(f"again::{LANGUAGE_COLUMNS[loc]}" for loc in ("zh_CN", "en")),
    ROLE_COLUMN,
]
CHOICES_HEADER = [
    "list_name",
    "name",
    *(f"label::{LANGUAGE_COLUMNS[loc]}" for loc in ("zh_CN", "en")),
    "aliases",
    "exclusive",
]
SETTINGS_HEADER = ["form_title", "form_id", "version", "default_language", "namespaces"]
TITLE_EN = "form_title_en"  # zoufang's: the English title (pyxform's form_title has one language)
_OURS_TO_XLSFORM = {"location": "geopoint", "photo": "image", "confirm": "acknowledge"}


def sheets_of(script: Script) -> dict[str, list[list[Any]]]:
    """The script as the three sheets' rows, headers first."""
    survey: list[list[Any]] = [SURVEY_HEADER]
    choices: list[list[Any]] = [CHOICES_HEADER]
    types = {q.name: q.type for q in _all_questions(script)}
    yes_no_used = False
    for section in script.sections:
        survey.append(_row(type="begin_group", name=section.name, label=section.label, part=section.part))
        for question in section.questions:
            yes_no_used |= _write_question(question, survey, choices, types)
        survey.append(_row(type="end_group", name=section.name))
    if yes_no_used:
        for value, zh, en in (("yes", "是", "yes"), ("no", "否", "no")):
            choices.append([YES_NO_LIST, value, zh, en, "", ""])
    title = script.title
    settings = [
        SETTINGS_HEADER,
        [title.get("zh_CN", ""), script.id, script.version, LANGUAGE_COLUMNS["zh_CN"], NAMESPACES],
    ]
    if "en" in title:
        settings[0] = [*SETTINGS_HEADER, TITLE_EN]  # pyxform cannot translate form_title
        settings[1] = [*settings[1], title["en"]]
    return {SURVEY: survey, CHOICES: choices, SETTINGS: settings}


def _all_questions(script: Script) -> Iterator[Question]:
    for question in script.questions():
        yield question
        yield from question.questions


def _write_question(
    question: Question, survey: list[list[Any]], choices: list[list[Any]], types: dict[str, str]
) -> bool:
    """Append the question's rows (and its choice list); whether it used the shared yes/no list."""
    relevant = condition_to_relevant(question.relevant, types) if question.relevant else ""
    common = {
        "name": question.name,
        "label": question.label,
        "hint": question.hint or {},
        "relevant": relevant,
        "role": question.role,
    }
    if question.type == "repeat":
        survey.append(_row(type="begin_repeat", again=question.again or {}, **common))
        used = False
        for child in question.questions:
            used |= _write_question(child, survey, choices, types)
        survey.append(_row(type="end_repeat", name=question.name))
        return used
    required = "yes" if question.required else ""
    if question.type in ("one_of", "several_of"):
        kind = "select_one" if question.type == "one_of" else "select_multiple"
        survey.append(_row(type=f"{kind} {question.name}", required=required, **common))
        for choice in question.choices:
            choices.append([
                question.name, choice.value, choice.label.get("zh_CN", ""), choice.label.get("en", ""),
                ";".join(choice.aliases), "yes" if choice.exclusive else "",
            ])  # fmt: skip
        return False
    if question.type == "yes_no":
        survey.append(_row(type=f"select_one {YES_NO_LIST}", required=required, **common))
        return True
    kind = _OURS_TO_XLSFORM.get(question.type, question.type)
    constraint = _constraint_of(question)
    message = question.constraint_message or {}
    survey.append(
        _row(type=kind, required=required, constraint=constraint, constraint_message=message, **common)
    )
    return False


def _constraint_of(question: Question) -> str:
    if question.type == "text":
        return f"string-length(.) <= {question.max_length}" if question.max_length != DEFAULT_TEXT_MAX else ""
    parts = []
    for op, bound in ((">=", question.min), ("<=", question.max)):
        if bound is not None:
            parts.append(f". {op} " + (f"${{{bound}}}" if isinstance(bound, str) else str(bound)))
    return " and ".join(parts)


def _row(**values: Any) -> list[Any]:
    row = []
    for column in SURVEY_HEADER:
        base, _, language = column.partition("::")
        value = values.get(base, "")
        if column == ROLE_COLUMN:
            value = values.get("role") or ""
        elif language:
            locale = next(k for k, v in LANGUAGE_COLUMNS.items() if v == language)
            value = value.get(locale, "") if isinstance(value, dict) else ""
        elif isinstance(value, dict):
            value = ""
        row.append(value)
    return row
