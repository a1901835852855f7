"""一册两表 counts for `zoufang report handbook`: of the visits submitted in a period whose cadre answered every
one of the script's 一册两表 questions, how many found all of them up to date, and each one, by the household's
village, its township, or the visiting cadre."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Answer, Household, Village, Visit
from storage.reports import Area, count_where


async def handbook_counts(
    session: AsyncSession, by: str, start: datetime, end: datetime, area: Area, fields: Sequence[str]
) -> dict[int | None, tuple[int, int, tuple[int, ...]]]:
    """key → (visits that answered all `fields`, those with every one yes, each field's yes count)."""
    per_visit = (
        select(
            Answer.visit_id,
            func.count().label("answered"),
            count_where(Answer.value_bool.is_(True)).label("yes"),
            *(
                count_where(and_(Answer.field == f, Answer.value_bool.is_(True))).label(f"y{i}")
                for i, f in enumerate(fields)
            ),
        )
        .where(Answer.field.in_(list(fields)), Answer.item == -1, Answer.value_bool.is_not(None))
        .group_by(Answer.visit_id)
        .subquery()
    )
    whole = per_visit.c.answered == len(fields)
    measures = (
        count_where(whole),
        count_where(and_(whole, per_visit.c.yes == len(fields))),
        *(count_where(and_(whole, per_visit.c[f"y{i}"] > 0)) for i in range(len(fields))),
    )
    if by == "cadre":
        key = Visit.cadre_id
    elif by == "village":
        key = Household.village_id
    else:
        key = Village.township_id
    query = (
        select(key, *measures)
        .select_from(per_visit)
        .join(Visit, Visit.id == per_visit.c.visit_id)
        .join(Household, Household.id == Visit.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(
            Visit.status == "submitted",
            Visit.submitted_at >= start,
            Visit.submitted_at < end,
            area.households(),
        )
        .group_by(key)
    )
    return {k: (n, current, tuple(items)) for k, n, current, *items in await session.execute(query)}
