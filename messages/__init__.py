"""jinja2 templates for everything users read: zh-CN by default, English available.

Plain-text templates (SMS, Telegram, console) render with autoescape off; HTML digests with autoescape on.
A missing variable is an error (StrictUndefined), never an empty string in a villager's SMS.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")


@cache
def _env(html: bool) -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

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


class Refusal(Exception):
    """A known failure whose sentence is macro `key` of `source` (cli/parts.txt unless told) with `params`:
    raised where the failure is found (storage, the server, a command), rendered in the reader's language where
    it is shown (the CLI's edge, bot.cli.base: one line on standard error, no traceback unless --debug)."""

    def __init__(self, key: str, /, source: str = "cli/parts.txt", **params: Any) -> None:
        super().__init__(key, params)
        self.key, self.source, self.params = key, source, params

    def text(self, locale: str | None = None) -> str:
        return error_text(self.key, locale, source=self.source, **self.params)


@cache
def web_words(locale: str) -> dict[str, str]:
    """The dashboard's phrases (`templates/<locale>/web/words.json`): a missing one is an error, never blank."""
    import json
    from importlib.resources import files

    path = files("messages") / "templates" / locale_or_default(locale) / "web" / "words.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def render_page(template: str, locale: str | None = None, /, **context: Any) -> str:
    """A dashboard page (`templates/web/<template>`, autoescaped): one layout for both languages, its phrases
    from `t(...)`; the locale's own templates (a problem's states and moves) are imported by the page."""
    chosen = locale_or_default(locale)
    words = web_words(chosen)

    def t(key: str, **params: Any) -> str:
        return words[key].format(**params) if params else words[key]

    return _env(True).get_template(f"web/{template}").render(t=t, locale=chosen, **context)
