"""Reads for the supervision centre's deliveries (bot.flows.supervision): who is in it, a township's county,
when a delivery was recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Cadre, County, ScheduledJob, Township

CENTRE = "督查指挥中心"


async def centre_people(session: AsyncSession, county_id: int) -> list[Cadre]:
    """The cadres registered with the role 督查指挥中心 in the county's townships."""
    query = (
        select(Cadre)
        .join(Township, Township.id == Cadre.township_id)
        .where(Township.county_id == county_id, Cadre.role == CENTRE)
        .order_by(Cadre.code)
    )
    return list((await session.execute(query)).scalars())


async def county_of_township(session: AsyncSession, township_id: int) -> County:
    query = select(County).join(Township, Township.county_id == County.id).where(Township.id == township_id)
    return (await session.execute(query)).scalar_one()


async def recorded_at(session: AsyncSession, key: str) -> datetime | None:
    job = await session.get(ScheduledJob, key)
    return job.ran_at if job is not None else None
