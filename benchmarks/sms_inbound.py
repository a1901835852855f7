"""Benchmark: signed Twilio inbound replies posted to a running `zoufang serve` (SQLite).

One command does everything::

    python benchmarks/sms_inbound.py [--requests N] [--concurrency K] [--households H] [--big B]

1. A temp folder with a fresh SQLite database: `zoufang init`, the demo cadres (bot.demo.write_roster) and H
   households with distinct phones spread over the demo's six villages (county CSV format), imported with
   `zoufang import cadres … --county 示范县` and `zoufang import households …`; then `zoufang poll send
   --township …` for each township, so every household has a poll waiting.
2. A fake Twilio REST API (tests.fake_twilio.FakeTwilio) in its own process, and `zoufang serve --port P` as a
   subprocess with SMS_BACKEND=twilio, TWILIO_API_BASE at the fake, TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL and the
   default ZOUFANG_SMS_RATE (1 SMS/s: the outbox sender runs, as in production, but stays nearly idle).
3. This process posts N inbound replies with unique MessageSids, each signed with twilio's RequestValidator
   for PUBLIC_BASE_URL + /sms/inbound (forms and signatures are built before the clock starts), K in flight,
   one in flight per phone (a villager's messages arrive in order). Each phone follows a script: a rating
   (1/2/满意/基本满意 …), "3 路没修", 不满意 then the reason as a second message, something unclear then a
   rating, or unclear twice; further messages ("谢谢") reach a closed poll. About 2 % of the MessageSids are
   posted a second time right after the first answer (a Twilio retry).
4. Prints requests/s, latency p50/p90/p99/max, non-200s and the CPU seconds of serve, then checks the database:
   processed_updates (source twilio) == distinct MessageSids sent, and every poll's state, rating and reason,
   the problems raised and the outbox rows are what survey.polls (the pure machine) says for the messages sent.
5. The yardstick: a bare aiohttp handler in its own process doing one INSERT + COMMIT per request (SQLite WAL,
   synchronous=NORMAL, one aiosqlite connection), hit by the same generator with the same requests.
6. Queueing a poll for B (default 100,000) households: a separate database (roster inserted with sqlite3
   executemany, not timed), then bot.flows.poll.send_polls — what `zoufang poll send` runs — per township, timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

# run as `python benchmarks/<name>.py`: the folder is on sys.path
from harness import (
    BenchError,
    Result,
    child_env,
    cpu_seconds,
    free_port,
    ready,
    run_cli,
    run_yardstick,
    scan_log,
    start_child,
    until_terminated,
    wait_healthy,
    zoufang_command,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
COUNTY = "示范县"
TOKEN = "bench-twilio-auth-token"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
PUBLIC_BASE = "https://bench.example.cn"
INBOUND = "/sms/inbound"
TO_NUMBER = "+8610690000000"
RESEND_SHARE = 0.02


# --- child processes: the fake Twilio API and the yardstick ----------------------------------------------------


async def run_fake_twilio() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.fake_twilio import FakeTwilio

    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=TOKEN)
    await fake.start()
    ready(fake.base_url)
    await until_terminated()
    print(json.dumps({"sent": len(fake.messages), "attempts": len(fake.attempts)}), flush=True)
    await fake.close()


# --- process helpers ---------------------------------------------------------------------------------------


# --- the roster --------------------------------------------------------------------------------------------


def write_households(folder: Path, count: int, rng: random.Random, phone_base: int) -> list[str]:
    """`count` households over the demo villages (county CSV format), distinct mobiles; their 11-digit numbers."""
    from bot.demo import TOWNSHIPS

    with (folder / "cadres.csv").open(encoding="utf-8-sig") as f:
        helpers = {row["行政村"]: row["干部编号"] for row in csv.DictReader(f) if row["角色"] == "帮扶责任人"}
    villages = [(t, v) for t, vs in TOWNSHIPS.items() for v in vs]
    phones, rows = [], []
    for i in range(count):
        township, village = villages[i % len(villages)]
        phone = f"1{phone_base + i:010d}"
        phones.append(phone)
        rows.append(
            [
                f"BENCH{i + 1:06d}",
                COUNTY,
                township,
                village,
                f"户主{i + 1}",
                phone,
                str(rng.randint(1, 6)),
                rng.choice(["已脱贫", "未脱贫", "监测户"]),
                rng.choice(["因病", "因残", "缺技术", "缺资金"]),
                helpers[village],
            ]
        )
    header = [
        "户编号",
        "县",
        "乡镇",
        "行政村",
        "户主姓名",
        "联系电话",
        "家庭人口",
        "脱贫状态",
        "主要致贫原因",
    ]
    with (folder / "households.csv").open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*header, "帮扶责任人编号"])
        writer.writerows(rows)
    return phones


def prepare_database(folder: Path, households: int) -> tuple[Path, dict[str, int], float]:
    """init, import, then `zoufang poll send` per township; the polls by E.164 phone, and the send time."""
    from bot.demo import TOWNSHIPS, write_roster
    from storage.db import sqlite_url

    db_path = folder / "zoufang.db"
    env = child_env(ZOUFANG_DB_URL=sqlite_url(db_path))
    write_roster(folder, random.Random(7))  # the demo cadres; households.csv is replaced below
    write_households(folder, households, random.Random(11), phone_base=38_000_000_00)
    run_cli(["init"], env, folder)
    run_cli(["import", "cadres", str(folder / "cadres.csv"), "--county", COUNTY], env, folder)
    run_cli(["import", "households", str(folder / "households.csv")], env, folder)
    started = time.perf_counter()
    for township in TOWNSHIPS:
        print(f"  {run_cli(['poll', 'send', '--township', township], env, folder)}", flush=True)
    send_seconds = time.perf_counter() - started
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        polls = dict(conn.execute("SELECT phone, id FROM polls WHERE state = 'sent'").fetchall())
    if len(polls) != households:
        raise BenchError(f"{len(polls)} polls waiting after `zoufang poll send`, expected {households}")
    return db_path, polls, send_seconds


# --- the messages ------------------------------------------------------------------------------------------

SCRIPTS: list[tuple[str, int, Callable[[random.Random], list[str]]]] = [
    ("rating", 50, lambda r: [r.choice(["1", "2", "满意", "基本满意", "非常满意", "1 谢谢", "2。"])]),
    ("不满意+reason (one SMS)", 8, lambda r: [r.choice(["3 路没修", "不满意，自来水冬天冻管"])]),
    (
        "不满意, then reason",
        12,
        lambda r: [r.choice(["3", "不满意"]), r.choice(["村里的路下雨就没法走", "低保没批"])],
    ),
    (
        "unclear, then rating",
        20,
        lambda r: [r.choice(["还行", "一般", "ok", "嗯"]), r.choice(["1", "2", "3 路灯坏了"])],
    ),
    ("unclear twice", 10, lambda r: [r.choice(["还行", "一般"]), r.choice(["差不多吧", "不好说"])]),
]
FILLER = ["谢谢", "好的", "收到", "谢谢关心"]


@dataclass
class Message:
    sid: str
    phone: str  # E.164
    body: str
    data: bytes
    headers: dict[str, str]
    resend: bool = False


@dataclass
class Plan:
    per_phone: dict[str, list[Message]]
    bodies: dict[str, list[str]]  # phone → the distinct messages' bodies, in order
    scripts: Counter[str]
    unique: int
    resends: int

    @property
    def total(self) -> int:
        return self.unique + self.resends


def make_plan(phones: list[str], requests: int, rng: random.Random) -> Plan:
    """`requests` distinct messages over the phones (each phone's script first, filler after), signed, plus ~2 %
    of them posted again right after the first answer."""
    from twilio.request_validator import RequestValidator

    from bot.demo import inbound_form

    validator = RequestValidator(TOKEN)
    url = PUBLIC_BASE + INBOUND
    bodies: dict[str, list[str]] = {}
    scripts: Counter[str] = Counter()
    names, weights = [s[0] for s in SCRIPTS], [s[1] for s in SCRIPTS]
    makers = {s[0]: s[2] for s in SCRIPTS}
    order = list(phones)
    rng.shuffle(order)
    planned = 0
    for phone in order:  # the scripts, as long as the budget lasts
        name = rng.choices(names, weights)[0]
        script = makers[name](rng)
        if planned + len(script) > requests:
            break
        bodies[phone] = script
        scripts[name] += 1
        planned += len(script)
    active = list(bodies)
    while planned < requests:  # then more messages to the (now closed) polls
        bodies[rng.choice(active)].append(rng.choice(FILLER))
        planned += 1
    per_phone: dict[str, list[Message]] = {}
    serial = 0
    resends = 0
    for phone, texts in bodies.items():
        out = per_phone[phone] = []
        for text in texts:
            serial += 1
            sid = f"SM{serial:032x}"
            form = inbound_form(sid, phone, text, account_sid=ACCOUNT_SID, to=TO_NUMBER)
            headers = {
                "X-Twilio-Signature": validator.compute_signature(url, form),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            message = Message(sid, phone, text, urlencode(form).encode(), headers)
            out.append(message)
            if rng.random() < RESEND_SHARE:
                out.append(Message(sid, phone, text, message.data, headers, resend=True))
                resends += 1
    return Plan(per_phone, bodies, scripts, serial, resends)


# --- the load generator ------------------------------------------------------------------------------------


async def drive(name: str, url: str, plan: Plan, concurrency: int, pids: dict[str, int]) -> Result:
    """K workers; a phone's messages go one at a time, in order (a worker takes a phone, posts its next
    message, and puts the phone back at the end of the line)."""
    import aiohttp

    line: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for phone in plan.per_phone:
        line.put_nowait((phone, 0))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    done = 0

    async def worker(client: aiohttp.ClientSession) -> None:
        nonlocal done
        while True:
            try:
                phone, index = line.get_nowait()
            except asyncio.QueueEmpty:
                return
            message = plan.per_phone[phone][index]
            started = time.perf_counter()
            try:
                async with client.post(url, data=message.data, headers=message.headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, OSError):
                status = 599
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            done += 1
            if index + 1 < len(plan.per_phone[phone]):
                line.put_nowait((phone, index + 1))

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            print(f"  … {name}: {done}/{plan.total}", file=sys.stderr, flush=True)

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        cpu_before = {label: cpu_seconds(pid) for label, pid in pids.items()}
        own_before = time.process_time()
        ticker = asyncio.create_task(progress())
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        ticker.cancel()
        cpu = {label: cpu_seconds(pid) - cpu_before[label] for label, pid in pids.items()}
        cpu["generator"] = time.process_time() - own_before
    return Result(name, done, elapsed, latencies, statuses, cpu)


# --- the checks --------------------------------------------------------------------------------------------


def expected_outcome(plan: Plan) -> tuple[dict[str, Any], Counter[str], int, Counter[str]]:
    """What survey.polls says each phone's poll ends as (state, rating, reason), the SMS it queues by template,
    and the problems it raises."""
    from survey import polls as machine

    at = datetime.now(UTC)
    final: dict[str, Any] = {}
    sms: Counter[str] = Counter()
    problems = 0
    states: Counter[str] = Counter()
    for phone, texts in plan.bodies.items():
        poll = machine.Poll(id=1, household_id=1, phone=phone, state="sent", sent_at=at)
        for text in texts:
            poll, actions = machine.on_reply(poll, text, at)
            for action in actions:
                if isinstance(action, machine.SendSms):
                    sms[action.template] += 1
                elif isinstance(action, machine.RaiseProblem):
                    problems += 1
        final[phone] = (poll.state, poll.rating, poll.reason)
        states[poll.state] += 1
    return final, sms, problems, states


def check_database(db_path: Path, plan: Plan, polls: dict[str, int]) -> tuple[list[str], list[str]]:
    """(lines to print, failures)."""
    final, sms, problems, states = expected_outcome(plan)
    lines, failures = [], []
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        processed = conn.execute("SELECT count(*) FROM processed_updates WHERE source = 'twilio'").fetchone()[
            0
        ]
        distinct = conn.execute(
            "SELECT count(DISTINCT external_id) FROM processed_updates WHERE source = 'twilio'"
        ).fetchone()[0]
        ok = processed == distinct == plan.unique
        lines.append(
            f"processed_updates  {processed} rows (twilio), {distinct} distinct; {plan.unique} MessageSids sent "
            f"({'ok: none lost, none doubled' if ok else 'MISMATCH'})"
        )
        if not ok:
            failures.append("processed_updates")
        rows = {
            phone: (state, rating, reason)
            for phone, state, rating, reason in conn.execute("SELECT phone, state, rating, reason FROM polls")
        }
        per_household = conn.execute(
            "SELECT count(*) FROM (SELECT household_id, period FROM polls GROUP BY 1, 2 HAVING count(*) > 1)"
        ).fetchone()[0]
        wrong = [p for p, want in final.items() if rows.get(p) != want]
        got_states = Counter(state for phone, (state, _, _) in rows.items() if phone in final)
        untouched = sum(1 for phone, (state, _, _) in rows.items() if phone not in final and state != "sent")
        lines.append(
            f"polls              {len(final)} replied to: "
            + ", ".join(f"{s} {n}" for s, n in got_states.most_common())
            + f" (expected {', '.join(f'{s} {n}' for s, n in states.most_common())}); "
            + f"state/rating/reason differ: {len(wrong)}; households with >1 poll: {per_household}"
        )
        if wrong or per_household or untouched:
            failures.append("polls")
            for phone in wrong[:5]:
                lines.append(
                    f"    {phone}: {plan.bodies[phone]} → {rows.get(phone)}, expected {final[phone]}"
                )
        got_problems = conn.execute("SELECT count(*) FROM problems WHERE source = 'sms'").fetchone()[0]
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT household_id FROM problems WHERE source = 'sms' "
            "GROUP BY household_id HAVING count(*) > 1)"
        ).fetchone()[0]
        got_sms = Counter(
            dict(conn.execute("SELECT kind, count(*) FROM outbox_messages GROUP BY kind").fetchall())
        )
        got_sms["poll/ask"] -= len(polls)
        got_sms = +got_sms
        lines.append(f"problems (sms)     {got_problems} (expected {problems}); households with two: {twice}")
        lines.append(
            f"outbox replies     {dict(sorted(got_sms.items()))} (expected {dict(sorted(sms.items()))})"
        )
        if got_problems != problems or twice:
            failures.append("problems")
        if got_sms != sms:
            failures.append("outbox")
    return lines, failures


# --- the runs ----------------------------------------------------------------------------------------------


async def bench_serve(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from storage.db import sqlite_url

    print(f"preparing {args.households} households (init, import, poll send) in {folder}", flush=True)
    db_path, polls, send_seconds = prepare_database(folder, args.households)
    plan = make_plan(list(polls), args.requests, random.Random(3))
    print(
        f"  {len(polls)} polls waiting; {plan.unique} messages from {len(plan.per_phone)} phones + "
        f"{plan.resends} resends; scripts: {', '.join(f'{k} {n}' for k, n in plan.scripts.most_common())}",
        flush=True,
    )
    fake = start_child(SCRIPT, "fake-twilio", ["--role", "fake-twilio"], folder)
    serve: subprocess.Popen[str] | None = None
    serve_log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed below
    out: dict[str, Any] = {"plan": plan, "send_seconds": send_seconds}
    try:
        fake_url = await asyncio.to_thread(fake.wait_ready)
        port = free_port()
        env = child_env(
            ZOUFANG_DB_URL=sqlite_url(db_path),
            SMS_BACKEND="twilio",
            TWILIO_API_BASE=fake_url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER=TO_NUMBER,
            PUBLIC_BASE_URL=PUBLIC_BASE,
        )
        serve = subprocess.Popen(
            [zoufang_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=serve_log,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def serve_tail() -> str:
            serve_log.flush()
            return "\n".join((folder / "serve.log").read_text(errors="replace").splitlines()[-20:])

        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, serve, serve_tail)
        print(f"zoufang serve pid {serve.pid} on {base}; fake Twilio pid {fake.proc.pid}", flush=True)
        out["result"] = await drive(
            "zoufang serve",
            base + INBOUND,
            plan,
            args.concurrency,
            {"serve": serve.pid, "fake": fake.proc.pid},
        )
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        serve_log.close()
        out["fake"] = fake.stop()
    out["log_lines"], out["exceptions"] = scan_log(folder / "serve.log")
    out["check"], out["failures"] = check_database(db_path, plan, polls)
    return out


async def bench_yardstick(
    args: argparse.Namespace, folder: Path, plan: Plan
) -> tuple[Result, dict[str, Any]]:
    db_path = folder / "yardstick.db"
    yard = start_child(
        SCRIPT, "yardstick", ["--role", "yardstick", "--port", str(free_port()), "--db", str(db_path)], folder
    )
    try:
        url = await asyncio.to_thread(yard.wait_ready)
        result = await drive("yardstick", url + INBOUND, plan, args.concurrency, {"yardstick": yard.proc.pid})
    finally:
        stats = yard.stop()
    return result, stats


async def bench_poll_send(count: int, folder: Path) -> dict[str, Any]:
    """send_polls for `count` households (inserted with executemany, untimed), one call per township."""
    from bot.demo import TOWNSHIPS, write_roster
    from bot.flows.poll import send_polls
    from bot.settings import load_settings
    from storage.db import Database, sqlite_url
    from storage.models import utcnow

    big = folder / "big"
    big.mkdir()
    db_path = big / "zoufang.db"
    env = child_env(ZOUFANG_DB_URL=sqlite_url(db_path))
    write_roster(big, random.Random(7))
    run_cli(["init"], env, big)
    run_cli(["import", "cadres", str(big / "cadres.csv"), "--county", COUNTY], env, big)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        villages = [v for (v,) in conn.execute("SELECT id FROM villages ORDER BY id")]
        rng = random.Random(5)
        conn.executemany(
            "INSERT INTO households (code, village_id, head_name, phone, members, status, cause) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    f"BIG{i + 1:07d}",
                    villages[i % len(villages)],
                    f"户主{i + 1}",
                    f"+861{39_000_000_00 + i:010d}",
                    rng.randint(1, 6),
                    "已脱贫",
                    "因病",
                )
                for i in range(count)
            ),
        )
        conn.commit()
    conf = load_settings({"ZOUFANG_DB_URL": sqlite_url(db_path), "SMS_BACKEND": "console"}, dotenv=None)
    db = Database(sqlite_url(db_path))
    queued = 0
    per_township: dict[str, float] = {}
    try:
        started = time.perf_counter()
        for township in TOWNSHIPS:
            t0 = time.perf_counter()
            async with db.session() as s:
                result = await send_polls(s, utcnow(), conf, township=township)
            per_township[township] = time.perf_counter() - t0
            queued += result.queued
        seconds = time.perf_counter() - started
    finally:
        await db.close()
    return {"queued": queued, "seconds": seconds, "per_township": per_township, "db": db_path}


def report(
    out: dict[str, Any], yard: Result | None, yard_stats: dict[str, Any], args: argparse.Namespace
) -> None:
    serve: Result = out["result"]
    plan: Plan = out["plan"]
    print()
    print(
        f"zoufang serve (SQLite) — POST {INBOUND}, concurrency {args.concurrency}, {args.households} households"
    )
    print(f"  requests           {serve.sent} ({plan.unique} distinct MessageSids + {plan.resends} resends)")
    print(f"  elapsed            {serve.elapsed:.2f} s")
    print(f"  requests/s         {serve.rate:.1f}   (aim: ≥ 1000)")
    print(f"  latency            {serve.latency_line()}")
    print(f"  non-200            {serve.errors}  {dict(serve.statuses)}")
    cpu = serve.cpu
    print(
        f"  CPU seconds        serve {cpu['serve']:.1f} ({cpu['serve'] / serve.elapsed:.0%} of a core, "
        f"{cpu['serve'] / max(serve.sent, 1) * 1000:.2f} ms/request), fake Twilio {cpu['fake']:.1f}, "
        f"generator {cpu['generator']:.1f} ({cpu['generator'] / max(serve.sent, 1) * 1000:.2f} ms/request)"
    )
    print(
        f"  SMS sent by serve  {out['fake'].get('sent', '?')} (outbox at ZOUFANG_SMS_RATE=1/s, to the fake)"
    )
    print(f"  serve log lines    {out['log_lines']}")
    for exception, n in out["exceptions"].most_common(3):
        print(f"    logged ×{n}: {exception}")
    for line in out["check"]:
        print(f"  {line}")
    if yard is not None:
        print()
        print(
            "yardstick: bare aiohttp + one INSERT + COMMIT per request (aiosqlite, WAL, synchronous=NORMAL)"
        )
        print(
            f"  requests           {yard.sent} in {yard.elapsed:.2f} s, non-200 {yard.errors}, rows {yard_stats.get('rows')}"
        )
        print(f"  requests/s         {yard.rate:.1f}")
        print(f"  latency            {yard.latency_line()}")
        print(
            f"  CPU seconds        yardstick {yard.cpu['yardstick']:.1f} "
            f"({yard.cpu['yardstick'] / max(yard.sent, 1) * 1000:.2f} ms/request), generator {yard.cpu['generator']:.1f}"
        )
        print(f"  ratio              zoufang serve / yardstick = {serve.rate / yard.rate:.3f}   (aim: ≥ 0.5)")
    print()
    print(
        f"`zoufang poll send` ×2 townships for the {args.households} households above: {out['send_seconds']:.2f} s (CLI, incl. start-up)"
    )


async def main_async(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    if args.keep:
        folder = Path(tempfile.mkdtemp(prefix="zoufang-bench-sms-"))
        print(f"keeping the run's files (databases, serve.log) in {folder}")
        return await run_in(args, folder)
    with tempfile.TemporaryDirectory(prefix="zoufang-bench-sms-") as tmp:
        return await run_in(args, Path(tmp))


async def run_in(args: argparse.Namespace, folder: Path) -> int:
    out = await bench_serve(args, folder)
    yard, yard_stats = None, {}
    if not args.no_yardstick:
        yard, yard_stats = await bench_yardstick(args, folder, out["plan"])
    report(out, yard, yard_stats, args)
    big_ok = True
    if args.big:
        print(
            f"queueing a poll for {args.big} households (bot.flows.poll.send_polls, per township) …",
            flush=True,
        )
        big = await bench_poll_send(args.big, folder)
        each = ", ".join(f"{t} {s:.1f} s" for t, s in big["per_township"].items())
        print(f"  queued {big['queued']} in {big['seconds']:.2f} s ({each})   (aim: < 10 s)")
        big_ok = big["queued"] == args.big
    serve: Result = out["result"]
    ok = serve.errors == 0 and not out["failures"] and big_ok
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000, help="distinct inbound SMS (default 10000)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (default 50)")
    parser.add_argument("--households", type=int, default=2000, help="households polled (default 2000)")
    parser.add_argument(
        "--big", type=int, default=100_000, help="households for the poll-send timing (0: skip)"
    )
    parser.add_argument("--no-yardstick", action="store_true", help="skip the INSERT + COMMIT yardstick")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (databases, logs)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.households < 1:
        parser.error("--requests, --concurrency and --households must be at least 1")
    return args


ROLES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "fake-twilio": lambda a: run_fake_twilio(),
    "yardstick": lambda a: run_yardstick(a.port, a.db, INBOUND),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role:
        asyncio.run(ROLES[args.role](args))
        return 0
    try:
        return asyncio.run(main_async(args))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
