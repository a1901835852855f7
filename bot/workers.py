"""`zoufang serve --workers N`: N forked processes serving one port, one small parent watching them.

The parent binds the port once (so a port in use is one error, and `--port 0` is one port), imports the
application, then forks the workers; each runs the same aiohttp application (bot.app.serve) on that port (its
own SO_REUSEPORT socket on Linux, the inherited one elsewhere: see Listener), and the kernel hands each new
connection to one of them. What runs where:

- every worker: the webhooks (`/telegram/webhook`, `/sms/*`, `/healthz`), and the SMS outbox sender when
  Redis is configured (rows are claimed with SKIP LOCKED, and the SMS rate is one budget in Redis);
- worker 0 only: the SMS sender without Redis (one sender keeps the rate), the Telegram outbox sender (a few
  digests a day, in order), the scheduler (its jobs are recorded once anyway), the housekeeping and the
  command menu.

The parent forwards SIGTERM and SIGINT to the workers and waits for them (a worker finishes its requests in
flight for up to bot.app.WORKER_SHUTDOWN seconds, then is killed). A worker that dies unexpectedly is logged and
started again in its place (worker 0 with the scheduler); when workers die MAX_DEATHS times within
DEATH_WINDOW seconds, something is wrong that restarting will not fix: the parent stops the others and exits 1.

Several workers share nothing in memory, so the Telegram side needs Redis (FSM state, and one chat's updates
handled one at a time: bot.channels.telegram.dispatcher); SQLite works but has one writer, so the workers
only queue on its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from bot.app import WORKER_SHUTDOWN, ServeError
from bot.settings import Settings
from survey.script import Script

log = logging.getLogger("zoufang.workers")

BACKLOG = 1024
MAX_DEATHS = 5
DEATH_WINDOW = 60.0
RESTART_PAUSE = 1.0  # a worker that died this soon after starting is restarted after this pause
STOP_GRACE = WORKER_SHUTDOWN + 5.0


def preflight(settings: Settings, workers: int, *, polling: bool) -> list[str]:
    """Refuse what cannot work with several workers (ServeError, one line); the warnings worth a line."""
    if polling:
        raise ServeError("polling_one_process")
    if not hasattr(os, "fork"):
        raise ServeError("workers_need_fork")
    if settings.telegram_bot_token:
        if not settings.telegram_webhook_secret:
            raise ServeError("no_webhook_secret")
        if not settings.redis_url:
            raise ServeError("workers_need_redis", workers=workers)
    if settings.redis_url:
        try:
            import redis  # noqa: F401
        except ImportError:
            raise ServeError("redis_missing") from None
    warnings = []
    if settings.db_url.startswith("sqlite"):
        warnings.append(
            f"warning: SQLite has one writer: the {workers} workers only queue on its lock "
            "(PostgreSQL uses the cores)"
        )
    return warnings


@dataclass
class Listener:
    """Where the workers listen.

    On Linux the parent only binds (so the port is held, a taken one is refused at once and `--port 0` is one
    port) and each worker binds a socket of its own to the same address with SO_REUSEPORT: the kernel spreads
    new connections evenly over them. One shared socket would hand most of them to whichever worker happens
    to wake first, and Telegram's keep-alive connections would stay there. Elsewhere the parent listens on
    one socket that the workers inherit."""

    sock: socket.socket
    reuse_port: bool

    @classmethod
    def bind(cls, host: str, port: int) -> Listener:
        """OSError when the address cannot be bound."""
        family, _, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        reuse_port = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
        return cls(_bound(family, address, reuse_port=reuse_port, listen=not reuse_port), reuse_port)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def for_worker(self) -> socket.socket:
        """In a worker: the socket to serve (its own, or the shared one)."""
        if not self.reuse_port:
            return self.sock
        own = _bound(self.sock.family, self.sock.getsockname(), reuse_port=True, listen=True)
        self.sock.close()  # the parent's copy holds the port
        return own


def _bound(family: int, address: Any, *, reuse_port: bool, listen: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def preload(settings: Settings) -> None:
    """Import what the workers will run before forking them: imported once, shared copy-on-write."""
    import bot.jobs.outbox
    import bot.jobs.scheduler

    if settings.telegram_bot_token:
        from bot.channels.telegram.lean import import_aiogram

        import_aiogram()
        from aiogram.types import Update

        import bot.channels.telegram.dispatcher

        Update.model_validate(
            {"update_id": 0}
        )  # built here once, shared, not in each worker at its first update
    if settings.redis_url:
        import bot.ratelimit  # noqa: F401


class Supervisor:
    """Forks the workers, forwards the stop signals, restarts a worker that died, gives up on a crash loop."""

    def __init__(self, listener: Listener, settings: Settings, script: Script, workers: int) -> None:
        self.listener, self.settings, self.script, self.count = listener, settings, script, workers
        self.context = multiprocessing.get_context("fork")
        self.workers: dict[int, Any] = {}  # index → multiprocessing.Process
        self.started: dict[int, float] = {}
        self.deaths: deque[float] = deque()
        self.stopping_since: float | None = None
        self.failure: str | None = None

    def run(self) -> int:
        """Serve until a stop signal (0) or a crash loop (1, `failure` says why)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self._start(index)
            while self.workers:
                by_sentinel = {process.sentinel: index for index, process in self.workers.items()}
                for sentinel in wait(list(by_sentinel), timeout=0.5):
                    self._ended(by_sentinel[sentinel])  # type: ignore[index]
                self._kill_stragglers()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failure else 0

    def _start(self, index: int) -> None:
        process = self.context.Process(
            target=_worker_main,
            args=(index, self.listener, self.settings, self.script, os.getpid()),
            name=f"zoufang-worker-{index}",
        )
        process.start()
        self.workers[index], self.started[index] = process, time.monotonic()
        log.info("worker %d started (pid %d)%s", index, process.pid, ": scheduler" if index == 0 else "")
        if self.stopping_since is not None:  # a signal came while it was being forked
            _signal(process.pid, signal.SIGTERM)

    def _ended(self, index: int) -> None:
        process = self.workers.pop(index)
        process.join()
        if self.stopping_since is not None:
            log.info("worker %d (pid %d) stopped", index, process.pid)
            return
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - DEATH_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) >= MAX_DEATHS:
            self.failure = (
                f"workers died {len(self.deaths)} times within {DEATH_WINDOW:.0f} s "
                f"(the last, worker {index}, with exit code {process.exitcode}): stopping; see the log above"
            )
            log.error("%s", self.failure)
            self._stop(signal.SIGTERM)
            return
        log.error(
            "worker %d (pid %d) died with exit code %s: starting it again",
            index,
            process.pid,
            process.exitcode,
        )
        if now - self.started[index] < RESTART_PAUSE:
            time.sleep(RESTART_PAUSE)
        self._start(index)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stopping_since is None:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.workers))
        self._stop(signal.SIGTERM)

    def _stop(self, sig: int) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        for process in list(self.workers.values()):
            _signal(process.pid, sig)

    def _kill_stragglers(self) -> None:
        if self.stopping_since is not None and time.monotonic() - self.stopping_since > STOP_GRACE:
            for index, process in list(self.workers.items()):
                log.warning(
                    "worker %d (pid %d) did not stop within %.0f s: killed", index, process.pid, STOP_GRACE
                )
                _signal(process.pid, signal.SIGKILL)


def _signal(pid: int | None, sig: int) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def run_workers(settings: Settings, script: Script, host: str, port: int, workers: int) -> int:
    """`zoufang serve --workers N`: bind, preload, fork, watch. The exit code (0 after a stop signal)."""
    try:
        listener = Listener.bind(host, port)
    except OSError as exc:
        from messages import Refusal

        why = os.strerror(exc.errno) if exc.errno else exc
        raise Refusal("cannot_listen", host=host, port=port, why=why) from exc
    preload(settings)
    log.info(
        "zoufang serving on http://%s:%d with %d workers (parent pid %d%s)",
        *listener.address,
        workers,
        os.getpid(),
        ", SO_REUSEPORT" if listener.reuse_port else ", one shared socket",
    )
    supervisor = Supervisor(listener, settings, script, workers)
    try:
        code = supervisor.run()
    finally:
        listener.sock.close()
    if supervisor.failure:
        raise ServeError("workers_failed", reason=supervisor.failure)
    return code


# --- in the worker ---------------------------------------------------------------------------------------------


def _worker_main(index: int, listener: Listener, settings: Settings, script: Script, parent: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handlers came along with the fork
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _die_with(parent)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_work(index, listener.for_worker(), settings, script))


async def _work(index: int, sock: socket.socket, settings: Settings, script: Script) -> None:
    from bot.app import serve
    from storage.db import Database

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = sock.getsockname()[:2]
    db = Database(settings.db_url)
    await serve(db, script, settings, host, port, polling=False, sock=sock, primary=index == 0, stop=stop)


def _die_with(parent: int) -> None:
    """Linux: be sent SIGTERM when the parent dies (killed with SIGKILL, say), rather than serve on orphaned."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
