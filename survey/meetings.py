"""A township's meeting calendar: the days of the month its 扶贫工作专题党委会 meets (default the 1st and 16th).

A day past a month's end (30 in February) falls on that month's last day, so every month still has its meeting.
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DEFAULT_DAYS", "Calendar", "CalendarError", "digest_time"]

DEFAULT_DAYS: tuple[int, ...] = (1, 16)


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class Calendar:
    days: tuple[int, ...] = DEFAULT_DAYS

    def __post_init__(self) -> None:
        if not self.days:
            raise CalendarError("a calendar needs at least one meeting day")
        if any(not 1 <= d <= 31 for d in self.days):
            raise CalendarError(f"meeting days must be 1–31, not {self.days}")
        if len(set(self.days)) != len(self.days) or tuple(sorted(self.days)) != self.days:
            raise CalendarError(f"meeting days must be distinct and in order, not {self.days}")

    @classmethod
    def parse(cls, text: str | None) -> Calendar:
        """'1,16' (also '1，16' or '1 16'); empty or None is the default."""
        if text is None or not text.strip():
            return cls()
        parts = text.replace("，", ",").replace("、", ",").replace(" ", ",").split(",")
        try:
            days = sorted({int(p) for p in parts if p.strip()})
        except ValueError as exc:
            raise CalendarError(f"{text!r}: meeting days are numbers of the month, e.g. 1,16") from exc
        return cls(tuple(days))

    def text(self) -> str:
        return ",".join(str(d) for d in self.days)

    def in_month(self, year: int, month: int) -> list[date]:
        last = _calendar.monthrange(year, month)[1]
        return sorted({date(year, month, min(d, last)) for d in self.days})

    def next_on_or_after(self, day: date) -> date:
        for year, month in _months_from(day.year, day.month):
            for meeting in self.in_month(year, month):
                if meeting >= day:
                    return meeting
        raise AssertionError("unreachable: every month has a meeting")

    def latest_on_or_before(self, day: date) -> date | None:
        year, month = day.year, day.month
        for _ in range(2):
            found = [m for m in self.in_month(year, month) if m <= day]
            if found:
                return found[-1]
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        return None

    def next_after(self, day: date) -> date:
        return self.next_on_or_after(day + timedelta(days=1))


def _months_from(year: int, month: int):  # type: ignore[no-untyped-def]
    for _ in range(3):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def digest_time(meeting: date, tz: ZoneInfo, at: time = time(8, 0), days_before: int = 1) -> datetime:
    """When the digest for a meeting is due: by default 08:00 local the day before."""
    return datetime.combine(meeting - timedelta(days=days_before), at, tzinfo=tz)
