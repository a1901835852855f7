"""The help in the reader's language: every command's and option's help from
messages/templates/<locale>/cli/help.json (keyed by the command's words, "" for `zoufang` itself), and click's
own words (Usage:, Options, its usage errors) in zh-CN.

Applied on every run, before click parses anything (bot.cli.base.Group.main), with the locale read cheaply from
ZOUFANG_LOCALE or the .env file: no jinja2, no settings validation, so `--help` stays fast and works even when a
setting is bad. The help strings in the code are for its readers; the catalogs are what users see."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import click.formatting

LOCALES = ("zh_CN", "en")

# click's own words (its gettext message ids) in zh-CN; the rest stay as click says them
CLICK_ZH = {
    "Usage:": "用法:",
    "Options": "选项",
    "Commands": "命令",
    "Positional arguments": "参数",
    "Show this message and exit.": "显示本帮助并退出。",
    "default: {default}": "默认：{default}",
    "required": "必填",
    "Error: {message}": "错误：{message}",
    "Try '{command} {option}' for help.": "运行 '{command} {option}' 查看帮助。",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "No such option: {name}": "没有选项：{name}",
    "Did you mean {possibility}?": "是不是要用 {possibility}？",
    "(Possible options: {possibilities})": "（可能的选项：{possibilities}）",
    "Missing argument '{param_name}'.": "缺少参数 '{param_name}'。",
    "Missing option '{param_name}'.": "缺少选项 '{param_name}'。",
    "Missing parameter '{param_name}'.": "缺少参数 '{param_name}'。",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing command.": "缺少命令。",
    "Missing {param_type}": "缺少{param_type}",
    "argument": "参数",
    "option": "选项",
    "parameter": "参数",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的值无效：{message}",
    "Invalid value: {message}": "值无效：{message}",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要一个值。",
    "Option {name!r} requires {nargs} arguments.": "选项 {name!r} 需要 {nargs} 个值。",
    "Option {name!r} does not take a value.": "选项 {name!r} 不接受值。",
    "Got unexpected extra argument ({args})": "多出了参数（{args}）",
    "Got unexpected extra arguments ({args})": "多出了参数（{args}）",
    "{value!r} is not {choice}.": "{value!r} 不是 {choice}。",
    "{value!r} is not one of {choices}.": "{value!r} 不是 {choices} 之一。",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的{number_type}。",
    "integer": "整数",
    "float": "数字",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 内。",
    "{value!r} is not a valid boolean.": "{value!r} 不是有效的是/否值。",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是文件夹。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 不可读。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 不可写。",
    "File": "文件",
    "Directory": "文件夹",
    "Path": "路径",
    "Aborted!": "已中止！",
}
_CLICK_MODULES = ("core", "formatting", "exceptions", "parser", "types", "decorators", "termui", "utils")


def cli_locale(environ: Any = None, dotenv: Path = Path(".env")) -> str:
    """ZOUFANG_LOCALE from the environment, else the .env file; an unknown one is zh-CN (the settings refuse
    it in a sentence of their own)."""
    given = (os.environ if environ is None else environ).get("ZOUFANG_LOCALE") or ""
    if not given:
        from bot.settings import read_dotenv

        given = read_dotenv(dotenv).get("ZOUFANG_LOCALE", "")
    return given if given in LOCALES else "zh_CN"


@cache
def catalog(locale: str) -> dict[str, Any]:
    path = files("messages") / "templates" / locale / "cli" / "help.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def commands(root: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """(key, command) for the command and every command under it; the key is its words after `zoufang`."""
    found = [(" ".join(path), root)]
    if isinstance(root, click.Group):
        for name, sub in root.commands.items():
            found += commands(sub, (*path, name))
    return found


def help_of(locale: str, key: str, option: str | None = None) -> str | None:
    """The catalog's help for command `key` (or its `option`); None when the catalog has none."""
    data = catalog(locale)
    entry = data["commands"].get(key)
    if entry is None:
        return None
    if option is None:
        return str(entry["help"])
    text = entry["options"].get(option, data["_options"].get(option))
    return None if text is None else str(text)


def localize(root: click.Command, locale: str) -> None:
    """Every command's and option's help in `locale`, and click's own words."""
    for key, command in commands(root):
        command.help = help_of(locale, key) or command.help
        command.short_help = None
        command._help_option = None  # click keeps the --help option, its help in the words of its day
        for param in command.params:
            if isinstance(param, click.Option) and param.name:
                param.help = help_of(locale, key, param.name) or param.help
    _click_words(CLICK_ZH if locale == "zh_CN" else {})

    click.formatting.wrap_text = _wrap_wide if locale == "zh_CN" else _WRAP_TEXT


_WRAP_TEXT = click.formatting.wrap_text


def width(text: str) -> int:
    """Display width: a CJK (wide or full-width) character takes two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _wrap_wide(
    text: str,
    width_: int = 78,
    initial_indent: str = "",
    subsequent_indent: str = "",
    preserve_paragraphs: bool = False,
) -> str:
    """click's wrap_text, counting a CJK character as two columns and breaking between any two of them."""
    if width(text) == len(text):
        return _WRAP_TEXT(text, width_, initial_indent, subsequent_indent, preserve_paragraphs)
    paragraphs = text.split("\n\n") if preserve_paragraphs else [text]
    out = []
    for paragraph in paragraphs:
        out.append(_fill(" ".join(paragraph.split()), width_, initial_indent, subsequent_indent))
    return "\n\n".join(out)


def _fill(text: str, limit: int, first: str, rest: str) -> str:
    import re

    tokens = re.findall(r"[\x00-\x7f]+|.", text)  # runs of ASCII (words, spaces) and single wide characters
    pieces: list[str] = []
    for token in tokens:
        pieces += re.findall(r"\S+|\s+", token) if token.isascii() else [token]
    lines, line = [], first
    for piece in pieces:
        if line.strip() and width(line) + width(piece.rstrip()) > limit:
            lines.append(line.rstrip())
            line = rest
            if piece.isspace():
                continue
        line += piece
    lines.append(line.rstrip())
    return "\n".join(lines)


def _click_words(words: dict[str, str]) -> None:
    import gettext
    import importlib

    def _(message: str) -> str:
        return words.get(message, message)

    def ngettext(singular: str, plural: str, n: int) -> str:
        chosen = singular if n == 1 else plural
        return words.get(chosen, chosen)

    for name in _CLICK_MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = _ if words else gettext.gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext if words else gettext.ngettext  # type: ignore[attr-defined]
