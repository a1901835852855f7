"""The plans' duties as reports (bot/reports/duties.py), built on the demo roster: on SQLite and, with
ZOUFANG_TEST_PG_URL, on PostgreSQL (days in the village counts local dates in each dialect's own way)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import reports
from storage.db import Database
from storage.models import Answer, Household, Problem
from storage.reports import Area
from survey.periods import parse_period
from survey.script import build_script, load_script
from tests.report_data import Q4, add_poll, add_visit, ctx, hh, ids, local

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def untagged_pension() -> object:
    """The built-in script with its 养老保险 question left without the pension_insured role."""
    data = json.loads(
        (Path(__file__).parents[1] / "survey" / "default_script.json").read_text(encoding="utf-8")
    )
    for section in data["sections"]:
        for question in section.get("questions", []):
            if question.get("role") == "pension_insured":
                del question["role"]
    return build_script(data)


async def answer(db: Database, visit: int, field: str, value: bool) -> None:
    async with db.session() as s:
        s.add(Answer(visit_id=visit, field=field, item=-1, seq=0, value_bool=value))


def by_indicator(report: reports.Report, township: str, village: str = "") -> dict[str, dict]:
    return {r["indicator"]: r for r in report.rows if r["township"] == township and r["village"] == village}


async def test_targets_rate_housing_and_medical_from_the_latest_visit(roster: Database):
    first = await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"), unmet="housing")
    second = await add_visit(roster, hh(2), "GB001", local("2026-10-10 10:00"), unmet="medical_insurance")
    await add_visit(roster, hh(3), "GB001", local("2026-10-10 11:00"), uncollected="housing")
    earlier = await add_visit(roster, hh(4), "GB001", local("2026-10-10 12:00"), unmet="housing,water")
    await answer(roster, first, "pension_insured", True)
    await answer(roster, second, "pension_insured", False)
    await answer(roster, earlier, "pension_insured", True)  # not the latest visit of hh4
    await add_visit(roster, hh(4), "GB001", local("2026-11-10 12:00"))  # the latest: repaired since
    await add_poll(roster, hh(1), local("2026-10-15 10:00"), "满意")
    await add_poll(roster, hh(2), local("2026-10-15 10:00"), "不满意")
    report = await reports.targets(roster, ctx(), "village", Q4, Area(), load_script())
    xinhua = by_indicator(report, "东风镇", "新华村")
    housing, medical = xinhua["住房安全"], xinhua["基本医疗保险"]
    assert (housing["n"], housing["hits"]) == (3, 2)  # hh3 did not collect housing: neither met nor unmet
    assert housing["rate"] == pytest.approx(2 / 3)
    assert housing["target"] == 0.98 and housing["met"] is False
    assert housing["low"] < housing["rate"] < housing["high"]
    assert housing["small"] is True
    assert (medical["n"], medical["hits"]) == (4, 3)
    pension = xinhua["养老保险"]
    assert (pension["n"], pension["hits"], pension["target"]) == (2, 1, 0.98)  # hh3, hh4's latest: not asked
    sms = xinhua["群众满意度(短信 2026Q4)"]
    assert (sms["n"], sms["hits"], sms["target"]) == (2, 1, 0.9)
    assert by_indicator(report, "合计")["住房安全"]["n"] == 3
    assert by_indicator(report, "福顺乡", "福顺村")["住房安全"]["rate"] is None  # nothing to judge, not 0 %
    assert any("ZOUFANG_HOUSING_TARGET" in n for n in report.notes)
    assert any("ZOUFANG_PENSION_TARGET" in n and "pension_insured" in n for n in report.notes)


async def test_targets_say_pension_is_not_collected_without_its_role(roster: Database):
    visit = await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"))
    await answer(roster, visit, "pension_insured", True)  # asked, but the script tags no role: not read
    report = await reports.targets(roster, ctx(), "village", Q4, Area(), untagged_pension())
    pension = by_indicator(report, "东风镇", "新华村")["养老保险"]
    assert pension["rate"] == "未采集" and pension.get("n") is None
    assert by_indicator(report, "东风镇", "新华村")["住房安全"]["n"] == 1
    assert any("未采集，不是 0" in n and "pension_insured" in n for n in report.notes)


async def test_targets_by_township_and_a_setting_moves_the_target(roster: Database):
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"))
    report = await reports.targets(roster, ctx(housing_target=0.5), "township", Q4, Area(), load_script())
    assert {r["township"] for r in report.rows} == {"东风镇", "福顺乡", "合计"}
    housing = by_indicator(report, "东风镇")["住房安全"]
    assert (housing["n"], housing["target"], housing["met"]) == (1, 0.5, True)
    assert [c.key for c in report.columns][:2] == ["township", "indicator"]


async def test_targets_with_no_visits_and_no_replies_is_empty(roster: Database):
    report = await reports.targets(roster, ctx(), "village", Q4, Area(), load_script())
    assert report.rows == []
    assert "无可计算的达标率" in report.empty


async def _statuses(db: Database) -> dict[str, list[str]]:
    async with db.session() as s:
        rows = (await s.execute(select(Household.code, Household.status).order_by(Household.code))).all()
    found: dict[str, list[str]] = {}
    for code, status in rows:
        found.setdefault(status, []).append(code)
    return found


async def test_exited_check_lists_exited_households_still_failing_an_item(roster: Database):
    statuses = await _statuses(roster)
    exited, other = statuses["已脱贫"], statuses["未脱贫"]
    await add_visit(roster, exited[0], "GB001", local("2026-10-10 09:00"), unmet="housing,water")
    await add_visit(roster, exited[1], "GB001", local("2026-10-10 10:00"))  # meets every item
    await add_visit(roster, exited[2], "GB001", local("2026-10-10 11:00"), unmet="food")
    await add_visit(roster, exited[2], "GB001", local("2026-11-10 11:00"))  # fixed at the latest visit
    await add_visit(roster, other[0], "GB001", local("2026-10-10 12:00"), unmet="housing")  # not exited
    report = await reports.exited_check(roster, ctx(), Area())
    assert [r["code"] for r in report.rows] == [exited[0]]
    assert report.rows[0]["items"] == "住房安全；饮水安全"
    assert report.rows[0]["visited"] == "2026-10-10 09:00"
    assert "1 户" in report.title
    assert f"“已脱贫”的 {len(exited)} 户" in report.notes[0]

    en = await reports.exited_check(roster, ctx(locale="en"), Area())
    assert "housing" in en.rows[0]["items"] and "Exited" in en.title


async def test_exited_check_with_nothing_failing_says_so(roster: Database):
    report = await reports.exited_check(roster, ctx(), Area())
    assert report.rows == []
    assert "核查清单为空" in report.empty


async def _problem(db: Database, household: str, **fields: object) -> None:
    base = {
        "household_id": await ids(db, Household, household),
        "source": "visit",
        "category": "住房",
        "description": "x",
        "resolved_on_site": False,
        "created_at": local("2026-11-02 10:00"),
        "escalated_at": local("2026-11-02 10:00"),
    }
    async with db.session() as s:
        s.add(Problem(**{**base, **fields}))  # type: ignore[arg-type]


async def test_ranking_orders_townships_by_their_summed_places(roster: Database):
    month = parse_period("2026-11")
    for n in range(1, 23):  # all of 新华村 (东风镇) visited this month
        await add_visit(roster, hh(n), "GB001", local("2026-11-05 09:00") + timedelta(minutes=n))
    await add_visit(roster, hh(67), "GB014", local("2026-11-05 09:00"))  # one household of 福顺乡
    await add_poll(roster, hh(1), local("2026-11-06 10:00"), "满意")
    await add_poll(roster, hh(67), local("2026-11-06 10:00"), "不满意")
    await _problem(roster, hh(2), status="closed", closed_at=local("2026-11-10 10:00"))
    await _problem(roster, hh(68), status="overdue")
    await _problem(
        roster, hh(69), status="closed", resolved_on_site=True, closed_at=local("2026-11-02 10:00")
    )
    report = await reports.ranking(roster, ctx(), month, Area())
    assert [r["township"] for r in report.rows] == ["东风镇", "福顺乡"]
    first, second = report.rows
    assert first["rank"] == 1 and second["rank"] == 2
    assert first["coverage_rate"] == pytest.approx(22 / 66)
    assert (second["coverage_n"], second["coverage_rate"]) == (66, pytest.approx(1 / 66))
    assert first["satisfaction_rate"] == 1.0 and second["satisfaction_rate"] == 0.0
    assert first["resolution_rate"] == 1.0  # 1 closed of 1 escalated
    assert second["resolution_n"] == 1 and second["resolution_rate"] == 0.0  # on-site one left out
    assert (first["overdue"], second["overdue"]) == (0, 1)
    assert first["score"] == 4 and second["score"] == 8
    assert any("化解率 =" in n for n in report.notes) and any("名次" in n for n in report.notes)
    assert all("flag" not in r for r in report.rows) and any("红旗" in n for n in report.notes)


async def test_ranking_ties_share_a_place_and_an_empty_month_is_empty(roster: Database):
    report = await reports.ranking(roster, ctx(), parse_period("2026-11"), Area())
    assert report.rows == []
    assert "无可排名" in report.empty


async def test_days_in_village_counts_local_dates_against_the_norm(roster: Database):
    month = parse_period("2026-11")  # NOW is 2026-11-20 noon: 20 days gone
    for moment in (
        "2026-11-02 09:00",
        "2026-11-02 15:00",  # the same day again
        "2026-11-03 00:30",  # 16:30 UTC on the 2nd: the 3rd in Beijing
        "2026-11-05 10:00",
        "2026-10-31 23:30",  # October
    ):
        await add_visit(roster, hh(1), "GB001", local(moment))
    for day in ("2026-11-02", "2026-11-09", "2026-11-16"):
        await add_visit(roster, hh(2), "GB011", local(f"{day} 10:00"))  # the work team, weekly
    report = await reports.days_in_village(roster, ctx(), month, Area())
    rows = {r["cadre_code"]: r for r in report.rows}
    assert (rows["GB001"]["days"], rows["GB001"]["norm"], rows["GB001"]["short"]) == (3, 15, 12)
    assert (rows["GB011"]["days"], rows["GB011"]["norm"], rows["GB011"]["met"]) == (3, 3, True)
    assert (rows["GB027"]["days"], rows["GB027"]["norm"]) == (0, 2)  # 1 every two weeks
    assert set(rows) >= {"GB001", "GB014", "GB024", "GB027"}
    assert "GB002" not in rows  # a paired helper has no norm
    shorts = [r["short"] for r in report.rows if not r["met"]]
    assert report.rows[0]["short"] == 15 and shorts == sorted(shorts, reverse=True)  # furthest behind first
    assert report.rows[-1]["cadre_code"] == "GB011"  # those meeting it last
    assert "20 天" in report.title


async def test_days_in_village_of_a_past_period_counts_all_its_days(roster: Database):
    report = await reports.days_in_village(roster, ctx(), parse_period("2026-10"), Area())
    first_secretary = next(r for r in report.rows if r["role"] == "第一书记")
    assert first_secretary["norm"] == 23  # 5 × 31 / 7 = 22.1, rounded up
    assert first_secretary["days"] == 0


async def test_lists_one_row_per_household_in_the_groups_order(roster: Database):
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"), group="key_support", unmet="water")
    await add_visit(roster, hh(2), "GB001", local("2026-10-10 10:00"), group="safety_net")
    await add_visit(roster, hh(3), "GB001", local("2026-10-10 11:00"), group=None, uncollected="group")
    report = await reports.lists(roster, ctx(), None, Area())
    assert len(report.rows) == 132
    assert [r["code"] for r in report.rows[:3]] == [hh(2), hh(1), hh(3)]
    assert [r["group"] for r in report.rows[:2]] == ["政策兜底", "重点帮扶"]
    assert report.rows[2]["group"].startswith("未采集")  # visited, but its script could not group it
    assert report.rows[1]["unmet"] == "饮水安全"
    assert report.rows[3]["group"] == "尚未走访" and report.rows[3]["visited"] == ""
    assert "尚未走访 129" in report.notes[0]
    focus = await reports.lists(roster, ctx(), "key_support", Area())
    assert [r["code"] for r in focus.rows] == [hh(1)]


def test_red_flags_for_the_top_three_and_yellow_for_the_last_two():
    from bot.reports.duties import _flag

    rows = [{"rank": r} for r in (1, 2, 3, 3, 5, 6, 7)]
    _flag(rows, ctx())
    assert [r.get("flag", "") for r in rows] == ["红旗", "红旗", "红旗", "红旗", "", "黄旗", "黄旗"]
    few = [{"rank": r} for r in (1, 2, 3, 4)]
    _flag(few, ctx())
    assert all("flag" not in r for r in few)  # too few townships: every one would be flagged


async def test_targets_of_visits_that_collected_no_housing_still_show_the_other_rates(roster: Database):
    await add_visit(roster, hh(1), "GB001", local("2026-10-10 09:00"), uncollected="housing")
    report = await reports.targets(roster, ctx(), "village", Q4, Area(), load_script())
    xinhua = by_indicator(report, "东风镇", "新华村")
    assert xinhua["住房安全"]["n"] == 0 and xinhua["住房安全"]["rate"] is None
    assert xinhua["基本医疗保险"]["n"] == 1
