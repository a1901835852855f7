"""`zoufang serve`, `invite`, `telegram set-webhook` and `worker`: the server, the bot and the senders."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import click

from bot.cli.base import (
    Failure,
    load_script_or_fail,
    main,
    phrase,
    refusal_text,
    refuse_memory_db,
    run,
    settings,
    with_db,
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--polling", is_flag=True, help="pull Telegram updates instead of the webhook (development)")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="processes serving the port (one a core); more than 1 needs ZOUFANG_REDIS_URL with a Telegram bot",
)
def serve(host: str, port: int, polling: bool, workers: int) -> None:
    """Serve the webhooks (/telegram/webhook, /healthz) and the background workers."""
    import logging

    if workers > 1 and polling:
        raise Failure(phrase("polling_one_process"))
    from bot.app import ServeError
    from bot.app import serve as run_server
    from bot.logs import configure_logging, secrets_of
    from storage.db import Database

    process = " [%(process)d]" if workers > 1 else ""
    conf = settings()
    # phones and the settings' secrets masked in every line, tracebacks included
    configure_logging(f"%(asctime)s %(levelname)s{process} %(name)s: %(message)s", secrets_of(conf))
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one INFO line per update otherwise
    script = load_script_or_fail(conf.script, warn=True)
    if workers > 1:
        from bot.workers import preflight, run_workers
        from storage.db import check_url

        refuse_memory_db(conf.db_url)
        check_url(conf.db_url)  # here, once: each worker would die of a bad URL and be restarted, 5 times

        try:
            for warning in preflight(conf, workers, polling=polling):
                click.echo(f"zoufang: {warning}", err=True)
            sys.exit(run_workers(conf, script, host, port, workers))
        except ServeError as exc:
            raise Failure(refusal_text(exc)) from exc
        except KeyboardInterrupt:  # before the workers were started
            sys.exit(130)

    refuse_memory_db(conf.db_url)

    async def go() -> None:
        # SIGTERM (systemd, docker stop) and Ctrl-C stop gracefully: the batch being written commits and is
        # answered, the senders finish the message in hand; the default SIGTERM would drop them mid-way
        import signal

        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_server(Database(conf.db_url), script, conf, host, port, polling=polling, stop=stop)

    try:
        run(go())
    except ServeError as exc:
        raise Failure(refusal_text(exc)) from exc
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("cadre_id")
def invite(cadre_id: str) -> None:
    """Print a one-time Telegram code (valid 72 hours) that binds a cadre's account: /start CODE."""
    from storage.models import utcnow
    from storage.telegram import INVITE_TTL, create_invite
    from storage.visits import cadre_by_code

    conf = settings()

    async def go() -> tuple[str, Any, str]:
        async with with_db(conf.db_url) as db, db.session() as s:
            cadre = await cadre_by_code(s, cadre_id)
            if cadre is None:
                raise Failure(phrase("no_cadre", given=cadre_id))
            made = await create_invite(s, cadre, utcnow())
            return made.code, made.expires_at, (cadre.name, cadre.role)

    code, expires, (name, role) = run(go())
    until = f"{expires.astimezone(conf.tz):%Y-%m-%d %H:%M}"
    hours = int(INVITE_TTL.total_seconds() // 3600)
    click.echo(phrase("invite_code", name=name, role=role, invite=code, hours=hours, until=until))
    click.echo(phrase("invite_send", invite=code))
    link = _deep_link(conf, code)
    if link:
        click.echo(phrase("invite_link", link=link))


def _deep_link(conf: Any, code: str) -> str | None:
    """t.me/<bot>?start=CODE when the bot's name can be asked of the Bot API; None otherwise (offline)."""
    if not conf.telegram_bot_token:
        return None

    async def name() -> str | None:
        from bot.channels.telegram.dispatcher import RetryMiddleware, make_bot

        bot = make_bot(conf, retry=RetryMiddleware(attempts=1))
        try:
            return (await asyncio.wait_for(bot.get_me(), timeout=5)).username
        except Exception:
            return None
        finally:
            await bot.session.close()

    username = asyncio.run(name())
    return f"https://t.me/{username}?start={code}" if username else None


@main.group()
def telegram() -> None:
    """Telegram set-up."""


@telegram.command(name="set-webhook")
def set_webhook() -> None:
    """Register PUBLIC_BASE_URL/telegram/webhook (with TELEGRAM_WEBHOOK_SECRET) and the command menu."""
    from bot.app import TELEGRAM_WEBHOOK

    conf = settings()
    for name, value in (
        ("TELEGRAM_BOT_TOKEN", conf.telegram_bot_token),
        ("PUBLIC_BASE_URL", conf.public_base_url),
        ("TELEGRAM_WEBHOOK_SECRET", conf.telegram_webhook_secret),
    ):
        if not value:
            raise Failure(phrase("webhook_needs", name=name))
    url = conf.public_base_url.rstrip("/") + TELEGRAM_WEBHOOK

    async def go() -> None:
        from bot.channels.telegram.dispatcher import make_bot, set_commands, used_update_types

        bot = make_bot(conf)
        try:
            await bot.set_webhook(
                url, secret_token=conf.telegram_webhook_secret, allowed_updates=used_update_types()
            )
            await set_commands(bot)
        finally:
            await bot.session.close()

    try:
        run(go())
    except Exception as exc:
        raise Failure(phrase("bot_api_failed", reason=exc)) from exc
    click.echo(phrase("webhook_set", url=url))


@main.command()
def worker() -> None:
    """Send the SMS outbox (the same sender `zoufang serve` runs), until interrupted (SIGINT or SIGTERM: the
    message in flight is finished first). Start it several times, on one machine or many, for more senders:
    they share ZOUFANG_SMS_RATE through ZOUFANG_REDIS_URL when it is set."""
    import logging
    import signal

    from bot.jobs.outbox import OutboxWorker, make_sender
    from bot.jobs.supervise import Health, supervise
    from bot.logs import configure_logging, secrets_of
    from bot.ratelimit import RedisBucket, make_bucket
    from storage.db import Database

    conf = settings()
    configure_logging("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets_of(conf))

    async def go() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        db, sender = Database(conf.db_url), make_sender(conf)
        bucket = make_bucket(conf.redis_url, "sms", conf.sms_rate)
        shared = "shared through Redis" if isinstance(bucket, RedisBucket) else "this process only"
        logging.getLogger("zoufang.sms").info("sending SMS at %g a second (%s)", conf.sms_rate, shared)
        try:
            worker = OutboxWorker(
                db, sender, rate=conf.sms_rate, bucket=bucket, send_timeout=conf.send_timeout
            )
            worker.health = Health("sms_outbox", worker.stale_after)
            await supervise(
                worker.health, lambda: worker.run(stop), stop
            )  # a fault is logged, then restarted
        finally:
            await sender.close()
            await db.close()

    with contextlib.suppress(KeyboardInterrupt):
        run(go())
