"""Issue 16: `zoufang --help` and every command's help were English whatever ZOUFANG_LOCALE said. The help is
the catalog's (messages/templates/<locale>/cli/help.json, keyed by the command's words): zh-CN by default,
English with ZOUFANG_LOCALE=en, for every command and every option."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from bot.cli import main
from bot.cli.help import catalog, commands, help_of
from tests.cli_support import clean_env, ok, zoufang

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
# what a user must type in Chinese even in English: roster column headers and values, the role and group names
TYPED_IN_CHINESE = (
    "干部编号",
    "姓名",
    "手机",
    "角色",
    "乡镇",
    "行政村",
    "第一书记",
    "政策兜底",
    "重点帮扶",
    "脱贫达标",
    "巩固提升",
)
KEYS = [key for key, _ in commands(main)]


def _options(command: click.Command) -> list[str]:
    return [p.name for p in command.params if isinstance(p, click.Option) and p.name]


def _english(text: str) -> bool:
    for word in TYPED_IN_CHINESE:
        text = text.replace(word, "")
    return not CJK.search(text) and re.search(r"[A-Za-z]{3}", text) is not None


def test_every_command_and_option_has_help_in_both_catalogs_chinese_and_english() -> None:
    by_key = dict(commands(main))
    for key, command in by_key.items():
        zh, en = help_of("zh_CN", key), help_of("en", key)
        assert zh and CJK.search(zh), f"zoufang {key}: no Chinese help"
        assert en and _english(en), f"zoufang {key}: English help is missing or not English: {en!r}"
        for option in _options(command):
            zh, en = help_of("zh_CN", key, option), help_of("en", key, option)
            assert zh and CJK.search(zh), f"zoufang {key} --{option}: no Chinese help"
            assert en and _english(en), f"zoufang {key} --{option}: {en!r}"
    for locale in ("zh_CN", "en"):
        assert set(catalog(locale)["commands"]) == set(by_key), "a catalog names a command that is not there"


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k or "zoufang")
def test_help_is_chinese_by_default_and_english_with_zoufang_locale_en(tmp_path: Path, key: str) -> None:
    words = key.split()
    zh = ok(zoufang(tmp_path, *words, "--help")).stdout
    assert zh.startswith("用法:") and "显示本帮助并退出" in zh
    first_zh = help_of("zh_CN", key).split("\n")[0]  # type: ignore[union-attr]
    assert first_zh.replace(" ", "")[:10] in zh.replace("\n", "").replace(" ", "")
    en = ok(zoufang(tmp_path, *words, "--help", env=clean_env(tmp_path, ZOUFANG_LOCALE="en"))).stdout
    assert en.startswith("Usage:") and "Show this message and exit." in en
    assert _english(en), en


def test_chinese_help_fits_80_columns_counting_a_chinese_character_as_two(tmp_path: Path) -> None:
    from bot.cli.help import width

    for key in ("", "worklog", "report households", "audit"):
        text = ok(zoufang(tmp_path, *key.split(), "--help")).stdout
        assert max(width(line) for line in text.splitlines()) <= 80, text


def test_a_usage_error_is_in_the_readers_language(tmp_path: Path) -> None:
    zh = zoufang(tmp_path, "report", "coverage", "--bogus")
    assert zh.returncode == 2 and "没有选项 '--bogus'" in zh.stderr
    en = zoufang(tmp_path, "report", "coverage", "--bogus", env=clean_env(tmp_path, ZOUFANG_LOCALE="en"))
    assert en.returncode == 2 and "No such option" in en.stderr


def test_help_in_dotenv_locale(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ZOUFANG_LOCALE=en\n", encoding="utf-8")
    assert ok(zoufang(tmp_path, "--help")).stdout.startswith("Usage:")
