"""What the benchmarks share: child processes that say READY, the yardstick, CPU accounting, the CLI.

Each benchmark script runs its helper processes (a fake API, the yardstick) as `python <script> --role …`,
so `start_child` takes the script to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

STARTUP_TIMEOUT = 60.0
OUR_VARIABLES = ("ZOUFANG_", "TELEGRAM_", "TWILIO_", "SMS_", "PUBLIC_BASE_URL")


class BenchError(Exception):
    """The benchmark cannot go on (a process did not start, a command failed, the generator got out of step…)."""


def ready(url: str) -> None:
    print(f"READY {url}", flush=True)


async def until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_yardstick(port: int, db_path: str, route: str) -> None:
    """One INSERT + COMMIT per request on one aiosqlite connection (WAL, synchronous=NORMAL)."""
    import aiosqlite
    from aiohttp import web

    db = await aiosqlite.connect(db_path)
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("CREATE TABLE IF NOT EXISTS updates (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    await db.commit()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        await db.execute("INSERT INTO updates (body) VALUES (?)", (body,))
        await db.commit()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(route, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ready(f"http://127.0.0.1:{port}")
    await until_terminated()
    await runner.cleanup()
    async with db.execute("SELECT count(*) FROM updates") as cursor:
        (rows,) = await cursor.fetchone()  # type: ignore[misc]
    await db.close()
    print(json.dumps({"rows": rows}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (psutil when installed, else /proc/<pid>/stat)."""
    try:
        import psutil
    except ImportError:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass
class Child:
    """A child process that prints `READY <url>` when it serves, and its stats as one JSON line when stopped."""

    name: str
    proc: subprocess.Popen[str]
    log: TextIO
    url: str = ""

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY "):
                self.url = line.split(maxsplit=1)[1].strip()
                return self.url
            if not line and self.proc.poll() is not None:
                break
        raise BenchError(f"{self.name} did not start: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or f"(exit code {self.proc.poll()})"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> dict[str, Any]:
        """Stop it; the stats it printed on the way out, if any."""
        out = ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                out, _ = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
        self.log.close()
        for line in reversed((out or "").splitlines()):
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    return parsed
        return {}


def start_child(script: Path, name: str, args: list[str], folder: Path) -> Child:
    log = open(folder / f"{name}.log", "w")  # noqa: SIM115 - closed by Child.stop
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=folder,
    )
    return Child(name, proc, log)


def zoufang_command() -> str:
    beside = Path(sys.executable).parent / "zoufang"
    found = str(beside) if beside.exists() else shutil.which("zoufang")
    if not found:
        raise BenchError("the `zoufang` command is not on PATH (activate the venv, pip install -e .)")
    return found


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_VARIABLES)}
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], folder: Path) -> str:
    done = subprocess.run([zoufang_command(), *args], env=env, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"zoufang {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def scan_log(path: Path) -> tuple[int, Counter[str]]:
    """Lines in a log, and the exceptions its tracebacks end with (type and message, by count)."""
    lines, exceptions = 0, Counter[str]()
    pattern = re.compile(r"^([\w.]+(?:Error|Exception|Timeout)\w*): ?(.*)$")
    with path.open(errors="replace") as f:
        for line in f:
            lines += 1
            if found := pattern.match(line):
                exceptions[f"{found.group(1)}: {found.group(2)[:100]}"] += 1
    return lines, exceptions


async def wait_healthy(url: str, proc: subprocess.Popen[str], describe: Callable[[], str]) -> None:
    import aiohttp

    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"zoufang serve exited with {proc.returncode}:\n{describe()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with client.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise BenchError(f"zoufang serve did not answer /healthz within {STARTUP_TIMEOUT:.0f} s:\n{describe()}")


@dataclass
class Result:
    name: str
    sent: int
    elapsed: float
    latencies: list[float]
    statuses: Counter[int]
    cpu: dict[str, float] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000

    def latency_line(self) -> str:
        return (
            f"p50 {self.percentile(50):.1f} ms, p90 {self.percentile(90):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms, max {max(self.latencies, default=0) * 1000:.1f} ms"
        )
