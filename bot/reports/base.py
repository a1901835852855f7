"""What every report shares: the Context it runs in, its one-line ReportError, and the --period and
--township/--village filters resolved to a Period and a storage.reports.Area."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.reports.output import Column
from bot.settings import Settings
from storage import reports as q
from storage.db import Database
from storage.models import Township, Village
from survey.periods import ACCEPTED_FORMS, Period, PeriodError, current_period, parse_period

REPORT_PHRASES = "reports/parts.txt"


class ReportError(ValueError):
    """Bad input to a report (unknown period, place, role or group): one line that lists what exists."""


@dataclass(frozen=True)
class Context:
    """What every report needs: settings (zone, language, targets) and the time it is run."""

    settings: Settings
    now: datetime

    @property
    def locale(self) -> str:
        return self.settings.locale

    def say(self, name: str, /, **params: Any) -> str:
        """A phrase of the reports in the report's language: a macro of messages/templates/<locale>/reports/
        parts.txt (jinja2 loads on the first phrase; one without params is rendered once and cached)."""
        from messages import error_text

        return error_text(name, self.locale, source=REPORT_PHRASES, **params)

    def column(self, key: str, name: str | None = None, /, kind: str = "text", **flags: bool) -> Column:
        """A column whose header is the phrase `col_<name or key>`, resolved once, for the whole report."""
        return Column(key, self.say(f"col_{name or key}"), None, kind, **flags)

    def labels(self, zh: Mapping[str, str], en: Mapping[str, str]) -> Mapping[str, str]:
        """Which of a domain's label dicts (survey's GROUP_LABELS / _EN and the like) the report reads."""
        return en if self.locale == "en" else zh

    def local(self, moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(self.settings.tz).strftime("%Y-%m-%d %H:%M")


# --- inputs ------------------------------------------------------------------------------------------------


def period_from(text: str | None, default_kind: str, ctx: Context) -> Period:
    if text is None:
        return current_period(default_kind, ctx.now, ctx.settings.tz)
    try:
        return parse_period(text)
    except PeriodError as exc:
        raise ReportError(ctx.say("unknown_period", text=repr(text), forms=ACCEPTED_FORMS)) from exc


async def area_from(db: Database, township: str | None, village: str | None, ctx: Context) -> q.Area:
    """Villages named by --township/--village; an unknown name is an error listing the names that exist."""
    if township is None and village is None:
        return q.Area()
    from sqlalchemy import select

    async with db.reading() as s:
        query = select(Village.id).join(Township, Township.id == Village.township_id)
        if township is not None:
            query = query.where(Township.name == township)
        if village is not None:
            query = query.where(Village.name == village)
        ids = tuple((await s.execute(query)).scalars())
        if ids:
            return q.Area(ids)
        names = await q.place_names(s)
    if township is not None and township not in {t for t, _ in names}:
        known = "、".join(sorted({t for t, _ in names})) or ctx.say("none_known")
        raise ReportError(ctx.say("unknown_township", name=repr(township), known=known))
    in_scope = [v for t, v in names if township is None or t == township]
    known = "、".join(in_scope) or ctx.say("none_known")
    raise ReportError(ctx.say("unknown_village", name=repr(village), known=known))
