"""The `zoufang` command. Imports stay inside commands so `--help` and reports never load the bot's libraries."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click


class Failure(click.ClickException):
    """A failure: one line on standard error, exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"zoufang: {self.message}", err=True)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    from sqlalchemy.exc import DBAPIError

    try:
        return asyncio.run(coro)
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0]
        if "no such table" in reason or "does not exist" in reason:
            raise Failure(f"数据库尚未初始化：请先运行 zoufang init（{reason}）") from exc
        raise Failure(f"数据库错误：{reason}") from exc


def settings() -> Any:
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        raise Failure(str(exc)) from exc


def load_script_or_fail(path: str | None) -> Any:
    from bot.script_files import load_script_file
    from survey.script import ScriptError

    try:
        return load_script_file(path or None)
    except ScriptError as exc:
        raise Failure(str(exc).replace("\n", " ")) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """zoufang 走访：五问四讲三看一化解 入户走访、满意度短信与问题化解。"""


@main.command()
def init() -> None:
    """Create or upgrade the database (applies the migrations to ZOUFANG_DB_URL)."""
    from storage.db import Database
    from storage.migrate import current_revision, upgrade

    async def go() -> str | None:
        db = Database(settings().db_url)
        try:
            await upgrade(db)
            return await current_revision(db)
        finally:
            await db.close()

    revision = run(go())
    click.echo(f"数据库已就绪（版本 {revision}）：{settings().db_url}")


@main.command()
def config() -> None:
    """Print the settings in force (secrets masked)."""
    from bot.settings import masked

    for name, value in masked(settings()):
        click.echo(f"{name}={value}")


@main.group(name="import")
def import_() -> None:
    """Import a roster file (.csv or .xlsx) in the county format."""


def _import(kind: str, path: Path, county: str | None = None) -> None:
    from bot.roster_files import RosterError, import_file
    from storage.db import Database

    async def go() -> Any:
        db = Database(settings().db_url)
        try:
            return await import_file(db, kind, path, county=county)  # type: ignore[arg-type]
        finally:
            await db.close()

    try:
        summary = run(go())
    except RosterError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        raise SystemExit(1) from exc
    for line in summary.lines():
        click.echo(line)


@import_.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--county", help="县: the county of the file's townships (needed while the database has no county)"
)
def cadres(file: Path, county: str | None) -> None:
    """Import the cadre roster (干部编号, 姓名, 手机, 角色, 乡镇, 行政村)."""
    _import("cadres", file, county)


@import_.command()
@click.argument("file", type=click.Path(path_type=Path))
def households(file: Path) -> None:
    """Import the household roster (建档立卡花名册)."""
    _import("households", file)


@main.command()
@click.option("--cadre", "cadre_code", required=True, help="干部编号 (cadre_id from the roster)")
@click.option("--household", "household_code", help="户编号: skip the picker")
def console(cadre_code: str, household_code: str | None) -> None:
    """Walk a home visit in the terminal (standard input may be piped)."""
    from bot.console import Console, ConsoleError, stdin_reader
    from storage.db import Database

    conf = settings()
    script = load_script_or_fail(conf.script)

    async def go() -> None:
        db = Database(conf.db_url)
        try:
            await Console(db, script, conf, stdin_reader(), sys.stdout).run(cadre_code, household_code)
        finally:
            await db.close()

    try:
        run(go())
    except ConsoleError as exc:
        raise Failure(str(exc)) from exc


@main.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    help="SQLite file to create (default: a new temp file)",
)
@click.option("--visits", default=36, show_default=True, help="Visits to walk through the engine (≥ 30)")
@click.option("--seed", default=2026, show_default=True, help="Random seed for the demo data")
def demo(db_path: Path | None, visits: int, seed: int) -> None:
    """Build a demo county in a fresh SQLite file, walk visits through the engine, print the results."""
    from bot.demo import DemoError, run_demo

    if visits < 1:
        raise Failure("--visits must be at least 1")
    try:
        run(run_demo(settings(), db_path, visits=visits, seed=seed, out=sys.stdout))
    except DemoError as exc:
        raise Failure(str(exc)) from exc


@main.group()
def script() -> None:
    """Visit scripts (the default 五问四讲三看一化解, or a county's own file)."""


@script.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
def check(file: Path | None) -> None:
    """Validate a script file, JSON or XLSForm .xlsx (default: ZOUFANG_SCRIPT, or the built-in script);
    every fault is listed, each naming its question (for a workbook: its sheet, row and column)."""
    loaded = _script_or_faults(str(file) if file else settings().script)
    count = sum(1 + len(q.questions) for q in loaded.questions())
    click.echo(f"脚本有效：{loaded.id} 版本 {loaded.version}，{len(loaded.sections)} 个部分，{count} 道题")


def _script_or_faults(path: str | None) -> Any:
    """The script, or exit 1 with one line saying how many faults and then one line per fault."""
    from bot.script_files import load_script_file
    from survey.script import ScriptError

    try:
        return load_script_file(path or None)
    except ScriptError as exc:
        _faults(f"脚本 {path or '（内置）'} 无效", exc.errors)
        raise SystemExit(1) from exc


def _faults(what: str, errors: list[str]) -> None:
    """One fault on one line; several: how many, then one line each (a county fixes them all in one pass)."""
    if len(errors) == 1:
        click.echo(f"zoufang: {what}：{errors[0]}", err=True)
        return
    click.echo(f"zoufang: {what}，共 {len(errors)} 处：", err=True)
    for error in errors:
        click.echo(f"  {error}", err=True)


@script.command(name="import")
@click.argument("form", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file to write (default: standard output)",
)
def script_import(form: Path, output: Path | None) -> None:
    """Read an XLSForm workbook (survey, choices, settings) into zoufang's JSON script, checked whole."""
    import json

    from bot.script_files import read_workbook
    from survey.xlsform import FormError, build_located, definition_from_sheets

    if form.suffix.lower() != ".xlsx":
        raise Failure(f"{form} 不是 .xlsx：XLSForm 请存为 Excel 工作簿（.xlsx）")
    if not form.is_file():
        raise Failure(f"找不到文件 {form}")
    try:
        reading = definition_from_sheets(read_workbook(form))
        loaded = build_located(reading)
    except FormError as exc:
        _faults(f"表单 {form} 无效", exc.errors)
        raise SystemExit(1) from exc
    text = json.dumps(reading.definition, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Failure(f"无法写入 {output}：{exc.strerror or exc}") from exc
    count = sum(1 + len(q.questions) for q in loaded.questions())
    click.echo(f"已写入 {output.resolve()}：{loaded.id} 版本 {loaded.version}，{count} 道题")


@script.command(name="export")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="workbook to write (default: <script id>-<version>.xlsx)",
)
def script_export(output: Path | None) -> None:
    """Write the script in force (ZOUFANG_SCRIPT, or the built-in one) as an XLSForm workbook to edit in
    Excel; `zoufang script check` or `import` reads it back."""
    from bot.script_files import write_xlsform

    loaded = _script_or_faults(settings().script)
    path = output or Path(f"{loaded.id}-{loaded.version}.xlsx")
    try:
        write_xlsform(loaded, path)
    except OSError as exc:
        raise Failure(f"无法写入 {path}：{exc.strerror or exc}") from exc
    click.echo(f"已写入 {path.resolve()}")


# --- county: per-county values in the database; the settings are only their defaults ------------------------

# option word → County attribute
COUNTY_VALUES = {
    "income-line": "income_line",
    "monitoring-line": "monitoring_line",
    "count-guaranteed": "count_guaranteed",
}


def _yuan(value: Decimal) -> str:
    return f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"


def _county_line(county: Any, defaults: Any) -> str:
    """One county on one line; a value the county does not set shows the setting's, marked （默认）."""
    parts = []
    for label, name in (("收入线", "income_line"), ("监测线", "monitoring_line")):
        own = getattr(county, name)
        value = _yuan(getattr(defaults, name) if own is None else own)
        parts.append(f"{label} {value} 元{'（默认）' if own is None else ''}")
    own = county.count_guaranteed
    counts = defaults.count_guaranteed if own is None else own
    parts.append(f"保底收益计入收入 {'是' if counts else '否'}{'（默认）' if own is None else ''}")
    return f"{county.name}：{'，'.join(parts)}"


def _amount(option: str, raw: str) -> Decimal:
    text = raw.strip().replace(",", "").removesuffix("元").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value >= 10**10:
        raise Failure(f"{option} {raw!r}：请给出不小于 0 的金额（元），例如 4000")
    return value.quantize(Decimal("0.01")) + 0  # + 0 turns -0 into 0


def _unknown_county(name: str, known: list[str]) -> Failure:
    if not known:
        return Failure(
            f"没有名为 {name} 的县：数据库中还没有县（先运行 zoufang import cadres FILE --county 县）"
        )
    return Failure(f"没有名为 {name} 的县；已有的县：{'、'.join(known)}")


@main.group()
def county() -> None:
    """Per-county values: 收入线, 监测线, whether 保底收益 counts (unset values follow the settings)."""


@county.command(name="list")
def county_list() -> None:
    """List the counties with their income line, monitoring line and whether 保底收益 counts."""
    from storage.counties import all_counties
    from storage.db import Database

    conf = settings()

    async def go() -> list[Any]:
        db = Database(conf.db_url)
        try:
            async with db.session() as s:
                return await all_counties(s)
        finally:
            await db.close()

    counties = run(go())
    if not counties:
        click.echo("还没有县：先运行 zoufang import cadres FILE --county 县")
        return
    for one in counties:
        click.echo(_county_line(one, conf.lines))


@county.command(name="set")
@click.argument("name")
@click.option("--income-line", metavar="YUAN", help="收入线 (yuan per person per year)")
@click.option("--monitoring-line", metavar="YUAN", help="监测线 (yuan per person per year)")
@click.option(
    "--count-guaranteed/--no-count-guaranteed", default=None, help="whether 保底收益 counts as income"
)
@click.option(
    "--default",
    "defaults",
    multiple=True,
    metavar="income-line|monitoring-line|count-guaranteed",
    help="follow the setting again (ZOUFANG_INCOME_LINE, …); may be repeated",
)
def county_set(
    name: str,
    income_line: str | None,
    monitoring_line: str | None,
    count_guaranteed: bool | None,
    defaults: tuple[str, ...],
) -> None:
    """Set a county's own values in place; --default X makes X follow the setting again."""
    values: dict[str, Decimal | bool | None] = {}
    if income_line is not None:
        values["income_line"] = _amount("--income-line", income_line)
    if monitoring_line is not None:
        values["monitoring_line"] = _amount("--monitoring-line", monitoring_line)
    if count_guaranteed is not None:
        values["count_guaranteed"] = count_guaranteed
    for word in defaults:
        if word not in COUNTY_VALUES:
            raise Failure(f"--default {word!r}：请用 {'、'.join(COUNTY_VALUES)} 之一")
        if COUNTY_VALUES[word] in values and values[COUNTY_VALUES[word]] is not None:
            raise Failure(f"--{word} 与 --default {word} 不能同时给出")
        values[COUNTY_VALUES[word]] = None
    if not values:
        raise Failure(
            "请至少给出一个选项：--income-line、--monitoring-line、--count-guaranteed/--no-count-guaranteed 或 --default"
        )
    from storage.counties import all_counties, county_by_name, update_county
    from storage.db import Database

    conf = settings()

    async def go() -> Any:
        db = Database(conf.db_url)
        try:
            async with db.session() as s:
                found = await county_by_name(s, name)
                if found is None:
                    raise _unknown_county(name, [c.name for c in await all_counties(s)])
                return await update_county(s, found, values)
        finally:
            await db.close()

    click.echo(_county_line(run(go()), conf.lines))


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
        raise Failure("--polling runs in one process: use --workers 1 (or the webhook)")
    from bot.app import ServeError
    from bot.app import serve as run_server
    from bot.logs import configure_logging, secrets_of
    from storage.db import Database

    process = " [%(process)d]" if workers > 1 else ""
    conf = settings()
    # phones and the settings' secrets masked in every line, tracebacks included
    configure_logging(f"%(asctime)s %(levelname)s{process} %(name)s: %(message)s", secrets_of(conf))
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one INFO line per update otherwise
    script = load_script_or_fail(conf.script)
    if workers > 1:
        from bot.workers import preflight, run_workers

        try:
            for warning in preflight(conf, workers, polling=polling):
                click.echo(f"zoufang: {warning}", err=True)
            sys.exit(run_workers(conf, script, host, port, workers))
        except ServeError as exc:
            raise Failure(str(exc)) from exc
        except KeyboardInterrupt:  # before the workers were started
            sys.exit(130)

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
        raise Failure(str(exc)) from exc
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("cadre_id")
def invite(cadre_id: str) -> None:
    """Print a one-time Telegram code (valid 72 hours) that binds a cadre's account: /start CODE."""
    from storage.db import Database
    from storage.models import utcnow
    from storage.telegram import INVITE_TTL, create_invite
    from storage.visits import cadre_by_code

    conf = settings()

    async def go() -> tuple[str, Any, str]:
        db = Database(conf.db_url)
        try:
            async with db.session() as s:
                cadre = await cadre_by_code(s, cadre_id)
                if cadre is None:
                    raise Failure(f"没有这个干部编号：{cadre_id}")
                made = await create_invite(s, cadre, utcnow())
                return made.code, made.expires_at, f"{cadre.name}（{cadre.role}）"
        finally:
            await db.close()

    code, expires, who = run(go())
    local = expires.astimezone(conf.tz)
    click.echo(
        f"{who} 的邀请码：{code}（{int(INVITE_TTL.total_seconds() // 3600)} 小时内有效，至 {local:%Y-%m-%d %H:%M}）"
    )
    click.echo(f"在 Telegram 中向机器人发送：/start {code}")
    link = _deep_link(conf, code)
    if link:
        click.echo(f"或打开链接：{link}")


def _deep_link(conf: Any, code: str) -> str | None:
    """t.me/<bot>?start=CODE when the bot's name can be asked of the Bot API; None otherwise (offline)."""
    if not conf.telegram_bot_token:
        return None

    async def name() -> str | None:
        from bot.telegram import RetryMiddleware, make_bot

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
            raise Failure(f"telegram set-webhook needs {name}")
    url = conf.public_base_url.rstrip("/") + TELEGRAM_WEBHOOK

    async def go() -> None:
        from bot.telegram import make_bot, set_commands, used_update_types

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
        raise Failure(f"Bot API refused or could not be reached: {exc}") from exc
    click.echo(f"已注册 webhook：{url}")


@main.command()
def worker() -> None:
    """Send the SMS outbox (the same sender `zoufang serve` runs), until interrupted (SIGINT or SIGTERM: the
    message in flight is finished first). Start it several times, on one machine or many, for more senders:
    they share ZOUFANG_SMS_RATE through ZOUFANG_REDIS_URL when it is set."""
    import logging
    import signal

    from bot.logs import configure_logging, secrets_of
    from bot.ratelimit import RedisBucket, make_bucket
    from bot.sms import OutboxWorker, make_sender
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
            await worker.run(stop)
        finally:
            await sender.close()
            await db.close()

    with contextlib.suppress(KeyboardInterrupt):
        run(go())


@main.group()
def poll() -> None:
    """Satisfaction SMS polls 满意度短信回访 (one per household per quarter)."""


_SKIP_REASONS = {"no_phone": "无电话", "opted_out": "已退订", "already_polled": "本季度已发过"}


@poll.command(name="send")
@click.option("--township", help="乡镇 (roster name): every village of the township")
@click.option("--village", help="村 (roster name)")
@click.option("--dry-run", is_flag=True, help="count only: queue nothing")
def poll_send(township: str | None, village: str | None, dry_run: bool) -> None:
    """Poll every household of the area that has a phone and has not opted out, visited or not."""
    if (township is None) == (village is None):
        raise Failure("请给出 --township 或 --village 之一")
    from bot.flows.poll import UnknownArea, send_polls
    from storage.db import Database
    from storage.models import utcnow

    conf = settings()

    async def go() -> Any:
        db = Database(conf.db_url)
        try:
            async with db.session() as s:
                return await send_polls(
                    s, utcnow(), conf, township=township, village=village, dry_run=dry_run
                )
        finally:
            await db.close()

    try:
        result = run(go())
    except UnknownArea as exc:
        kind = "乡镇" if exc.kind == "township" else "村"
        known = "、".join(exc.known) or "（无：先运行 zoufang import）"
        raise Failure(f"没有名为 {exc.name} 的{kind}；已有的{kind}：{known}") from exc
    skipped = sum(result.skipped.values())
    why = "，".join(f"{_SKIP_REASONS[k]} {n}" for k, n in sorted(result.skipped.items()) if n)
    area = township or village
    if dry_run:
        click.echo(
            f"{area}：将发送 {result.queued} 条满意度短信；跳过 {skipped} 户（{why or '无'}）。试运行，未排队。"
        )
    else:
        click.echo(f"{area}：已排队 {result.queued} 条满意度短信；跳过 {skipped} 户（{why or '无'}）。")


# --- reports (indicators.md) ---------------------------------------------------------------------------------

TABLE_FORMATS = ("table", "csv", "xlsx")
CHART_FORMATS = ("table", "csv", "xlsx", "png")


def _format_option(formats: tuple[str, ...]) -> Any:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(formats),
        default="table",
        show_default=True,
        help="table on screen, csv (UTF-8 with BOM), xlsx" + (", png chart" if "png" in formats else ""),
    )


_output_option = click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to write (csv and table go to standard output without it; xlsx and png get a default name)",
)
_period_option = click.option(
    "--period",
    help="2026-11 (month), 2026Q4 (quarter), 2026H2 (half-year), 2026 (year); default: the current one",
)
_township_option = click.option("--township", help="乡镇 (roster name)")
_village_option = click.option("--village", help="行政村 (roster name)")


def _report(build: Any, fmt: str, output: Path | None, period_label: str = "") -> None:
    """Build a report with a fresh context, then show or write it; bad input is one line on standard error."""
    from datetime import UTC, datetime

    from bot.report_output import emit
    from bot.reports import Context, ReportError
    from storage.db import Database

    conf = settings()
    ctx = Context(conf, datetime.now(UTC))

    async def go() -> Any:
        db = Database(conf.db_url)
        try:
            return await build(db, ctx)
        finally:
            await db.close()

    try:
        report = run(go())
    except ReportError as exc:
        raise Failure(str(exc)) from exc
    stdout = click.get_text_stream("stdout")
    try:
        written = emit(report, fmt, output, stdout, period_label)
    except OSError as exc:
        raise Failure(f"无法写入 {exc.filename or output}：{exc.strerror or exc}") from exc
    if written is not None:
        if not report.rows:
            click.echo(report.empty)
        click.echo(("wrote " if ctx.locale == "en" else "已写入 ") + str(written.resolve()))


@main.group()
def report() -> None:
    """Reports 报表: satisfaction, coverage, households, integrity, problems (table, csv, xlsx, png)."""


@report.command(name="satisfaction")
@click.option(
    "--by", type=click.Choice(["village", "township", "cadre"]), default="village", show_default=True
)
@_period_option
@_township_option
@_village_option
@_format_option(CHART_FORMATS)
@_output_option
def report_satisfaction(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """群众满意度: villagers' SMS answers beside the visit-recorded ones, with n, intervals and the gap."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await reports.satisfaction(db, ctx, by, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="awareness")
@click.option(
    "--by", type=click.Choice(["village", "township", "cadre"]), default="village", show_default=True
)
@_period_option
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_awareness(
    by: str, period: str | None, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """政策知晓率: households that know the support policies they receive, from the visits' answers, with n and
    intervals against ZOUFANG_AWARENESS_TARGET (100 %)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        script = load_script_or_fail(ctx.settings.script)
        chosen = reports.period_from(period, ctx.settings.poll_period, ctx)
        area = await reports.area_from(db, township, village, ctx)
        return await reports.awareness(db, ctx, by, chosen, area, script)

    _report(build, fmt, output, period or "")


@report.command(name="coverage")
@click.option("--role", help="roster role, e.g. 第一书记 (default: every role with a visit target)")
@_period_option
@_township_option
@_format_option(CHART_FORMATS)
@_output_option
def report_coverage(
    role: str | None, period: str | None, township: str | None, fmt: str, output: Path | None
) -> None:
    """入户率: per cadre, households in scope, visited in the role's period, and who is left."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        roles = reports.role_from(role, ctx)
        chosen = None if period is None else reports.period_from(period, "quarter", ctx)
        area = await reports.area_from(db, township, None, ctx)
        return await reports.coverage(db, ctx, roles, chosen, area, full_lists=fmt in ("csv", "xlsx"))

    _report(build, fmt, output, period or "")


@report.command(name="households")
@click.option("--group", help="四类人群: 政策兜底, 重点帮扶, 脱贫达标, 巩固提升")
@click.option("--warning", is_flag=True, help="list the 返贫预警 households with their reasons")
@_township_option
@_village_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_households(
    group: str | None, warning: bool, township: str | None, village: str | None, fmt: str, output: Path | None
) -> None:
    """Household groups, unmet 两不愁三保障/饮水 items, and the 返贫预警 list (each household's latest visit)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.group_from(group, ctx)
        area = await reports.area_from(db, township, village, ctx)
        if warning:
            return await reports.warnings(db, ctx, chosen, area)
        return await reports.households(db, ctx, chosen, area)

    _report(build, fmt, output)


@report.command(name="integrity")
@_period_option
@_township_option
@_format_option(TABLE_FORMATS)
@_output_option
def report_integrity(period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """数据真实性提示: short visits, far locations, bursts, identical answers, satisfaction gaps, closures
    without a decision. Flags to check, never verdicts (thresholds: ZOUFANG_INTEGRITY_*)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, "quarter", ctx)
        area = await reports.area_from(db, township, None, ctx)
        return await reports.integrity(db, ctx, chosen, area)

    _report(build, fmt, output, period or "")


@report.command(name="problems")
@click.option("--by", type=click.Choice(["month", "township"]), default="month", show_default=True)
@click.option("--period", help="a year (2026), half-year, quarter or month; default: the current year")
@_township_option
@_format_option(CHART_FORMATS)
@_output_option
def report_problems(by: str, period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """Problems opened and closed (销号) per month, or per township with those still open."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        chosen = reports.period_from(period, "year", ctx)
        area = await reports.area_from(db, township, None, ctx)
        if by == "township":
            return await reports.problems_by_township(db, ctx, chosen, area)
        return await reports.problems(db, ctx, chosen, area)

    _report(build, fmt, output, period or "")


# --- 扶贫日志 work log (indicators.md, "Work log 扶贫日志") ----------------------------------------------------


def _worklog_failure(code: str, **params: Any) -> Failure:
    from bot.worklog import error

    return Failure(str(error(code, settings().locale, **params)))


def _written(path: Path, locale: str) -> None:
    from messages import render

    click.echo(render("worklog/written.txt", locale, path=str(path.resolve())))


@main.group(invoke_without_command=True)
@click.option("--cadre", "cadre_code", metavar="ID", help="干部编号 (cadre_id from the roster)")
@click.option("--month", metavar="YYYY-MM", help="the month, e.g. 2026-03 (local dates, ZOUFANG_TIMEZONE)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("md", "xlsx")),
    default="md",
    show_default=True,
    help="md (Markdown) or xlsx (one sheet, Chinese headers, the sign-off line under the entries)",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to write (md goes to standard output without it; xlsx defaults to worklog-<cadre>-<month>.xlsx)",
)
@click.pass_context
def worklog(
    ctx: click.Context, cadre_code: str | None, month: str | None, fmt: str, output: Path | None
) -> None:
    """扶贫日志: a cadre's month of work-log entries by day, the counts, and the sign-off line for the role's
    signer (第一书记: 乡镇主要领导; 驻村工作队: the township's 市级包保领导; 市级包保领导: 市级四个班子主要领导;
    other roles: a generic 审核人 line).

    `zoufang worklog sample` draws the organisation department's yearly spot check."""
    if ctx.invoked_subcommand is not None:
        given = [("--cadre", cadre_code), ("--month", month), ("--output", output)]
        given += [("--format", None if fmt == "md" else fmt)]
        for option, value in given:
            if value is not None:
                raise _worklog_failure("with_sample", option=option)
        return
    if cadre_code is None and month is None:
        raise _worklog_failure("no_target")
    if cadre_code is None:
        raise _worklog_failure("missing", option="--cadre ID", example="--cadre GB001")
    if month is None:
        raise _worklog_failure("missing", option="--month YYYY-MM", example="--month 2026-03")
    from bot.worklog import (
        WorklogError,
        default_log_path,
        log_markdown,
        month_log,
        parse_month,
        write_log_xlsx,
    )
    from storage.db import Database

    conf = settings()

    async def go(chosen: Any) -> Any:
        db = Database(conf.db_url)
        try:
            return await month_log(db, conf, cadre_code, chosen)
        finally:
            await db.close()

    try:
        log = run(go(parse_month(month, conf.locale)))
    except WorklogError as exc:
        raise Failure(str(exc)) from exc
    if fmt == "md" and output is None:
        click.echo(log_markdown(log, conf.locale), nl=False)
        return
    path = output or default_log_path(log)
    try:
        if fmt == "md":
            path.write_text(log_markdown(log, conf.locale), encoding="utf-8")
        else:
            write_log_xlsx(log, path, conf.locale)
    except OSError as exc:
        raise Failure(str(exc)) from exc
    _written(path, conf.locale)


@worklog.command(name="sample")
@click.option("--year", metavar="YYYY", help="the year whose logs are checked, e.g. 2026")
@click.option(
    "--rate",
    default="0.3",
    show_default=True,
    help="share of the year's logs to draw, in (0, 1] (0.3 or 30%); the seed asks for at least 0.3",
)
@click.option(
    "--seed", help="random seed, a whole number; without it one is taken from the clock and printed"
)
@_format_option(TABLE_FORMATS)
@_output_option
def worklog_sample(year: str | None, rate: str, seed: str | None, fmt: str, output: Path | None) -> None:
    """Draw the organisation department's spot check of a year's 扶贫日志, reproducibly.

    The population is every (cadre, month) log of the year with at least one entry (logs are signed monthly).
    It is sorted by 干部编号 then month, and ceil(rate × N) logs are drawn with the seed: the same seed gives
    the same sample on any machine, whatever order the database returns. The summary line gives the
    population, the sample size, the rate and the seed."""
    if year is None:
        raise _worklog_failure("missing", option="--year YYYY", example="--year 2026")
    from bot.report_output import emit
    from bot.worklog import (
        WorklogError,
        draw_sample,
        parse_year,
        rate_from,
        sample_report,
        sample_summary,
        seed_from,
    )
    from storage.db import Database

    conf = settings()
    try:
        chosen_year = parse_year(year, conf.locale)
        chosen_rate = rate_from(rate, conf.locale)
        chosen_seed, from_clock = seed_from(seed, conf.locale)
    except WorklogError as exc:
        raise Failure(str(exc)) from exc

    async def go() -> Any:
        db = Database(conf.db_url)
        try:
            return await draw_sample(db, chosen_year, chosen_rate, chosen_seed, from_clock)
        finally:
            await db.close()

    sample = run(go())
    report = sample_report(sample, conf.locale)
    summary = sample_summary(sample, conf.locale)  # one line, never wrapped: it holds the seed
    report.notes = [*report.notes, summary]  # under the table on screen, and in the CSV and XLSX files
    try:
        written = emit(report, fmt, output, click.get_text_stream("stdout"))
    except OSError as exc:
        raise Failure(str(exc)) from exc
    if written is None:
        return
    click.echo(summary)
    _written(written, conf.locale)


# --- the township meeting (escalation.md) -------------------------------------------------------------------


def _township(name: str) -> Any:
    """The township row by roster name; unknown → one line listing the townships."""
    from storage.db import Database
    from storage.problems import all_townships

    async def go() -> tuple[Any, list[str]]:
        db = Database(settings().db_url)
        try:
            async with db.reading() as s:
                townships = await all_townships(s)
        finally:
            await db.close()
        found = [t for t in townships if t.name == name]
        return (found[0] if len(found) == 1 else None), [t.name for t in townships]

    township, names = run(go())
    if township is None:
        raise Failure(f"没有乡镇 {name!r}；现有：{'、'.join(names) or '（无：先运行 zoufang import）'}")
    return township


@main.group()
def meeting() -> None:
    """扶贫工作专题党委会 calendars: the days of the month each township meets (default the 1st and 16th)."""


@meeting.command(name="list")
def meeting_list() -> None:
    """Each township's meeting days, its next meeting and when that meeting's digest goes out."""
    from datetime import UTC, datetime

    from storage.db import Database
    from storage.problems import all_townships
    from survey.meetings import Calendar, digest_time

    conf = settings()

    async def go() -> list[Any]:
        db = Database(conf.db_url)
        try:
            async with db.reading() as s:
                return await all_townships(s)
        finally:
            await db.close()

    today = datetime.now(UTC).astimezone(conf.tz).date()
    for township in run(go()):
        calendar = Calendar.parse(township.meeting_days)
        upcoming = calendar.next_on_or_after(today)
        digest = digest_time(upcoming, conf.tz).strftime("%Y-%m-%d %H:%M")
        default = "（默认）" if not township.meeting_days else ""
        click.echo(
            f"{township.name}：每月 {calendar.text()} 日{default}；下次 {upcoming}，问题清单 {digest} 发出"
        )


@meeting.command(name="set")
@click.argument("township")
@click.option("--days", required=True, help="days of the month, e.g. 1,16 (empty: back to the default)")
def meeting_set(township: str, days: str) -> None:
    """Set a township's meeting days."""
    from storage.db import Database
    from storage.models import Township
    from survey.meetings import Calendar, CalendarError

    try:
        calendar = Calendar.parse(days)
    except CalendarError as exc:
        raise Failure(f"会议日 {days!r} 不对：每月的第几日，1–31，用逗号分开，例如 1,16") from exc
    row = _township(township)

    async def go() -> None:
        db = Database(settings().db_url)
        try:
            async with db.session() as s:
                stored = await s.get(Township, row.id)
                stored.meeting_days = calendar.text() if days.strip() else None
        finally:
            await db.close()

    run(go())
    click.echo(f"{township}：专题党委会每月 {calendar.text()} 日")


@main.command()
@click.option("--township", required=True, help="乡镇 (roster name)")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--send", is_flag=True, help="queue it for the secretary and the specialist (Telegram and SMS)")
def digest(township: str, fmt: str, send: bool) -> None:
    """The problem list before the township's next meeting, to standard output (or sent with --send)."""
    from datetime import UTC, datetime

    from bot.flows.escalation import build_digest, digest_text, queue_digest
    from storage.db import Database
    from storage.problems import digest_recipients
    from storage.telegram import chats_of

    conf = settings()
    row = _township(township)
    now = datetime.now(UTC)

    async def go() -> Any:
        db = Database(conf.db_url)
        try:
            if not send:
                return digest_text(await build_digest(db, conf, row, now), conf.locale, fmt)
            async with db.reading() as s:
                people = await digest_recipients(s, row.id)
                chats = await chats_of(s, [c.id for c in people])
            return await queue_digest(db, conf, row, now, chats)
        finally:
            await db.close()

    result = run(go())
    if send:
        click.echo(f"{township}：问题清单已放入发件箱 {result} 条（zoufang serve 或 zoufang worker 发送）")
    else:
        click.echo(result)


@main.command()
@click.option("--township", required=True, help="乡镇 (roster name)")
@click.option("--meeting", "meeting_on", required=True, help="the meeting's date, YYYY-MM-DD")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
def minutes(township: str, meeting_on: str, fmt: str) -> None:
    """会议纪要: the decisions taken at a meeting, for the supervision centre."""
    from datetime import date

    from messages import render
    from storage.db import Database
    from storage.problems import decisions_at, digest_recipients

    try:
        day = date.fromisoformat(meeting_on)
    except ValueError as exc:
        raise Failure(f"会议日期 {meeting_on!r} 不对：请写 YYYY-MM-DD，例如 2026-11-16") from exc
    conf = settings()
    row = _township(township)

    async def go() -> str:
        db = Database(conf.db_url)
        try:
            async with db.reading() as s:
                decisions = await decisions_at(s, row.id, day)
                keepers = [c.name for c in await digest_recipients(s, row.id) if c.role == "扶贫专干"]
        finally:
            await db.close()
        recorder = keepers[0] if keepers else None
        return render(
            f"problems/minutes.{fmt}",
            conf.locale,
            township=row.name,
            meeting=day,
            decisions=decisions,
            recorder=recorder,
        )

    click.echo(run(go()))


@main.command()
@click.option("--township", required=True, help="乡镇 (roster name)")
@click.option("--month", required=True, help="YYYY-MM")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "xlsx"]), default="table", show_default=True
)
@_output_option
def tally(township: str, month: str, fmt: str, output: Path | None) -> None:
    """每月统计: resolved and unresolved this month, the resolution rate, and the 未化解问题清单."""
    from survey.periods import PeriodError, parse_period

    try:
        period = parse_period(month)
    except PeriodError as exc:
        raise Failure(f"月份 {month!r} 不对：请写 YYYY-MM，例如 2026-11") from exc
    if period.kind != "month":
        raise Failure(f"月份 {month!r} 不对：请写 YYYY-MM，例如 2026-11")
    row = _township(township)

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.tally(db, ctx, row, period)

    _report(build, fmt, output, f"{township}-{period.label}")


@report.command(name="overdue")
@click.option("--county", help="县 (roster name); default: every county")
@_format_option(TABLE_FORMATS)
@_output_option
def report_overdue(county: str | None, fmt: str, output: Path | None) -> None:
    """Problems overdue past the next meeting: the supervision centre's list (督查指挥中心)."""

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.overdue(db, ctx, county)

    _report(build, fmt, output)


@main.command()
@click.option("--since", required=True, metavar="YYYY-MM-DD", help="the first day (local time)")
@click.option("--until", metavar="YYYY-MM-DD", help="the last day, included; default: today")
@_format_option(TABLE_FORMATS)
@_output_option
def audit(since: str, until: str | None, fmt: str, output: Path | None) -> None:
    """操作记录: who changed what and when — submitted visits, problem moves, roster imports, cadres' role or
    township changes, Telegram bindings, SMS opt-outs and opt-ins — with the values before and after."""
    from datetime import date

    def day(text: str, option: str) -> date:
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            raise Failure(f"{option} {text!r} 不是日期：请写 YYYY-MM-DD，例如 2026-12-01") from None

    first = day(since, "--since")
    last = day(until, "--until") if until else None
    if last is not None and last < first:
        raise Failure(f"--until {last} 早于 --since {first}")

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.audit_trail(db, ctx, first, last)

    _report(build, fmt, output, f"{first}")


# --- raw exports 原始数据导出 (issue 13), by 户编号, for re-entry into the poverty information systems --------


def _export(make: Any, fmt: str, output: Path | None, period: str | None, township: str | None) -> None:
    """Stream an export from one read transaction into CSV (standard output without --output) or XLSX."""
    import os
    from datetime import UTC, datetime

    from bot import exports
    from bot.reports import Context, ReportError, area_from, period_from
    from storage.db import Database
    from storage.exports import Scope, snapshot

    conf = settings()
    ctx = Context(conf, datetime.now(UTC))
    try:
        chosen = None if period is None else period_from(period, "quarter", ctx)
    except ReportError as exc:
        raise Failure(str(exc)) from exc
    tz = conf.tz

    def work(conn: Any, scope: Any) -> tuple[Path | None, int]:
        export = make(snapshot(conn), scope, chosen.label if chosen else "all")
        if fmt == "csv" and output is None:
            stdout = click.get_binary_stream("stdout")
            try:
                count = exports.write_csv(export, stdout)
                stdout.flush()
            except BrokenPipeError:  # `… | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
                return None, 0
            return None, count
        path = output or Path(f"{export.name}.{fmt}")
        partial = path.with_name(f".{path.name}.part")  # a file half written never takes the name
        try:
            if fmt == "csv":
                with partial.open("wb", buffering=1 << 20) as handle:
                    count = exports.write_csv(export, handle)
            else:
                count = exports.write_xlsx(export, partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path, count

    async def go() -> tuple[Path | None, int]:
        db = Database(conf.db_url)
        try:
            area = await area_from(db, township, None, ctx)
            start = None if chosen is None else chosen.starts_at(tz)
            scope = Scope(start, None if chosen is None else chosen.ends_at(tz), area.village_ids)
            return await db.run(lambda conn: work(conn, scope), write=False)
        finally:
            await db.close()

    try:
        written, count = run(go())
    except ReportError as exc:
        raise Failure(str(exc)) from exc
    except OSError as exc:
        raise Failure(f"无法写入 {exc.filename or output}：{exc.strerror or exc}") from exc
    if written is not None:
        rows = f"（{count} 行）" if conf.locale != "en" else f" ({count} rows)"
        click.echo(("wrote " if conf.locale == "en" else "已写入 ") + str(written.resolve()) + rows)


_export_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx"]),
    default="csv",
    show_default=True,
    help="csv (UTF-8 with BOM; standard output without --output) or xlsx",
)
_export_period = click.option(
    "--period", help="2026-11, 2026Q4, 2026H2 or 2026 (local time); default: all time"
)


@main.group()
def export() -> None:
    """Raw exports 原始数据导出 by 户编号: visits with every answer, SMS polls, problems with their history."""


@export.command(name="visits")
@_export_period
@_township_option
@_export_format
@click.option(
    "--layout",
    type=click.Choice(["wide", "long"]),
    default="wide",
    show_default=True,
    help="wide: a row per visit, a column per question; long: a row per answer",
)
@click.option(
    "--choices",
    type=click.Choice(["label", "code", "both"]),
    default="label",
    show_default=True,
    help="wide layout: choice and yes/no answers as labels (是, 低保), codes (1, the stored value) or both",
)
@_output_option
def export_visits(
    period: str | None, township: str | None, fmt: str, layout: str, choices: str, output: Path | None
) -> None:
    """Every submitted visit: 户编号, place, cadre, times, location and its answers in script order."""
    conf = settings()
    script = load_script_or_fail(conf.script)

    def make(conn: Any, scope: Any, label: str) -> Any:
        from bot.exports import visits_export

        return visits_export(conn, script, scope, layout, choices, conf.locale, conf.tz, label)

    _export(make, fmt, output, period, township)


@export.command(name="polls")
@_export_period
@_township_option
@_export_format
@_output_option
def export_polls(period: str | None, township: str | None, fmt: str, output: Path | None) -> None:
    """Every satisfaction poll (by creation time and the village it went to): rating, reason, steps, outcome."""
    conf = settings()

    def make(conn: Any, scope: Any, label: str) -> Any:
        from bot.exports import polls_export

        return polls_export(conn, scope, conf.locale, conf.tz, label)

    _export(make, fmt, output, period, township)


@export.command(name="problems")
@_township_option
@_export_format
@_output_option
def export_problems(township: str | None, fmt: str, output: Path | None) -> None:
    """Every problem with its whole history (a 处理记录 column; XLSX also a sheet with a row per move)."""
    conf = settings()

    def make(conn: Any, scope: Any, label: str) -> Any:
        from bot.exports import problems_export

        return problems_export(conn, scope, conf.locale, conf.tz)

    _export(make, fmt, output, None, township)


if __name__ == "__main__":
    main()
