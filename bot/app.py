"""`zoufang serve`: one aiohttp application for every channel.

Paths: `POST /telegram/webhook` (when TELEGRAM_BOT_TOKEN is set), `POST /sms/inbound` and `POST /sms/status`
(Twilio webhooks, always), `GET /healthz`. The outbox senders (SMS always, Telegram with a bot) and the scheduler
(bot.jobs.scheduler: poll reminders, the daily overdue check, digests) run inside it. With `serve --workers N`
(bot.workers) every worker runs this application on one shared socket: the outbox senders in each, the
scheduler and housekeeping in worker 0 only (`primary`).

The app's clock is `app[CLOCK]` (the same key as `app[SMS_CLOCK]`: a callable returning an aware datetime,
`utcnow` by default), read by the SMS flow and the scheduler: tests replace it before the app starts to move
through days. `app[SCHEDULER_EVERY]` is the scheduler's tick in seconds (60; its first tick comes one tick after
the start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.channels.twilio import mount_sms
from bot.jobs.supervise import Tasks, supervise
from bot.keys import CLOCK, DB, INBOUND_WRITER, SCHEDULER_EVERY, SMS_CLOCK, TASKS
from bot.settings import Settings
from bot.web import mount_dash
from messages import Refusal
from storage.db import Database
from storage.models import utcnow
from survey.script import Script

log = logging.getLogger("zoufang.serve")

TELEGRAM_WEBHOOK = "/telegram/webhook"


class ServeError(Refusal):
    """A configuration that cannot serve: one line for the operator, macro `key` of cli/parts.txt in the
    reader's language (str(): the English one, for logs)."""

    def __str__(self) -> str:
        return self.text("en")


@dataclass
class Telegram:
    bot: Any
    dispatcher: Any


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers and no background task is stuck (bot.jobs.supervise); 503 otherwise,
    with each task's last success and last error."""
    database = await request.app[DB].ping()
    tasks = request.app[TASKS]
    stuck = tasks.stuck()
    ok = database and not stuck
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "database": database, "pid": os.getpid()}
    if stuck:
        body["stuck"] = stuck
    body["tasks"] = tasks.state()
    writer = request.app.get(INBOUND_WRITER)
    if writer is not None:  # how the inbound SMS writer keeps up: waiting now, and batches so far
        body["inbound_sms"] = {"pending": writer.pending, "batches": writer.batches, "replies": writer.items}
    return web.json_response(body, status=200 if ok else 503)


def make_app(
    db: Database,
    script: Script,
    settings: Settings,
    *,
    telegram: Telegram | None = None,
    webhook: bool = True,
    primary: bool = True,
    prewarm: bool = False,
) -> web.Application:
    """The application; `telegram` (bot and dispatcher) is made from the settings unless given (tests).
    `webhook=False` leaves the Telegram route out (polling mode pulls updates instead). `primary=False` (every
    worker of `serve --workers N` but the first) serves the routes and sends SMS when Redis shares the SMS
    rate between the senders, and nothing else: the Telegram outbox (a few digests a day), the scheduler, the
    housekeeping and the command menu are the first worker's. `prewarm` (zoufang serve) builds the dashboard's
    county overviews at start."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[DB] = db
    app[SMS_CLOCK] = utcnow
    app[SCHEDULER_EVERY] = SCHEDULER_TICK
    app[TASKS] = Tasks()
    app.router.add_get("/healthz", healthz)
    mount_sms(app, settings)
    app[INBOUND_WRITER].health = app[TASKS].add("inbound_sms", INBOUND_STALE)
    app[INBOUND_WRITER].health.idle()  # its writer starts with the first reply
    mount_dash(app, settings, prewarm=prewarm)
    if webhook and telegram is None and settings.telegram_bot_token:
        telegram = make_telegram(db, script, settings)
    if webhook and telegram is not None:
        _mount_telegram(app, telegram, settings, register_commands=primary)
    elif webhook:
        log.info("TELEGRAM_BOT_TOKEN is not set: serving without the Telegram route (SMS only)")
    if primary or settings.redis_url:  # without Redis each sender keeps its own rate: one sender, one rate
        app.on_startup.append(_start_outbox(settings))
    if primary:
        app.on_startup.append(_start_telegram_outbox(telegram, settings))
        app.on_startup.append(_start_housekeeping)
        app.on_startup.append(_start_scheduler(settings))
    app.on_cleanup.append(_close_db)
    return app


INBOUND_STALE = 30.0  # seconds one batch of inbound replies may take to commit before the writer reads stuck


def _supervised(app: web.Application, name: str, stale_after: float, run: Any) -> Any:
    """Start `run(stop)` under bot.jobs.supervise, its health in /healthz; stopped (and awaited) at cleanup."""
    health = app[TASKS].add(name, stale_after)
    stop = asyncio.Event()
    task = asyncio.create_task(supervise(health, lambda: run(stop), stop), name=name)

    async def halt(_: web.Application) -> None:
        stop.set()
        await task

    app.on_cleanup.insert(0, halt)
    return health


def _start_outbox(settings: Settings) -> Any:
    """The outbox sender runs inside the server; it also picks up rows other processes queued."""

    async def start(app: web.Application) -> None:
        from bot.jobs.outbox import OutboxWorker, make_sender
        from bot.ratelimit import make_bucket

        sender = make_sender(settings)
        bucket = make_bucket(settings.redis_url, "sms", settings.sms_rate)  # one budget for every sender
        worker = OutboxWorker(
            app[DB], sender, rate=settings.sms_rate, bucket=bucket, send_timeout=settings.send_timeout
        )

        async def close_sender(_: web.Application) -> None:
            await sender.close()

        app.on_cleanup.insert(0, close_sender)  # after the worker has stopped (inserted before it)
        worker.health = _supervised(app, "sms_outbox", worker.stale_after, worker.run)

    return start


TELEGRAM_OUTBOX_RATE = 1.0  # messages a second: digests are few, and Telegram allows one a second per chat


def _start_telegram_outbox(telegram: Telegram | None, settings: Settings) -> Any:
    """Outbox rows of the `telegram` channel (digests) go out through the bot; without one they stay queued."""

    async def start(app: web.Application) -> None:
        from bot.channels.telegram.sender import TelegramSender
        from bot.jobs.outbox import OutboxWorker

        if telegram is None:
            from storage.outbox import count_queued

            try:
                async with app[DB].reading() as s:
                    waiting: int | str = await count_queued(s, "telegram")
            except Exception:  # the database being away must not stop the server from starting (/healthz)
                waiting = "?"
            log.info("no Telegram bot: Telegram outbox messages stay queued (%s now)", waiting)
            return
        worker = OutboxWorker(
            app[DB],
            TelegramSender(telegram.bot),
            rate=TELEGRAM_OUTBOX_RATE,
            clock=lambda: app[CLOCK](),  # the scheduler's clock: what it queues is due on it
            channel="telegram",
            send_timeout=settings.send_timeout,
        )
        # stopped at cleanup before the bot's session is closed
        worker.health = _supervised(app, "telegram_outbox", worker.stale_after, worker.run)

    return start


# A webhook body larger than this gets 413 before it is read: Twilio's forms are a few kB (Body at most 1,600
# characters), a Telegram update without files a few tens of kB; aiohttp's own default is 1 MiB.
MAX_REQUEST_BYTES = 256 * 1024


def make_telegram(db: Database, script: Script, settings: Settings) -> Telegram:
    from bot.channels.telegram.lean import import_aiogram

    import_aiogram()  # before the dispatcher imports aiogram: its models built when used, ~100 MB less
    from bot.channels.telegram.dispatcher import make_bot, make_dispatcher

    return Telegram(bot=make_bot(settings), dispatcher=make_dispatcher(db, script, settings))


def _mount_telegram(
    app: web.Application, telegram: Telegram, settings: Settings, *, register_commands: bool = True
) -> None:
    from bot.channels.telegram.webhook import TelegramWebhook

    if not settings.telegram_webhook_secret:
        raise ServeError("no_webhook_secret")
    # a failed update answers 500 (aiogram's part with handle_in_background=False), so Telegram delivers it again
    TelegramWebhook(telegram.bot, telegram.dispatcher, settings.telegram_webhook_secret).register(
        app, TELEGRAM_WEBHOOK
    )

    async def on_startup(_: web.Application) -> None:
        await _register_commands(telegram)

    async def on_cleanup(_: web.Application) -> None:
        await telegram.bot.session.close()

    if register_commands:
        app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)


async def _register_commands(telegram: Telegram) -> None:
    from bot.channels.telegram.dispatcher import set_commands

    try:
        await set_commands(telegram.bot)
    except Exception as exc:  # the Bot API being away must not stop the SMS side from serving
        log.warning("could not register the Telegram command menu: %s", exc)


PROCESSED_KEPT = timedelta(days=3)
HOUSEKEEPING_EVERY = 6 * 3600
HOUSEKEEPING_RETRY = 60.0  # seconds before a failed round is tried again
HOUSEKEEPING_STALE = 600.0


async def _start_housekeeping(app: web.Application) -> None:
    async def loop(stop: asyncio.Event) -> None:
        from storage.telegram import prune_processed

        while not stop.is_set():
            try:
                async with app[DB].session() as s:
                    await prune_processed(s, utcnow() - PROCESSED_KEPT)
                health.beat()
                wait = HOUSEKEEPING_EVERY
                health.resting(wait)
            except Exception as exc:  # housekeeping must never take the server down
                log.exception("housekeeping failed; trying again in %g s", HOUSEKEEPING_RETRY)
                health.failed(exc)
                wait = HOUSEKEEPING_RETRY  # no rest: failing for HOUSEKEEPING_STALE reads stuck
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    health = _supervised(app, "housekeeping", HOUSEKEEPING_STALE, loop)


SCHEDULER_TICK = 60.0


def _start_scheduler(settings: Settings) -> Any:
    """Poll reminders, the daily overdue check and the digests (bot.jobs.scheduler), every tick on the app's clock."""

    async def start(app: web.Application) -> None:
        from bot.jobs.scheduler import Scheduler

        scheduler = Scheduler(app[DB], settings, clock=lambda: app[CLOCK](), interval=app[SCHEDULER_EVERY])
        scheduler.poll_health = app[TASKS].add("poll_tick", scheduler.stale_after)
        scheduler.health = _supervised(app, "scheduler", scheduler.stale_after, scheduler.run)

    return start


async def _close_db(app: web.Application) -> None:
    await app[DB].close()


WORKER_SHUTDOWN = 10.0  # seconds a stopping worker gives requests in flight (Telegram redelivers a cut one)


async def serve(
    db: Database,
    script: Script,
    settings: Settings,
    host: str,
    port: int,
    *,
    polling: bool,
    sock: socket.socket | None = None,
    primary: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until cancelled (or until `stop` is set). With `polling`, Telegram updates are pulled instead of
    pushed to the webhook. A worker of `serve --workers N` (bot.workers) passes the listening socket its
    parent bound (`sock`), `primary` (the scheduler and housekeeping run in worker 0 only) and `stop`."""
    telegram = None
    if polling:
        if not settings.telegram_bot_token:
            raise ServeError("polling_needs_token")
        telegram = make_telegram(db, script, settings)
    app = make_app(
        db, script, settings, telegram=telegram, webhook=not polling, primary=primary, prewarm=True
    )
    # no access log: a line per request costs more than the request's SQL
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=60.0 if sock is None else WORKER_SHUTDOWN)
    await runner.setup()
    if sock is None:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:  # the port is taken, or the address is not this machine's
            from messages import Refusal

            await runner.cleanup()
            why = os.strerror(exc.errno) if exc.errno else exc
            raise Refusal("cannot_listen", host=host, port=port, why=why) from exc
        log.info("zoufang serving on http://%s:%d", host, port)
    else:
        await web.SockSite(runner, sock).start()
        log.info("worker serving on http://%s:%d", host, port)
    try:
        if telegram is not None:
            await _register_commands(telegram)
            await telegram.bot.delete_webhook()  # polling and a webhook cannot both be set
            await telegram.dispatcher.start_polling(telegram.bot, handle_signals=False)
        else:
            await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
        if telegram is not None:
            await telegram.bot.session.close()
