"""Benchmark: realistic Telegram updates posted to a running `zoufang serve` (SQLite or PostgreSQL).

One command does everything::

    python benchmarks/telegram_webhook.py [--updates N] [--cadres C] [--concurrency K] [--fake thin|full]
        [--db-url postgresql+asyncpg://…] [--workers N [--redis-url redis://…/DB]] [--json PATH] [--idle-only]

1. A fresh database — a SQLite file in a temp folder, or with --db-url the PostgreSQL database named, whose
   schema `public` is dropped and recreated — then `zoufang init`, the demo roster (`write_roster`) imported with
   `zoufang import cadres … --county 示范县` and `zoufang import households …`; C cadres that have households to
   visit are bound to Telegram user ids (`telegram_accounts` rows). The demo roster has 17 such cadres; when C
   is larger, extra 驻村工作队 members (scope: their village) are added to the cadres file before the import.
2. A fake Bot API server in its own process: `thin` (default) answers every method with a minimal ok result;
   `full` runs tests.fake_telegram.FakeTelegram (parses and records every call).
3. `zoufang serve --port P [--workers N]` as a subprocess (ZOUFANG_DB_URL, TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE,
   TELEGRAM_WEBHOOK_SECRET; with N > 1 ZOUFANG_REDIS_URL, which it needs then: --redis-url, whose Redis database
   is flushed first), waited for on /healthz from every worker; after a few seconds idle the resident memory
   of its processes (VmRSS of the parent and the workers, summed; Pss too) is read.
4. This process posts N updates (aiohttp client, one connection pool): each cadre's chat walks visits — `/visit`,
   the `h:<id>` button, then every question of the default script the way a cadre answers on a phone: location
   and photos sent as such, buttons tapped for yes/no, choices and the four talks (`a:<visit>:<key>:<code>`),
   several-of ticked (`t:`) then done (`d:`), numbers and text typed, 提交 tapped at the summary (the answers come
   from bot.demo.visit_inputs; a local copy of the engine tells which key each button must name). One update
   in flight per chat (as Telegram delivers), K updates in flight overall.
5. Prints updates/s, latency p50/p90/p99/max, errors, visits submitted (from the database, against what the
   generator completed) and the CPU seconds used by serve's processes, the fake, the generator (and with
   PostgreSQL the backends serving its database, with Redis the Redis server) during the load.
6. The yardstick: a bare aiohttp handler doing one INSERT + COMMIT per request in the same database (SQLite: WAL,
   synchronous=NORMAL, one aiosqlite connection; PostgreSQL: an asyncpg pool), in as many processes as serve
   has workers (SO_REUSEPORT), hit by the same generator (N requests, same chats and concurrency, the same
   kind of update bodies).
7. --json PATH writes the figures (rate, latency, errors, CPU per update, the yardstick and the ratio, idle
   memory, the settings, the backend, the workers and the machine). --idle-only starts serve with the Telegram
   bot and Twilio SMS both configured, reads its idle memory and stops (no load).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# run as `python benchmarks/<name>.py`: the folder is on sys.path
from harness import (
    BenchError,
    CpuMeter,
    Result,
    Serve,
    Store,
    backend_name,
    child_env,
    database_url,
    describe_yardstick,
    flush_redis,
    free_port,
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
TOKEN = "123456:BENCH-token"  # the bot id (123456) is the one tests.fake_telegram.callback_update names
SECRET = "bench-webhook-secret"
COUNTY = "示范县"
WEBHOOK = "/telegram/webhook"
FIRST_USER_ID = 710_000
CAPABILITIES = frozenset({"location", "photo"})
CODE_TEXT = {"y": "是", "n": "否", "s": "跳过"}  # what bot.flows.visit_telegram.tap feeds the engine


# --- child processes: the fake Bot API server and the yardstick ------------------------------------------------


async def run_thin_fake(port: int) -> None:
    """Every Bot API method answers ok at once: a Message for the sending/editing methods, else `true`."""
    from aiohttp import web

    message = json.dumps(
        {"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
    ).encode()
    true = b'{"ok":true,"result":true}'
    returns_message = {"sendmessage", "editmessagetext", "editmessagereplymarkup"}
    counts: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        await request.read()
        counts[method] += 1
        body = message if method.lower() in returns_message else true
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ready(f"http://127.0.0.1:{port}")
    await until_terminated()
    print(json.dumps(dict(counts)), flush=True)
    await runner.cleanup()


async def run_full_fake(port: int) -> None:
    """tests.fake_telegram.FakeTelegram (it picks its own port; `port` is unused)."""
    sys.path.insert(0, str(ROOT))
    from tests.fake_telegram import FakeTelegram

    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    ready(fake.base_url)
    await until_terminated()
    print(json.dumps(dict(Counter(c.method for c in fake.calls))), flush=True)
    await fake.close()


# --- process helpers ---------------------------------------------------------------------------------------


# --- the database ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdRef:
    id: int
    code: str
    members: int


@dataclass(frozen=True)
class ChatCadre:
    user_id: int
    cadre_id: int
    code: str
    role: str
    households: tuple[HouseholdRef, ...]


def add_work_team(cadres_csv: Path, extra: int) -> None:
    """Append `extra` 驻村工作队 members (one village each, in turn) to the demo cadres file."""
    import csv

    from bot.demo import TOWNSHIPS

    villages = [(t, v) for t, vs in TOWNSHIPS.items() for v in vs]
    with cadres_csv.open("a", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        for i in range(extra):
            township, village = villages[i % len(villages)]
            writer.writerow(
                [f"WT{i + 1:03d}", f"队员{i + 1}", f"1370000{i + 1:04d}", "驻村工作队", township, village]
            )


async def prepare_database(folder: Path, cadres: int, url: str) -> list[ChatCadre]:
    """A fresh database through the CLI, then `cadres` cadres (those with households) bound to Telegram users."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from bot.demo import write_roster
    from storage.db import Database
    from storage.models import Cadre, TelegramAccount, utcnow
    from storage.visits import households_in_scope
    from survey.periods import coverage_target

    if is_postgres(url):
        await reset_postgres(url)
    env = child_env(ZOUFANG_DB_URL=url)
    counts = write_roster(folder, random.Random(7))
    with_households = counts.cadres - 3  # 扶贫专干 ×2 and 督查指挥中心 have no households in scope
    if cadres > with_households:
        add_work_team(folder / "cadres.csv", cadres - with_households)
    run_cli(["init"], env, folder)
    run_cli(["import", "cadres", str(folder / "cadres.csv"), "--county", COUNTY], env, folder)
    run_cli(["import", "households", str(folder / "households.csv")], env, folder)

    db = Database(url)
    chats: list[ChatCadre] = []
    try:
        async with db.session() as s:
            query = select(Cadre).options(selectinload(Cadre.villages)).order_by(Cadre.id)
            for cadre in (await s.execute(query)).scalars():
                if len(chats) == cadres:
                    break
                found = await households_in_scope(s, cadre, coverage_target(cadre.role).scope)
                if not found:
                    continue
                user_id = FIRST_USER_ID + len(chats)
                s.add(TelegramAccount(user_id=user_id, cadre_id=cadre.id, chat_id=user_id, bound_at=utcnow()))
                refs = tuple(HouseholdRef(h.id, h.code, h.members) for h in found)
                chats.append(ChatCadre(user_id, cadre.id, cadre.code, cadre.role, refs))
    finally:
        await db.close()
    if len(chats) < cadres:
        raise BenchError(f"only {len(chats)} cadres have households to visit, wanted {cadres}")
    return chats


async def draft_visit_id(store: Store, cadre_id: int, household_id: int) -> int | None:
    """The visit the server just started (read-only, so the generator never takes SQLite's write lock)."""
    found = await store.value(
        "SELECT id FROM visits WHERE cadre_id = $1 AND household_id = $2 AND status = 'draft' "
        "ORDER BY id DESC LIMIT 1",
        cadre_id,
        household_id,
    )
    return int(found) if found is not None else None


async def database_counts(store: Store) -> dict[str, int]:
    out = {
        str(k): int(v) for k, v in await store.fetch("SELECT status, count(*) FROM visits GROUP BY status")
    }
    out["answers"] = int(await store.value("SELECT count(*) FROM answers"))
    out["processed_updates"] = int(await store.value("SELECT count(*) FROM processed_updates"))
    return out


# --- the load generator ------------------------------------------------------------------------------------


class OutOfBudget(Exception):
    """All N updates were sent."""


@dataclass
class Load:
    """Posts updates; at most `concurrency` in flight, `total` in all; records latency and errors."""

    session: Any
    url: str
    total: int
    concurrency: int
    headers: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    taken: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.gate = asyncio.Semaphore(self.concurrency)
        self.headers = {"Content-Type": "application/json", **self.headers}

    async def post(self, update: dict[str, Any], kind: str) -> int:
        if self.taken >= self.total:
            raise OutOfBudget
        self.taken += 1
        self.kinds[kind] += 1
        body = json.dumps(update, ensure_ascii=False).encode()
        async with self.gate:
            started = time.perf_counter()
            try:
                async with self.session.post(self.url, data=body, headers=self.headers) as response:
                    await response.read()
                    status = response.status
            except OSError:
                status = -1  # connection refused or reset
            self.latencies.append(time.perf_counter() - started)
        self.statuses[status] += 1
        return status


class Chat:
    """One cadre's Telegram chat walking visits, one household after another, one update in flight."""

    def __init__(self, load: Load, cadre: ChatCadre, store: Store, script: Any, seed: int) -> None:
        self.load, self.cadre, self.store, self.script = load, cadre, store, script
        self.rng = random.Random(seed)
        self.completed = 0
        self.failure = ""

    async def run(self) -> None:
        households = self.cadre.households
        start = self.rng.randrange(len(households))
        n = 0
        try:
            while True:
                household = households[(start + n) % len(households)]
                n += 1
                if not await self.visit(household):
                    return
                self.completed += 1
        except OutOfBudget:
            return

    async def send(self, update: dict[str, Any], kind: str) -> None:
        status = await self.load.post(update, kind)
        if status != 200:
            # a real Telegram would redeliver; the chat stops here so the walk never goes out of step
            self.failure = f"{kind} answered HTTP {status}"
            raise OutOfBudget

    async def visit(self, household: HouseholdRef) -> bool:
        from bot.demo import visit_inputs
        from survey import engine
        from survey.answers import parse_choice, parse_choices, parse_yes_no
        from tests.fake_telegram import callback_update, location_update, message_update, photo_update

        user = self.cadre.user_id
        await self.send(message_update(user, "/visit"), "/visit")
        await self.send(callback_update(user, f"h:{household.id}"), "pick")
        visit = await draft_visit_id(self.store, self.cadre.cadre_id, household.id)
        if visit is None:
            self.failure = f"no draft visit after picking household {household.code}"
            return False
        typed = iter(
            visit_inputs(self.rng, SimpleNamespace(members=household.members), open_problem=False)  # type: ignore[arg-type]
        )
        session, reply = engine.start(self.script, household.code, capabilities=CAPABILITIES)

        def tap(code: str) -> dict[str, Any]:
            return callback_update(user, f"a:{visit}:{key}:{code}")

        while True:
            step = reply.step
            if isinstance(step, engine.Submitted):
                return True
            if isinstance(step, engine.Summary):
                key = "summary"
                given: Any = next(typed)
                if given != "提交":
                    raise BenchError(f"the summary came before the typed answers ran out ({given!r})")
                await self.send(tap("submit"), "tap")
            elif not isinstance(step, engine.Ask):
                raise BenchError(f"unexpected step {step!r}")
            else:
                key, question = step.key, step.question
                if question.type == "location" and not step.adding:
                    lat, lon = 45 + self.rng.random(), 122 + self.rng.random()
                    await self.send(location_update(user, lat, lon), "location")
                    given = engine.Location(lat, lon)
                elif question.type == "photo" and not step.adding:
                    if self.rng.random() < 0.5:
                        file_id = f"AgAD-{visit}-{key}"
                        await self.send(photo_update(user, file_id), "photo")
                        given = engine.Photo(file_id)
                    else:
                        await self.send(tap("s"), "tap")
                        given = CODE_TEXT["s"]
                else:
                    text = next(typed)
                    labels = [c.texts() for c in question.choices]
                    if step.adding or question.type == "yes_no":
                        code = "y" if parse_yes_no(text) else "n"
                        await self.send(tap(code), "tap")
                        given = CODE_TEXT[code]
                    elif question.type == "confirm":
                        await self.send(tap("y"), "tap")
                        given = CODE_TEXT["y"]
                    elif question.type == "one_of":
                        i = question.choice_values.index(parse_choice(text, question.choice_values, labels))
                        await self.send(tap(f"c{i}"), "tap")
                        given = str(i + 1)
                    elif question.type == "several_of":
                        chosen = parse_choices(text, question.choice_values, labels)
                        indices = [question.choice_values.index(v) for v in chosen]
                        for i in indices:
                            await self.send(callback_update(user, f"t:{visit}:{key}:{i}"), "toggle")
                        await self.send(callback_update(user, f"d:{visit}:{key}"), "tap")
                        given = " ".join(str(i + 1) for i in indices)
                    elif step.skippable and text.strip() in ("", "跳过"):
                        await self.send(tap("s"), "tap")
                        given = CODE_TEXT["s"]
                    else:
                        await self.send(message_update(user, text), "text")
                        given = text
            session, reply = engine.answer(self.script, session, given, for_key=key)
            if reply.error is not None:
                raise BenchError(f"the generator's answer {given!r} to {key} is refused: {reply.error.code}")


async def drive(
    name: str,
    base_url: str,
    total: int,
    concurrency: int,
    chats: Callable[[Load], list[Any]],
    meter: CpuMeter,
) -> Result:
    """Run the chats against `base_url` + WEBHOOK; the CPU the meter's processes and this one spent meanwhile."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        load = Load(
            client, base_url + WEBHOOK, total, concurrency, {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        walkers = chats(load)
        meter.start()
        progress = asyncio.create_task(_progress(name, load))
        started = time.perf_counter()
        await asyncio.gather(*(w.run() for w in walkers))
        elapsed = time.perf_counter() - started
        progress.cancel()
        cpu = meter.stop()
    return Result(
        name,
        load.taken,
        elapsed,
        load.latencies,
        load.statuses,
        cpu,
        load.kinds,
        completed=sum(getattr(w, "completed", 0) for w in walkers),
        failures=[f"{w.cadre.code}: {w.failure}" for w in walkers if getattr(w, "failure", "")],
    )


async def _progress(name: str, load: Load, every: float = 10.0) -> None:
    started = time.perf_counter()
    while True:
        await asyncio.sleep(every)
        took = time.perf_counter() - started
        print(
            f"  … {name}: {load.taken}/{load.total} after {took:.0f} s ({load.taken / took:.0f}/s)",
            file=sys.stderr,
            flush=True,
        )


class YardstickChat:
    """The same chats and ordering, with message updates for the bare INSERT + COMMIT handler."""

    def __init__(self, load: Load, user_id: int, seed: int) -> None:
        self.load, self.user_id, self.rng = load, user_id, random.Random(seed)

    async def run(self) -> None:
        from tests.fake_telegram import message_update

        with contextlib.suppress(OutOfBudget):
            while True:
                await self.load.post(message_update(self.user_id, str(self.rng.randint(0, 9000))), "text")


# --- the run ------------------------------------------------------------------------------------------------


def serve_env(args: argparse.Namespace, url: str, fake_url: str, sms: bool = False) -> dict[str, str]:
    env = child_env(
        ZOUFANG_DB_URL=url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE=fake_url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    if args.redis_url:
        env["ZOUFANG_REDIS_URL"] = args.redis_url
    if sms:  # Twilio configured too (nothing is queued, so nothing is sent to it)
        env |= {
            "SMS_BACKEND": "twilio",
            "TWILIO_API_BASE": fake_url,
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 31 + "1",
            "TWILIO_AUTH_TOKEN": "bench-twilio-auth-token",
            "TWILIO_FROM_NUMBER": "+8610690000000",
            "PUBLIC_BASE_URL": "https://bench.example.cn",
        }
    return env


async def bench_serve(args: argparse.Namespace, folder: Path, url: str) -> tuple[Result, dict[str, Any]]:
    from survey.script import load_script

    cadres = await prepare_database(folder, args.cadres, url)
    households = sorted({h.id for c in cadres for h in c.households})
    print(
        f"database: {redacted(url)} — {len(cadres)} cadres bound "
        f"({', '.join(sorted({c.role for c in cadres}))}), {len(households)} households in their scopes",
        flush=True,
    )
    if args.redis_url:
        flush_redis(args.redis_url)

    fake = start_child(
        SCRIPT, f"fake-{args.fake}", ["--role", f"fake-{args.fake}", "--port", str(free_port())], folder
    )
    serve: Serve | None = None
    extra: dict[str, Any] = {}
    try:
        fake_url = await asyncio.to_thread(fake.wait_ready)
        serve = Serve(folder, serve_env(args, url, fake_url), args.workers)
        await serve.start()
        extra["idle_memory"] = serve.idle
        print(
            f"zoufang serve pid {serve.pid} ({args.workers} worker{'s' if args.workers > 1 else ''}) on "
            f"{serve.base}; fake Bot API ({args.fake}) pid {fake.proc.pid}; idle: {serve.idle['rss_mb']:.0f} MB "
            f"resident in {serve.idle['processes']} processes",
            flush=True,
        )
        if args.pause:
            print(f"  pausing {args.pause:.0f} s (attach a profiler to pid {serve.pid})", flush=True)
            await asyncio.sleep(args.pause)

        script = load_script()
        meter = CpuMeter.of({"serve": serve.pid, "fake": fake.proc.pid}, url, args.redis_url)
        async with Store(url) as store:
            result = await drive(
                "zoufang serve",
                serve.base,
                args.updates,
                args.concurrency,
                lambda load: [Chat(load, c, store, script, seed=i) for i, c in enumerate(cadres)],
                meter,
            )
    finally:
        if serve is not None:
            serve.stop()
        extra["fake_calls"] = fake.stop()
    if serve is not None:
        extra["serve_log_lines"], extra["serve_exceptions"] = scan_log(serve.log_path)
    async with Store(url) as store:
        extra["db"] = await database_counts(store)
    return result, extra


async def bench_idle(args: argparse.Namespace, folder: Path, url: str) -> dict[str, Any]:
    """serve with the Telegram bot and Twilio SMS configured, idle: its memory, then stopped."""
    await prepare_database(folder, min(args.cadres, 17), url)
    if args.redis_url:
        flush_redis(args.redis_url)
    fake = start_child(SCRIPT, "fake-thin", ["--role", "fake-thin", "--port", str(free_port())], folder)
    serve: Serve | None = None
    try:
        fake_url = await asyncio.to_thread(fake.wait_ready)
        serve = Serve(folder, serve_env(args, url, fake_url, sms=True), args.workers)
        await serve.start(args.idle_seconds)
        return serve.idle
    finally:
        if serve is not None:
            serve.stop()
        fake.stop()


async def bench_yardstick(
    args: argparse.Namespace, folder: Path, url: str, chats: int
) -> tuple[Result, dict[str, Any]]:
    from sqlalchemy.engine import make_url

    db = url if is_postgres(url) else str(make_url(url).database)  # the same database, a table of its own
    yards = await start_yardsticks(SCRIPT, db, args.yardstick_workers, folder)
    try:
        result = await drive(
            "yardstick",
            yards[0].url,
            args.updates,
            args.concurrency,
            lambda load: [YardstickChat(load, FIRST_USER_ID + i, seed=i) for i in range(chats)],
            CpuMeter.of({f"yardstick-{i}": y.proc.pid for i, y in enumerate(yards)}, url),
        )
    finally:
        stats = stop_yardsticks(yards)
    result.cpu["yardstick"] = sum(v for k, v in result.cpu.items() if k.startswith("yardstick-"))
    stats["describe"] = describe_yardstick(db, len(yards))
    return result, stats


def report(
    serve: Result, extra: dict[str, Any], yard: Result | None, yard_stats: dict[str, Any], args: Any
) -> None:
    db = extra["db"]
    submitted = db.get("submitted", 0)
    calls = extra.get("fake_calls", {})
    backend = "PostgreSQL" if args.db_url else "SQLite"
    print()
    print(
        f"zoufang serve ({backend}, {args.workers} worker{'s' if args.workers > 1 else ''}) — {args.cadres} chats, "
        f"concurrency {args.concurrency}, fake Bot API: {args.fake}"
    )
    print(
        f"  updates sent       {serve.sent}  ({', '.join(f'{k} {n}' for k, n in serve.kinds.most_common())})"
    )
    print(f"  elapsed            {serve.elapsed:.2f} s")
    print(f"  updates/s          {serve.rate:.1f}   (aim: ≥ 500)")
    print(f"  latency            {serve.latency_line()}")
    print(f"  errors (non-200)   {serve.errors}  {dict(serve.statuses)}")
    for failure in serve.failures:
        print(f"    chat stopped: {failure}")
    check = "ok" if submitted == serve.completed else "MISMATCH"
    print(
        f"  visits submitted   {submitted} in the database, {serve.completed} completed by the generator ({check})"
    )
    print(
        f"  database           drafts {db.get('draft', 0)}, answers {db['answers']}, "
        f"processed_updates {db['processed_updates']}"
    )
    print(
        f"  Bot API calls      {sum(calls.values())}  ({', '.join(f'{k} {n}' for k, n in sorted(calls.items()))})"
    )
    idle = extra["idle_memory"]
    print(
        f"  idle memory        {idle['rss_mb']:.0f} MB resident (VmRSS summed over {idle['processes']} processes), "
        f"Pss {idle['pss_mb']} MB"
    )
    print(f"  serve log lines    {extra.get('serve_log_lines', 0)}")
    for exception, n in extra.get("serve_exceptions", Counter()).most_common(3):
        print(f"    logged ×{n}: {exception}")
    cpu = serve.cpu
    others = ", ".join(f"{k} {v:.1f} ({v / serve.elapsed:.0%})" for k, v in cpu.items() if k != "serve")
    print(
        f"  CPU seconds        serve {cpu['serve']:.1f} ({cpu['serve'] / serve.elapsed:.0%} of a core), {others}"
    )
    if serve.sent:
        print(
            "  CPU per update     " + ", ".join(f"{k} {v / serve.sent * 1000:.2f} ms" for k, v in cpu.items())
        )
    if yard is None:
        return
    print()
    print(f"yardstick: {yard_stats['describe']}")
    print(
        f"  requests           {yard.sent} in {yard.elapsed:.2f} s, errors {yard.errors}, rows {yard_stats.get('rows')}"
    )
    print(f"  requests/s         {yard.rate:.1f}")
    print(f"  latency            {yard.latency_line()}")
    print(
        f"  CPU seconds        yardstick {yard.cpu['yardstick']:.1f} "
        f"({yard.cpu['yardstick'] / max(yard.sent, 1) * 1000:.2f} ms/request), "
        f"generator {yard.cpu['generator']:.1f}"
        + (f", postgres {yard.cpu['postgres']:.1f}" if "postgres" in yard.cpu else "")
    )
    print(f"  ratio              zoufang serve / yardstick = {serve.rate / yard.rate:.3f} (throughput)")


def settings_used(args: argparse.Namespace) -> dict[str, Any]:
    keep = ("updates", "cadres", "concurrency", "fake", "workers", "yardstick_workers", "idle_seconds")
    out = {k: getattr(args, k) for k in keep}
    out["db_url"] = redacted(args.db_url) if args.db_url else "sqlite (temp file)"
    out["redis_url"] = args.redis_url or None
    return out


def figures(
    args: argparse.Namespace,
    serve: Result,
    extra: dict[str, Any],
    yard: Result | None,
    yard_stats: dict[str, Any],
) -> dict[str, Any]:
    db = extra["db"]
    out: dict[str, Any] = {
        "benchmark": "telegram_webhook",
        "backend": backend_name(args.db_url or "sqlite"),
        "workers": args.workers,
        "mode": "closed loop",
        "settings": settings_used(args),
        "serve": serve.as_json("serve"),
        "checks": {
            "visits_submitted": db.get("submitted", 0),
            "visits_completed_by_generator": serve.completed,
            "ok": serve.errors == 0 and db.get("submitted", 0) == serve.completed,
            "chats_stopped": serve.failures,
            "processed_updates": db["processed_updates"],
            "answers": db["answers"],
            "bot_api_calls": sum(extra.get("fake_calls", {}).values()),
            "serve_log_lines": extra.get("serve_log_lines", 0),
        },
        "idle_memory": extra["idle_memory"],
        "machine": machine(),
    }
    out["serve"]["kinds"] = dict(serve.kinds.most_common())
    if yard is not None:
        out["yardstick"] = {
            **yard.as_json("yardstick"),
            "what": yard_stats["describe"],
            "rows": yard_stats["rows"],
        }
        out["ratio"] = round(serve.rate / yard.rate, 4) if yard.rate else None
    return out


async def main_async(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))  # tests.fake_telegram (builders) is not an installed package
    return await in_run_folder(args, "zoufang-bench-", "database, serve.log", run_in)


async def run_in(args: argparse.Namespace, folder: Path) -> int:
    url = database_url(args, folder)
    if args.idle_only:
        idle = await bench_idle(args, folder, url)
        print(
            f"zoufang serve ({backend_name(url)}, {args.workers} worker{'s' if args.workers > 1 else ''}, Telegram "
            f"+ Twilio configured) idle for {idle['settle_s']:g} s: {idle['rss_mb']:.1f} MB resident (VmRSS "
            f"summed over {idle['processes']} processes: "
            + ", ".join(f"{p['rss_mb']:.0f}" for p in idle["per_process"])
            + f"), Pss {idle['pss_mb']} MB"
        )
        if args.json:
            write_json(
                args.json,
                {
                    "benchmark": "serve_idle",
                    "backend": backend_name(url),
                    "workers": args.workers,
                    "configured": "Telegram bot (webhook) + Twilio SMS",
                    "settings": settings_used(args),
                    "idle_memory": idle,
                    "machine": machine(),
                },
            )
            print(f"wrote {args.json}")
        return 0
    serve, extra = await bench_serve(args, folder, url)
    yard, yard_stats = (None, {})
    if not args.no_yardstick:
        yard, yard_stats = await bench_yardstick(args, folder, url, args.cadres)
    report(serve, extra, yard, yard_stats, args)
    if args.json:
        write_json(args.json, figures(args, serve, extra, yard, yard_stats))
        print(f"wrote {args.json}")
    ok = serve.errors == 0 and extra["db"].get("submitted", 0) == serve.completed
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=5000, help="updates to post (default 5000)")
    parser.add_argument("--cadres", type=int, default=20, help="chats, one bound cadre each (default 20)")
    parser.add_argument("--concurrency", type=int, default=None, help="updates in flight (default: --cadres)")
    parser.add_argument("--fake", choices=("thin", "full"), default="thin", help="the fake Bot API server")
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
        help="ZOUFANG_REDIS_URL for serve, needed with --workers > 1; its database is FLUSHED first "
        "(use a dedicated one, e.g. redis://127.0.0.1:6379/11)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument(
        "--idle-only",
        action="store_true",
        help="only measure serve's idle memory (Telegram + SMS configured)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="idle time before the memory is read (default 5)"
    )
    parser.add_argument("--no-yardstick", action="store_true", help="skip the INSERT + COMMIT yardstick")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds to wait before the load (profiling)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (database, logs)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return args
    if args.concurrency is None:
        args.concurrency = args.cadres
    if args.yardstick_workers is None:
        args.yardstick_workers = args.workers
    if min(args.updates, args.cadres, args.concurrency, args.workers, args.yardstick_workers) < 1:
        parser.error(
            "--updates, --cadres, --concurrency, --workers and --yardstick-workers must be at least 1"
        )
    if args.db_url and not is_postgres(args.db_url):
        parser.error("--db-url takes a PostgreSQL URL (postgresql+asyncpg://…); SQLite is the default")
    if args.workers > 1 and not args.redis_url:
        parser.error(
            "--workers > 1 with a Telegram bot needs Redis (zoufang serve refuses without ZOUFANG_REDIS_URL): "
            "add --redis-url redis://127.0.0.1:6379/11 (a dedicated database: it is flushed)"
        )
    return args


ROLES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "fake-thin": lambda a: run_thin_fake(a.port),
    "fake-full": lambda a: run_full_fake(a.port),
    "yardstick": lambda a: run_yardstick(a.port, a.db, WEBHOOK),
}


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), ROLES, main_async)


if __name__ == "__main__":
    sys.exit(main())
