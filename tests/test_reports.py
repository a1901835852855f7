"""Reports against hand-computed expectations, on the demo roster with visits and polls placed by hand.

The roster (tests/conftest.py `roster`): 东风镇 has 新华村 (DEMO0001–0022), 永安村 (0023–0044), 红旗村 (0045–0066);
福顺乡 has 福顺村, 前进村, 长胜村. GB001 is 新华村's first secretary, GB011 东风镇's work team, GB027 the city leader.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import reports
from bot.reports.base import ReportError
from storage import reports as storage_reports
from storage.db import Database
from storage.models import Cadre, Household, Problem
from storage.reports import Area
from survey.integrity import distance_m, max_degrees_apart
from survey.periods import parse_period
from tests.report_data import Q4, add_poll, add_visit, ctx, hh, local, place


def row_of(report, **match: str) -> dict:
    found = [r for r in report.rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, report.rows)
    return found[0]


# --- satisfaction ---------------------------------------------------------------------------------------------


async def test_satisfaction_rates_intervals_and_flags_by_hand(roster: Database):
    # 新华村: 12 polls, 10 answered, 9 satisfied (8 满意 + 1 基本满意); one visit recorded 满意.
    for n in range(1, 13):
        rating = "满意" if n <= 8 else "基本满意" if n == 9 else "不满意" if n == 10 else None
        await add_poll(roster, hh(n), local("2026-10-15 10:00"), rating)
    await add_visit(roster, hh(1), "GB001", local("2026-10-20 10:00"))
    # 永安村: 30 of 30 satisfied by SMS, nothing recorded.
    for n in range(23, 45):
        await add_poll(roster, hh(n), local("2026-11-02 10:00"), "满意")
    for n in range(45, 53):  # 红旗村 gives 8 more, so 永安村 stays 22: use a township row to see 30
        await add_poll(roster, hh(n), local("2026-11-02 10:00"), "满意")
    report = await reports.satisfaction(roster, ctx(), "village", Q4, Area())

    xinhua = row_of(report, village="新华村")
    assert (xinhua["sms_polled"], xinhua["sms_n"]) == (12, 10)
    assert xinhua["sms_response"] == pytest.approx(10 / 12)
    assert xinhua["sms_rate"] == pytest.approx(0.9)
    assert (xinhua["sms_low"], xinhua["sms_high"]) == (
        pytest.approx(0.5958, abs=1e-4),
        pytest.approx(0.9821, abs=1e-4),
    )
    assert xinhua["sms_met"] is True  # 90% meets "≥ 90%"
    assert xinhua["sms_small"] is True
    # n = 1: 100% with a wide interval, flagged small
    assert (xinhua["rec_n"], xinhua["rec_rate"]) == (1, 1.0)
    assert xinhua["rec_low"] == pytest.approx(0.2065, abs=1e-4)
    assert xinhua["rec_high"] == 1.0
    assert xinhua["gap"] == pytest.approx(10.0)
    # n = 0: nothing to rate, no division by zero
    fushun = row_of(report, village="福顺村")
    assert (fushun["sms_n"], fushun["sms_rate"], fushun["sms_met"], fushun["sms_small"]) == (
        0,
        None,
        None,
        None,
    )
    assert fushun["gap"] is None

    by_town = await reports.satisfaction(roster, ctx(), "township", Q4, Area())
    dongfeng = row_of(by_town, township="东风镇")
    assert (dongfeng["sms_n"], dongfeng["sms_rate"]) == (40, pytest.approx(39 / 40))
    assert dongfeng["sms_small"] is False
    total = by_town.rows[-1]
    assert total["township"] == "合计"
    assert (total["sms_polled"], total["sms_n"], total["rec_n"]) == (42, 40, 1)


async def test_all_satisfied_thirty_is_not_a_small_sample(roster: Database):
    for n in range(1, 31):
        await add_poll(roster, hh(n), local("2026-10-15 10:00"), "满意")
    total = (await reports.satisfaction(roster, ctx(), "township", Q4, Area())).rows[-1]
    assert (total["sms_rate"], total["sms_small"], total["sms_met"]) == (1.0, False, True)
    # Wilson at 30/30: 1 − z²/(n + z²) = 0.8865
    assert total["sms_low"] == pytest.approx(30 / (30 + 1.959963984540054**2), abs=1e-9)


async def test_satisfaction_period_follows_beijing_time(roster: Database):
    # 2026-10-01 00:30 Beijing is still 30 September in UTC: it belongs to Q4; 23:59 on 30 September to Q3.
    await add_poll(roster, hh(1), local("2026-10-01 00:30"), "满意")
    await add_poll(roster, hh(2), local("2026-09-30 23:59"), "不满意")
    q4 = (await reports.satisfaction(roster, ctx(), "township", Q4, Area())).rows[-1]
    q3 = (await reports.satisfaction(roster, ctx(), "township", parse_period("2026Q3"), Area())).rows[-1]
    assert (q4["sms_n"], q4["sms_rate"]) == (1, 1.0)
    assert (q3["sms_n"], q3["sms_rate"]) == (1, 0.0)
    year = (await reports.satisfaction(roster, ctx(), "township", parse_period("2026"), Area())).rows[-1]
    assert year["sms_n"] == 2


async def test_empty_period_is_an_empty_report_that_says_so(roster: Database):
    report = await reports.satisfaction(roster, ctx(), "village", parse_period("2025-03"), Area())
    assert report.rows == []
    assert "2025-03" in report.empty


async def test_by_cadre_puts_sms_with_the_latest_visiting_cadre(roster: Database):
    await add_visit(roster, hh(1), "GB002", local("2026-10-01 09:00"), satisfaction="不满意")
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"))
    await add_poll(roster, hh(1), local("2026-10-11 10:00"), "满意")
    await add_poll(roster, hh(2), local("2026-10-11 10:00"), "不满意")  # never visited this quarter
    report = await reports.satisfaction(roster, ctx(), "cadre", Q4, Area())
    gb001, gb002 = row_of(report, cadre_code="GB001"), row_of(report, cadre_code="GB002")
    assert (gb001["sms_n"], gb001["sms_rate"], gb001["rec_n"]) == (1, 1.0, 1)
    assert (gb002["sms_n"], gb002["rec_rate"]) == (0, 0.0)
    nobody = row_of(report, cadre_code="（短信前无走访）")
    assert (nobody["sms_n"], nobody["sms_rate"]) == (1, 0.0)


async def test_by_cadre_a_later_visit_does_not_take_the_earlier_answer(roster: Database):
    # GB001 visits, the villager answers 不满意 the next day; GB002 visits two weeks later.
    await add_visit(roster, hh(3), "GB001", local("2026-10-10 09:00"))
    await add_poll(roster, hh(3), local("2026-10-10 09:00"), "不满意")  # queued by the visit, same instant
    await add_visit(roster, hh(3), "GB002", local("2026-10-25 09:00"))
    report = await reports.satisfaction(roster, ctx(), "cadre", Q4, Area())
    assert (row_of(report, cadre_code="GB001")["sms_n"], row_of(report, cadre_code="GB001")["sms_rate"]) == (
        1,
        0.0,
    )
    assert row_of(report, cadre_code="GB002")["sms_n"] == 0
    # a visit from the previous quarter still owns the answer to the poll it triggered
    await add_visit(roster, hh(4), "GB001", local("2026-09-30 16:00"))
    await add_poll(roster, hh(4), local("2026-10-01 10:00"), "满意")
    report = await reports.satisfaction(roster, ctx(), "cadre", Q4, Area())
    assert row_of(report, cadre_code="GB001")["sms_n"] == 2


async def test_queued_polls_are_not_counted_as_asked(roster: Database):
    await add_poll(roster, hh(1), local("2026-10-15 10:00"), "满意")
    await add_poll(roster, hh(2), local("2026-10-15 10:00"), None, sent=False)  # goes out tomorrow morning
    total = (await reports.satisfaction(roster, ctx(), "township", Q4, Area())).rows[-1]
    assert (total["sms_polled"], total["sms_response"]) == (1, 1.0)


async def test_area_filters_and_unknown_names_list_what_exists(roster: Database):
    await add_poll(roster, hh(1), local("2026-10-15 10:00"), "满意")
    await add_poll(roster, hh(67), local("2026-10-15 10:00"), "不满意")  # 福顺村
    area = await reports.area_from(roster, "福顺乡", None, ctx())
    report = await reports.satisfaction(roster, ctx(), "village", Q4, area)
    assert {r["village"] for r in report.rows[:-1]} == {"福顺村", "前进村", "长胜村"}
    assert (report.rows[-1]["sms_polled"], report.rows[-1]["sms_rate"]) == (1, 0.0)
    with pytest.raises(ReportError, match="东风镇、福顺乡"):
        await reports.area_from(roster, "西山乡", None, ctx())
    with pytest.raises(ReportError, match="新华村"):
        await reports.area_from(roster, "东风镇", "福顺村", ctx())
    with pytest.raises(ReportError, match="2026H2"):
        reports.period_from("2026Q5", "quarter", ctx())


# --- coverage ------------------------------------------------------------------------------------------------


async def test_coverage_counts_own_visits_in_the_roles_period_behind_target_first(roster: Database):
    # GB001 (first secretary, 新华村, quarter): visits 21 of 22 households in Q4 (one of them twice).
    for n in range(1, 22):
        await add_visit(roster, hh(n), "GB001", local("2026-10-08 10:00") + timedelta(hours=n))
    await add_visit(roster, hh(1), "GB001", local("2026-11-08 10:00"))
    await add_visit(roster, hh(22), "GB001", local("2026-09-30 23:59"))  # Q3: does not count
    await add_visit(roster, hh(22), "GB002", local("2026-10-09 10:00"))  # someone else's visit
    report = await reports.coverage(roster, ctx(), ["第一书记"], None, Area(), full_lists=True)
    gb001 = row_of(report, cadre_code="GB001")
    assert (gb001["in_scope"], gb001["visited"], gb001["period"]) == (22, 21, "2026Q4")
    assert gb001["rate"] == pytest.approx(21 / 22)
    assert gb001["met"] is False
    assert gb001["left_count"] == 1
    assert hh(22) in gb001["left"]
    # every first secretary is behind; the one with most done comes last among them
    assert [r["cadre_code"] for r in report.rows][-1] == "GB001"
    assert report.rows[0]["rate"] == 0.0


async def test_who_is_left_is_named_in_code_order_past_the_visited_and_cut_at_the_limit(roster: Database):
    # GB001's 22 households: the 1st, 3rd and 4th visited this quarter; the first 5 left are 2, 5, 6, 7, 8
    for n in (1, 3, 4):
        await add_visit(roster, hh(n), "GB001", local("2026-10-08 10:00") + timedelta(hours=n))
    async with roster.session() as s:
        gb001 = (await s.execute(select(Cadre.id).where(Cadre.code == "GB001"))).scalar_one()
        heads = dict((await s.execute(select(Household.code, Household.head_name))).all())
        behind = storage_reports.Behind(
            gb001, "villages", local("2026-10-01 00:00"), local("2027-01-01 00:00")
        )
        left = (await storage_reports.left_households(s, [behind], 5))[gb001]
    codes = [hh(n) for n in (2, 5, 6, 7, 8)]
    assert left.count == 5
    assert left.text == "、".join(f"{heads[code]}（{code}）" for code in codes)
    report = await reports.coverage(roster, ctx(), ["第一书记"], None, Area(), full_lists=False)
    row = row_of(report, cadre_code="GB001")
    assert row["left_count"] == 19
    assert row["left"].startswith("、".join(f"{heads[code]}（{code}）" for code in codes[:3]))
    assert "19" in row["left"][len(left.text) // 2 :]  # names three, then says how many are left in all


async def test_coverage_periods_quarter_half_year_at_local_boundaries(roster: Database):
    # The work team (GB011, 新华村) counts the half-year: a visit at 00:10 on 1 July Beijing time is H2.
    await add_visit(roster, hh(1), "GB011", local("2026-07-01 00:10"))
    await add_visit(roster, hh(2), "GB011", local("2026-06-30 23:50"))
    # The city leader (GB027, three villages) counts the year.
    await add_visit(roster, hh(3), "GB027", local("2026-01-01 00:05"))
    await add_visit(roster, hh(4), "GB027", local("2025-12-31 23:55"))
    report = await reports.coverage(
        roster, ctx(), ["驻村工作队", "市级包保领导"], None, Area(), full_lists=False
    )
    team, leader = row_of(report, cadre_code="GB011"), row_of(report, cadre_code="GB027")
    assert (team["period"], team["visited"], team["in_scope"]) == ("2026H2", 1, 22)
    assert (leader["period"], leader["visited"], leader["in_scope"]) == ("2026", 1, 66)
    # an explicit period applies to every role
    h1 = await reports.coverage(
        roster, ctx(), ["驻村工作队"], parse_period("2026H1"), Area(), full_lists=False
    )
    assert row_of(h1, cadre_code="GB011")["visited"] == 1


async def test_unknown_role_lists_the_roles(roster: Database):
    with pytest.raises(ReportError, match="第一书记"):
        reports.role_from("村长", ctx())
    assert reports.role_from("first secretary", ctx()) == ["第一书记"]


async def test_helper_period_is_a_setting(roster: Database):
    report = await reports.coverage(
        roster, ctx(helper_period="year"), ["帮扶责任人"], None, Area(), full_lists=False
    )
    assert {r["period"] for r in report.rows} == {"2026"}


# --- households ------------------------------------------------------------------------------------------------


async def test_households_count_each_households_latest_visit(roster: Database):
    await add_visit(
        roster,
        hh(1),
        "GB001",
        local("2026-03-01 10:00"),
        group="key_support",
        unmet="water",
        warnings="unmet_needs",
    )
    await add_visit(roster, hh(1), "GB001", local("2026-10-01 10:00"), group="lifted")  # the latest wins
    await add_visit(
        roster,
        hh(2),
        "GB001",
        local("2026-10-01 11:00"),
        group="key_support",
        unmet="housing,water",
        warnings="unmet_needs,below_monitoring_line",
    )
    await add_visit(roster, hh(3), "GB001", local("2026-10-01 12:00"), group="safety_net", unmet="water")
    report = await reports.households(roster, ctx(), None, Area())
    key = row_of(report, group="重点帮扶")
    assert (key["households"], key["water"], key["housing"], key["food"], key["warned"]) == (1, 1, 1, 0, 1)
    assert row_of(report, group="脱贫达标")["water"] == 0
    total = row_of(report, group="合计")
    assert (total["households"], total["water"], total["warned"]) == (3, 2, 1)
    assert any("129" in note for note in report.notes)  # 132 households, 3 visited
    only = await reports.households(roster, ctx(), reports.group_from("政策兜底", ctx()), Area())
    assert [r["group"] for r in only.rows] == ["政策兜底", "合计"]

    listed = await reports.warnings(roster, ctx(), None, Area())
    assert [r["code"] for r in listed.rows] == [hh(2)]
    assert listed.rows[0]["reasons"] == "低于监测线；两不愁三保障或饮水未达标"
    with pytest.raises(ReportError, match="政策兜底"):
        reports.group_from("贫困户", ctx())


async def test_facts_a_script_did_not_collect_are_reported_as_such_not_as_met_or_safe(roster: Database):
    """Issue 17: a visit under a script without income or water questions: its group and per-capita income are
    未采集, its unmet items and warnings counted as not collected, never as met or as no warning."""
    no_income = "counted_income,per_capita_net,group,below_monitoring_line,medical_burden,income_drop"
    await add_visit(roster, hh(1), "GB001", local("2026-10-01 10:00"), group=None, uncollected=no_income)
    await add_visit(
        roster,
        hh(2),
        "GB001",
        local("2026-10-01 11:00"),
        group="key_support",
        unmet="housing",
        warnings="unmet_needs",
        uncollected="counted_income,per_capita_net,water,below_monitoring_line,medical_burden,income_drop",
    )
    await add_visit(roster, hh(3), "GB001", local("2026-10-01 12:00"), group="lifted")
    report = await reports.households(roster, ctx(), None, Area())
    assert row_of(report, group="未采集（脚本缺少分组所需题目）")["households"] == 1
    assert row_of(report, group="重点帮扶")["housing"] == 1
    (note,) = [n for n in report.notes if n.startswith("未采集")]
    assert "人均纯收入 2 户" in note and "饮水安全 1 户" in note and "四类人群分组 1 户" in note
    assert "返贫预警：低于监测线 2 户" in note
    listed = await reports.warnings(roster, ctx(), None, Area())
    assert [(r["code"], r["per_capita"]) for r in listed.rows] == [(hh(2), "未采集")]
    assert "低于监测线 1 户" in listed.notes[0] and "未能完整判断" in listed.notes[0]


# --- integrity ------------------------------------------------------------------------------------------------


def flags(report, code: str) -> list[dict]:
    return [r for r in report.rows if r["flag_code"] == code]


async def test_short_visit_flagged_under_ten_minutes_not_at_ten(roster: Database):
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"), minutes=9.9)
    await add_visit(roster, hh(2), "GB001", local("2026-10-10 12:00"), minutes=10)
    found = flags(await reports.integrity(roster, ctx(), Q4, Area()), "short_visit")
    assert [r["household"] for r in found] == [f"{await head(roster, 1)}（{hh(1)}）"]
    assert "9.9 分钟" in found[0]["detail"]


async def head(db: Database, n: int) -> str:
    async with db.session() as s:
        return (await s.execute(select(Household.head_name).where(Household.code == hh(n)))).scalar_one()


async def test_far_location_measured_exactly_near_misses_not_flagged(roster: Database):
    lat, lon = 30.0, 110.0
    east = 1 / (111_195 * math.cos(math.radians(lat)))  # degrees of longitude per metre at 30°N
    for n, metres in ((1, 1100), (2, 950), (3, 0)):
        await place(roster, hh(n), lat, lon)
        await add_visit(
            roster,
            hh(n),
            "GB001",
            local("2026-10-10 10:00") + timedelta(hours=n),
            at=(lat, lon + metres * east),
        )
    # 950 m east-west is more than the plain-degree bound, so the exact measure has to clear it
    assert 950 * east > max_degrees_apart(1000)
    found = flags(await reports.integrity(roster, ctx(), Q4, Area()), "far_location")
    assert [r["household"].endswith(f"（{hh(1)}）") for r in found] == [True]
    assert "1.10 公里" in found[0]["detail"]
    assert distance_m(lat, lon, lat, lon + 1100 * east) == pytest.approx(1100, rel=1e-3)


async def test_three_visits_within_fifteen_minutes_flagged_once_not_within_sixteen(roster: Database):
    start = local("2026-10-10 10:00")
    for n, minutes in ((1, 0), (2, 7), (3, 14), (4, 15)):  # four in 15 minutes: one merged flag
        await add_visit(roster, hh(n), "GB001", start + timedelta(minutes=minutes))
    later = local("2026-10-12 10:00")
    for n, minutes in ((5, 0), (6, 8), (7, 16)):  # three in 16 minutes: no flag
        await add_visit(roster, hh(n), "GB004", later + timedelta(minutes=minutes))
    found = flags(await reports.integrity(roster, ctx(), Q4, Area()), "visit_burst")
    assert len(found) == 1
    assert "GB001" in found[0]["cadre"]
    assert "共 4 次走访" in found[0]["detail"]


async def test_identical_answers_across_households_not_within_one(roster: Database):
    same = {"members": 3, "food_secure": True, "location": {"lat": 1.0, "lon": 2.0}}
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"), answers=same)
    await add_visit(
        roster,
        hh(2),
        "GB001",
        local("2026-10-10 11:00"),
        answers={**same, "location": {"lat": 5.0, "lon": 6.0}},
    )
    await add_visit(roster, hh(3), "GB001", local("2026-10-10 12:00"), answers={"members": 4})
    await add_visit(
        roster, hh(3), "GB001", local("2026-11-10 12:00"), answers={"members": 4}
    )  # same household
    found = flags(await reports.integrity(roster, ctx(), Q4, Area()), "identical_answers")
    assert sorted(r["household"][-9:-1] for r in found) == [hh(1), hh(2)]


async def test_satisfaction_gap_over_twenty_points_flagged_exactly_twenty_not(roster: Database):
    # 新华村: recorded 5/5, SMS 3/4 → 25 points. 永安村: recorded 5/5, SMS 8/10 → exactly 20 points.
    for n in range(1, 6):
        await add_visit(roster, hh(n), "GB001", local("2026-10-10 10:00") + timedelta(hours=n))
    for n, rating in zip(range(1, 5), ("满意", "满意", "满意", "不满意"), strict=True):
        await add_poll(roster, hh(n), local("2026-10-12 10:00"), rating)
    for n in range(23, 28):
        await add_visit(roster, hh(n), "GB004", local("2026-10-10 10:00") + timedelta(hours=n))
    for n in range(23, 33):
        await add_poll(roster, hh(n), local("2026-10-12 10:00"), "满意" if n < 31 else "不满意")
    found = flags(await reports.integrity(roster, ctx(), Q4, Area()), "satisfaction_gap")
    assert [r["village"] for r in found] == ["新华村"]
    assert "25.0" in found[0]["detail"]


async def test_escalated_problem_closed_without_a_decision(roster: Database):
    visit = await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"))
    closed = local("2026-10-20 10:00")

    def problem(**kw: object) -> Problem:
        base = dict(
            household_id=1,
            visit_id=visit,
            raised_by_id=1,
            source="visit",
            category="住房",
            description="漏雨",
        )
        return Problem(**{**base, **kw})  # type: ignore[arg-type]

    async with roster.session() as s:
        s.add_all(
            [
                problem(status="closed", resolved_on_site=False, closed_at=closed),  # flagged
                problem(status="closed", resolved_on_site=False, closed_at=closed, decided_at=closed),
                problem(status="closed", resolved_on_site=True, closed_at=closed),
                problem(status="escalated", resolved_on_site=False),
            ]
        )
    report = await reports.integrity(roster, ctx(), Q4, Area())
    found = flags(report, "closed_without_decision")
    assert len(found) == 1
    assert "住房" in found[0]["detail"]
    assert any("不是结论" in note for note in report.notes)


async def test_thresholds_are_settings(roster: Database):
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"), minutes=14)
    found = flags(
        await reports.integrity(roster, ctx(integrity_min_visit_minutes=15.0), Q4, Area()), "short_visit"
    )
    assert len(found) == 1
    assert flags(await reports.integrity(roster, ctx(), Q4, Area()), "short_visit") == []


async def test_a_quiet_period_has_no_flags_and_says_so(roster: Database):
    report = await reports.integrity(roster, ctx(), Q4, Area())
    assert report.rows == []
    assert "2026Q4" in report.empty


# --- problems per month -----------------------------------------------------------------------------------------


async def test_problems_opened_and_closed_per_local_month(roster: Database):
    visit = await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"))
    async with roster.session() as s:
        for created, closed_at in (
            (local("2026-10-31 23:30"), local("2026-11-01 00:30")),  # opened October, closed November
            (local("2026-11-05 10:00"), None),
        ):
            s.add(
                Problem(
                    household_id=1,
                    visit_id=visit,
                    source="visit",
                    category="其他",
                    description="x",
                    status="closed" if closed_at else "escalated",
                    created_at=created,
                    closed_at=closed_at,
                )
            )
    report = await reports.problems(roster, ctx(), Q4, Area())
    assert [(r["month"], r["opened"], r["on_site"] + r["closed"]) for r in report.rows] == [
        ("2026-10", 1, 0),
        ("2026-11", 1, 1),
        ("2026-12", 0, 0),
    ]


async def test_problems_by_township_open_now_and_in_the_period(roster: Database):
    visit = await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"))
    async with roster.session() as s:
        for created, status in (
            (local("2026-09-20 10:00"), "escalated"),
            (local("2026-10-20 10:00"), "closed"),
        ):
            s.add(
                Problem(
                    household_id=1,
                    visit_id=visit,
                    source="visit",
                    category="其他",
                    description="x",
                    status=status,
                    created_at=created,
                    closed_at=created if status == "closed" else None,
                )
            )
    report = await reports.problems_by_township(roster, ctx(), Q4, Area())
    dongfeng = row_of(report, township="东风镇")
    assert (dongfeng["open"], dongfeng["opened"], dongfeng["closed"]) == (1, 1, 1)  # the Q3 one is still open
    assert dongfeng["on_site"] == 0
    assert row_of(report, township="福顺乡")["open"] == 0
    assert row_of(report, township="合计")["open"] == 1


async def test_merged_and_on_site_problems_are_told_apart(roster: Database):
    visit = await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"))
    when = local("2026-10-20 10:00")
    async with roster.session() as s:
        for status, on_site in (("merged", False), ("closed", True), ("closed", False), ("decided", False)):
            s.add(
                Problem(
                    household_id=1,
                    visit_id=visit,
                    source="visit",
                    category="其他",
                    description="x",
                    status=status,
                    resolved_on_site=on_site,
                    created_at=when,
                    closed_at=when if status in ("merged", "closed") else None,
                )
            )
    town = row_of(await reports.problems_by_township(roster, ctx(), Q4, Area()), township="东风镇")
    assert (town["open"], town["opened"], town["on_site"], town["closed"]) == (1, 4, 1, 1)
    october = (await reports.problems(roster, ctx(), Q4, Area())).rows[0]
    assert (october["opened"], october["on_site"], october["closed"]) == (4, 1, 1)


@pytest.mark.parametrize("by", ["village", "township", "cadre"])
async def test_satisfaction_chart_draws_every_row_not_all_but_the_last(
    roster: Database, by: str, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    """Issue 16: the PNG left out the last village (by township: one township drawn, by cadre: a cadre
    missing), for the chart took its rows before the total was appended. Every row but the total is a bar."""
    import bot.reports.rates as rates

    drawn: list[list[str]] = []
    monkeypatch.setattr(rates, "rate_bars", lambda path, title, labels, *rest: drawn.append(list(labels)))
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"))
    await add_visit(roster, hh(30), "GB002", local("2026-10-11 09:00"))
    await add_poll(roster, hh(1), local("2026-10-11 10:00"), "满意")
    report = await reports.satisfaction(roster, ctx(), by, Q4, Area())
    report.chart(tmp_path / "s.png")
    shown = report.rows[:-1]
    assert report.rows[-1].get("township") == "合计" or report.rows[-1].get("cadre_code") == "合计"
    assert len(shown) >= 2, report.rows
    assert len(drawn) == 1 and len(drawn[0]) == len(shown)
    assert "合计" not in drawn[0]


async def test_problems_chart_by_township_draws_every_township(
    roster: Database, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    """Issue 16's check of the other charts: by township, every township is a group and the total is not
    (the chart reads its rows when it draws, after the total was appended)."""
    import bot.reports.problem_counts as problem_counts

    drawn: list[list[str]] = []
    monkeypatch.setattr(problem_counts, "count_bars", lambda path, title, labels, *rest: drawn.append(labels))
    visit = await add_visit(roster, hh(1), "GB001", local("2026-10-10 10:00"))
    async with roster.session() as s:
        s.add(
            Problem(
                household_id=1,
                visit_id=visit,
                source="visit",
                category="其他",
                description="x",
                status="escalated",
                created_at=local("2026-10-20 10:00"),
            )
        )
    report = await reports.problems_by_township(roster, ctx(), Q4, Area())
    report.chart(tmp_path / "p.png")
    assert drawn == [[r["township"] for r in report.rows[:-1]]]
    assert len(drawn[0]) >= 2 and report.rows[-1]["township"] == "合计"
