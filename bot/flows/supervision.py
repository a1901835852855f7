"""Delivering to the county's supervision centre (督查指挥中心, escalation.md): a meeting's minutes
(`zoufang minutes --send`) and the overdue list (`zoufang report overdue --send`).

The recipients are the cadres registered with the role 督查指挥中心 in the county's townships: each gets the whole
text in Telegram where they are bound, and a one-segment SMS summary. A delivery is recorded once in
`scheduled_jobs` (`minutes:<township id>:<meeting date>`, `overdue-list:<county id>:<local date>`) in the same
transaction as its outbox rows: sending again says when it went instead of sending twice.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messages import render
from storage.centre import centre_people, county_of_township, recorded_at
from storage.db import Database
from storage.models import County
from storage.outbox import enqueue, record_job
from storage.telegram import chats_of


class NoCentre(Exception):
    """The county has nobody registered as 督查指挥中心."""

    def __init__(self, county: str) -> None:
        super().__init__(county)
        self.county = county


@dataclass(frozen=True)
class Delivery:
    people: int = 0
    messages: int = 0
    sent_before: datetime | None = None  # when this was delivered already (nothing queued now)


async def county_of(db: Database, township_id: int) -> County:
    async with db.reading() as s:
        return await county_of_township(s, township_id)


async def deliver(
    db: Database, county: County, key: str, text: str, sms: Any, now: datetime, kind: str
) -> Delivery:
    """Queue `text` (plain, escaped for Telegram's HTML) for each centre member bound in Telegram and
    `sms(telegram: bool)` as an SMS to each, recorded under `key`; NoCentre when the county has none."""
    async with db.session() as s:
        people = await centre_people(s, county.id)
        if not people:
            raise NoCentre(county.name)
        if not await record_job(s, key, now, "done"):
            return Delivery(sent_before=await recorded_at(s, key) or now)
        chats = await chats_of(s, [c.id for c in people])
        messages = 0
        for cadre in people:
            if cadre.id in chats:
                await s.run_sync(enqueue, str(chats[cadre.id]), html.escape(text), kind, now, "telegram")
                messages += 1
            await s.run_sync(enqueue, cadre.phone, sms(cadre.id in chats), f"{kind}/sms", now)
            messages += 1
        return Delivery(people=len(people), messages=messages)


def minutes_sms(
    locale: str, county: str, township: str, meeting: Any, taken: list[Any], telegram: bool
) -> str:
    moves = [event.action for item in taken for event, _, _ in item.moves]
    return render(
        "problems/centre_minutes_sms.txt",
        locale,
        county=county,
        township=township,
        meeting=meeting,
        problems=len(taken),
        decided=moves.count("decide"),
        closed=moves.count("close"),
        telegram=telegram,
    )


def overdue_text(report: Any) -> str:
    """The overdue list as lines a phone shows: the title, then one line per problem."""
    columns = [c for c in report.columns if c.kind != "interval"]
    lines = [report.title, ""]
    for row in report.rows:
        cells = (
            f"{c.header(report.locale)}：{row[c.key]}" for c in columns if row.get(c.key) not in (None, "")
        )
        lines.append(" · ".join(cells))
    if not report.rows:
        lines.append(report.empty)
    return "\n".join(lines)


def overdue_sms(locale: str, county: str, report: Any, telegram: bool) -> str:
    townships = sorted({row["township"] for row in report.rows})
    return render(
        "problems/centre_overdue_sms.txt",
        locale,
        county=county,
        problems=len(report.rows),
        townships=len(townships),
        telegram=telegram,
    )
