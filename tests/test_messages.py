"""The message catalogue (messages/templates/<locale>/…): every locale has every phrase.

A macro file is one locale's short phrases (read by `messages.error_text` or imported by other templates): its
twin in every other locale must define the same macros with the same parameters, or a phrase would be missing
(error_text falls back to `unknown()`, "…") or fail with the wrong arguments in one language only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import nodes

from messages import DEFAULT_LOCALE, LOCALES, _env

TEMPLATES = Path(__file__).parents[1] / "messages" / "templates"
OTHERS = [locale for locale in LOCALES if locale != DEFAULT_LOCALE]


def macro_files() -> list[str]:
    """The macro files of the default locale, relative to its folder (e.g. "exports/parts.txt")."""
    root = TEMPLATES / DEFAULT_LOCALE
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and "{% macro" in path.read_text(encoding="utf-8")
    )


def macros(locale: str, name: str) -> dict[str, tuple[str, ...]]:
    """Each macro of a template file, by name, with its parameters (as jinja2 parses the file)."""
    env = _env(name.endswith(".html"))
    source = (TEMPLATES / locale / name).read_text(encoding="utf-8")
    tree = env.parse(source)
    return {macro.name: tuple(arg.name for arg in macro.args) for macro in tree.find_all(nodes.Macro)}


def test_there_are_macro_files_to_compare() -> None:
    assert {"errors.txt", "exports/parts.txt", "cli/parts.txt", "visit/parts.txt"} <= set(macro_files())


@pytest.mark.parametrize("locale", OTHERS)
def test_every_locale_has_the_same_template_files(locale: str) -> None:
    def files(folder: str) -> set[str]:
        root = TEMPLATES / folder
        return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}

    assert files(locale) == files(DEFAULT_LOCALE)


@pytest.mark.parametrize("locale", OTHERS)
@pytest.mark.parametrize("name", macro_files())
def test_a_macro_file_has_the_same_macros_and_parameters_in_every_locale(name: str, locale: str) -> None:
    ours, theirs = macros(DEFAULT_LOCALE, name), macros(locale, name)
    assert ours, name
    assert sorted(set(ours) - set(theirs)) == [], f"{locale}/{name} lacks these macros"
    assert sorted(set(theirs) - set(ours)) == [], f"{DEFAULT_LOCALE}/{name} lacks these macros"
    assert theirs == ours, f"{name}: a macro takes other parameters in {locale}"


def phrase_files() -> list[str]:
    """The macro files error_text reads: those no template imports (imported ones are a template's helpers)."""
    imported = {
        target.split("/", 1)[1]
        for path in TEMPLATES.rglob("*")
        if path.is_file()
        for target in re.findall(r'{%-?\s*(?:import|from)\s+"([^"]+)"', path.read_text(encoding="utf-8"))
    }
    return [name for name in macro_files() if name not in imported]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", phrase_files())
def test_a_phrase_file_has_the_unknown_fallback(name: str, locale: str) -> None:
    assert macros(locale, name).get("unknown") == ()


@pytest.mark.parametrize("locale", OTHERS)
def test_the_dashboard_catalogue_has_the_same_phrases_in_every_locale(locale: str) -> None:
    import json

    def words(which: str) -> dict[str, str]:
        return json.loads((TEMPLATES / which / "web" / "words.json").read_text(encoding="utf-8"))

    ours, theirs = words(DEFAULT_LOCALE), words(locale)
    assert ours and sorted(set(ours) ^ set(theirs)) == [], "a phrase is missing in one locale"
    assert all(isinstance(v, str) and v.strip() for v in theirs.values())
