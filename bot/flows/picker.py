"""The household picker, one for every channel: the households a cadre must visit in their role's current coverage
period (the county's role-period settings, as `zoufang report coverage`), unfinished visits first, then the ones not
yet visited this period. The console and the Telegram bot both show this list; /todo's figures (done of the
period's total, and who is left) come from here too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.flows.visit import household_text
from storage.db import Database
from storage.models import Cadre, Household
from storage.reports import coverage as coverage_of
from storage.visits import HouseholdLine, households_in_scope, scope_lines, visited_household_ids
from survey.periods import coverage_target, current_period


@dataclass(frozen=True)
class Todo:
    """Where a cadre stands in their role's current coverage period (as `zoufang report coverage` counts)."""

    period: str
    done: int
    total: int
    target: float
    left: list[Household]  # in scope, not visited this period

    @property
    def rate(self) -> float | None:
        return self.done / self.total if self.total else None


class HouseholdPicker:
    db: Database
    settings: Any

    def __init__(self, db: Database, settings: Any) -> None:
        self.db, self.settings = db, settings

    def period(self, cadre: Cadre) -> tuple[str, datetime, datetime]:
        """The cadre's scope and the bounds of their role's current coverage period."""
        target = coverage_target(cadre.role, self.settings.role_periods)  # as `zoufang report coverage`
        tz = self.settings.tz
        period = current_period(target.period_kind or "quarter", datetime.now(tz), tz)
        return target.scope, period.starts_at(tz), period.ends_at(tz)

    async def candidates(self, cadre: Cadre, query: str = "") -> list[HouseholdLine]:
        """The cadre's households (matching the search): unfinished visits first, then not visited this period."""
        scope, start, end = self.period(cadre)
        lines = await self.db.run(lambda conn: scope_lines(conn, cadre, scope, start, end), write=False)
        if query:
            lines = [h for h in lines if query in h.head_name or query in h.code]
        return sorted(lines, key=lambda h: (not h.draft, h.visited))

    async def todo(self, cadre: Cadre) -> Todo | None:
        """The cadre's /todo; None when their role has no coverage period to meet."""
        target = coverage_target(cadre.role, self.settings.role_periods)  # as `zoufang report coverage`
        if target.period_kind is None:
            return None
        tz = self.settings.tz
        period = current_period(target.period_kind, datetime.now(tz), tz)
        start, end = period.starts_at(tz), period.ends_at(tz)
        async with self.db.reading() as s:
            coverage = (await coverage_of(s, [cadre.id], target.scope, start, end))[cadre.id]
            visited = await visited_household_ids(s, cadre.id, start, end)
            left = [h for h in await households_in_scope(s, cadre, target.scope) if h.id not in visited]
        return Todo(period.label, coverage.visited, coverage.in_scope, target.rate, left)

    async def in_scope(self, cadre: Cadre, household_id: int) -> HouseholdLine | None:
        scope, start, end = self.period(cadre)
        found = await self.db.run(
            lambda conn: scope_lines(conn, cadre, scope, start, end, household_id), write=False
        )
        return found[0] if found else None


def label(line: HouseholdLine) -> str:
    """A household as both pickers show it: 村 户主户（户编号）."""
    return household_text(line.village, line.head_name, line.code)
