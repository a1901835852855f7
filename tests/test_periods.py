from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from survey.periods import (
    PERIOD_KINDS,
    ROLE_LABELS_EN,
    ROLES,
    CoverageTarget,
    Period,
    PeriodError,
    coverage_target,
    current_period,
    parse_period,
    period_of,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

# --- parsing ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11", Period("month", date(2026, 11, 1), date(2026, 12, 1), "2026-11")),
        ("2026-01", Period("month", date(2026, 1, 1), date(2026, 2, 1), "2026-01")),
        ("2026-12", Period("month", date(2026, 12, 1), date(2027, 1, 1), "2026-12")),
        ("2026Q4", Period("quarter", date(2026, 10, 1), date(2027, 1, 1), "2026Q4")),
        ("2026q1", Period("quarter", date(2026, 1, 1), date(2026, 4, 1), "2026Q1")),
        ("2026Q2", Period("quarter", date(2026, 4, 1), date(2026, 7, 1), "2026Q2")),
        ("2026Q3", Period("quarter", date(2026, 7, 1), date(2026, 10, 1), "2026Q3")),
        ("2026H1", Period("half", date(2026, 1, 1), date(2026, 7, 1), "2026H1")),
        ("2026h2", Period("half", date(2026, 7, 1), date(2027, 1, 1), "2026H2")),
        ("2026", Period("year", date(2026, 1, 1), date(2027, 1, 1), "2026")),
        (" 2026Q4\n", Period("quarter", date(2026, 10, 1), date(2027, 1, 1), "2026Q4")),
    ],
)
def test_parse_every_form(text: str, expected: Period) -> None:
    assert parse_period(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-1",
        "2026-00",
        "2026-13",
        "2026/11",
        "202611",
        "26Q4",
        "2026Q0",
        "2026Q5",
        "2026Q",
        "2026Q12",
        "2026H0",
        "2026H3",
        "2026-Q4",
        "Q4 2026",
        "2026年",
        "0999",
        "9999",
        "２０２６",
        "2026-11-01",
    ],
)
def test_parse_rejects_bad_forms(text: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    if "out of range" not in message:
        for form in ("2026-11", "2026Q4", "2026H2", "2026"):
            assert form in message


def test_labels_round_trip() -> None:
    for kind in PERIOD_KINDS:
        day = date(2026, 1, 1)
        while day.year == 2026:
            period = period_of(kind, day)
            assert parse_period(period.label) == period
            day = period.end


# --- period_of and boundaries ---


@pytest.mark.parametrize(
    ("kind", "day", "label"),
    [
        ("quarter", date(2026, 3, 31), "2026Q1"),
        ("quarter", date(2026, 4, 1), "2026Q2"),
        ("quarter", date(2026, 6, 30), "2026Q2"),
        ("quarter", date(2026, 7, 1), "2026Q3"),
        ("quarter", date(2026, 9, 30), "2026Q3"),
        ("quarter", date(2026, 10, 1), "2026Q4"),
        ("quarter", date(2026, 12, 31), "2026Q4"),
        ("quarter", date(2027, 1, 1), "2027Q1"),
        ("half", date(2026, 6, 30), "2026H1"),
        ("half", date(2026, 7, 1), "2026H2"),
        ("half", date(2026, 12, 31), "2026H2"),
        ("half", date(2027, 1, 1), "2027H1"),
        ("year", date(2026, 12, 31), "2026"),
        ("year", date(2027, 1, 1), "2027"),
        ("month", date(2026, 2, 28), "2026-02"),
        ("month", date(2028, 2, 29), "2028-02"),
        ("month", date(2026, 3, 1), "2026-03"),
    ],
)
def test_period_of(kind: str, day: date, label: str) -> None:
    period = period_of(kind, day)
    assert period.label == label
    assert period.kind == kind
    assert period.contains(day)


def test_contains_is_half_open() -> None:
    q4 = parse_period("2026Q4")
    assert q4.contains(date(2026, 10, 1))
    assert q4.contains(date(2026, 12, 31))
    assert not q4.contains(date(2026, 9, 30))
    assert not q4.contains(date(2027, 1, 1))


def test_december_month_ends_in_january() -> None:
    december = period_of("month", date(2026, 12, 15))
    assert december.end == date(2027, 1, 1)
    assert december.ends_at(SHANGHAI) == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert period_of("month", december.end).label == "2027-01"


def test_consecutive_periods_tile_the_year() -> None:
    for kind, count in (("month", 12), ("quarter", 4), ("half", 2), ("year", 1)):
        periods = []
        day = date(2026, 1, 1)
        while day.year == 2026:
            periods.append(period_of(kind, day))
            day = periods[-1].end
        assert len(periods) == count
        assert periods[0].start == date(2026, 1, 1)
        assert periods[-1].end == date(2027, 1, 1)


def test_unknown_kind() -> None:
    with pytest.raises(PeriodError, match="week"):
        period_of("week", date(2026, 1, 1))
    with pytest.raises(PeriodError):
        current_period("week", datetime(2026, 1, 1, tzinfo=UTC), SHANGHAI)


# --- instants and time zones ---


def test_starts_and_ends_at_local_midnight() -> None:
    q4 = parse_period("2026Q4")
    start = q4.starts_at(SHANGHAI)
    end = q4.ends_at(SHANGHAI)
    assert start == datetime(2026, 10, 1, tzinfo=SHANGHAI)
    assert start.utcoffset() == timedelta(hours=8)
    assert start.astimezone(UTC) == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert q4.starts_at(ZoneInfo("UTC")) == datetime(2026, 10, 1, tzinfo=UTC)


def test_starts_at_skips_a_nonexistent_midnight() -> None:
    # Chile moved clocks from 00:00 to 01:00 on 2022-09-11; that day began at 01:00.
    santiago = ZoneInfo("America/Santiago")
    period = Period("month", date(2022, 9, 11), date(2022, 9, 12), "test")
    start = period.starts_at(santiago)
    assert (start.hour, start.minute) == (1, 0)
    assert start.astimezone(UTC) == datetime(2022, 9, 11, 4, tzinfo=UTC)


def test_current_period_uses_local_date() -> None:
    now = datetime(2026, 9, 30, 17, tzinfo=UTC)  # 2026-10-01 01:00 in Shanghai
    assert current_period("quarter", now, SHANGHAI).label == "2026Q4"
    assert current_period("quarter", now, ZoneInfo("UTC")).label == "2026Q3"
    assert current_period("half", now, SHANGHAI).label == "2026H2"
    assert current_period("month", now, SHANGHAI).label == "2026-10"


@pytest.mark.parametrize(
    ("utc_time", "label"),
    [
        (datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), "2026"),
        (datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), "2027"),
    ],
)
def test_current_period_across_shanghai_midnight(utc_time: datetime, label: str) -> None:
    assert current_period("year", utc_time, SHANGHAI).label == label
    assert current_period("year", utc_time, ZoneInfo("UTC")).label == "2026"


def test_current_period_agrees_with_instants() -> None:
    now = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    period = current_period("quarter", now, SHANGHAI)
    assert period.starts_at(SHANGHAI) <= now < period.ends_at(SHANGHAI)


def test_current_period_accepts_other_aware_offsets() -> None:
    now = datetime(2026, 9, 30, 23, 30, tzinfo=ZoneInfo("America/New_York"))  # 10-01 11:30 Shanghai
    assert current_period("quarter", now, SHANGHAI).label == "2026Q4"


def test_current_period_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        current_period("quarter", datetime(2026, 10, 1), SHANGHAI)


# --- coverage targets ---


def test_roles_in_table_order() -> None:
    assert ROLES == (
        "第一书记",
        "乡镇包保干部",
        "驻村工作队",
        "市级包保领导",
        "帮扶责任人",
        "村党支部书记",
        "乡镇党委书记",
        "扶贫专干",
        "督查指挥中心",
    )
    assert tuple(ROLE_LABELS_EN) == ROLES
    assert ROLE_LABELS_EN["第一书记"] == "first secretary"


@pytest.mark.parametrize(
    ("role", "scope", "kind"),
    [
        ("第一书记", "villages", "quarter"),
        ("乡镇包保干部", "villages", "quarter"),
        ("驻村工作队", "villages", "half"),
        ("市级包保领导", "villages", "year"),
        ("帮扶责任人", "helper", "quarter"),
        ("村党支部书记", "villages", "year"),
        ("乡镇党委书记", "township", "year"),
    ],
)
def test_coverage_targets(role: str, scope: str, kind: str) -> None:
    assert coverage_target(role) == CoverageTarget(role, scope, kind, 1.0)


@pytest.mark.parametrize("role", ["扶贫专干", "督查指挥中心"])
def test_roles_without_target(role: str) -> None:
    assert coverage_target(role) == CoverageTarget(role, "none", None, 0.0)


def test_overrides_for_settable_roles() -> None:
    overrides = {"帮扶责任人": "half", "村党支部书记": "quarter", "乡镇党委书记": "half"}
    assert coverage_target("帮扶责任人", overrides).period_kind == "half"
    assert coverage_target("村党支部书记", overrides).period_kind == "quarter"
    assert coverage_target("乡镇党委书记", overrides) == CoverageTarget(
        "乡镇党委书记", "township", "half", 1.0
    )
    # an override for another role does not affect this one
    assert coverage_target("第一书记", overrides).period_kind == "quarter"


def test_override_of_fixed_role_is_refused() -> None:
    with pytest.raises(ValueError, match="第一书记"):
        coverage_target("第一书记", {"第一书记": "year"})
    with pytest.raises(ValueError, match="扶贫专干"):
        coverage_target("扶贫专干", {"扶贫专干": "year"})


def test_override_with_bad_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        coverage_target("帮扶责任人", {"帮扶责任人": "fortnight"})


def test_unknown_role() -> None:
    with pytest.raises(KeyError, match="村主任"):
        coverage_target("村主任")
