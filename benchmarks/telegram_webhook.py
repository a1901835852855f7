"""Benchmark: realistic Telegram updates posted to a running `zoufang serve` (SQLite).

One command does everything::

    python benchmarks/telegram_webhook.py [--updates N] [--cadres C] [--concurrency K] [--fake thin|full]

1. A temp folder with a fresh SQLite database: `zoufang init`, the demo roster (`write_roster`) imported with
   `zoufang import cadres … --county 示范县` and `zoufang import households …`; C cadres that have households to
   visit are bound to Telegram user ids (`telegram_accounts` rows). The demo roster has 17 such cadres; when C
   is larger, extra 驻村工作队 members (scope: their village) are added to the cadres file before the import.
2. A fake Bot API server in its own process: `thin` (default) answers every method with a minimal ok result;
   `full` runs tests.fake_telegram.FakeTelegram (parses and records every call).
3. `zoufang serve --port P` as a subprocess (ZOUFANG_DB_URL, TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE,
   TELEGRAM_WEBHOOK_SECRET), waited for on /healthz.
4. This process posts N updates (aiohttp client, one connection pool): each cadre's chat walks visits — `/visit`,
   the `h:<id>` button, then every question of the default script the way a cadre answers on a phone: location
   and photos sent as such, buttons tapped for yes/no, choices and the four talks (`a:<visit>:<key>:<code>`),
   several-of ticked (`t:`) then done (`d:`), numbers and text typed, 提交 tapped at the summary (the answers come
   from bot.demo.visit_inputs; a local copy of the engine tells which key each button must name). One update
   in flight per chat (as Telegram delivers), K updates in flight overall.
5. Prints updates/s, latency p50/p90/p99/max, errors, visits submitted (from the database, against what the
   generator completed) and the CPU seconds used by serve, the fake and the generator during the load.
6. The yardstick: a bare aiohttp handler in its own process doing one INSERT + COMMIT per request (SQLite WAL,
   synchronous=NORMAL, one aiosqlite connection), hit by the same generator (N requests, same chats and
   concurrency, the same kind of update bodies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


async def prepare_database(folder: Path, cadres: int) -> tuple[Path, list[ChatCadre]]:
    """A fresh database through the CLI, then `cadres` cadres (those with households) bound to Telegram users."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from bot.demo import write_roster
    from storage.db import Database, sqlite_url
    from storage.models import Cadre, TelegramAccount, utcnow
    from storage.visits import households_in_scope
    from survey.periods import coverage_target

    db_path = folder / "zoufang.db"
    env = child_env(ZOUFANG_DB_URL=sqlite_url(db_path))
    counts = write_roster(folder, random.Random(7))
    with_households = counts.cadres - 3  # 扶贫专干 ×2 and 督查指挥中心 have no households in scope
    if cadres > with_households:
        add_work_team(folder / "cadres.csv", cadres - with_households)
    run_cli(["init"], env, folder)
    run_cli(["import", "cadres", str(folder / "cadres.csv"), "--county", COUNTY], env, folder)
    run_cli(["import", "households", str(folder / "households.csv")], env, folder)

    db = Database(sqlite_url(db_path))
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
    return db_path, chats


def draft_visit_id(db_path: Path, cadre_id: int, household_id: int) -> int | None:
    """The visit the server just started (read-only, so the generator never takes SQLite's write lock)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)) as conn:
        row = conn.execute(
            "SELECT id FROM visits WHERE cadre_id = ? AND household_id = ? AND status = 'draft' "
            "ORDER BY id DESC LIMIT 1",
            (cadre_id, household_id),
        ).fetchone()
    return int(row[0]) if row else None


def database_counts(db_path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        out = dict(conn.execute("SELECT status, count(*) FROM visits GROUP BY status").fetchall())
        out["answers"] = conn.execute("SELECT count(*) FROM answers").fetchone()[0]
        out["processed_updates"] = conn.execute("SELECT count(*) FROM processed_updates").fetchone()[0]
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

    def __init__(self, load: Load, cadre: ChatCadre, db_path: Path, script: Any, seed: int) -> None:
        self.load, self.cadre, self.db_path, self.script = load, cadre, db_path, script
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
        visit = await asyncio.to_thread(draft_visit_id, self.db_path, self.cadre.cadre_id, household.id)
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
    pids: dict[str, int],
) -> Result:
    """Run the chats against `base_url` + WEBHOOK; CPU of `pids` and of this process measured over the run."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        load = Load(
            client, base_url + WEBHOOK, total, concurrency, {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        walkers = chats(load)
        cpu_before = {label: cpu_seconds(pid) for label, pid in pids.items()}
        own_before = time.process_time()
        progress = asyncio.create_task(_progress(name, load))
        started = time.perf_counter()
        await asyncio.gather(*(w.run() for w in walkers))
        elapsed = time.perf_counter() - started
        progress.cancel()
        cpu = {label: cpu_seconds(pid) - cpu_before[label] for label, pid in pids.items()}
        cpu["generator"] = time.process_time() - own_before
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


# --- the run -----------------------------------------------------------------------------------------------


async def bench_serve(args: argparse.Namespace, folder: Path) -> tuple[Result, dict[str, Any]]:
    from storage.db import sqlite_url
    from survey.script import load_script

    db_path, cadres = await prepare_database(folder, args.cadres)
    households = sorted({h.id for c in cadres for h in c.households})
    print(
        f"database: {db_path} — {len(cadres)} cadres bound "
        f"({', '.join(sorted({c.role for c in cadres}))}), {len(households)} households in their scopes",
        flush=True,
    )

    fake = start_child(
        SCRIPT, f"fake-{args.fake}", ["--role", f"fake-{args.fake}", "--port", str(free_port())], folder
    )
    serve: subprocess.Popen[str] | None = None
    serve_log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed below
    extra: dict[str, Any] = {"db_path": db_path}
    try:
        fake_url = await asyncio.to_thread(fake.wait_ready)
        port = free_port()
        env = child_env(
            ZOUFANG_DB_URL=sqlite_url(db_path),
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE=fake_url,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
        )
        serve = subprocess.Popen(
            [zoufang_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=serve_log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        extra["serve_pid"] = serve.pid

        def serve_tail() -> str:
            serve_log.flush()
            return "\n".join((folder / "serve.log").read_text(errors="replace").splitlines()[-20:])

        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, serve, serve_tail)
        print(
            f"zoufang serve pid {serve.pid} on {base}; fake Bot API ({args.fake}) pid {fake.proc.pid}",
            flush=True,
        )
        if args.pause:
            print(f"  pausing {args.pause:.0f} s (attach a profiler to pid {serve.pid})", flush=True)
            await asyncio.sleep(args.pause)

        script = load_script()
        result = await drive(
            "zoufang serve",
            base,
            args.updates,
            args.concurrency,
            lambda load: [Chat(load, c, db_path, script, seed=i) for i, c in enumerate(cadres)],
            {"serve": serve.pid, "fake": fake.proc.pid},
        )
        extra["serve_log_lines"], extra["serve_exceptions"] = scan_log(folder / "serve.log")
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGINT)  # KeyboardInterrupt: the app's cleanup runs
            try:
                serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        serve_log.close()
        extra["fake_calls"] = fake.stop()
    extra["db"] = database_counts(db_path)
    return result, extra


async def bench_yardstick(
    args: argparse.Namespace, folder: Path, chats: int
) -> tuple[Result, dict[str, Any]]:
    db_path = folder / "yardstick.db"
    yard = start_child(
        SCRIPT, "yardstick", ["--role", "yardstick", "--port", str(free_port()), "--db", str(db_path)], folder
    )
    try:
        url = await asyncio.to_thread(yard.wait_ready)
        result = await drive(
            "yardstick",
            url,
            args.updates,
            args.concurrency,
            lambda load: [YardstickChat(load, FIRST_USER_ID + i, seed=i) for i in range(chats)],
            {"yardstick": yard.proc.pid},
        )
    finally:
        stats = yard.stop()
    return result, stats


def report(
    serve: Result, extra: dict[str, Any], yard: Result | None, yard_stats: dict[str, Any], args: Any
) -> None:
    db = extra["db"]
    submitted = db.get("submitted", 0)
    calls = extra.get("fake_calls", {})
    print()
    print(
        f"zoufang serve (SQLite) — {args.cadres} chats, concurrency {args.concurrency}, fake Bot API: {args.fake}"
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
    print(f"  serve log lines    {extra.get('serve_log_lines', 0)}")
    for exception, n in extra.get("serve_exceptions", Counter()).most_common(3):
        print(f"    logged ×{n}: {exception}")
    cpu = serve.cpu
    print(
        f"  CPU seconds        serve {cpu['serve']:.1f} ({cpu['serve'] / serve.elapsed:.0%} of a core), "
        f"fake {cpu['fake']:.1f} ({cpu['fake'] / serve.elapsed:.0%}), "
        f"generator {cpu['generator']:.1f} ({cpu['generator'] / serve.elapsed:.0%})"
    )
    if serve.sent:
        print(
            f"  CPU per update     serve {cpu['serve'] / serve.sent * 1000:.2f} ms, "
            f"fake {cpu['fake'] / serve.sent * 1000:.2f} ms, generator {cpu['generator'] / serve.sent * 1000:.2f} ms"
        )
    if yard is None:
        return
    print()
    print("yardstick: bare aiohttp + one INSERT + COMMIT per request (aiosqlite, WAL, synchronous=NORMAL)")
    print(
        f"  requests           {yard.sent} in {yard.elapsed:.2f} s, errors {yard.errors}, rows {yard_stats.get('rows')}"
    )
    print(f"  requests/s         {yard.rate:.1f}")
    print(f"  latency            {yard.latency_line()}")
    print(
        f"  CPU seconds        yardstick {yard.cpu['yardstick']:.1f} "
        f"({yard.cpu['yardstick'] / yard.elapsed * 1000 / max(yard.rate, 1e-9):.2f} ms/request), "
        f"generator {yard.cpu['generator']:.1f}"
    )
    print(f"  ratio              zoufang serve / yardstick = {serve.rate / yard.rate:.3f} (throughput)")


async def main_async(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))  # tests.fake_telegram (builders) is not an installed package
    if args.keep:
        folder = Path(tempfile.mkdtemp(prefix="zoufang-bench-"))
        print(f"keeping the run's files (database, serve.log) in {folder}")
        return await run_in(args, folder)
    with tempfile.TemporaryDirectory(prefix="zoufang-bench-") as tmp:
        return await run_in(args, Path(tmp))


async def run_in(args: argparse.Namespace, folder: Path) -> int:
    serve, extra = await bench_serve(args, folder)
    yard, yard_stats = (None, {})
    if not args.no_yardstick:
        yard, yard_stats = await bench_yardstick(args, folder, args.cadres)
    report(serve, extra, yard, yard_stats, args)
    ok = serve.errors == 0 and extra["db"].get("submitted", 0) == serve.completed
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=5000, help="updates to post (default 5000)")
    parser.add_argument("--cadres", type=int, default=20, help="chats, one bound cadre each (default 20)")
    parser.add_argument("--concurrency", type=int, default=None, help="updates in flight (default: --cadres)")
    parser.add_argument("--fake", choices=("thin", "full"), default="thin", help="the fake Bot API server")
    parser.add_argument("--no-yardstick", action="store_true", help="skip the INSERT + COMMIT yardstick")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds to wait before the load (profiling)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (database, logs)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.concurrency is None:
        args.concurrency = args.cadres
    if args.updates < 1 or args.cadres < 1 or args.concurrency < 1:
        parser.error("--updates, --cadres and --concurrency must be at least 1")
    return args


ROLES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "fake-thin": lambda a: run_thin_fake(a.port),
    "fake-full": lambda a: run_full_fake(a.port),
    "yardstick": lambda a: run_yardstick(a.port, a.db, WEBHOOK),
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
