"""Benchmark: signed Twilio inbound replies posted to a running `zoufang serve` (SQLite or PostgreSQL).

One command does everything::

    python benchmarks/sms_inbound.py [--requests N] [--concurrency K | --rate R] [--households H] [--big B]
        [--db-url postgresql+asyncpg://…] [--workers N] [--redis-url redis://…/DB] [--json PATH]

1. A fresh database — a SQLite file in a temp folder, or with --db-url the PostgreSQL database named, whose schema
   `public` is dropped and recreated — then `zoufang init`, the demo cadres (bot.demo.write_roster) and H
   households with distinct phones spread over the demo's six villages (county CSV format), imported with
   `zoufang import cadres … --county 示范县` and `zoufang import households …`; then `zoufang poll send
   --township …` for each township, so every household has a poll waiting.
2. A fake Twilio REST API (tests.fake_twilio.FakeTwilio) in its own process, and `zoufang serve --port P
   [--workers N]` as a subprocess with SMS_BACKEND=twilio, TWILIO_API_BASE at the fake, TWILIO_AUTH_TOKEN,
   PUBLIC_BASE_URL, the default ZOUFANG_SMS_RATE (1 SMS/s: the outbox sender runs, as in production, but stays
   nearly idle) and, with --redis-url, ZOUFANG_REDIS_URL (its Redis database flushed first). Once /healthz has
   answered from every worker and serve has idled a few seconds, its resident memory is read (VmRSS of the
   parent and the workers, summed; Pss too).
3. This process posts N inbound replies with unique MessageSids, each signed with twilio's RequestValidator
   for PUBLIC_BASE_URL + /sms/inbound (forms and signatures are built before the clock starts). Closed loop
   (default): K in flight, one in flight per phone (a villager's messages arrive in order). Fixed rate
   (--rate R, open loop): a request is launched every 1/R s whatever the answers, the phones' messages
   interleaved (every phone's first message, then every second one …); latency counts from the planned
   launch, and a message whose phone's previous one is still unanswered waits for it (counted as held), so
   the order holds. Each phone follows a script: a rating
   (1/2/满意/基本满意 …), "3 路没修", 不满意 then the reason as a second message, something unclear then a
   rating, or unclear twice; further messages ("谢谢") reach a closed poll. About 2 % of the MessageSids are
   posted a second time right after the first answer (a Twilio retry).
4. Prints requests/s, latency p50/p90/p99/max, non-200s and the CPU seconds of serve's processes (and of the
   PostgreSQL backends serving its database, and of Redis), then checks the database:
   processed_updates (source twilio) == distinct MessageSids sent, and every poll's state, rating and reason,
   the problems raised and the outbox rows are what survey.polls (the pure machine) says for the messages sent.
5. The yardstick: a bare aiohttp handler doing one INSERT + COMMIT per request in the same database (SQLite: WAL,
   synchronous=NORMAL, one aiosqlite connection; PostgreSQL: an asyncpg pool), in as many processes as serve
   has workers (SO_REUSEPORT), hit by the same generator with the same requests (the same way: closed loop or
   fixed rate).
6. Queueing a poll for B (default 100,000) households: a separate database — SQLite, or with --db-url a scratch
   PostgreSQL database beside it (<name>_big, created and dropped) — with the roster inserted in bulk (sqlite3
   executemany, asyncpg COPY; not timed), then bot.flows.poll.send_polls — what `zoufang poll send` runs — per
   township, timed.
7. --json PATH writes the figures (rate, latency, errors, CPU per request, the yardstick and the ratio, the
   checks, idle memory, the settings, the backend, the workers and the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import random
import sqlite3
import sys
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
    CpuMeter,
    Result,
    Serve,
    Store,
    asyncpg_dsn,
    backend_name,
    child_env,
    database_url,
    describe_yardstick,
    flush_redis,
    in_run_folder,
    is_postgres,
    machine,
    ready,
    redacted,
    reset_postgres,
    run_benchmark,
    run_cli,
    run_yardstick,
    scan_log,
    start_child,
    start_yardsticks,
    stop_yardsticks,
    until_terminated,
    write_json,
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
LATE_S = 0.005  # fixed rate: a launch this much after its planned time counts as late (the generator lagged)
CONNECTIONS = 6000  # fixed rate: requests in flight at most (Twilio opens as many as it needs)
TICK_S = 0.002  # fixed rate: the generator launches what is due every 2 ms
RETRY_S = 1.0  # fixed rate: a 503 is posted again after 1-2 s (Twilio retries a failed webhook)
RETRIES = 30
STEADY_SHARE, STEADY_S = 0.8, 60.0  # --capacity-check: 0.8 × the measured capacity for 60 s …
OVERLOAD_SHARE, OVERLOAD_S = 2.0, 30.0  # … then 2 × for 30 s


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


async def prepare_database(folder: Path, households: int, url: str) -> tuple[dict[str, int], float]:
    """init, import, then `zoufang poll send` per township; the polls by E.164 phone, and the send time."""
    from bot.demo import TOWNSHIPS, write_roster

    if is_postgres(url):
        await reset_postgres(url)
    env = child_env(ZOUFANG_DB_URL=url)
    write_roster(folder, random.Random(7))  # the demo cadres; households.csv is replaced below
    write_households(folder, households, random.Random(11), phone_base=38_000_000_00)
    run_cli(["init"], env, folder)
    run_cli(["import", "cadres", str(folder / "cadres.csv"), "--county", COUNTY], env, folder)
    run_cli(["import", "households", str(folder / "households.csv")], env, folder)
    started = time.perf_counter()
    for township in TOWNSHIPS:
        print(f"  {run_cli(['poll', 'send', '--township', township], env, folder)}", flush=True)
    send_seconds = time.perf_counter() - started
    async with Store(url) as store:
        polls = dict(await store.fetch("SELECT phone, id FROM polls WHERE state = 'sent'"))
    if len(polls) != households:
        raise BenchError(f"{len(polls)} polls waiting after `zoufang poll send`, expected {households}")
    return polls, send_seconds


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


async def drive(name: str, url: str, plan: Plan, concurrency: int, meter: CpuMeter) -> Result:
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
        meter.start()
        ticker = asyncio.create_task(progress())
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        ticker.cancel()
        cpu = meter.stop()
    return Result(name, done, elapsed, latencies, statuses, cpu)


def interleaved(plan: Plan, rng: random.Random) -> list[tuple[str, int]]:
    """Every phone's first message (in random order), then every phone's second one, and so on."""
    order: list[tuple[str, int]] = []
    depth = max((len(m) for m in plan.per_phone.values()), default=0)
    for index in range(depth):
        batch = [(phone, index) for phone, messages in plan.per_phone.items() if len(messages) > index]
        rng.shuffle(batch)
        order += batch
    return order


class LeanClient:
    """A minimal HTTP/1.1 client for the open-loop generator: keep-alive connections from a pool, requests
    written as prepared bytes, the status line and Content-Length read back. aiohttp's client costs ~0.5 ms
    of the generator's CPU a request at a fixed rate (a task, a request object and a response object each),
    so on two cores the generator, not the server, set the pace; this costs a tenth of that."""

    def __init__(self, url: str, limit: int) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.slots = asyncio.Semaphore(limit)  # requests in flight, each on a connection of its own
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def request(self, message: Message) -> bytes:
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in message.headers.items()]
        head.append(f"Content-Length: {len(message.data)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + message.data

    async def post(self, raw: bytes) -> int:
        """The response's status; 599 when the connection failed. A waiter for a free slot is woken alone."""
        async with self.slots:
            try:
                reader, writer = (
                    self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
                )
            except OSError:
                return 599
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                writer.close()
                return 599
            self.idle.append((reader, writer))
            return status

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def drive_at_rate(name: str, url: str, plan: Plan, rate: float, meter: CpuMeter) -> Result:
    """Open loop: request i is launched at start + i / rate, whatever the answers so far. Latency counts from
    that planned launch (a server that falls behind pays for the queue it built); a phone's message waits
    for the answer to the phone's previous one (held), so each villager's messages stay in order. A 503 is
    posted again after RETRY_S (as Twilio retries), up to RETRIES times, before the phone's next message;
    latency then counts to the 200. Launches are made in ticks of TICK_S (every request due by then)."""
    order = interleaved(plan, random.Random(5))
    client = LeanClient(url, limit=CONNECTIONS)
    raw = {id(m): client.request(m) for messages in plan.per_phone.values() for m in messages}
    latencies: list[float] = []
    service: list[float] = []
    statuses: Counter[int] = Counter()
    previous: dict[str, asyncio.Task[None]] = {}
    held = late = launched = retried = unanswered = 0

    async def one(phone: str, index: int, planned: float, before: asyncio.Task[None] | None) -> None:
        nonlocal held, retried, unanswered
        if before is not None and not before.done():
            held += 1
            await before
        request = raw[id(plan.per_phone[phone][index])]
        for attempt in range(RETRIES + 1):
            sent = time.perf_counter()
            status = await client.post(request)
            statuses[status] += 1
            if status != 503:
                break
            retried += attempt == 0
            await asyncio.sleep(RETRY_S * (1 + random.random()))
        finished = time.perf_counter()
        latencies.append(finished - planned)
        service.append(finished - sent)
        unanswered += status != 200

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            print(
                f"  … {name}: {launched}/{len(order)} launched, {len(latencies)} answered",
                file=sys.stderr,
                flush=True,
            )

    meter.start()
    ticker = asyncio.create_task(progress())
    started = time.perf_counter() + 0.05
    tasks = []
    while launched < len(order):
        now = time.perf_counter()
        due = min(len(order), int((now - started) * rate) + 1) if now >= started else 0
        for i in range(launched, due):
            phone, index = order[i]
            planned = started + i / rate
            late += now - planned > LATE_S
            task = asyncio.create_task(one(phone, index, planned, previous.get(phone)))
            previous[phone] = task
            tasks.append(task)
        launched = max(launched, due)
        await asyncio.sleep(TICK_S)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    ticker.cancel()
    cpu = meter.stop()
    await client.close()
    result = Result(
        name, len(latencies), elapsed, latencies, statuses, cpu, target_rate=rate, service=service
    )
    result.held, result.late, result.retried, result.unanswered = held, late, retried, unanswered
    return result


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


async def check_database(store: Store, plan: Plan, polls: dict[str, int]) -> tuple[list[str], list[str]]:
    """(lines to print, failures)."""
    final, sms, problems, states = expected_outcome(plan)
    lines, failures = [], []
    processed = await store.value("SELECT count(*) FROM processed_updates WHERE source = 'twilio'")
    distinct = await store.value(
        "SELECT count(DISTINCT external_id) FROM processed_updates WHERE source = 'twilio'"
    )
    ok = processed == distinct == plan.unique
    lines.append(
        f"processed_updates  {processed} rows (twilio), {distinct} distinct; {plan.unique} MessageSids sent "
        f"({'ok: none lost, none doubled' if ok else 'MISMATCH'})"
    )
    if not ok:
        failures.append("processed_updates")
    rows = {
        phone: (state, rating, reason)
        for phone, state, rating, reason in await store.fetch(
            "SELECT phone, state, rating, reason FROM polls"
        )
    }
    per_household = await store.value(
        "SELECT count(*) FROM (SELECT household_id, period FROM polls GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
    )
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
            lines.append(f"    {phone}: {plan.bodies[phone]} → {rows.get(phone)}, expected {final[phone]}")
    got_problems = await store.value("SELECT count(*) FROM problems WHERE source = 'sms'")
    twice = await store.value(
        "SELECT count(*) FROM (SELECT household_id FROM problems WHERE source = 'sms' "
        "GROUP BY household_id HAVING count(*) > 1) AS twice"
    )
    got_sms = Counter(
        {
            str(k): int(n)
            for k, n in await store.fetch("SELECT kind, count(*) FROM outbox_messages GROUP BY kind")
        }
    )
    got_sms["poll/ask"] -= len(polls)
    got_sms = +got_sms
    lines.append(f"problems (sms)     {got_problems} (expected {problems}); households with two: {twice}")
    lines.append(f"outbox replies     {dict(sorted(got_sms.items()))} (expected {dict(sorted(sms.items()))})")
    if got_problems != problems or twice:
        failures.append("problems")
    if got_sms != sms:
        failures.append("outbox")
    return lines, failures


# --- the runs ----------------------------------------------------------------------------------------------


async def load(
    name: str, url: str, plan: Plan, args: argparse.Namespace, meter: CpuMeter, rate: float | None = None
) -> Result:
    rate = rate or args.rate
    if rate:
        return await drive_at_rate(name, url, plan, rate, meter)
    return await drive(name, url, plan, args.concurrency, meter)


async def writer_stats(base: str) -> dict[str, Any]:
    """The inbound SMS writer's counters from /healthz (with several workers: the one that answers)."""
    import aiohttp

    async with aiohttp.ClientSession() as client, client.get(base + "/healthz") as response:
        stats = dict((await response.json()).get("inbound_sms") or {})
    if stats.get("batches"):
        stats["replies_per_batch"] = round(stats["replies"] / stats["batches"], 1)
    return stats


async def bench_serve(
    args: argparse.Namespace,
    folder: Path,
    url: str,
    *,
    households: int | None = None,
    requests: int | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    households = households or args.households
    requests = requests or args.requests
    print(f"preparing {households} households (init, import, poll send) in {redacted(url)}", flush=True)
    polls, send_seconds = await prepare_database(folder, households, url)
    plan = make_plan(list(polls), requests, random.Random(3))
    print(
        f"  {len(polls)} polls waiting; {plan.unique} messages from {len(plan.per_phone)} phones + "
        f"{plan.resends} resends; scripts: {', '.join(f'{k} {n}' for k, n in plan.scripts.most_common())}",
        flush=True,
    )
    if args.redis_url:
        flush_redis(args.redis_url)
    fake = start_child(SCRIPT, "fake-twilio", ["--role", "fake-twilio"], folder)
    serve: Serve | None = None
    out: dict[str, Any] = {"plan": plan, "send_seconds": send_seconds}
    try:
        fake_url = await asyncio.to_thread(fake.wait_ready)
        env = child_env(
            ZOUFANG_DB_URL=url,
            SMS_BACKEND="twilio",
            TWILIO_API_BASE=fake_url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER=TO_NUMBER,
            PUBLIC_BASE_URL=PUBLIC_BASE,
        )
        if args.redis_url:
            env["ZOUFANG_REDIS_URL"] = args.redis_url
        serve = Serve(folder, env, args.workers)
        await serve.start()
        out["idle_memory"] = serve.idle
        print(
            f"zoufang serve pid {serve.pid} ({args.workers} worker{'s' if args.workers > 1 else ''}) on "
            f"{serve.base}; fake Twilio pid {fake.proc.pid}; idle: {serve.idle['rss_mb']:.0f} MB resident in "
            f"{serve.idle['processes']} processes",
            flush=True,
        )
        meter = CpuMeter.of({"serve": serve.pid, "fake": fake.proc.pid}, url, args.redis_url)
        out["result"] = await load("zoufang serve", serve.base + INBOUND, plan, args, meter, rate)
        out["writer"] = await writer_stats(serve.base)
    finally:
        if serve is not None:
            serve.stop()
        out["fake"] = fake.stop()
    if serve is not None:
        out["log_lines"], out["exceptions"] = scan_log(serve.log_path)
    async with Store(url) as store:
        out["check"], out["failures"] = await check_database(store, plan, polls)
    return out


async def bench_yardstick(
    args: argparse.Namespace, folder: Path, url: str, plan: Plan
) -> tuple[Result, dict[str, Any]]:
    from sqlalchemy.engine import make_url

    db = url if is_postgres(url) else str(make_url(url).database)  # the same database, a table of its own
    yards = await start_yardsticks(SCRIPT, db, args.yardstick_workers, folder)
    try:
        meter = CpuMeter.of({f"yardstick-{i}": y.proc.pid for i, y in enumerate(yards)}, url)
        result = await load("yardstick", yards[0].url + INBOUND, plan, args, meter)
    finally:
        stats = stop_yardsticks(yards)
    result.cpu["yardstick"] = sum(v for k, v in result.cpu.items() if k.startswith("yardstick-"))
    stats["describe"] = describe_yardstick(db, len(yards))
    return result, stats


BIG_HOUSEHOLD_COLUMNS = ("code", "village_id", "head_name", "phone", "members", "status", "cause")


def big_households(count: int, villages: list[int]) -> list[tuple[Any, ...]]:
    rng = random.Random(5)
    return [
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
    ]


async def bench_poll_send(count: int, folder: Path, pg_url: str | None = None) -> dict[str, Any]:
    """send_polls for `count` households (inserted in bulk, untimed), one call per township: in a SQLite file,
    or with `pg_url` in a scratch database beside that one (created here, dropped after)."""
    big = folder / "big"
    big.mkdir()
    if pg_url is None:
        from storage.db import sqlite_url

        db_path = big / "zoufang.db"
        url = sqlite_url(db_path)
        prepare_big(url, big)
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            villages = [v for (v,) in conn.execute("SELECT id FROM villages ORDER BY id")]
            columns = ", ".join(BIG_HOUSEHOLD_COLUMNS)
            marks = ", ".join("?" * len(BIG_HOUSEHOLD_COLUMNS))
            conn.executemany(
                f"INSERT INTO households ({columns}) VALUES ({marks})", big_households(count, villages)
            )
            conn.commit()
        return {**await time_poll_send(url), "db": db_path}
    import asyncpg
    from sqlalchemy.engine import make_url

    server = make_url(pg_url)
    scratch = f"{server.database}_big"
    url = server.set(database=scratch).render_as_string(hide_password=False)
    admin = await asyncpg.connect(asyncpg_dsn(pg_url), timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{scratch}"')
        prepare_big(url, big)
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
        try:
            villages = [v for (v,) in await conn.fetch("SELECT id FROM villages ORDER BY id")]
            records = big_households(count, villages)
            await conn.copy_records_to_table("households", records=records, columns=BIG_HOUSEHOLD_COLUMNS)
        finally:
            await conn.close()
        return {**await time_poll_send(url), "db": redacted(url)}
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()


def prepare_big(url: str, folder: Path) -> None:
    """`zoufang init` and the demo cadres (and so its townships and villages) in the big database."""
    from bot.demo import write_roster

    env = child_env(ZOUFANG_DB_URL=url)
    write_roster(folder, random.Random(7))
    run_cli(["init"], env, folder)
    run_cli(["import", "cadres", str(folder / "cadres.csv"), "--county", COUNTY], env, folder)


async def time_poll_send(url: str) -> dict[str, Any]:
    from bot.demo import TOWNSHIPS
    from bot.flows.poll import send_polls
    from bot.settings import load_settings
    from storage.db import Database
    from storage.models import utcnow

    conf = load_settings({"ZOUFANG_DB_URL": url, "SMS_BACKEND": "console"}, dotenv=None)
    db = Database(url)
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
    return {"queued": queued, "seconds": seconds, "per_township": per_township, "backend": backend_name(url)}


async def capacity_check(
    args: argparse.Namespace, folder: Path, url: str, capacity: float
) -> dict[str, dict[str, Any]]:
    """At STEADY_SHARE × the capacity just measured (closed loop) for STEADY_S, then OVERLOAD_SHARE × for
    OVERLOAD_S: each on a fresh database and a fresh `zoufang serve`, open loop, the same mix of messages
    (requests per household as in the closed loop), 503s posted again as Twilio would."""
    from storage.db import sqlite_url

    per_household = max(1, args.requests // args.households)
    phases: dict[str, dict[str, Any]] = {}
    for name, share, seconds in (
        ("steady", STEADY_SHARE, STEADY_S),
        ("overload", OVERLOAD_SHARE, OVERLOAD_S),
    ):
        rate = round(share * capacity, 1)
        requests = int(rate * seconds)
        sub = folder / name
        sub.mkdir()
        phase_url = url if is_postgres(url) else sqlite_url(sub / "zoufang.db")
        print(
            f"\n{name}: {share:g} × capacity = {rate:g}/s for {seconds:g} s ({requests} requests)", flush=True
        )
        out = await bench_serve(
            args, sub, phase_url, households=max(1, requests // per_household), requests=requests, rate=rate
        )
        phases[name] = phase_figures(out, share, seconds, capacity)
        for line in phase_lines(name, phases[name]):
            print(f"  {line}", flush=True)
    return phases


def phase_figures(out: dict[str, Any], share: float, seconds: float, capacity: float) -> dict[str, Any]:
    result: Result = out["result"]
    server_errors = sum(n for status, n in result.statuses.items() if status >= 500 and status != 503)
    figures = {
        "share_of_capacity": share,
        "capacity": round(capacity, 1),
        "seconds": seconds,
        "serve": result.as_json("serve"),
        "http_500_or_other_5xx": server_errors,
        "answered_503": result.statuses.get(503, 0),
        "inbound_writer": out.get("writer"),
        "checks": {"ok": not out["failures"], "failures": out["failures"], "lines": out["check"]},
    }
    if share <= 1:
        figures["aim"] = "p99 < 100 ms, 0 errors"
        figures["meets_aim"] = result.percentile(99) < 100 and result.errors == 0 and not out["failures"]
    else:
        figures["aim"] = "0 HTTP 500, 0 lost (every 200 stored once; others 503 and retried)"
        figures["meets_aim"] = server_errors == 0 and result.unanswered == 0 and not out["failures"]
    return figures


def phase_lines(name: str, phase: dict[str, Any]) -> list[str]:
    serve = phase["serve"]
    return [
        f"achieved {serve['rate']:.1f}/s of {serve['target_rate']:g}/s planned; latency p50 {serve['p50_ms']:.1f} ms, "
        f"p99 {serve['p99_ms']:.1f} ms, max {serve['max_ms']:.1f} ms (from the planned launch, to the 200)",
        f"statuses (every attempt) {serve['statuses']}; requests retried after a 503: {serve['retried_after_503']}; "
        f"never answered 200: {serve['never_200']}; 500s: {phase['http_500_or_other_5xx']}",
        f"serve CPU {serve['server_cpu_ms_per_request']:.3f} ms/request",
        *phase["checks"]["lines"],
        f"aim ({phase['aim']}): {'met' if phase['meets_aim'] else 'NOT met'}",
    ]


def load_line(result: Result) -> str:
    if result.target_rate is None:
        return f"requests/s         {result.rate:.1f}"
    return (
        f"requests/s         {result.rate:.1f} achieved at a planned {result.target_rate:g}/s (open loop; "
        f"{result.late} launched > {LATE_S * 1000:.0f} ms late, {result.held} held for their phone's previous reply)"
    )


def report(
    out: dict[str, Any], yard: Result | None, yard_stats: dict[str, Any], args: argparse.Namespace
) -> None:
    serve: Result = out["result"]
    plan: Plan = out["plan"]
    backend = "PostgreSQL" if args.db_url else "SQLite"
    how = f"fixed rate {args.rate:g}/s" if args.rate else f"concurrency {args.concurrency}"
    print()
    print(
        f"zoufang serve ({backend}, {args.workers} worker{'s' if args.workers > 1 else ''}) — POST {INBOUND}, "
        f"{how}, {args.households} households"
    )
    print(f"  requests           {serve.sent} ({plan.unique} distinct MessageSids + {plan.resends} resends)")
    print(f"  elapsed            {serve.elapsed:.2f} s")
    print(f"  {load_line(serve)}")
    if serve.target_rate is None:
        print(f"  latency            {serve.latency_line()}")
    else:
        print(
            f"  latency            {serve.latency_line()}   (from the planned launch; aim at 500/s: p99 < 50 ms)"
        )
        print(f"  service latency    {serve.latency_line(serve.service)}   (from the actual send)")
    print(f"  non-200            {serve.errors}  {dict(serve.statuses)}")
    print(f"  SMS writer         {out.get('writer')}   (one worker's /healthz)")
    cpu = serve.cpu
    per = max(serve.sent, 1)
    print(
        f"  CPU seconds        serve {cpu['serve']:.1f} ({cpu['serve'] / serve.elapsed:.0%} of a core, "
        f"{cpu['serve'] / per * 1000:.2f} ms/request)"
        + "".join(f", {k} {v:.1f} ({v / per * 1000:.2f} ms/request)" for k, v in cpu.items() if k != "serve")
    )
    print(
        f"  SMS sent by serve  {out['fake'].get('sent', '?')} (outbox at ZOUFANG_SMS_RATE=1/s, to the fake)"
    )
    idle = out["idle_memory"]
    print(
        f"  idle memory        {idle['rss_mb']:.0f} MB resident (VmRSS summed over {idle['processes']} processes), "
        f"Pss {idle['pss_mb']} MB"
    )
    print(f"  serve log lines    {out['log_lines']}")
    for exception, n in out["exceptions"].most_common(3):
        print(f"    logged ×{n}: {exception}")
    for line in out["check"]:
        print(f"  {line}")
    if yard is not None:
        print()
        print(f"yardstick: {yard_stats['describe']}")
        print(
            f"  requests           {yard.sent} in {yard.elapsed:.2f} s, non-200 {yard.errors}, rows {yard_stats.get('rows')}"
        )
        print(f"  {load_line(yard)}")
        print(f"  latency            {yard.latency_line()}")
        print(
            f"  CPU seconds        yardstick {yard.cpu['yardstick']:.1f} "
            f"({yard.cpu['yardstick'] / max(yard.sent, 1) * 1000:.2f} ms/request), generator {yard.cpu['generator']:.1f}"
            + (f", postgres {yard.cpu['postgres']:.1f}" if "postgres" in yard.cpu else "")
        )
        print(
            f"  ratio              zoufang serve / yardstick = {serve.rate / yard.rate:.3f}   "
            "(aim with 2 workers on PostgreSQL: ≥ 0.6)"
        )
    print()
    print(
        f"`zoufang poll send` ×2 townships for the {args.households} households above: {out['send_seconds']:.2f} s (CLI, incl. start-up)"
    )


def figures(
    args: argparse.Namespace,
    out: dict[str, Any],
    yard: Result | None,
    yard_stats: dict[str, Any],
    big: dict[str, Any] | None,
) -> dict[str, Any]:
    serve: Result = out["result"]
    plan: Plan = out["plan"]
    settings = {
        k: getattr(args, k)
        for k in ("requests", "households", "concurrency", "rate", "workers", "yardstick_workers", "big")
    }
    settings["db_url"] = redacted(args.db_url) if args.db_url else "sqlite (temp file)"
    settings["redis_url"] = args.redis_url or None
    if args.rate:
        settings["concurrency"] = None  # open loop: as many in flight as it takes
    figures: dict[str, Any] = {
        "benchmark": "sms_inbound",
        "backend": backend_name(args.db_url or "sqlite"),
        "workers": args.workers,
        "mode": f"fixed rate {args.rate:g}/s" if args.rate else "closed loop",
        "settings": settings,
        "serve": serve.as_json("serve"),
        "checks": {
            "ok": serve.errors == 0 and not out["failures"],
            "failures": out["failures"],
            "lines": out["check"],
            "distinct_message_sids": plan.unique,
            "resends": plan.resends,
            "sms_sent_by_serve": out["fake"].get("sent"),
            "serve_log_lines": out["log_lines"],
        },
        "idle_memory": out["idle_memory"],
        "inbound_writer": out.get("writer"),
        "poll_send_cli_s": round(out["send_seconds"], 2),
        "machine": machine(),
    }
    if yard is not None:
        figures["yardstick"] = {
            **yard.as_json("yardstick"),
            "what": yard_stats["describe"],
            "rows": yard_stats["rows"],
        }
        figures["ratio"] = round(serve.rate / yard.rate, 4) if yard.rate else None
    if big is not None:
        figures["poll_send"] = {
            "households": args.big,
            "queued": big["queued"],
            "seconds": round(big["seconds"], 2),
            "per_township_s": {t: round(v, 2) for t, v in big["per_township"].items()},
            "backend": big["backend"],
        }
    return figures


async def main_async(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    return await in_run_folder(args, "zoufang-bench-sms-", "databases, serve.log", run_in)


async def run_in(args: argparse.Namespace, folder: Path) -> int:
    url = database_url(args, folder)
    out = await bench_serve(args, folder, url)
    yard, yard_stats = None, {}
    if not args.no_yardstick:
        yard, yard_stats = await bench_yardstick(args, folder, url, out["plan"])
    report(out, yard, yard_stats, args)
    big_ok, big = True, None
    if args.big:
        where = "a scratch PostgreSQL database" if args.db_url else "SQLite"
        print(
            f"queueing a poll for {args.big} households (bot.flows.poll.send_polls, per township, {where}) …",
            flush=True,
        )
        big = await bench_poll_send(args.big, folder, args.db_url)
        each = ", ".join(f"{t} {s:.1f} s" for t, s in big["per_township"].items())
        print(f"  queued {big['queued']} in {big['seconds']:.2f} s ({each})   (aim: < 10 s)")
        big_ok = big["queued"] == args.big
    phases: dict[str, dict[str, Any]] = {}
    if args.capacity_check:
        phases = await capacity_check(args, folder, url, out["result"].rate)
    if args.json:
        data = figures(args, out, yard, yard_stats, big)
        if phases:
            data["capacity_check"] = phases
        write_json(args.json, data)
        print(f"wrote {args.json}")
    serve: Result = out["result"]
    broken = [
        name for name, phase in phases.items() if not phase["checks"]["ok"] or phase["http_500_or_other_5xx"]
    ]
    ok = serve.errors == 0 and not out["failures"] and big_ok and not broken
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000, help="distinct inbound SMS (default 10000)")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="requests in flight, closed loop (default 50)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="fixed rate instead: launch R requests/s whatever the answers (open loop)",
    )
    parser.add_argument("--households", type=int, default=2000, help="households polled (default 2000)")
    parser.add_argument(
        "--big",
        type=int,
        default=100_000,
        help="households for the poll-send timing (SQLite, or with --db-url a scratch database <name>_big "
        "beside it, created and dropped; 0: skip)",
    )
    parser.add_argument(
        "--db-url",
        help="a PostgreSQL URL (postgresql+asyncpg://…): its schema public is DROPPED and recreated "
        "(default: SQLite in the temp folder)",
    )
    parser.add_argument("--workers", type=int, default=1, help="`zoufang serve --workers N` (default 1)")
    parser.add_argument(
        "--yardstick-workers", type=int, default=None, help="yardstick processes (default: --workers)"
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="ZOUFANG_REDIS_URL for serve (one SMS budget for every worker's sender); its database is "
        "FLUSHED first (use a dedicated one)",
    )
    parser.add_argument(
        "--capacity-check",
        action="store_true",
        help=f"then {STEADY_SHARE:g} × the capacity measured for {STEADY_S:g} s and {OVERLOAD_SHARE:g} × for "
        f"{OVERLOAD_S:g} s (open loop, fresh databases)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--no-yardstick", action="store_true", help="skip the INSERT + COMMIT yardstick")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (databases, logs)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return args
    if args.yardstick_workers is None:
        args.yardstick_workers = args.workers
    if min(args.requests, args.concurrency, args.households, args.workers, args.yardstick_workers) < 1:
        parser.error(
            "--requests, --concurrency, --households, --workers and --yardstick-workers must be at least 1"
        )
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    if args.db_url and not is_postgres(args.db_url):
        parser.error("--db-url takes a PostgreSQL URL (postgresql+asyncpg://…); SQLite is the default")
    return args


ROLES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "fake-twilio": lambda a: run_fake_twilio(),
    "yardstick": lambda a: run_yardstick(a.port, a.db, INBOUND),
}


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), ROLES, main_async)


if __name__ == "__main__":
    sys.exit(main())
