"""Visits and polls placed by hand on the demo roster, for the report tests.

They keep the stored attributions as the write paths do: a visit through storage.visits.note_submitted, a poll
with its village and the visit it rates (storage.visits.latest_visit), as bot.flows.poll.create_poll sets them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.reports.base import Context
from bot.settings import Settings
from storage.db import Database
from storage.models import Cadre, Household, Poll, Visit
from storage.visits import latest_visit, note_submitted
from survey.integrity import answers_digest
from survey.periods import parse_period

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)
Q4 = parse_period("2026Q4")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def hh(n: int) -> str:
    return f"DEMO{n:04d}"


def ctx(**settings: object) -> Context:
    return Context(Settings(**settings), NOW)  # type: ignore[arg-type]


async def ids(db: Database, model: type, code: str) -> int:
    async with db.session() as s:
        return (await s.execute(select(model.id).where(model.code == code))).scalar_one()


async def add_visit(
    db: Database,
    household: str,
    cadre: str,
    submitted: datetime,
    *,
    minutes: float = 30,
    satisfaction: str | None = "满意",
    at: tuple[float, float] | None = None,
    answers: dict | None = None,
    group: str | None = "lifted",
    unmet: str = "",
    warnings: str = "",
    uncollected: str | None = None,
) -> int:
    visit = Visit(
        household_id=await ids(db, Household, household),
        cadre_id=await ids(db, Cadre, cadre),
        script_id="t",
        script_version="1",
        channel="console",
        status="submitted",
        started_at=submitted - timedelta(minutes=minutes),
        updated_at=submitted,
        submitted_at=submitted,
        lat=at[0] if at else None,
        lon=at[1] if at else None,
        session="{}",
        satisfaction=satisfaction,
        household_group=group,
        unmet=unmet,
        warnings=warnings,
        uncollected=uncollected,
        answers_digest=answers_digest(
            answers if answers is not None else {"visit": household, "at": str(submitted)}
        ),
    )
    async with db.session() as s:
        s.add(visit)
        await s.run_sync(note_submitted, visit)
        return visit.id


async def add_poll(
    db: Database, household: str, created: datetime, rating: str | None, *, sent: bool = True
) -> None:
    household_id = await ids(db, Household, household)
    async with db.session() as s:
        village_id = (
            await s.execute(select(Household.village_id).where(Household.id == household_id))
        ).scalar_one()
        rated = (await s.execute(select(latest_visit(household_id, created)))).scalar_one_or_none()
    poll = Poll(
        household_id=household_id,
        village_id=village_id,
        visit_id=rated,
        phone="+8613800000000",
        period=f"{created.year}Q{(created.astimezone(TZ).month - 1) // 3 + 1}",
        state="answered" if rating else "expired" if sent else "queued",
        locale="zh_CN",
        created_at=created,
        send_after=created,
        sent_at=created if sent else None,
        asked_at=created if sent else None,
        rating=rating,
    )
    async with db.session() as s:
        s.add(poll)


async def place(db: Database, household: str, lat: float, lon: float) -> None:
    async with db.session() as s:
        row = (await s.execute(select(Household).where(Household.code == household))).scalar_one()
        row.lat, row.lon = lat, lon
