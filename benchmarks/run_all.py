"""Run the Telegram, SMS and reports benchmarks on SQLite and on PostgreSQL; one JSON of figures; the aims.

    python benchmarks/run_all.py [--quick] [--only NAME[,NAME…]] [--out PATH]
                                 [--pg-admin-url URL] [--redis-url URL] [--logs DIR]

Each part is one benchmark script run as a subprocess (its own process group, stopped after a timeout) that
writes its figures with --json; they are collected, with a machine block, into --out (default
benchmarks/results/latest.json, committed as the latest figures; with --quick a file in the temp folder). The
parts (names for --only; a word of a name picks every part that has it: `sms`, `pg`, `idle` …):

    telegram-sqlite   telegram_webhook.py, `zoufang serve` with 1 worker on SQLite
    telegram-pg       telegram_webhook.py --workers 2 on PostgreSQL, with Redis (FSM state, one chat at a time)
    sms-sqlite        sms_inbound.py --capacity-check, 1 worker on SQLite: closed loop (50 in flight), then 0.8 ×
                      and 2 × the capacity it measured, open loop (and the 100,000-household poll-send timing)
    sms-pg            the same with --workers 2 on PostgreSQL (the poll-send timing in a scratch database
                      beside it)
    reports-sqlite    reports.py with its defaults (1,000,000 polls, 200,000 visits …) on SQLite
    reports-pg        reports.py --db-url on PostgreSQL
    idle-sqlite       telegram_webhook.py --idle-only: serve (Telegram + SMS configured), 1 worker, SQLite
    idle-pg           the same with --workers 2 on PostgreSQL and Redis

PostgreSQL: a scratch database `zoufang_bench_<pid>` is created through --pg-admin-url (default
postgresql://root@127.0.0.1/postgres) and dropped at the end; each part drops and recreates its schema
`public`. Redis: --redis-url (default redis://127.0.0.1:6379/11), a database that is flushed. When PostgreSQL
(or Redis, for the parts that need it) does not answer, those parts are skipped with a note.

With --only, the figures of the parts not run are kept from the existing --out file. --quick runs every part
with small sizes (a smoke test of the whole chain: its figures are not the aims' conditions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# run as `python benchmarks/run_all.py`: the folder is on sys.path
from harness import machine, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results" / "latest.json"
ADMIN_URL = "postgresql://root@127.0.0.1/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
STOP_GRACE = 40.0  # seconds between SIGINT and SIGKILL for a part past its timeout

# the aims of "The hot paths at the speed of the machine" (issue 11), on this 2-core machine
AIM_SMS_RATIO = {"sms-sqlite": 0.5, "sms-pg": 0.6}  # of the same-run yardstick's rate
AIM_STEADY_P99_MS = 100.0  # at 0.8 × the measured capacity
AIM_TELEGRAM_CPU_MS = 2.0  # serve CPU per update, SQLite, 1 worker
AIM_REPORT_S = {"reports-sqlite": 1.0, "reports-pg": 0.5}  # each report, median of 3
AIM_REPORT_POLLS = 1_000_000
AIM_POLL_SEND_S = 10.0  # queueing a poll for 100,000 households
AIM_POLL_SEND_HOUSEHOLDS = 100_000
AIM_IDLE_MB = 150.0


@dataclass
class Part:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    timeout: float  # seconds, full size (quick: a quarter, at least 5 minutes)
    postgres: bool = False
    redis: bool = False
    what: str = ""


PARTS = [
    Part(
        "telegram-sqlite",
        "telegram_webhook.py",
        [],
        ["--updates", "400"],
        900,
        what="Telegram webhook, 1 worker, SQLite (5,000 updates, 20 chats)",
    ),
    Part(
        "telegram-pg",
        "telegram_webhook.py",
        ["--workers", "2"],
        ["--workers", "2", "--updates", "400"],
        900,
        postgres=True,
        redis=True,
        what="Telegram webhook, 2 workers, PostgreSQL + Redis",
    ),
    Part(
        "sms-sqlite",
        "sms_inbound.py",
        ["--capacity-check"],
        ["--requests", "600", "--households", "300", "--big", "5000"],
        1800,
        what="inbound SMS, 1 worker, SQLite: closed loop (50 in flight), then 0.8 × and 2 × its capacity",
    ),
    Part(
        "sms-pg",
        "sms_inbound.py",
        ["--workers", "2", "--capacity-check"],
        ["--workers", "2", "--big", "5000", "--requests", "600", "--households", "300"],
        1800,
        postgres=True,
        what="inbound SMS, 2 workers, PostgreSQL: closed loop (50 in flight), then 0.8 × and 2 × its capacity",
    ),
    Part(
        "reports-sqlite",
        "reports.py",
        [],
        ["--households", "5000", "--visits", "4000", "--polls", "20000", "--problems", "400", "--runs", "1"],
        5400,
        what="the reports, SQLite (reports.py defaults: 1,000,000 polls, 200,000 visits)",
    ),
    Part(
        "reports-pg",
        "reports.py",
        [],
        ["--households", "5000", "--visits", "4000", "--polls", "20000", "--problems", "400", "--runs", "1"],
        5400,
        postgres=True,
        what="the reports, PostgreSQL (reports.py defaults)",
    ),
    Part(
        "idle-sqlite",
        "telegram_webhook.py",
        ["--idle-only"],
        ["--idle-only"],
        300,
        what="zoufang serve idle (Telegram + SMS configured), 1 worker, SQLite",
    ),
    Part(
        "idle-pg",
        "telegram_webhook.py",
        ["--idle-only", "--workers", "2"],
        ["--idle-only", "--workers", "2"],
        300,
        postgres=True,
        redis=True,
        what="zoufang serve idle (Telegram + SMS configured), 2 workers, PostgreSQL + Redis",
    ),
]


# --- the services ------------------------------------------------------------------------------------------


async def postgres_version(admin_url: str) -> str | None:
    try:
        import asyncpg

        conn = await asyncpg.connect(admin_url, timeout=5)
    except Exception as exc:  # not installed, refused, bad password …: the PostgreSQL parts are skipped
        print(f"PostgreSQL at {admin_url} does not answer ({type(exc).__name__}: {exc})", flush=True)
        return None
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def scratch_database(admin_url: str, name: str, create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def database_url(admin_url: str, name: str) -> str:
    """postgresql://user@host/postgres → postgresql+asyncpg://user@host/<name> (what zoufang takes)."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def redis_version(url: str) -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            return str(client.info("server").get("redis_version"))
        finally:
            client.close()
    except Exception as exc:  # not installed, refused …: the parts that need Redis are skipped
        print(f"Redis at {url} does not answer ({type(exc).__name__}: {exc})", flush=True)
        return None


# --- running a part ----------------------------------------------------------------------------------------


def run_part(part: Part, argv: list[str], timeout: float, log_path: Path) -> tuple[str, int | None, float]:
    """(status, exit code, seconds): ok, failed (non-zero exit) or timeout. Output goes to log_path."""
    started = time.perf_counter()
    with log_path.open("w") as log:
        log.write("$ " + " ".join(argv) + "\n\n")
        log.flush()
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: serve, the fakes and the yardsticks go with it
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            return "timeout", proc.returncode, time.perf_counter() - started
    return ("ok" if code == 0 else "failed"), code, time.perf_counter() - started


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """SIGINT to the part's process group (its cleanup runs), SIGKILL after STOP_GRACE."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tail(path: Path, lines: int = 12) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])


# --- the aims and the table --------------------------------------------------------------------------------


def figures_of(parts: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = parts.get(name)
    return entry.get("figures") if entry and entry.get("status") in ("ok", "checks failed") else None


def verdict(ok: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[ok]


def aims(parts: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(aim: str, part: str, figure: str, met: bool | None, note: str = "") -> None:
        quick = (parts.get(part) or {}).get("quick") and not part.startswith("idle")  # idle: no sizes
        if quick and met is not None:
            note = (note + "; " if note else "") + "quick sizes"
        out.append(
            {"aim": aim, "part": part, "figure": figure, "met": met, "verdict": verdict(met), "note": note}
        )

    for part, where in (("sms-sqlite", "SQLite, 1 process"), ("sms-pg", "PostgreSQL, 2 workers")):
        sms_aims(add, part, where, figures_of(parts, part))
    telegram = figures_of(parts, "telegram-sqlite")
    aim = f"Telegram visit answer, SQLite, 1 process: ≤ {AIM_TELEGRAM_CPU_MS:g} ms server CPU per update"
    if telegram:
        cpu = telegram["serve"]["server_cpu_ms_per_request"]
        ok = cpu <= AIM_TELEGRAM_CPU_MS and telegram["checks"]["ok"] and telegram["serve"]["errors"] == 0
        add(aim, "telegram-sqlite", f"{cpu:.2f} ms/update, {telegram['serve']['rate']:.0f} updates/s", ok)
    else:
        add(aim, "telegram-sqlite", "—", None)
    for part, backend in (("reports-sqlite", "SQLite"), ("reports-pg", "PostgreSQL")):
        report_aim(add, part, backend, figures_of(parts, part))
    for part, label in (("idle-sqlite", "1 worker"), ("idle-pg", "2 workers")):
        idle = figures_of(parts, part)
        if idle:
            memory = idle["idle_memory"]
            add(
                f"`zoufang serve` ({label}) < {AIM_IDLE_MB:g} MB resident when idle",
                part,
                f"{memory['rss_mb']:.0f} MB VmRSS in {processes(memory)} (Pss {memory['pss_mb']} MB)",
                memory["rss_mb"] < AIM_IDLE_MB,
            )
        else:
            add(f"`zoufang serve` ({label}) < {AIM_IDLE_MB:g} MB idle", part, "—", None)
    return out


def sms_aims(add: Callable[..., None], part: str, where: str, sms: dict[str, Any] | None) -> None:
    """The closed-loop ratio, the two open-loop phases and the poll round of one SMS part."""
    ratio_aim = (
        f"inbound SMS, {where}, closed loop: ≥ {AIM_SMS_RATIO[part]:g} × its yardstick, 0 lost or doubled"
    )
    if sms and sms.get("ratio") is not None:
        ok = sms["ratio"] >= AIM_SMS_RATIO[part] and sms["checks"]["ok"]
        add(
            ratio_aim,
            part,
            f"{sms['serve']['rate']:.0f}/s vs {sms['yardstick']['rate']:.0f}/s: {sms['ratio']:.2f}",
            ok,
        )
    else:
        add(ratio_aim, part, "—", None)
    phases = (sms or {}).get("capacity_check") or {}
    for name, aim in (
        (
            "steady",
            f"inbound SMS, {where}, 0.8 × capacity for 60 s: p99 < {AIM_STEADY_P99_MS:g} ms, 0 errors",
        ),
        ("overload", f"inbound SMS, {where}, 2 × capacity for 30 s: 0 HTTP 500, 0 lost (others 503)"),
    ):
        phase = phases.get(name)
        if phase is None:
            add(aim, part, "—", None)
            continue
        serve = phase["serve"]
        figure = (
            f"{serve['rate']:.0f}/s of {serve['target_rate']:g}/s, p99 {serve['p99_ms']:.0f} ms, "
            f"statuses {serve['statuses']}, never 200: {serve['never_200']}"
        )
        add(aim, part, figure, phase["meets_aim"])
    big = (sms or {}).get("poll_send")
    aim = f"queue a poll for {AIM_POLL_SEND_HOUSEHOLDS:,} households, {where.split(',')[0]}: < {AIM_POLL_SEND_S:g} s"
    if big:
        ok = big["seconds"] < AIM_POLL_SEND_S and big["queued"] == big["households"]
        note = "" if big["households"] >= AIM_POLL_SEND_HOUSEHOLDS else f"measured with {big['households']:,}"
        add(aim, part, f"{big['queued']:,} queued in {big['seconds']:.2f} s", ok if not note else None, note)
    else:
        add(aim, part, "—", None)


def report_aim(add: Callable[..., None], part: str, backend: str, reports: dict[str, Any] | None) -> None:
    limit = AIM_REPORT_S[part]
    aim = f"each report ≤ {limit:g} s on {backend} with {AIM_REPORT_POLLS:,} replies (median of 3)"
    if not reports or not reports.get("reports"):
        add(aim, part, "—", None)
        return
    timed = reports["reports"]
    worst = max(timed, key=lambda r: r["median_s"])
    over = [f"{r['name']} {r['median_s']:.2f} s" for r in timed if r["median_s"] > limit or r.get("note")]
    polls = reports.get("rows", {}).get("polls", 0)
    met: bool | None = not over
    note = "over: " + "; ".join(over) if over else ""
    if polls < AIM_REPORT_POLLS:
        met, note = None, f"measured with {polls:,} polls, not {AIM_REPORT_POLLS:,}"
    figure = f"slowest {worst['name']} {worst['median_s']:.2f} s; {len(over)} of {len(timed)} over"
    add(aim, part, figure, met, note)


def processes(memory: dict[str, Any]) -> str:
    n = memory["processes"]
    return f"{n} process{'es' if n != 1 else ''}"


def headline(name: str, f: dict[str, Any]) -> str:
    """One line of figures for the part."""
    if name.startswith(("telegram", "sms")):
        s = f["serve"]
        unit = "updates/s" if name.startswith("telegram") else "requests/s"
        line = f"{s['rate']:.0f} {unit}"
        if s.get("target_rate"):
            line += (
                f" of {s['target_rate']:g} planned ({s['launched_late']} launched late, "
                f"{s['held_for_order']} held for order)"
            )
        line += f", p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, {s['errors']} errors"
        line += f", {s['server_cpu_ms_per_request']:.1f} ms serve CPU/request"
        if "yardstick" in f:
            y = f["yardstick"]
            line += f"; yardstick {y['rate']:.0f}/s p99 {y['p99_ms']:.0f} ms, ratio {f['ratio']:.2f}"
        if not f["checks"]["ok"]:
            line += "; CHECKS FAILED"
        return line
    if name.startswith("reports"):
        timings = f.get("reports", [])
        if not timings:
            return "no report timed"
        limit = AIM_REPORT_S[name]
        worst = max(timings, key=lambda r: r["median_s"])
        within = sum(1 for r in timings if r["median_s"] <= limit and not r.get("note"))
        polls = f.get("rows", {}).get("polls", 0)
        return (
            f"{len(timings)} reports on {polls:,} polls: slowest {worst['name']} {worst['median_s']:.2f} s "
            f"(median), {within} within {limit:g} s"
        )
    if name.startswith("idle"):
        m = f["idle_memory"]
        return f"{m['rss_mb']:.0f} MB VmRSS in {processes(m)}, Pss {m['pss_mb']} MB"
    return ""


def print_summary(results: dict[str, Any]) -> None:
    parts = results["parts"]
    print()
    print(
        f"figures ({'quick sizes' if results.get('quick') else 'full sizes'}), {results['machine']['date']}"
    )
    width = max(len(n) for n in parts) if parts else 10
    for name, entry in parts.items():
        status = entry["status"]
        figures = figures_of(parts, name)
        text = headline(name, figures) if figures else (entry.get("note") or "")
        print(f"  {name:<{width}}  {status:<13} {text}")
    print()
    print("aims")
    for aim in results["aims"]:
        note = f"  ({aim['note']})" if aim["note"] else ""
        print(f"  {aim['verdict']:<13} {aim['aim']}: {aim['figure']}{note}")


# --- the run -----------------------------------------------------------------------------------------------


def selected(only: str | None) -> list[Part]:
    if not only:
        return list(PARTS)
    words = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [p for p in PARTS if any(w == p.name or w in p.name.split("-") for w in words)]
    if not chosen:
        raise SystemExit(f"--only {only}: no such part ({', '.join(p.name for p in PARTS)})")
    return chosen


def command(part: Part, args: argparse.Namespace, db_url: str, json_path: Path) -> list[str]:
    argv = [sys.executable, str(HERE / part.script), *(part.quick if args.quick else part.full)]
    if part.postgres:
        argv += ["--db-url", db_url]
    if part.redis:
        argv += ["--redis-url", args.redis_url]
    return [*argv, "--json", str(json_path)]


def run(args: argparse.Namespace) -> int:
    parts = selected(args.only)
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="zoufang-run-all-"))
    logs.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    info = machine()
    info["postgresql"] = (
        asyncio.run(postgres_version(args.pg_admin_url)) if any(p.postgres for p in parts) else None
    )
    info["redis"] = redis_version(args.redis_url) if any(p.redis for p in parts) else None
    scratch = f"zoufang_bench_{os.getpid()}"
    db_url = database_url(args.pg_admin_url, scratch)
    if info["postgresql"]:
        asyncio.run(scratch_database(args.pg_admin_url, scratch, create=True))
    print(
        f"{len(parts)} parts ({'quick' if args.quick else 'full'} sizes); logs in {logs}; "
        f"PostgreSQL {info['postgresql'] or 'absent'}"
        + (f" (scratch database {scratch})" if info["postgresql"] else "")
        + f"; Redis {info['redis'] or 'absent'}",
        flush=True,
    )
    results: dict[str, Any] = {"parts": {}}
    if args.only and out.exists():  # keep the figures of the parts not run now
        with contextlib.suppress(ValueError):
            results = json.loads(out.read_text(encoding="utf-8"))
            results.setdefault("parts", {})
    failures = 0
    try:
        for i, part in enumerate(parts, 1):
            entry: dict[str, Any] = {"what": part.what, "script": part.script, "quick": args.quick}
            missing = (part.postgres and not info["postgresql"]) or (part.redis and not info["redis"])
            if missing:
                need = "PostgreSQL" if part.postgres and not info["postgresql"] else "Redis"
                entry |= {"status": "skipped", "note": f"skipped: {need} does not answer"}
                print(f"[{i}/{len(parts)}] {part.name}: {entry['note']}", flush=True)
                results["parts"][part.name] = entry
                continue
            json_path, log_path = logs / f"{part.name}.json", logs / f"{part.name}.log"
            json_path.unlink(missing_ok=True)
            argv = command(part, args, db_url, json_path)
            timeout = max(300.0, part.timeout / 4) if args.quick else part.timeout
            shown = {db_url: "postgresql+asyncpg://root@127.0.0.1/<scratch>", str(json_path): "<part>.json"}
            entry["command"] = "python " + " ".join(
                [f"benchmarks/{part.script}", *(shown.get(a, a) for a in argv[2:])]
            )
            print(
                f"[{i}/{len(parts)}] {part.name}: {entry['command']}  (timeout {timeout:.0f} s)", flush=True
            )
            load_before = os.getloadavg()[0]
            status, code, seconds = run_part(part, argv, timeout, log_path)
            if json_path.exists():
                entry["figures"] = json.loads(json_path.read_text(encoding="utf-8"))
                if status == "failed":  # it measured, then a check failed (or a report): the figures stand
                    status = "checks failed"
            elif status == "ok":
                status = "failed"  # exited 0 without figures
            entry |= {
                "status": status,
                "exit_code": code,
                "seconds": round(seconds, 1),
                "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
            }
            if status != "ok":
                failures += 1
                entry["note"] = f"{status} (exit code {code}); log: {log_path}"
                print(f"  {status} after {seconds:.0f} s:\n{tail(log_path)}", flush=True)
            if "figures" in entry:
                print(f"  done in {seconds:.0f} s: {headline(part.name, entry['figures'])}", flush=True)
            results["parts"][part.name] = entry
    finally:
        if info["postgresql"]:
            asyncio.run(scratch_database(args.pg_admin_url, scratch, create=False))
    results["parts"] = {p.name: results["parts"][p.name] for p in PARTS if p.name in results["parts"]}
    results |= {
        "generated": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "quick": args.quick,
        "machine": info,
        "aims": aims(results["parts"]),
    }
    write_json(out, results)
    print_summary(results)
    print(f"\nwrote {out}")
    return 1 if failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every part")
    parser.add_argument(
        "--only",
        help="parts to run, comma-separated: a name (sms-pg) or a word of names (sms, pg, idle, reports)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"the JSON to write (default {DEFAULT_OUT.relative_to(ROOT)}; with --quick, in the temp folder)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=ADMIN_URL,
        help=f"PostgreSQL URL to create the scratch database through (default {ADMIN_URL})",
    )
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help=f"a Redis database to FLUSH and use (default {REDIS_URL})"
    )
    parser.add_argument("--logs", help="folder for each part's log and JSON (default: a new temp folder)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "zoufang-bench-quick.json" if args.quick else DEFAULT_OUT
    return args


if __name__ == "__main__":
    sys.exit(run(parse_args()))
