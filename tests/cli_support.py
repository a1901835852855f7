"""Running the real `zoufang` command in a subprocess, on a SQLite file in a temporary folder, with no .env around."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("zoufang")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "bot.cli"]
_OURS = ("ZOUFANG_", "TELEGRAM_", "TWILIO_", "PUBLIC_BASE_URL", "SMS_BACKEND")


def clean_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env["ZOUFANG_DB_URL"] = f"sqlite+aiosqlite:///{folder / 'z.db'}"
    env.update(extra)
    return env


def zoufang(
    folder: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=folder,
        env=env if env is not None else clean_env(folder),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()
