"""The house rules: the domain stays pure, and the CLI entry point loads no heavy library up front."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IO_LIBRARIES = {"aiogram", "twilio", "sqlalchemy", "aiohttp", "aiosqlite", "asyncpg", "jinja2", "openpyxl"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_survey_imports_no_io_library():
    for path in (ROOT / "survey").glob("*.py"):
        assert not imported_roots(path) & IO_LIBRARIES, path.name


def test_flows_speak_no_channel_and_no_sql():
    """bot/flows/ take plain messages and return what to say; storage/ writes the rows (its transaction handles
    come from storage.db), the channels speak Telegram and Twilio."""
    for path in (ROOT / "bot" / "flows").rglob("*.py"):
        assert not imported_roots(path) & {"aiogram", "twilio", "sqlalchemy", "aiohttp"}, path.name


def test_cli_entry_point_loads_no_database_or_bot_library():
    code = "import sys, bot.cli; print(sorted(m for m in ('sqlalchemy', 'aiogram', 'twilio', 'jinja2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_only_the_channels_speak_twilio():
    """Twilio's library is the Twilio channel's (bot/channels/twilio.py); the demo signs its own replies as
    Twilio would, with the library's validator. Storage never imports the bot."""
    speakers = {
        path.relative_to(ROOT).as_posix()
        for folder in ("bot", "storage", "survey", "messages")
        for path in (ROOT / folder).rglob("*.py")
        if "twilio" in imported_roots(path)
    }
    assert speakers <= {"bot/channels/twilio.py", "bot/demo.py"}, speakers
    for path in (ROOT / "storage").rglob("*.py"):
        assert "bot" not in imported_roots(path), path.name


def test_no_function_is_over_60_lines():
    """Small functions: outside tests, migrations and benchmarks none runs over 60 lines."""
    long = []
    for folder in ("bot", "storage", "survey", "messages"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                    if lines > 60:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_only_the_channels_speak_aiogram():
    """aiogram is the Telegram channel's; `zoufang serve --workers` preloads it before forking, and the app makes the
    bot (bot/app.py, bot/workers.py, bot/cli/serve.py import it lazily for that)."""
    speakers = {
        path.relative_to(ROOT).as_posix()
        for folder in ("bot", "storage", "survey", "messages")
        for path in (ROOT / folder).rglob("*.py")
        if "aiogram" in imported_roots(path)
    }
    allowed = {"bot/workers.py"}
    assert {s for s in speakers if not s.startswith("bot/channels/")} <= allowed, speakers
