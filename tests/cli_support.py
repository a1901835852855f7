"""Running the `zoufang` command on a SQLite file in a temporary folder, with no .env around.

`zoufang()` runs the command in this process (click's CliRunner), as the subprocess would see the world: the
environment exactly as `clean_env` makes it, the folder as the working directory, `input` on standard input,
standard output and error apart, and an uncaught exception as a traceback on standard error with exit 1.
What it changes of the process (environment, working directory, logging, signal handlers, tempfile's
directory) is put back after each call.

`zoufang_process()` runs the real console script in a subprocess. Each command keeps at least one test on it,
and so do the tests whose point is the process itself (import time, what is imported, signals, pipes, the
bytes of the real standard output)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).with_name("zoufang")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "bot.cli"]
_OURS = ("ZOUFANG_", "TELEGRAM_", "TWILIO_", "PUBLIC_BASE_URL", "SMS_BACKEND")


def clean_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env["ZOUFANG_DB_URL"] = f"sqlite+aiosqlite:///{folder / 'z.db'}"
    env.update(extra)
    return env


def zoufang_process(
    folder: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real `zoufang` console script in a subprocess."""
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


def zoufang(
    folder: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`zoufang ARGS` in this process; what `zoufang_process` would give (text with universal newlines, as
    subprocess.run(text=True) decodes it). `timeout` is not enforced: standard input is a string read to its
    end, so no command waits on it; `serve` and `worker`, which run until signalled, stay in subprocesses."""
    done = zoufang_bytes(folder, *args, input=input, env=env)
    return subprocess.CompletedProcess(done.args, done.returncode, _text(done.stdout), _text(done.stderr))


def zoufang_bytes(
    folder: Path, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`zoufang ARGS` in this process, standard output and error as the bytes written."""
    env = env if env is not None else clean_env(folder)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _invoke(folder, list(args), input, env)
    # called from a coroutine (a blocking call, as subprocess.run is): the command's asyncio.run needs a
    # thread without a running loop
    with ThreadPoolExecutor(1, thread_name_prefix="zoufang") as pool:
        return pool.submit(_invoke, folder, list(args), input, env).result()


def _text(data: bytes) -> str:
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


_ONE_AT_A_TIME = threading.Lock()  # the environment, the working directory and sys.std* are the process's


def _invoke(
    folder: Path, args: list[str], input: str | bytes | None, env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    from click import formatting
    from click.testing import CliRunner

    from bot.cli import main

    with (
        _ONE_AT_A_TIME,
        _environment(env),
        _working_directory(folder),
        _fresh_logging(),
        _signal_handlers(),
        _tempdir(),
        _argv([COMMAND[-1], *args]),
        CliRunner(charset="utf-8").isolation(input=input if input is not None else b"") as (out, err, _),
    ):
        # the help's width as in a subprocess, whose standard output is a pipe (not the 80 CliRunner forces)
        formatting.FORCED_WIDTH = max(min(_columns(env), 80) - 2, 50)
        returncode = _main(main, args)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return subprocess.CompletedProcess([*COMMAND, *args], returncode, stdout, stderr)


def _main(main: Any, args: list[str]) -> int:
    """main() as the interpreter runs it: the exit code of SystemExit, a traceback and 1 for an exception."""
    try:
        main.main(args=args, prog_name="zoufang")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code & 0xFF
        print(exc.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


def _columns(env: dict[str, str]) -> int:
    try:
        return int(env.get("COLUMNS", "")) or 80
    except ValueError:
        return 80


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ is `env` (none of ours inherited), then what it was."""
    saved = dict(os.environ)
    try:
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


@contextlib.contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(saved)


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """The root logger as a new process has it (no handler: warnings go to standard error through
    logging.lastResort, not to pytest's capture); every logger's handlers, level and flags put back after."""
    root = logging.getLogger()
    loggers = [
        root,
        *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]
    disabled = logging.root.manager.disable
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level, handlers, propagate, was_disabled in saved:
            lg.setLevel(level)
            lg.handlers = handlers
            lg.propagate, lg.disabled = propagate, was_disabled
        logging.disable(disabled)


@contextlib.contextmanager
def _signal_handlers() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set them; asyncio.run sets none elsewhere
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:  # None: set outside Python, cannot be put back from here
                signal.signal(sig, handler)


@contextlib.contextmanager
def _tempdir() -> Iterator[None]:
    """tempfile asks TMPDIR again (it caches the answer for the process)."""
    saved = tempfile.tempdir
    tempfile.tempdir = None
    try:
        yield
    finally:
        tempfile.tempdir = saved


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


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
