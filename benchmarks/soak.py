"""Benchmark: a bounded soak of `zoufang serve` — SMS replies, Telegram visits and report reads, mixed, for minutes.

One command does everything::

    python benchmarks/soak.py [--minutes 10] [--db sqlite|postgresql] [--rate-sms 50] [--rate-telegram 10]
        [--report-every 5] [--output benchmarks/results/soak.json]

1. A fresh database — a SQLite file in a temp folder, or with --db postgresql a scratch database
   `zoufang_soak_<pid>` created through --pg-admin-url and dropped at the end — with the demo roster and
   --cadres cadres bound to Telegram users (telegram_webhook.prepare_database), then --households more
   households with distinct phones (sms_inbound.write_households) and `zoufang poll send` per township, so every
   household has a poll waiting.
2. The fake Bot API (telegram_webhook's thin fake) and the fake Twilio API (tests.fake_twilio, sms_inbound's
   role) as child processes; `zoufang serve` with both configured, the outbox sender at --sms-send-rate and no
   quiet hours (so the outbound SMS are sent while the soak runs, whatever the hour).
3. For --minutes (at most 60), at the same time: signed inbound replies at --rate-sms, open loop
   (sms_inbound.drive_at_rate: each villager's messages in order, ~2 % posted twice as Twilio retries, a 503
   posted again); the chats walking whole visits (telegram_webhook.Chat), their updates paced to
   --rate-telegram overall, ~1 % of the recorded ones delivered twice as Telegram redelivers; and every
   --report-every seconds one `zoufang report … --format csv` subprocess against the same database, the
   reports in turn.
4. Every --sample-every seconds: serve's resident memory (VmRSS of its processes, summed; Pss), its CPU
   seconds, open files, the database's size and what has been stored so far. The memory at the start is read
   after --warmup seconds of load; the end after the load.
5. Then the outbox is let drain, serve stopped, and every message accounted for: each MessageSid stored once
   in processed_updates (none lost, none doubled, none unknown) and every poll as the pure machine says
   (sms_inbound.check_database); each Telegram update answered 200 that reaches a visit stored once, the visits
   submitted as the generator completed them; the outbound SMS the fake received as the outbox marks sent;
   the report reads that succeeded. Errors (non-2xx, exceptions, failed reads, tracebacks in serve's log) are
   counted by kind.
6. Prints a summary and writes the figures as JSON (--output, under "runs" → the backend, the other
   backend's run kept); exits 1 when anything was lost, doubled or failed (2 when the benchmark itself
   could not run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# run as `python benchmarks/soak.py`: the folder is on sys.path
import sms_inbound as sms
import telegram_webhook as tg
from harness import (
    BenchError,
    CpuMeter,
    Result,
    Serve,
    Store,
    backend_name,
    child_env,
    free_port,
    in_run_folder,
    is_postgres,
    machine,
    memory,
    process_tree,
    redacted,
    run_benchmark,
    run_cli,
    scan_log,
    start_child,
    tree_reading,
    write_json,
    zoufang_command,
)
from run_all import ADMIN_URL, scratch_database
from run_all import database_url as scratch_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_MINUTES = 60.0
REPORTS: tuple[tuple[str, ...], ...] = (
    ("satisfaction",),
    ("coverage",),
    ("satisfaction", "--by", "cadre"),
    ("households",),
    ("integrity",),
    ("problems",),
)
REPORT_TIMEOUT_S = 120.0
# the Telegram inputs the visit flow records in processed_updates (its dedupe key); /visit and the household
# pick start a visit, a several-of tick toggles: a redelivery of those would not be a no-op
RECORDED_KINDS = frozenset({"tap", "text", "location", "photo"})
REDELIVER_SHARE = 0.01
DRAIN_S = 60.0  # at most this long after the load for the outbox to send what is queued


# --- the load: Telegram updates at a steady rate ---------------------------------------------------------


class Pacer:
    """Send slots 1/rate apart. A slot nobody was ready for is not made up later in a burst."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self.next = 0.0

    def take(self) -> float:
        slot = max(self.next, time.perf_counter())
        self.next = slot + self.gap
        return slot


@dataclass
class PacedLoad(tg.Load):
    """telegram_webhook's Load, paced to `rate` updates/s overall until `deadline` (then the chats stop, as
    when the budget runs out); a few recorded updates posted again right after their 200, as Telegram
    redelivers. Counts the 200s per kind and keeps the update_ids whose 200 must leave a processed row."""

    rate: float = 10.0
    deadline: float = 0.0
    seed: int = 17
    answered: Counter[str] = field(default_factory=Counter)
    recorded: set[int] = field(default_factory=set)
    redelivered: int = 0
    elapsed: float = 0.0
    completed: int = 0
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pacer = Pacer(self.rate)
        self.rng = random.Random(self.seed)

    async def paced(self, update: dict[str, Any], kind: str) -> int:
        slot = self.pacer.take()
        if slot >= self.deadline:  # the chats stop at the deadline, not one slot after another past it
            raise tg.OutOfBudget
        await asyncio.sleep(max(0.0, slot - time.perf_counter()))
        try:
            status = await super().post(update, kind)
        except Exception:  # aiohttp's ServerDisconnectedError and kin are no OSError: count, do not crash
            self.statuses[-2] += 1
            return -2
        self.answered[kind] += status == 200
        return status

    async def post(self, update: dict[str, Any], kind: str) -> int:
        status = await self.paced(update, kind)
        if status == 200 and kind in RECORDED_KINDS:
            self.recorded.add(int(update["update_id"]))
            if self.rng.random() < REDELIVER_SHARE:
                await self.paced(update, "redelivery")  # its status is counted; the walk goes on either way
                self.redelivered += 1
        return status


async def walk(chat: tg.Chat) -> None:
    """One chat until the deadline; a generator out of step stops that chat only (and is a failure)."""
    try:
        await chat.run()
    except BenchError as exc:
        chat.failure = str(exc)


async def drive_telegram(
    base: str, chats: list[tg.ChatCadre], args: argparse.Namespace, deadline: float
) -> PacedLoad:
    import aiohttp

    from survey.script import load_script

    script = load_script()
    connector = aiohttp.TCPConnector(limit=len(chats))
    async with aiohttp.ClientSession(connector=connector) as client, Store(args.url) as store:
        load = PacedLoad(
            client,
            base + tg.WEBHOOK,
            10**9,
            len(chats),
            {"X-Telegram-Bot-Api-Secret-Token": tg.SECRET},
            rate=args.rate_telegram,
            deadline=deadline,
        )
        walkers = [tg.Chat(load, c, store, script, seed=i) for i, c in enumerate(chats)]
        started = time.perf_counter()
        await asyncio.gather(*(walk(w) for w in walkers))
        load.elapsed = time.perf_counter() - started
    load.completed = sum(w.completed for w in walkers)
    load.failures = [f"{w.cadre.code}: {w.failure}" for w in walkers if w.failure]
    return load


# --- the load: report reads ------------------------------------------------------------------------------


@dataclass
class ReportReads:
    done: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    slowest: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.done.values()) + sum(self.failed.values())


async def read_report(which: tuple[str, ...], env: dict[str, str], folder: Path, reads: ReportReads) -> None:
    """`zoufang report … --format csv` as county staff run it: exit 0 and at least a header row."""
    name = " ".join(which)
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        zoufang_command(),
        "report",
        *which,
        "--format",
        "csv",
        env=env,
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), REPORT_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        reads.failed[f"{name}: timeout"] += 1
        return
    took = time.perf_counter() - started
    if proc.returncode != 0 or not out.strip():
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        reads.failed[f"{name}: exit {proc.returncode}: {reason[0][:100]}"] += 1
        return
    reads.done[name] += 1
    reads.seconds.append(took)
    reads.slowest[name] = max(took, reads.slowest.get(name, 0.0))


async def read_reports(env: dict[str, str], folder: Path, every: float, deadline: float) -> ReportReads:
    """A read every `every` seconds (the next right after a slow one), the reports in turn."""
    reads = ReportReads()
    started = time.perf_counter()
    n = 0
    while (at := started + n * every) < deadline:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        await read_report(REPORTS[n % len(REPORTS)], env, folder, reads)
        n += 1
    return reads


# --- serve's memory, CPU and the database over time ------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    pss_mb: float | None
    anon_mb: float  # the heap and stacks: a leak grows this
    file_mb: float  # mapped files: the code, and SQLite's database file (mmap_size), which grows with it
    processes: int
    serve_cpu_s: float
    open_files: int
    db_mb: float
    stored_sms: int
    stored_telegram: int
    load_1m: float


def rss_split(pid: int) -> tuple[float, float]:
    """RssAnon and RssFile + RssShmem of serve's processes (MB, summed): VmRSS alone mixes a growing heap
    with the pages of the growing database file that SQLite reads through mmap."""
    anon = mapped = 0.0
    for each in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{each}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "RssAnon":
                    anon += int(rest.split()[0]) / 1024
                elif key in ("RssFile", "RssShmem"):
                    mapped += int(rest.split()[0]) / 1024
    return round(anon, 1), round(mapped, 1)


def open_files(pid: int) -> int:
    """File descriptors of serve's processes: connections or files left open would show here first."""
    count = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{each}/fd"))
    return count


async def database_mb(store: Store) -> float:
    if store.postgres:
        return int(await store.value("SELECT pg_database_size(current_database())")) / 1024**2
    files = (Path(store.path), Path(store.path + "-wal"))
    return sum(f.stat().st_size for f in files if f.exists()) / 1024**2


async def stored_counts(store: Store) -> tuple[int, int]:
    rows = dict(await store.fetch("SELECT source, count(*) FROM processed_updates GROUP BY source"))
    telegram = sum(int(n) for source, n in rows.items() if str(source).startswith("telegram"))
    return int(rows.get("twilio", 0)), telegram


async def sample(pid: int, store: Store, t0: float) -> Sample:
    mem = memory(pid)
    anon, mapped = rss_split(pid)
    sms_rows, telegram_rows = await stored_counts(store)
    return Sample(
        t_s=round(time.perf_counter() - t0, 1),
        rss_mb=mem["rss_mb"],
        pss_mb=mem["pss_mb"],
        anon_mb=anon,
        file_mb=mapped,
        processes=mem["processes"],
        serve_cpu_s=round(sum(cpu for cpu, _ in tree_reading(pid).values()), 2),
        open_files=open_files(pid),
        db_mb=round(await database_mb(store), 1),
        stored_sms=sms_rows,
        stored_telegram=telegram_rows,
        load_1m=round(os.getloadavg()[0], 2),
    )


async def keep_sampling(pid: int, url: str, every: float, t0: float, samples: list[Sample]) -> None:
    """A sample every `every` seconds until cancelled, each with one progress line."""
    async with Store(url) as store:
        while True:
            s = await sample(pid, store, t0)
            samples.append(s)
            print(
                f"  … {s.t_s:5.0f} s: RSS {s.rss_mb:.1f} MB (anon {s.anon_mb:.1f}), serve CPU {s.serve_cpu_s:.0f} s, "
                f"{s.open_files} fds, db {s.db_mb:.1f} MB, stored SMS {s.stored_sms}, "
                f"Telegram {s.stored_telegram}, load {s.load_1m}",
                flush=True,
            )
            await asyncio.sleep(every)


# --- the database --------------------------------------------------------------------------------------


async def prepare(args: argparse.Namespace, folder: Path) -> tuple[list[tg.ChatCadre], dict[str, int]]:
    """The Telegram benchmark's database (roster, bound cadres), more households, a poll for each."""
    from bot.demo import TOWNSHIPS

    chats = await tg.prepare_database(folder, args.cadres, args.url)
    sms.write_households(folder, args.households, random.Random(11), phone_base=38_000_000_00)
    env = child_env(ZOUFANG_DB_URL=args.url)
    run_cli(["import", "households", str(folder / "households.csv")], env, folder)  # added to the demo's
    for township in TOWNSHIPS:
        print(f"  {run_cli(['poll', 'send', '--township', township], env, folder)}", flush=True)
    async with Store(args.url) as store:
        polls = dict(await store.fetch("SELECT phone, id FROM polls WHERE state = 'sent'"))
    if len(polls) < args.households:
        raise BenchError(
            f"{len(polls)} polls waiting after `zoufang poll send`, expected ≥ {args.households}"
        )
    return chats, polls


def serve_env(args: argparse.Namespace, telegram_url: str, twilio_url: str) -> dict[str, str]:
    env = tg.serve_env(args, args.url, telegram_url)
    return env | {
        "SMS_BACKEND": "twilio",
        "TWILIO_API_BASE": twilio_url,
        "TWILIO_ACCOUNT_SID": sms.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": sms.TOKEN,
        "TWILIO_FROM_NUMBER": sms.TO_NUMBER,
        "PUBLIC_BASE_URL": sms.PUBLIC_BASE,
        "ZOUFANG_SMS_RATE": str(args.sms_send_rate),
        "ZOUFANG_QUIET_HOURS": "",  # the outbox sends whatever the hour the soak runs at
    }


async def outbox_counts(store: Store) -> dict[str, int]:
    rows = await store.fetch(
        "SELECT status, count(*) FROM outbox_messages WHERE channel = 'sms' GROUP BY status"
    )
    return {str(status): int(n) for status, n in rows}


async def drain_outbox(url: str, limit: float) -> float:
    """Wait until no SMS is queued or being sent (or `limit` seconds); how long it took."""
    started = time.perf_counter()
    async with Store(url) as store:
        while time.perf_counter() - started < limit:
            counts = await outbox_counts(store)
            if not counts.get("queued") and not counts.get("sending"):
                break
            await asyncio.sleep(1.0)
    return time.perf_counter() - started


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What the soak measured, for the checks, the summary and the JSON."""

    plan: sms.Plan
    polls: dict[str, int]
    chats: list[tg.ChatCadre]
    idle: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    warm_sample: Sample | None = None
    end_sample: Sample | None = None
    sms_result: Result | None = None
    telegram: PacedLoad | None = None
    reads: ReportReads = field(default_factory=ReportReads)
    cpu: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    drain_s: float = 0.0
    writer: dict[str, Any] = field(default_factory=dict)
    fake_twilio: dict[str, Any] = field(default_factory=dict)
    fake_telegram: dict[str, Any] = field(default_factory=dict)
    log_lines: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)


async def warm_mark(run: Run, pid: int, url: str, warmup: float, t0: float) -> None:
    """The memory `warmup` seconds into the load: the soak's start (caches, pools and imports filled)."""
    await asyncio.sleep(warmup)
    async with Store(url) as store:
        run.warm_sample = await sample(pid, store, t0)


async def run_load(run: Run, serve: Serve, meter: CpuMeter, args: argparse.Namespace, folder: Path) -> None:
    seconds = args.minutes * 60
    report_env = child_env(ZOUFANG_DB_URL=args.url)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter.start()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    sampler = asyncio.create_task(keep_sampling(serve.pid, args.url, args.sample_every, t0, run.samples))
    warm = asyncio.create_task(warm_mark(run, serve.pid, args.url, args.warmup, t0))
    run.sms_result, run.telegram, run.reads = await asyncio.gather(
        sms.drive_at_rate("sms", serve.base + sms.INBOUND, run.plan, args.rate_sms, CpuMeter({})),
        drive_telegram(serve.base, run.chats, args, deadline),
        read_reports(report_env, folder, args.report_every, deadline),
    )
    run.elapsed = time.perf_counter() - t0
    run.cpu = meter.stop()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report subprocesses, reaped
    run.cpu["report_cli"] = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    sampler.cancel()
    await warm
    async with Store(args.url) as store:
        run.end_sample = await sample(serve.pid, store, t0)
    run.samples.append(run.end_sample)


async def soak(args: argparse.Namespace, folder: Path) -> Run:
    print(
        f"preparing {redacted(args.url)}: roster, {args.cadres} bound cadres, {args.households} households",
        flush=True,
    )
    chats, polls = await prepare(args, folder)
    requests = max(1, round(args.rate_sms * args.minutes * 60))
    plan = sms.make_plan(list(polls), requests, random.Random(3))
    run = Run(plan, polls, chats)
    print(
        f"  {len(polls)} polls waiting; {plan.unique} SMS replies planned + {plan.resends} resends; "
        f"{len(chats)} chats walking visits",
        flush=True,
    )
    fake_tg = start_child(tg.SCRIPT, "fake-thin", ["--role", "fake-thin", "--port", str(free_port())], folder)
    fake_sms = start_child(sms.SCRIPT, "fake-twilio", ["--role", "fake-twilio"], folder)
    serve: Serve | None = None
    try:
        telegram_url = await asyncio.to_thread(fake_tg.wait_ready)
        twilio_url = await asyncio.to_thread(fake_sms.wait_ready)
        serve = Serve(folder, serve_env(args, telegram_url, twilio_url), args.workers)
        await serve.start()
        run.idle = serve.idle
        print(
            f"zoufang serve pid {serve.pid} on {serve.base}: idle {serve.idle['rss_mb']:.1f} MB resident; "
            f"soaking for {args.minutes:g} min",
            flush=True,
        )
        meter = CpuMeter.of(
            {"serve": serve.pid, "fake_telegram": fake_tg.proc.pid, "fake_twilio": fake_sms.proc.pid},
            args.url,
            args.redis_url,
        )
        await run_load(run, serve, meter, args, folder)
        print(
            f"load done after {run.elapsed:.0f} s; letting the outbox drain (≤ {DRAIN_S:.0f} s)", flush=True
        )
        run.drain_s = await drain_outbox(args.url, DRAIN_S)
        run.writer = await sms.writer_stats(serve.base)
    finally:
        if serve is not None:
            serve.stop()
        run.fake_telegram = fake_tg.stop()
        run.fake_twilio = fake_sms.stop()
    if serve is not None:
        run.log_lines, run.exceptions = scan_log(serve.log_path)
    return run


# --- the accounting ------------------------------------------------------------------------------------


async def account_sms(store: Store, run: Run) -> dict[str, Any]:
    """Every MessageSid sent is stored once; the polls are what the machine says (sms_inbound's check)."""
    lines, failures = await sms.check_database(store, run.plan, run.polls)
    rows = [
        str(sid)
        for (sid,) in await store.fetch("SELECT external_id FROM processed_updates WHERE source = 'twilio'")
    ]
    stored = set(rows)
    sent = {m.sid for messages in run.plan.per_phone.values() for m in messages}
    result = run.sms_result
    assert result is not None
    return {
        "requests": result.sent,
        "distinct_message_sids": run.plan.unique,
        "resends": run.plan.resends,
        "rate": round(result.rate, 1),
        "target_rate": result.target_rate,
        "answered_200": result.statuses.get(200, 0),
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "retried_after_503": result.retried,
        "never_200": result.unanswered,
        "stored": len(stored),
        "lost": len(sent - stored),
        "doubled": len(rows) - len(stored),
        "unknown": len(stored - sent),
        "latency_ms": latency(result.latencies),
        "service_latency_ms": latency(result.service),
        "launched_late": result.late,
        "held_for_order": result.held,
        "inbound_writer": run.writer,
        "check_lines": lines,
        "check_failures": failures,
    }


async def account_telegram(store: Store, run: Run) -> dict[str, Any]:
    """Each recorded update answered 200 left one processed row; the visits submitted are those completed."""
    load = run.telegram
    assert load is not None
    rows = [
        int(uid)
        for (uid,) in await store.fetch(
            "SELECT external_id FROM processed_updates WHERE source LIKE 'telegram%'"
        )
    ]
    stored = set(rows)
    db = await tg.database_counts(store)
    return {
        "updates": load.taken,
        "rate": round(load.taken / load.elapsed, 1) if load.elapsed else 0.0,
        "target_rate": load.rate,
        "chats": len(run.chats),
        "kinds": dict(load.kinds.most_common()),
        "answered_200": load.statuses.get(200, 0),
        "answered_200_by_kind": dict(load.answered.most_common()),
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "redelivered": load.redelivered,
        "recorded_expected": len(load.recorded),
        "processed": len(stored),
        "lost": len(load.recorded - stored),
        "doubled": len(rows) - len(stored),
        "unknown": len(stored - load.recorded),
        "visits_completed": load.completed,
        "visits_submitted": db.get("submitted", 0),
        "visits_draft": db.get("draft", 0),
        "visits_cancelled": db.get("cancelled", 0),
        "answers": db["answers"],
        "chats_stopped": load.failures,
        "latency_ms": latency(load.latencies),
        "bot_api_calls": sum(run.fake_telegram.values()),
    }


async def account_outbound(store: Store, run: Run, send_rate: float) -> dict[str, Any]:
    """The outbox rows by status, and what the fake Twilio received: as many as were marked sent."""
    counts = await outbox_counts(store)
    return {
        "outbox_rows": sum(counts.values()),
        "by_status": counts,
        "received_by_fake": run.fake_twilio.get("sent"),
        "send_rate": send_rate,
        "drain_s": round(run.drain_s, 1),
    }


def latency(values: list[float]) -> dict[str, float]:
    """p50, p99 and max in ms (the harness's percentile, on any list of seconds)."""
    helper = Result("", 0, 0.0, values, Counter())
    return {
        "p50": round(helper.percentile(50), 1),
        "p99": round(helper.percentile(99), 1),
        "max": round(max(values, default=0.0) * 1000, 1),
    }


def memory_figures(run: Run) -> dict[str, Any]:
    """Start (after warm-up), end, peak, growth and its slope over the samples after warm-up (MB/min)."""
    start, end = run.warm_sample, run.end_sample
    assert start is not None and end is not None
    after = [s for s in run.samples if s.t_s >= start.t_s]
    return {
        "idle_rss_mb": run.idle.get("rss_mb"),
        "start_rss_mb": start.rss_mb,
        "start_at_s": start.t_s,
        "end_rss_mb": end.rss_mb,
        "peak_rss_mb": max(s.rss_mb for s in [*run.samples, start]),
        "growth_mb": round(end.rss_mb - start.rss_mb, 1),
        "slope_mb_per_min": round(slope([(s.t_s, s.rss_mb) for s in after]) * 60, 2),
        "start_pss_mb": start.pss_mb,
        "end_pss_mb": end.pss_mb,
        "start_anon_mb": start.anon_mb,
        "end_anon_mb": end.anon_mb,
        "anon_growth_mb": round(end.anon_mb - start.anon_mb, 1),
        "anon_slope_mb_per_min": round(slope([(s.t_s, s.anon_mb) for s in after]) * 60, 2),
        "start_file_mb": start.file_mb,
        "end_file_mb": end.file_mb,
        "start_open_files": start.open_files,
        "end_open_files": end.open_files,
    }


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per second): one noisy sample at the end does not decide a leak."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def errors_by_kind(
    sms_f: dict[str, Any], tg_f: dict[str, Any], out_f: dict[str, Any], run: Run
) -> Counter[str]:
    errors: Counter[str] = Counter()
    for prefix, figures in (("sms", sms_f), ("telegram", tg_f)):
        for status, n in figures["statuses"].items():
            if status != "200":
                errors[f"{prefix} HTTP {status}"] += n
        for what in ("lost", "doubled", "unknown"):
            if figures[what]:
                errors[f"{prefix} {what}"] += figures[what]
    if sms_f["never_200"]:
        errors["sms never answered 200"] += sms_f["never_200"]
    errors.update(f"sms check: {name}" for name in sms_f["check_failures"])
    errors.update(f"telegram chat stopped: {f[:100]}" for f in tg_f["chats_stopped"])
    if tg_f["visits_submitted"] != tg_f["visits_completed"]:
        errors["telegram visits submitted ≠ completed"] += 1
    if out_f["by_status"].get("failed"):
        errors["outbound SMS failed"] += out_f["by_status"]["failed"]
    if out_f["received_by_fake"] != out_f["by_status"].get("sent", 0):
        errors["outbound SMS received ≠ marked sent"] += 1
    errors.update({f"report {k}": n for k, n in run.reads.failed.items()})
    errors.update({f"serve log: {k}": n for k, n in run.exceptions.items()})
    return errors


async def account(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    async with Store(args.url) as store:
        sms_f = await account_sms(store, run)
        tg_f = await account_telegram(store, run)
        out_f = await account_outbound(store, run, args.sms_send_rate)
    errors = errors_by_kind(sms_f, tg_f, out_f, run)
    reads = run.reads
    return {
        "benchmark": "soak",
        "backend": backend_name(args.url),
        "workers": args.workers,
        "settings": settings_used(args),
        "elapsed_s": round(run.elapsed, 1),
        "memory": memory_figures(run),
        "idle_memory": run.idle,
        "cpu_s": {k: round(v, 1) for k, v in run.cpu.items()},
        "serve_cpu_share": round(run.cpu.get("serve", 0.0) / run.elapsed, 3) if run.elapsed else None,
        "sms": sms_f,
        "telegram": tg_f,
        "outbound_sms": out_f,
        "reports": {
            "reads": reads.total,
            "succeeded": sum(reads.done.values()),
            "failed": sum(reads.failed.values()),
            "by_report": dict(reads.done),
            "p50_s": round(sorted(reads.seconds)[len(reads.seconds) // 2], 2) if reads.seconds else None,
            "slowest_s": {k: round(v, 2) for k, v in reads.slowest.items()},
        },
        "serve_log": {"lines": run.log_lines, "exceptions": dict(run.exceptions)},
        "errors": dict(errors),
        "ok": not errors,
        "series": [asdict(s) for s in run.samples],
        "machine": machine(),
    }


def settings_used(args: argparse.Namespace) -> dict[str, Any]:
    keep = (
        "minutes",
        "rate_sms",
        "rate_telegram",
        "report_every",
        "sample_every",
        "warmup",
        "cadres",
        "households",
        "sms_send_rate",
        "workers",
    )
    out = {k: getattr(args, k) for k in keep}
    out["db_url"] = redacted(args.url) if is_postgres(args.url) else "sqlite (temp file)"
    out["redis_url"] = args.redis_url or None
    return out


# --- the summary ---------------------------------------------------------------------------------------


def summary(f: dict[str, Any]) -> list[str]:
    mem, s, t, o, r = f["memory"], f["sms"], f["telegram"], f["outbound_sms"], f["reports"]
    cpu = f["cpu_s"]
    lines = [
        f"soak: zoufang serve ({f['backend']}, {f['workers']} worker) for {f['elapsed_s']:.0f} s, load average "
        f"{f['machine']['load_average_1m']} at the end",
        f"  memory      idle {mem['idle_rss_mb']} MB; start (after {mem['start_at_s']:.0f} s) {mem['start_rss_mb']} MB, "
        f"end {mem['end_rss_mb']} MB, peak {mem['peak_rss_mb']} MB: growth {mem['growth_mb']:+.1f} MB "
        f"({mem['slope_mb_per_min']:+.2f} MB/min fitted); anon (heap) {mem['start_anon_mb']} → "
        f"{mem['end_anon_mb']} MB ({mem['anon_slope_mb_per_min']:+.2f} MB/min), mapped files {mem['start_file_mb']} → "
        f"{mem['end_file_mb']} MB; open files {mem['start_open_files']} → {mem['end_open_files']}",
        f"  CPU         serve {cpu.get('serve', 0):.1f} s ({f['serve_cpu_share']:.0%} of a core), "
        + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items() if k != "serve"),
        f"  SMS in      {s['requests']} posted ({s['distinct_message_sids']} MessageSids + {s['resends']} resends) "
        f"at {s['rate']}/s of {s['target_rate']:g}/s; 200: {s['answered_200']}, statuses {s['statuses']}; "
        f"stored {s['stored']}, lost {s['lost']}, doubled {s['doubled']}, unknown {s['unknown']}; "
        f"latency p50 {s['latency_ms']['p50']} ms, p99 {s['latency_ms']['p99']} ms, max {s['latency_ms']['max']} ms",
        *(f"              {line}" for line in s["check_lines"]),
        f"  Telegram    {t['updates']} updates ({t['redelivered']} redelivered) from {t['chats']} chats at "
        f"{t['rate']}/s of {t['target_rate']:g}/s; 200: {t['answered_200']}, statuses {t['statuses']}; "
        f"recorded {t['recorded_expected']} → processed {t['processed']}, lost {t['lost']}, doubled "
        f"{t['doubled']}, unknown {t['unknown']}; latency p50 {t['latency_ms']['p50']} ms, p99 "
        f"{t['latency_ms']['p99']} ms",
        f"              visits completed {t['visits_completed']}, submitted {t['visits_submitted']}, drafts left "
        f"{t['visits_draft']}; answers {t['answers']}; Bot API calls {t['bot_api_calls']}",
        f"  SMS out     outbox {o['by_status']} at {o['send_rate']:g}/s; the fake Twilio received "
        f"{o['received_by_fake']} (drained in {o['drain_s']:.0f} s)",
        f"  reports     {r['succeeded']} of {r['reads']} reads succeeded (p50 {r['p50_s']} s; slowest "
        + ", ".join(f"{k} {v} s" for k, v in r["slowest_s"].items())
        + ")",
        f"  serve log   {f['serve_log']['lines']} lines, exceptions {f['serve_log']['exceptions'] or 'none'}",
        f"  errors      {f['errors'] or 'none'}",
    ]
    return lines


# --- the entry point -----------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))  # tests.fake_telegram (update builders) is not an installed package
    scratch = ""
    if args.db == "postgresql":
        scratch = f"zoufang_soak_{os.getpid()}"
        await scratch_database(args.pg_admin_url, scratch, create=True)
    try:
        return await in_run_folder(args, "zoufang-soak-", "database, serve.log", run_in)
    finally:
        if scratch:
            await scratch_database(args.pg_admin_url, scratch, create=False)


async def run_in(args: argparse.Namespace, folder: Path) -> int:
    from storage.db import sqlite_url

    if args.db == "postgresql":
        args.url = scratch_url(args.pg_admin_url, f"zoufang_soak_{os.getpid()}")
    else:
        args.url = sqlite_url(folder / "zoufang.db")
    run = await soak(args, folder)
    figures = await account(run, args)
    print()
    for line in summary(figures):
        print(line)
    write_json(args.output, merged(args.output, figures))
    print(f"wrote {args.output} ({figures['backend']})")
    return 0 if figures["ok"] else 1


def merged(path: Path, figures: dict[str, Any]) -> dict[str, Any]:
    """The output file's runs with this one in its backend's place (a SQLite and a PostgreSQL soak side by
    side, as run_all keeps the parts it did not run)."""
    runs: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        runs = dict(json.loads(path.read_text(encoding="utf-8")).get("runs", {}))
    runs[figures["backend"]] = figures
    return {"benchmark": "soak", "runs": runs}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--minutes", type=float, default=10.0, help=f"load duration (default 10, at most {MAX_MINUTES:g})"
    )
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql"), default="sqlite", help="the backend (default sqlite)"
    )
    parser.add_argument(
        "--pg-admin-url", default=ADMIN_URL, help=f"where the scratch database is made (default {ADMIN_URL})"
    )
    parser.add_argument("--rate-sms", type=float, default=50.0, help="inbound SMS replies/s (default 50)")
    parser.add_argument(
        "--rate-telegram", type=float, default=10.0, help="Telegram updates/s overall (default 10)"
    )
    parser.add_argument(
        "--report-every", type=float, default=5.0, help="seconds between report reads (default 5)"
    )
    parser.add_argument(
        "--sample-every", type=float, default=10.0, help="seconds between memory samples (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds of load before the start memory (default 30)"
    )
    parser.add_argument(
        "--cadres", type=int, default=40, help="chats walking visits, one cadre each (default 40)"
    )
    parser.add_argument(
        "--households",
        type=int,
        default=None,
        help="households polled by SMS (default: a third of the replies, 200–20000)",
    )
    parser.add_argument(
        "--sms-send-rate", type=float, default=50.0, help="ZOUFANG_SMS_RATE, the outbox's SMS/s (default 50)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="`zoufang serve --workers N` (default 1; > 1 needs --redis-url)",
    )
    parser.add_argument("--redis-url", default="", help="ZOUFANG_REDIS_URL (a dedicated database)")
    parser.add_argument(
        "--output", type=Path, default=HERE / "results" / "soak.json", help="the JSON figures"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (database, logs)")
    parser.set_defaults(role=None, url="")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be above 0 and at most {MAX_MINUTES:g}")
    if min(args.rate_sms, args.rate_telegram, args.report_every, args.sample_every, args.sms_send_rate) <= 0:
        parser.error("the rates and intervals must be above 0")
    if args.cadres < 1 or args.workers < 1:
        parser.error("--cadres and --workers must be at least 1")
    if args.workers > 1 and not args.redis_url:
        parser.error("--workers > 1 with a Telegram bot needs --redis-url")
    if args.households is None:
        args.households = min(20_000, max(200, round(args.rate_sms * args.minutes * 60 / 3)))
    args.warmup = min(args.warmup, args.minutes * 60 / 4)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), {}, main_async)


if __name__ == "__main__":
    sys.exit(main())
