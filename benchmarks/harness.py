"""What the benchmarks share: child processes that say READY, the yardstick, CPU and memory accounting, the
database (SQLite or PostgreSQL), `zoufang serve` as a subprocess, the machine block and the JSON figures.

Each benchmark script runs its helper processes (a fake API, the yardstick) as `python <script> --role …`,
so `start_child` takes the script to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

STARTUP_TIMEOUT = 60.0
IDLE_SETTLE = 5.0  # seconds `zoufang serve` sits idle (every worker up) before its memory is read
YARDSTICK_TABLE = "bench_yardstick"
YARDSTICK_POOL = 10  # asyncpg connections per yardstick process (zoufang's SQLAlchemy pool: 5 + 10 overflow)
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


async def run_yardstick(port: int, db: str, route: str) -> None:
    """One INSERT + COMMIT per request. `db` is a SQLite file (one aiosqlite connection, WAL,
    synchronous=NORMAL, as zoufang's) or a postgresql URL (an asyncpg pool; each request takes a connection,
    BEGIN, INSERT, COMMIT). Listens with SO_REUSEPORT, so several of them can serve one port like
    `zoufang serve --workers N`. The table is made beforehand (prepare_yardstick). Prints the rows it
    inserted when stopped."""
    from aiohttp import web

    inserted = 0
    if is_postgres(db):
        import asyncpg

        pool = await asyncpg.create_pool(asyncpg_dsn(db), min_size=YARDSTICK_POOL, max_size=YARDSTICK_POOL)

        async def write(body: bytes) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(f"INSERT INTO {YARDSTICK_TABLE} (body) VALUES ($1)", body)

        close: Callable[[], Any] = pool.close
    else:
        import aiosqlite

        conn = await aiosqlite.connect(db)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=5000")  # several yardstick processes share the file

        async def write(body: bytes) -> None:
            await conn.execute(f"INSERT INTO {YARDSTICK_TABLE} (body) VALUES (?)", (body,))
            await conn.commit()

        close = conn.close

    async def handle(request: web.Request) -> web.Response:
        nonlocal inserted
        await write(await request.read())
        inserted += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(route, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    ready(f"http://127.0.0.1:{port}")
    await until_terminated()
    await runner.cleanup()
    await close()
    print(json.dumps({"rows": inserted}), flush=True)


async def prepare_yardstick(db: str) -> None:
    """The yardstick's table, empty (made once, before its processes start)."""
    if is_postgres(db):
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(db))
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {YARDSTICK_TABLE}")
            await conn.execute(
                f"CREATE TABLE {YARDSTICK_TABLE} (id bigserial PRIMARY KEY, body bytea NOT NULL)"
            )
        finally:
            await conn.close()
        return
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"DROP TABLE IF EXISTS {YARDSTICK_TABLE}")
        conn.execute(f"CREATE TABLE {YARDSTICK_TABLE} (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        conn.commit()


def describe_yardstick(db: str, processes: int) -> str:
    what = (
        f"asyncpg pool of {YARDSTICK_POOL}, BEGIN + INSERT + COMMIT"
        if is_postgres(db)
        else "one aiosqlite connection, WAL, synchronous=NORMAL"
    )
    return f"bare aiohttp + one INSERT + COMMIT per request ({what}; {processes} process{'es' if processes > 1 else ''})"


async def start_yardsticks(script: Path, db: str, processes: int, folder: Path) -> list[Child]:
    """`processes` yardstick children on one port (SO_REUSEPORT), ready."""
    await prepare_yardstick(db)
    port = free_port()
    children = [
        start_child(
            script, f"yardstick-{i}", ["--role", "yardstick", "--port", str(port), "--db", db], folder
        )
        for i in range(processes)
    ]
    try:
        for child in children:
            await asyncio.to_thread(child.wait_ready)
    except BaseException:
        for child in children:
            child.stop()
        raise
    return children


def stop_yardsticks(children: list[Child]) -> dict[str, Any]:
    stats = [child.stop() for child in children]
    return {"rows": sum(s.get("rows", 0) for s in stats), "processes": len(children)}


# --- the database ------------------------------------------------------------------------------------------


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def backend_name(url: str) -> str:
    return "postgresql" if is_postgres(url) else "sqlite"


def asyncpg_dsn(url: str) -> str:
    """postgresql+asyncpg://… (SQLAlchemy's) → postgresql://… (asyncpg's)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def reset_postgres(url: str) -> None:
    """Drop and recreate the schema `public` (everything in it is lost); `zoufang init` migrates it then."""
    import asyncpg

    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot connect to {redacted(url)}: {exc}") from exc
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        await conn.execute("CREATE SCHEMA public")
    finally:
        await conn.close()


def flush_redis(url: str) -> None:
    """Empty the Redis database of `url` (a dedicated one: FLUSHDB, not FLUSHALL)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"cannot flush Redis at {url}: {exc}") from exc
    finally:
        client.close()


class Store:
    """Read-only queries of the benchmark's database for the generator and the checks: SQLite through sqlite3
    (mode=ro, in a thread, never taking the write lock) or PostgreSQL through a small asyncpg pool. The SQL is
    written with $1, $2 … placeholders (turned into ?1, ?2 … for SQLite)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = url
        self.postgres = is_postgres(url)
        self.path = "" if self.postgres else str(make_url(url).database)
        self.pool: Any = None

    async def __aenter__(self) -> Store:
        if self.postgres:
            import asyncpg

            self.pool = await asyncpg.create_pool(asyncpg_dsn(self.url), min_size=1, max_size=4)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.pool is not None:
            return [tuple(row) for row in await self.pool.fetch(sql, *args)]
        return await asyncio.to_thread(self._sqlite, re.sub(r"\$(\d+)", r"?\1", sql), args)

    async def value(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    def _sqlite(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import sqlite3

        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)) as conn:
            return [tuple(row) for row in conn.execute(sql, args).fetchall()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU seconds of a live process (/proc/<pid>/stat), with `reaped` those of its children that
    ended and were waited for too; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str]]:
    """Every live process: pid → (parent pid, command name)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        found[int(entry.name)] = (int(text.rsplit(")", 1)[1].split()[1]), name)
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (zoufang serve's workers), parents first."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in _processes().items():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo.extend(sorted(children.get(current, [])))
    return tree


def named_processes(name: str) -> list[int]:
    return [pid for pid, (_, command) in _processes().items() if command == name]


Reading = dict[int, tuple[float, bool]]  # pid → (CPU seconds, counted while it lives)


def tree_reading(pid: int) -> Reading:
    """`pid` (with its reaped children: a worker that ended) and its descendants."""
    return {each: (cpu_seconds(each, reaped=each == pid), True) for each in process_tree(pid)}


def postgres_reading(database: str) -> Reading:
    """The backends serving `database` (their process title names it), and the postmaster with its reaped
    children: a backend that closes during the run (SQLAlchemy's overflow connections do) leaves its CPU
    there. The other databases' backends are read too, uncounted while they live, so that one that closes
    gives back what it had before the run (what it spent during the run stays in: noise when other
    databases are busy)."""
    found: Reading = {}
    processes = _processes()
    title = f" {database} ".encode()
    for pid, (parent, name) in processes.items():
        if name != "postgres":
            continue
        if processes.get(parent, (0, ""))[1] != "postgres":  # the postmaster
            found[pid] = (cpu_seconds(pid, reaped=True), True)
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                ours = title in f.read()
        except OSError:
            continue
        found[pid] = (cpu_seconds(pid), ours)
    return found


class CpuMeter:
    """CPU seconds spent between start() and stop() by groups of processes, each read by a probe at both ends
    (a process started in between counts from zero; one that ended in between is counted through its
    parent's reaped-children time, less what it had spent before), plus this process (`generator`)."""

    def __init__(self, probes: dict[str, Callable[[], Reading]]) -> None:
        self.probes = probes
        self.before: dict[str, Reading] = {}
        self.own = 0.0

    @classmethod
    def of(cls, pids: dict[str, int], database_url: str = "", redis_url: str = "") -> CpuMeter:
        probes: dict[str, Callable[[], Reading]] = {
            label: (lambda pid=pid: tree_reading(pid)) for label, pid in pids.items()
        }
        if is_postgres(database_url):
            from sqlalchemy.engine import make_url

            database = str(make_url(database_url).database)
            probes["postgres"] = lambda: postgres_reading(database)
        if redis_url:  # the whole server
            probes["redis"] = lambda: {
                pid: (cpu_seconds(pid), True) for pid in named_processes("redis-server")
            }
        return cls(probes)

    def start(self) -> None:
        self.before = {label: probe() for label, probe in self.probes.items()}
        self.own = time.process_time()

    def stop(self) -> dict[str, float]:
        own = time.process_time() - self.own
        spent = {}
        for label, probe in self.probes.items():
            before, after = self.before.get(label, {}), probe()
            lived = sum(
                cpu - before.get(pid, (0.0, True))[0] for pid, (cpu, counted) in after.items() if counted
            )
            ended = sum(cpu for pid, (cpu, _) in before.items() if pid not in after)
            spent[label] = max(0.0, lived - ended)
        spent["generator"] = own
        return spent


def memory(pid: int) -> dict[str, Any]:
    """VmRSS of `pid` and its descendants (MB, summed: pages shared by forked workers count once per process)
    and their proportional set size (Pss: shared pages split between the processes that map them)."""
    per_process = []
    for each in process_tree(pid):
        fields: dict[str, float] = {}
        for name in ("status", "smaps_rollup"):
            with contextlib.suppress(OSError), open(f"/proc/{each}/{name}") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("VmRSS", "Pss") and rest.split():
                        fields[key] = int(rest.split()[0]) / 1024
        if "VmRSS" in fields:
            per_process.append(
                {"pid": each, "rss_mb": round(fields["VmRSS"], 1), "pss_mb": fields.get("Pss")}
            )
    pss = [p["pss_mb"] for p in per_process]
    return {
        "processes": len(per_process),
        "rss_mb": round(sum(p["rss_mb"] for p in per_process), 1),
        "pss_mb": round(sum(pss), 1) if pss and None not in pss else None,
        "per_process": [
            {**p, "pss_mb": None if p["pss_mb"] is None else round(p["pss_mb"], 1)} for p in per_process
        ],
    }


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


async def wait_workers(
    url: str, workers: int, proc: subprocess.Popen[str], describe: Callable[[], str]
) -> None:
    """Until /healthz has answered from `workers` distinct pids (a new connection each time, so the kernel
    hands them to every worker's socket in turn)."""
    import aiohttp

    seen: set[int] = set()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        while len(seen) < workers and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"zoufang serve exited with {proc.returncode}:\n{describe()}")
            with contextlib.suppress(aiohttp.ClientError, OSError, ValueError, KeyError):
                async with client.get(url + "/healthz") as response:
                    if response.status == 200:
                        seen.add(int((await response.json())["pid"]))
            await asyncio.sleep(0.02)
    if len(seen) < workers:
        raise BenchError(f"only {len(seen)} of {workers} workers answered /healthz:\n{describe()}")


class Serve:
    """`zoufang serve [--workers N]` as a subprocess on a free port, its output in serve.log."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int = 1) -> None:
        self.folder, self.env, self.workers = folder, env, workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "serve.log"
        self.proc: subprocess.Popen[str] | None = None
        self.idle: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, idle: float = IDLE_SETTLE) -> None:
        """Start it, wait for /healthz from every worker, let it idle `idle` seconds, then read its memory."""
        argv = [zoufang_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            argv, env=self.env, cwd=self.folder, stdout=self.log, stderr=subprocess.STDOUT, text=True
        )
        await wait_healthy(self.base, self.proc, self.tail)
        if self.workers > 1:
            await wait_workers(self.base, self.workers, self.proc, self.tail)
        await asyncio.sleep(idle)
        self.idle = {"settle_s": idle, **memory(self.pid)}

    def tail(self, lines: int = 20) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGINT (the workers are told and finish their requests), then SIGKILL to what is left of the tree."""
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in tree[1:]:  # a worker that outlived its parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


# --- the figures ---------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    memory_gb = None
    with contextlib.suppress(OSError, StopIteration, ValueError), open("/proc/meminfo") as f:
        memory_gb = round(
            int(next(line for line in f if line.startswith("MemTotal")).split()[1]) / 1024**2, 1
        )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": memory_gb,
        "machine": platform.machine(),  # uname -m
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def write_json(path: Path | str, figures: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


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
    # fixed-rate (open-loop) runs: `latencies` count from the planned launch, `service` from the actual send
    target_rate: float | None = None
    service: list[float] = field(default_factory=list)
    held: int = 0  # launches that waited for the same phone's previous request (kept in order)
    late: int = 0  # launches more than LATE_S after their planned time (the generator fell behind)
    # with retries (as Twilio retries a 503): `statuses` counts every attempt, these the requests
    retried: int = 0  # requests answered 503 at least once, then posted again
    unanswered: int = 0  # requests never answered 200, retries and all

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000

    def latency_line(self, values: list[float] | None = None) -> str:
        values = self.latencies if values is None else values
        return (
            f"p50 {self.percentile(50, values):.1f} ms, p90 {self.percentile(90, values):.1f} ms, "
            f"p99 {self.percentile(99, values):.1f} ms, max {max(values, default=0) * 1000:.1f} ms"
        )

    def as_json(self, cpu_label: str) -> dict[str, Any]:
        """The figures; `cpu_label` names the process group whose CPU per request is the server's."""
        per = max(self.sent, 1)
        out: dict[str, Any] = {
            "requests": self.sent,
            "elapsed_s": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p90_ms": round(self.percentile(90), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies, default=0) * 1000, 2),
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "cpu_ms_per_request": {k: round(v / per * 1000, 3) for k, v in self.cpu.items()},
            "server_cpu_ms_per_request": round(self.cpu.get(cpu_label, 0.0) / per * 1000, 3),
        }
        if self.target_rate is not None:
            out |= {
                "target_rate": self.target_rate,
                "latency_from": "planned launch (open loop: a late response delays no later request)",
                "service_p50_ms": round(self.percentile(50, self.service), 2),
                "service_p99_ms": round(self.percentile(99, self.service), 2),
                "held_for_order": self.held,
                "launched_late": self.late,
                "retried_after_503": self.retried,
                "never_200": self.unanswered,
            }
        return out


# --- entry points shared by the benchmarks -------------------------------------------------------------------


def database_url(args: Any, folder: Path) -> str:
    """--db-url when given (PostgreSQL), else a fresh SQLite file in the run's folder."""
    from storage.db import sqlite_url

    return str(args.db_url) if args.db_url else sqlite_url(folder / "zoufang.db")


async def in_run_folder(
    args: Any, prefix: str, keeps: str, run_in: Callable[[Any, Path], Awaitable[int]]
) -> int:
    """Run in a temporary folder, or in one kept (--keep) whose path is printed with what it `keeps`."""
    if args.keep:
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        print(f"keeping the run's files ({keeps}) in {folder}")
        return await run_in(args, folder)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return await run_in(args, Path(tmp))


def run_benchmark(
    args: Any, roles: dict[str, Callable[[Any], Awaitable[None]]], main_async: Callable[[Any], Awaitable[int]]
) -> int:
    """A child role (--role NAME) runs to completion; the benchmark itself exits 2 with one line on BenchError."""
    if args.role:
        asyncio.run(roles[args.role](args))
        return 0
    try:
        return asyncio.run(main_async(args))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
