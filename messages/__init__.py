"""jinja2 templates for everything users read: zh-CN by default, English available.

Plain-text templates (SMS, Telegram, console) render with autoescape off; HTML digests with autoescape on.
A missing variable is an error (StrictUndefined), never an empty string in a villager's SMS.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")


@cache
def _env(html: bool) -> Environment:
    return Environment(
        loader=PackageLoader("messages", "templates"),
        autoescape=select_autoescape(["html", "xml"]) if html else False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def locale_or_default(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def render(template: str, locale: str | None = None, /, **context: Any) -> str:
    """Render `templates/<locale>/<template>`; HTML templates are autoescaped."""
    env = _env(template.endswith(".html"))
    return env.get_template(f"{locale_or_default(locale)}/{template}").render(**context).strip()


def error_text(code: str, locale: str | None = None, source: str = "errors.txt", **params: Any) -> str:
    """The reason for a refused answer, from the macros of `source` (one macro per error code); also any short
    phrase kept as a macro (a button's label, 是/否). A phrase without parameters is rendered once."""
    if not params:
        return _fixed_text(code, locale_or_default(locale), source)
    return _macro_text(code, locale_or_default(locale), source, params)


@cache
def _fixed_text(code: str, locale: str, source: str) -> str:
    return _macro_text(code, locale, source, {})


def _macro_text(code: str, locale: str, source: str, params: dict[str, Any]) -> str:
    module = _env(False).get_template(f"{locale}/{source}").module
    macro = getattr(module, code, None) or module.unknown
    return str(macro(**params)).strip()
