"""Issue 16, a county office's first day: a known failure at the CLI's edge is one sentence in the reader's
language on standard error, exit 1, no traceback (unless `zoufang --debug`)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.cli_support import clean_env, ok, zoufang, zoufang_process


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_on_a_port_in_use_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    ok(zoufang(tmp_path, "init"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = zoufang_process(tmp_path, "serve", "--port", str(port))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # the lines before are the server's own log
    assert last.startswith(f"zoufang: 无法监听 127.0.0.1:{port}：") and "--port" in last


def test_a_plain_path_as_db_url_is_one_line_showing_the_url_form(tmp_path: Path) -> None:
    line = one_line(zoufang(tmp_path, "county", "list", env=clean_env(tmp_path, ZOUFANG_DB_URL="/tmp/x.db")))
    assert line.startswith("zoufang: ZOUFANG_DB_URL='/tmp/x.db' 不是数据库 URL")
    assert "sqlite+aiosqlite:////tmp/x.db" in line
    relative = one_line(zoufang(tmp_path, "init", env=clean_env(tmp_path, ZOUFANG_DB_URL="county.db")))
    assert f"sqlite+aiosqlite:///{tmp_path / 'county.db'}" in relative
    assert not (tmp_path / "county.db").exists()


def test_a_plain_path_as_db_url_is_english_with_zoufang_locale_en(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ZOUFANG_DB_URL="county.db", ZOUFANG_LOCALE="en")
    line = one_line(zoufang(tmp_path, "county", "list", env=env))
    assert line.startswith(
        "zoufang: ZOUFANG_DB_URL='county.db' is not a database URL: write a SQLite file as "
    )


def test_a_relative_db_url_into_a_missing_folder_is_refused_naming_the_absolute_path(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ZOUFANG_DB_URL="sqlite+aiosqlite:///rel/x.db")
    line = one_line(zoufang(tmp_path, "init", env=env))
    assert (
        str(tmp_path / "rel" / "x.db") in line and f"sqlite+aiosqlite:///{tmp_path / 'rel' / 'x.db'}" in line
    )
    assert not (tmp_path / "rel").exists()  # no folder made behind the user's back


def test_a_relative_db_url_in_the_working_directory_still_works_and_says_where_it_is(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ZOUFANG_DB_URL="sqlite+aiosqlite:///here.db")
    before = one_line(zoufang(tmp_path, "county", "list", env=env))
    assert before.startswith("zoufang: 数据库尚未初始化") and before.endswith(
        f"数据库文件：{tmp_path / 'here.db'}"
    )
    ok(zoufang(tmp_path, "init", env=env))
    assert (tmp_path / "here.db").is_file()
    ok(zoufang(tmp_path, "county", "list", env=env))


def test_debug_shows_the_traceback_before_the_line(tmp_path: Path) -> None:
    result = zoufang(
        tmp_path, "--debug", "county", "list", env=clean_env(tmp_path, ZOUFANG_DB_URL="county.db")
    )
    assert result.returncode == 1 and "Traceback" in result.stderr and "Refusal" in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("zoufang: ZOUFANG_DB_URL='county.db' 不是数据库 URL")
    )


def test_a_db_url_without_an_async_driver_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    for url, shown in (
        (f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'a.db'}"),
        ("postgres://u:secret@localhost:1/db", "postgres://u:***@localhost:1/db"),
    ):
        line = one_line(zoufang(tmp_path, "county", "list", env=clean_env(tmp_path, ZOUFANG_DB_URL=url)))
        assert (
            line.startswith(f"zoufang: ZOUFANG_DB_URL={shown} 无法使用（") and "sqlite+aiosqlite:////" in line
        )
        assert "secret" not in line


def test_serve_with_workers_refuses_a_plain_path_once_instead_of_restarting_dying_workers(
    tmp_path: Path,
) -> None:
    env = clean_env(tmp_path, ZOUFANG_DB_URL="county.db")
    line = one_line(zoufang_process(tmp_path, "serve", "--workers", "2", "--port", "0", env=env))
    assert line.startswith("zoufang: ZOUFANG_DB_URL='county.db' 不是数据库 URL")


# --- issue 16: these failures were English whatever ZOUFANG_LOCALE said, or tracebacks ----------------------


def test_a_bad_setting_is_one_line_in_the_readers_language(tmp_path: Path) -> None:
    zh = one_line(zoufang(tmp_path, "county", "list", env=clean_env(tmp_path, ZOUFANG_SMS_RATE="fast")))
    assert zh == "zoufang: ZOUFANG_SMS_RATE='fast'：不是非负数"
    en = clean_env(tmp_path, ZOUFANG_SMS_RATE="fast", ZOUFANG_LOCALE="en")
    assert one_line(zoufang(tmp_path, "county", "list", env=en)) == (
        "zoufang: ZOUFANG_SMS_RATE='fast': not a non-negative number"
    )
    bad_locale = one_line(zoufang(tmp_path, "config", env=clean_env(tmp_path, ZOUFANG_LOCALE="fr")))
    assert bad_locale == "zoufang: ZOUFANG_LOCALE='fr'：请写 zh_CN 或 en"


def test_serve_polling_without_a_token_is_one_line_in_the_readers_language(tmp_path: Path) -> None:
    ok(zoufang(tmp_path, "init"))
    zh = zoufang_process(tmp_path, "serve", "--polling", "--port", "0")
    assert zh.returncode == 1 and "Traceback" not in zh.stderr
    assert zh.stderr.strip().splitlines()[-1] == "zoufang: --polling 需要 TELEGRAM_BOT_TOKEN"
    en = zoufang_process(
        tmp_path, "serve", "--polling", "--port", "0", env=clean_env(tmp_path, ZOUFANG_LOCALE="en")
    )
    assert en.stderr.strip().splitlines()[-1] == "zoufang: --polling needs TELEGRAM_BOT_TOKEN"


def test_serve_with_a_token_but_no_webhook_secret_is_one_line_in_chinese(tmp_path: Path) -> None:
    ok(zoufang(tmp_path, "init"))
    env = clean_env(tmp_path, TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_API_BASE="http://127.0.0.1:9")
    result = zoufang_process(tmp_path, "serve", "--port", "0", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("zoufang: 没有设置 TELEGRAM_WEBHOOK_SECRET")


def test_set_webhook_without_its_settings_is_one_line_in_the_readers_language(tmp_path: Path) -> None:
    assert one_line(zoufang(tmp_path, "telegram", "set-webhook")) == (
        "zoufang: telegram set-webhook 需要 TELEGRAM_BOT_TOKEN"
    )
    en = clean_env(tmp_path, ZOUFANG_LOCALE="en", TELEGRAM_BOT_TOKEN="1:x")
    assert one_line(zoufang(tmp_path, "telegram", "set-webhook", env=en)) == (
        "zoufang: telegram set-webhook needs PUBLIC_BASE_URL"
    )


def test_set_webhook_to_an_unreachable_bot_api_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN="1:x",
        PUBLIC_BASE_URL="https://example.org",
        TELEGRAM_WEBHOOK_SECRET="s",
        TELEGRAM_API_BASE="http://127.0.0.1:9",
    )
    result = zoufang(tmp_path, "telegram", "set-webhook", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr  # the lines before: the retries' log
    assert result.stderr.strip().splitlines()[-1].startswith("zoufang: Bot API 拒绝了请求或无法连接：")


def test_an_in_memory_db_url_is_refused_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        line = one_line(zoufang(tmp_path, "init", env=clean_env(tmp_path, ZOUFANG_DB_URL=url)))
        assert line.startswith(f"zoufang: ZOUFANG_DB_URL={url} 是内存数据库")
        en = clean_env(tmp_path, ZOUFANG_DB_URL=url, ZOUFANG_LOCALE="en")
        assert one_line(zoufang(tmp_path, "county", "list", env=en)).startswith(
            f"zoufang: ZOUFANG_DB_URL={url} is an in-memory database"
        )
    serve = zoufang_process(
        tmp_path, "serve", "--port", "0", env=clean_env(tmp_path, ZOUFANG_DB_URL="sqlite+aiosqlite://")
    )
    assert serve.returncode == 1 and "Traceback" not in serve.stderr and "内存数据库" in serve.stderr
