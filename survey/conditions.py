"""`relevant` conditions: a tiny, safe expression language over earlier answers.

    school_children > 0
    housing_safe == no
    support contains '低保' or members >= 5

A clause is `field op literal`; clauses join with `and` (binds tighter) and `or`. Literals are numbers,
yes/no (true/false) or quoted strings. A clause on an unanswered field is false.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "contains")
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'[^']*'|"[^"]*")|(?P<op>==|!=|>=|<=|>|<)|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[^\s'"=!<>]+))"""
)
Literal = bool | int | float | str


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    literal: Literal

    def holds(self, answers: Mapping[str, Any]) -> bool:
        value = answers.get(self.field)
        if value is None:
            return False
        if self.op == "contains":
            return isinstance(value, list) and self.literal in value
        if self.op == "==":
            return value == self.literal
        if self.op == "!=":
            return value != self.literal
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return _compare(float(value), self.op, float(self.literal))  # type: ignore[arg-type]


def _compare(value: float, op: str, literal: float) -> bool:
    return {">": value > literal, ">=": value >= literal, "<": value < literal, "<=": value <= literal}[op]


@dataclass(frozen=True)
class Condition:
    """Disjunction of conjunctions of clauses."""

    any_of: tuple[tuple[Clause, ...], ...]
    source: str = field(compare=False)  # two conditions that test the same things are equal, however written

    def holds(self, answers: Mapping[str, Any]) -> bool:
        return any(all(c.holds(answers) for c in group) for group in self.any_of)

    def clauses(self) -> Iterator[Clause]:
        for group in self.any_of:
            yield from group

    def fields(self) -> list[str]:
        return list(dict.fromkeys(c.field for c in self.clauses()))

    def tests_of(self, field: str) -> list[tuple[str, Literal]]:
        return [(c.op, c.literal) for c in self.clauses() if c.field == field]


def parse_condition(source: str) -> Condition:
    tokens = _tokenize(source)
    groups: list[tuple[Clause, ...]] = []
    current: list[Clause] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise ConditionError(f"incomplete condition {source!r}: expected 'field op value'")
        current.append(_clause(tokens[i : i + 3], source))
        i += 3
        if i == len(tokens):
            break
        joiner = tokens[i][1]
        if joiner == "and":
            pass
        elif joiner == "or":
            groups.append(tuple(current))
            current = []
        else:
            raise ConditionError(f"expected 'and' or 'or' in {source!r}, found {joiner!r}")
        i += 1
    groups.append(tuple(current))
    return Condition(any_of=tuple(groups), source=source)


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = source.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ConditionError(f"cannot read {text[pos:]!r} in {source!r}")
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    if not tokens:
        raise ConditionError("empty condition")
    return tokens


def _clause(tokens: list[tuple[str, str]], source: str) -> Clause:
    (fkind, field), (_, op), (lkind, raw) = tokens
    if fkind != "word" or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field):
        raise ConditionError(f"expected a field name in {source!r}, found {field!r}")
    if op not in OPERATORS:
        raise ConditionError(f"unknown operator {op!r} in {source!r} (known: {', '.join(OPERATORS)})")
    return Clause(field=field, op=op, literal=_literal(lkind, raw, source))


def _literal(kind: str, raw: str, source: str) -> Literal:
    if kind == "str":
        return raw[1:-1]
    if kind == "num":
        return float(raw) if "." in raw else int(raw)
    if raw.lower() in ("yes", "true"):
        return True
    if raw.lower() in ("no", "false"):
        return False
    raise ConditionError(
        f"cannot read the value {raw!r} in {source!r}: quote text, or use a number or yes/no"
    )
