"""The reports' words live in messages/templates/<locale>/reports/parts.txt: both languages have every phrase the
code asks for, the per-row str.format patterns take the same fields in both, and no ctx.t(zh, en) is left."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from messages import LOCALES, error_text

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "reports/parts.txt"
MACRO = re.compile(r"{%\s*macro\s+(\w+)\(")


def _macros(locale: str) -> set[str]:
    return set(MACRO.findall((ROOT / "messages" / "templates" / locale / SOURCE).read_text(encoding="utf-8")))


def _code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "bot" / "reports").glob("*.py")))


def test_both_languages_have_the_same_phrases_and_an_unknown():
    zh, en = (_macros(locale) for locale in LOCALES)
    assert zh == en
    assert "unknown" in zh


def test_every_phrase_the_reports_ask_for_exists():
    code = _code()
    named = set(re.findall(r'ctx\.say\(\s*"(\w+)"', code))
    columns = re.findall(r'ctx\.column\(\s*(?:f?"([^"]+)")(?:,\s*"(\w+)")?', code)
    named |= {f"col_{name or key}" for key, name in columns if "{" not in key or name}
    named |= {f"series_{k}" for k in ("open", "opened", "on_site", "closed")}  # f"series_{k}"
    named |= {f"source_{p}" for p in ("sms", "rec")}  # f"source_{prefix}"
    named |= {f"src_{part}" for part in ("n", "rate", "low", "high", "met", "small")}  # f"src_{part}"
    named |= {"col_coverage_" + key for key in re.findall(r'^\s*\("(\w+)", "\w+"\),$', code, re.M)}
    missing = named - _macros("zh_CN")
    assert not missing


@pytest.mark.parametrize("name", sorted(n for n in _macros("zh_CN") if n.endswith("_pattern")))
def test_a_row_pattern_takes_the_same_fields_in_both_languages(name: str):
    def fields(locale: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(error_text(name, locale, source=SOURCE)) if f}

    assert fields("zh_CN") == fields("en")
    assert fields("zh_CN")


def test_no_bilingual_pair_is_left_in_the_reports():
    assert "ctx.t(" not in _code()
