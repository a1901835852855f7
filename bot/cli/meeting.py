"""`zoufang meeting`, `digest`, `minutes` and `tally`: the township meeting (escalation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    Failure,
    _output_option,
    _report,
    main,
    phrase,
    run,
    settings,
    with_db,
)

# --- the township meeting (escalation.md) -------------------------------------------------------------------


def _township(name: str) -> Any:
    """The township row by roster name; unknown → one line listing the townships."""
    from storage.problems import all_townships

    async def go() -> tuple[Any, list[str]]:
        async with with_db() as db, db.reading() as s:
            townships = await all_townships(s)
        found = [t for t in townships if t.name == name]
        return (found[0] if len(found) == 1 else None), [t.name for t in townships]

    township, names = run(go())
    if township is None:
        raise Failure(phrase("no_township", given=repr(name), known=names))
    return township


@main.group()
def meeting() -> None:
    """扶贫工作专题党委会 calendars: the days of the month each township meets (default the 1st and 16th)."""


@meeting.command(name="list")
def meeting_list() -> None:
    """Each township's meeting days, its next meeting and when that meeting's digest goes out."""
    from datetime import UTC, datetime

    from storage.problems import all_townships
    from survey.meetings import Calendar, digest_time

    conf = settings()

    async def go() -> list[Any]:
        async with with_db(conf.db_url) as db, db.reading() as s:
            return await all_townships(s)

    today = datetime.now(UTC).astimezone(conf.tz).date()
    for township in run(go()):
        calendar = Calendar.parse(township.meeting_days)
        upcoming = calendar.next_on_or_after(today)
        digest = digest_time(upcoming, conf.tz).strftime("%Y-%m-%d %H:%M")
        line = phrase(
            "meeting_line",
            township=township.name,
            days=calendar.text(),
            default=not township.meeting_days,
            next=upcoming,
            digest=digest,
        )
        click.echo(line)


@meeting.command(name="set")
@click.argument("township")
@click.option("--days", required=True, help="days of the month, e.g. 1,16 (empty: back to the default)")
def meeting_set(township: str, days: str) -> None:
    """Set a township's meeting days."""
    from storage.models import Township
    from survey.meetings import Calendar, CalendarError

    try:
        calendar = Calendar.parse(days)
    except CalendarError as exc:
        raise Failure(phrase("bad_meeting_days", given=repr(days))) from exc
    row = _township(township)

    async def go() -> None:
        async with with_db() as db, db.session() as s:
            stored = await s.get(Township, row.id)
            stored.meeting_days = calendar.text() if days.strip() else None

    run(go())
    click.echo(phrase("meeting_days_set", township=township, days=calendar.text()))


@main.command()
@click.option("--township", required=True, help="乡镇 (roster name)")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--send", is_flag=True, help="queue it for the secretary and the specialist (Telegram and SMS)")
def digest(township: str, fmt: str, send: bool) -> None:
    """The problem list before the township's next meeting, to standard output (or sent with --send)."""
    from datetime import UTC, datetime

    from bot.flows.escalation import build_digest, digest_text, queue_digest
    from storage.problems import digest_recipients
    from storage.telegram import chats_of

    conf = settings()
    row = _township(township)
    now = datetime.now(UTC)

    async def go() -> Any:
        async with with_db(conf.db_url) as db:
            if not send:
                return digest_text(await build_digest(db, conf, row, now), conf.locale, fmt)
            async with db.reading() as s:
                people = await digest_recipients(s, row.id)
                chats = await chats_of(s, [c.id for c in people])
            return await queue_digest(db, conf, row, now, chats)

    result = run(go())
    if send:
        click.echo(phrase("digest_queued", township=township, count=result))
    else:
        click.echo(result)


@main.command()
@click.option("--township", required=True, help="乡镇 (roster name)")
@click.option("--meeting", "meeting_on", required=True, help="the meeting's date, YYYY-MM-DD")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--send", is_flag=True, help="deliver it to the county's 督查指挥中心 (Telegram and SMS), once")
def minutes(township: str, meeting_on: str, fmt: str, send: bool) -> None:
    """会议纪要: the decisions taken at a meeting, for the supervision centre."""
    from datetime import date

    from messages import render
    from storage.problems import decisions_at, digest_recipients

    try:
        day = date.fromisoformat(meeting_on)
    except ValueError as exc:
        raise Failure(phrase("bad_meeting_date", given=repr(meeting_on))) from exc
    conf = settings()
    row = _township(township)

    async def go() -> str:
        async with with_db(conf.db_url) as db:
            async with db.reading() as s:
                decisions = await decisions_at(s, row.id, day)
                keepers = [c.name for c in await digest_recipients(s, row.id) if c.role == "扶贫专干"]
            recorder = keepers[0] if keepers else None
            text = render(
                f"problems/minutes.{'md' if send else fmt}",
                conf.locale,
                township=row.name,
                meeting=day,
                decisions=decisions,
                recorder=recorder,
            )
            if not send:
                return text
            return await _to_centre(db, conf, row, day, decisions, text)

    click.echo(run(go()))


async def _to_centre(db: Any, conf: Any, township: Any, day: Any, decisions: Any, text: str) -> str:
    from datetime import UTC, datetime

    from bot.flows.supervision import NoCentre, county_of, deliver, minutes_sms

    county = await county_of(db, township.id)
    now = datetime.now(UTC)

    def sms(telegram: bool) -> str:
        return minutes_sms(conf.locale, county.name, township.name, day, decisions, telegram)

    key = f"minutes:{township.id}:{day.isoformat()}"
    try:
        done = await deliver(db, county, key, text, sms, now, "minutes")
    except NoCentre as exc:
        raise Failure(phrase("no_centre", county=exc.county)) from exc
    what = phrase("what_minutes", township=township.name, meeting=day.isoformat())
    if done.sent_before is not None:
        at = done.sent_before.astimezone(conf.tz).strftime("%Y-%m-%d %H:%M")
        return phrase("centre_sent_before", what=what, at=at)
    return phrase("centre_sent", what=what, people=done.people, messages=done.messages)


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
        raise Failure(phrase("bad_month", given=repr(month))) from exc
    if period.kind != "month":
        raise Failure(phrase("bad_month", given=repr(month)))
    row = _township(township)

    async def build(db: Any, ctx: Any) -> Any:
        from bot import reports

        return await reports.tally(db, ctx, row, period)

    _report(build, fmt, output, f"{township}-{period.label}")
