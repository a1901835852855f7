"""Reporting periods (month, quarter, half-year, year) and each role's visit-coverage target.

Periods are calendar periods of the county's local date: a visit at 01:00 Beijing time on
1 October belongs to Q4 even though it is still 30 September in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

__all__ = [
    "PERIOD_KINDS",
    "ROLES",
    "ROLE_LABELS_EN",
    "SCOPES",
    "SETTABLE_ROLES",
    "CoverageTarget",
    "Period",
    "PeriodError",
    "coverage_target",
    "current_period",
    "parse_period",
    "period_of",
]

PERIOD_KINDS: tuple[str, ...] = ("month", "quarter", "half", "year")
_MONTHS_PER_KIND: dict[str, int] = {"month": 1, "quarter": 3, "half": 6, "year": 12}
# A year's end is 1 January of the next year, so the last usable year is one short of date's maximum.
_MIN_YEAR = 1000
_MAX_YEAR = 9998

ACCEPTED_FORMS = "2026-11 (month), 2026Q4 (quarter), 2026H2 (half-year) or 2026 (year)"


class PeriodError(ValueError):
    """A period text or kind that cannot be understood."""


@dataclass(frozen=True)
class Period:
    """A calendar period as a half-open range of local dates [start, end)."""

    kind: str  # "month" | "quarter" | "half" | "year"
    start: date  # first day, inclusive
    end: date  # first day of the next period, exclusive
    label: str  # "2026-11", "2026Q4", "2026H2", "2026"

    def contains(self, day: date) -> bool:
        """Whether a local date falls in the period."""
        return self.start <= day < self.end

    def starts_at(self, tz: ZoneInfo) -> datetime:
        """The first instant of the period in tz: local midnight of the first day."""
        return _local_midnight(self.start, tz)

    def ends_at(self, tz: ZoneInfo) -> datetime:
        """The first instant after the period in tz (exclusive bound for timestamp queries)."""
        return _local_midnight(self.end, tz)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """Aware local midnight; where a DST jump skips midnight, the first instant that exists."""
    naive = datetime.combine(day, time(0), tzinfo=tz)
    # A round trip through UTC turns a nonexistent wall time into the real instant after the gap.
    return naive.astimezone(UTC).astimezone(tz)


def _check_year(year: int) -> None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise PeriodError(f"year {year} is out of range {_MIN_YEAR}–{_MAX_YEAR}")


def _first_of_next(year: int, month: int, months: int) -> date:
    """The first day `months` months after the first of (year, month)."""
    index = year * 12 + (month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def _label(kind: str, year: int, month: int) -> str:
    if kind == "month":
        return f"{year:04d}-{month:02d}"
    if kind == "quarter":
        return f"{year:04d}Q{(month - 1) // 3 + 1}"
    if kind == "half":
        return f"{year:04d}H{(month - 1) // 6 + 1}"
    return f"{year:04d}"


def _make(kind: str, year: int, first_month: int) -> Period:
    _check_year(year)
    return Period(
        kind=kind,
        start=date(year, first_month, 1),
        end=_first_of_next(year, first_month, _MONTHS_PER_KIND[kind]),
        label=_label(kind, year, first_month),
    )


def period_of(kind: str, day: date) -> Period:
    """The period of the given kind that holds a local date."""
    if kind not in _MONTHS_PER_KIND:
        raise PeriodError(f"unknown period kind {kind!r}; expected one of {', '.join(PERIOD_KINDS)}")
    months = _MONTHS_PER_KIND[kind]
    first_month = (day.month - 1) // months * months + 1
    return _make(kind, day.year, first_month)


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("month", re.compile(r"([0-9]{4})-([0-9]{2})")),
    ("quarter", re.compile(r"([0-9]{4})[Qq]([0-9])")),
    ("half", re.compile(r"([0-9]{4})[Hh]([0-9])")),
    ("year", re.compile(r"([0-9]{4})")),
)
_MAX_NUMBER = {"month": 12, "quarter": 4, "half": 2, "year": 1}


def parse_period(text: str) -> Period:
    """Read a period label typed by a user or given on the command line.

    Months need two digits ("2026-01", not "2026-1") so that labels sort as text.
    """
    cleaned = text.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(cleaned)
        if match is None:
            continue
        year = int(match.group(1))
        number = int(match.group(2)) if kind != "year" else 1
        if not 1 <= number <= _MAX_NUMBER[kind]:
            raise PeriodError(f"{text!r} is not a period: expected {ACCEPTED_FORMS}")
        return _make(kind, year, (number - 1) * _MONTHS_PER_KIND[kind] + 1)
    raise PeriodError(f"{text!r} is not a period: expected {ACCEPTED_FORMS}")


def current_period(kind: str, now: datetime, tz: ZoneInfo) -> Period:
    """The period holding now's local date in tz; now must be aware, or its date is a guess."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("current_period needs an aware datetime")
    return period_of(kind, now.astimezone(tz).date())


# --- coverage targets (indicators.md, "Visit coverage 入户率") ---

SCOPES: tuple[str, ...] = ("villages", "helper", "township", "none")


@dataclass(frozen=True)
class CoverageTarget:
    """Whose households a role must visit, how often, and what share of them."""

    role: str  # roster role value, e.g. "第一书记"
    scope: str  # "villages" | "helper" | "township" | "none"
    period_kind: str | None  # "quarter" | "half" | "year", None for roles with no visit target
    rate: float  # share of the scope's households to visit each period; 0.0 when there is no target


# role -> (scope, default period kind); table order of indicators.md.
_TABLE: dict[str, tuple[str, str | None]] = {
    "第一书记": ("villages", "quarter"),
    "乡镇包保干部": ("villages", "quarter"),
    "驻村工作队": ("villages", "half"),
    "市级包保领导": ("villages", "year"),
    "帮扶责任人": ("helper", "quarter"),
    "村党支部书记": ("villages", "year"),
    "乡镇党委书记": ("township", "year"),
    "扶贫专干": ("none", None),
    "督查指挥中心": ("none", None),
}
ROLES: tuple[str, ...] = tuple(_TABLE)
# The seeds give no figure for these: the period is a county setting, the table's value the default.
SETTABLE_ROLES: frozenset[str] = frozenset({"帮扶责任人", "村党支部书记", "乡镇党委书记"})
ROLE_LABELS_EN: dict[str, str] = {
    "第一书记": "first secretary",
    "乡镇包保干部": "township support cadre",
    "驻村工作队": "village work team member",
    "市级包保领导": "city-level leader",
    "帮扶责任人": "paired helper",
    "村党支部书记": "village party secretary",
    "乡镇党委书记": "township party secretary",
    "扶贫专干": "township poverty specialist",
    "督查指挥中心": "supervision centre",
}


def coverage_target(role: str, overrides: Mapping[str, str] | None = None) -> CoverageTarget:
    """The visit target of a roster role, with the county's period for the settable roles.

    An override for a role whose period the seeds fix is refused rather than ignored, so a
    mistaken setting shows up instead of silently changing nothing.
    """
    if role not in _TABLE:
        raise KeyError(f"unknown roster role {role!r}; expected one of {', '.join(ROLES)}")
    scope, period_kind = _TABLE[role]
    override = (overrides or {}).get(role)
    if override is not None:
        if role not in SETTABLE_ROLES:
            raise ValueError(f"the visit period of {role} is fixed by the seeds and cannot be set")
        if override not in PERIOD_KINDS:
            raise ValueError(
                f"period setting {override!r} for {role} is not one of {', '.join(PERIOD_KINDS)}"
            )
        period_kind = override
    return CoverageTarget(
        role=role,
        scope=scope,
        period_kind=period_kind,
        rate=1.0 if period_kind is not None else 0.0,
    )
