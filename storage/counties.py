"""Counties and their own lines (收入线, 监测线, whether 保底收益 counts); NULL means "follow the setting"."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import County

# The per-county values `zoufang county set` may change, by attribute name.
COUNTY_VALUES = ("income_line", "monitoring_line", "count_guaranteed")


async def all_counties(session: AsyncSession) -> list[County]:
    return list((await session.execute(select(County).order_by(County.name))).scalars())


async def county_by_name(session: AsyncSession, name: str) -> County | None:
    return (await session.execute(select(County).where(County.name == name))).scalar_one_or_none()


async def update_county(
    session: AsyncSession, county: County, values: Mapping[str, Decimal | bool | None]
) -> County:
    """Set the given values in place (None = back to the setting's default) and return the county as stored."""
    unknown = set(values) - set(COUNTY_VALUES)
    if unknown:
        raise ValueError(f"not a county value: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        setattr(county, name, value)
    await session.flush()
    await session.refresh(county)
    return county
