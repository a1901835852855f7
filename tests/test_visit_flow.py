"""The visit flow on a real SQLite file: what a submission stores, resuming, failed saves, concurrent cadres."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import storage.db
from bot.demo import DemoError, run_demo
from bot.flows.visit import VisitFlow, render_summary
from bot.settings import Settings
from storage.db import Database, sqlite_url
from storage.models import Answer, County, Household, Problem, Visit, WorkLogEntry
from storage.reports import Area, household_groups, warning_list
from storage.visits import cadre_by_code, households_in_scope
from survey import engine
from survey.facts import UNMET_ITEMS, Lines
from survey.integrity import answers_digest
from survey.script import load_script

SCRIPT = load_script()
# one full visit of the default script, typed as on a phone; members comes from the household picked
FULL = [
    "3人",
    "2",
    "因病",
    "低保",
    "是",
    "是",
    "1",
    "否",
    "是",
    "否",
    "是",
    "是",
    "1.2万",
    "5千",
    "0",
    "0",
    "1000",
    "500",
    "3000",
    "0",
    "满意",
    "是",
    "",
    "是",
    "已讲",
    "1 3",
    "是",
    "是",
    "否",
    "D级",
    "否",
    "1,3",
    "是",
    "是",
    "否",
    "是",
    "饮水",
    "冬季水管冻裂",
    "否",
    "是",
    "住房",
    "屋顶漏雨",
    "是",
    "已联系施工队当天修好",
    "否",
    "提交",
]


async def first_secretary_and_household(db: Database, n: int = 0):
    async with db.session() as s:
        cadre = await cadre_by_code(s, "GB001")
        assert cadre is not None and cadre.role == "第一书记"
        return cadre, (await households_in_scope(s, cadre, "villages"))[n]


async def walk(flow: VisitFlow, visit_id: int, inputs: list[str]):
    outcome = None
    for text in inputs:
        outcome = await flow.answer(visit_id, text)
        assert outcome.reply.error is None, (text, outcome.text)
    return outcome


async def test_submission_stores_typed_answers_problems_facts_and_work_log(roster: Database):
    flow = VisitFlow(roster, SCRIPT, Settings())
    cadre, household = await first_secretary_and_household(roster)
    outcome = await flow.start(cadre, household, channel="console")
    outcome = await walk(flow, outcome.visit_id, FULL)
    assert outcome.finished and outcome.text.startswith("走访已提交")
    assert "1 个已提交乡镇扶贫工作专题党委会研究" in outcome.text
    async with roster.session() as s:
        visit = await s.get(Visit, outcome.visit_id)
        assert visit.status == "submitted" and visit.submitted_at is not None
        # (12000 + 5000 + 1000 − 500) / 3 = 5833.33; 低保 → 政策兜底; the house is not safe → unmet
        assert float(visit.per_capita_net) == pytest.approx(5833.33)
        assert visit.household_group == "safety_net"
        assert visit.unmet == "housing,water" and "unmet_needs" in visit.warnings
        # the fingerprint the integrity report compares across households (location left out)
        answers = json.loads(visit.session)["answers"]
        assert visit.answers_digest == answers_digest(answers)
        assert visit.answers_digest == answers_digest({**answers, "location": {"lat": 0.0, "lon": 0.0}})
        rows = (await s.execute(select(Answer).where(Answer.visit_id == visit.id))).scalars().all()
        by_field = {}
        for row in rows:
            by_field.setdefault((row.field, row.item), []).append(row)
        assert by_field[("members", -1)][0].value_int == 3
        assert by_field[("income_wages", -1)][0].value_int == 12000
        assert by_field[("food_secure", -1)][0].value_bool is True
        assert [r.value_text for r in by_field[("policies_explained", -1)]] == ["教育资助", "危房改造"]
        assert [r.value_text for r in by_field[("water_issue", -1)]] == ["水量不足", "取水不便"]
        assert by_field[("description", 1)][0].value_text == "屋顶漏雨"
        assert ("opinion", -1) not in by_field
        problems = (await s.execute(select(Problem).order_by(Problem.id))).scalars().all()
        assert [(p.category, p.status, p.resolved_on_site) for p in problems] == [
            ("饮水", "escalated", False),
            ("住房", "closed", True),
        ]
        assert problems[1].resolution == "已联系施工队当天修好"
        log = (await s.execute(select(WorkLogEntry).order_by(WorkLogEntry.id))).scalars().all()
        assert [e.kind for e in log] == ["visit", "problem_resolved"]
        assert household.code in log[0].text and "屋顶漏雨" in log[1].text


async def test_resume_after_restart_continues_at_the_same_question(roster: Database, db_path: Path):
    cadre, household = await first_secretary_and_household(roster)
    flow = VisitFlow(roster, SCRIPT, Settings())
    outcome = await flow.start(cadre, household, channel="telegram")
    await walk(flow, outcome.visit_id, FULL[:10])
    await roster.close()
    # a new engine and flow on the same file, as after a process restart; console resumes a telegram visit
    reopened = Database(sqlite_url(db_path))
    try:
        again = await VisitFlow(reopened, SCRIPT, Settings()).start(cadre, household, channel="console")
        assert again.visit_id == outcome.visit_id
        assert isinstance(again.reply.step, engine.Ask) and again.reply.step.key == "family_doctor"
        done = await walk(VisitFlow(reopened, SCRIPT, Settings()), again.visit_id, FULL[10:])
        assert done.finished
    finally:
        await reopened.close()


async def test_a_failed_save_is_not_acknowledged_and_loses_nothing(
    roster: Database, db_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cadre, household = await first_secretary_and_household(roster)
    monkeypatch.setattr(storage.db, "SQLITE_BUSY_MS", 50)
    db = Database(sqlite_url(db_path))
    flow = VisitFlow(db, SCRIPT, Settings())
    outcome = await flow.start(cadre, household, channel="console")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        with pytest.raises(OperationalError):
            await flow.answer(outcome.visit_id, "3")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    resumed = await flow.resume(outcome.visit_id)
    assert resumed.reply.step.key == "members"  # the answer was not recorded
    retried = await flow.answer(outcome.visit_id, "3")
    assert retried.reply.step.key == "labour_members"
    await db.close()


async def test_cancel_discards_the_visit(roster: Database):
    cadre, household = await first_secretary_and_household(roster)
    flow = VisitFlow(roster, SCRIPT, Settings())
    outcome = await flow.start(cadre, household, channel="console")
    outcome = await walk(flow, outcome.visit_id, ["3", "取消", "是"])
    assert outcome.finished and "走访已取消" in outcome.text
    async with roster.session() as s:
        visit = await s.get(Visit, outcome.visit_id)
        assert visit.status == "cancelled"
        assert (await s.execute(select(Answer))).first() is None
    fresh = await flow.start(cadre, household, channel="console")
    assert fresh.visit_id != outcome.visit_id


async def test_concurrent_cadres_all_get_their_visits_saved(roster: Database):
    flow = VisitFlow(roster, SCRIPT, Settings())
    async with roster.session() as s:
        cadres = [await cadre_by_code(s, f"GB{n:03d}") for n in (1, 4, 7, 14, 17, 20)]
        pairs = [(c, (await households_in_scope(s, c, "villages"))[1]) for c in cadres]

    async def one(cadre, household):
        outcome = await flow.start(cadre, household, channel="telegram")
        members = str(household.members)
        inputs = [members, "0", *FULL[2:]]
        return await walk(flow, outcome.visit_id, inputs)

    results = await asyncio.gather(*(one(c, h) for c, h in pairs))
    assert all(r.finished for r in results)
    async with roster.session() as s:
        submitted = (await s.execute(select(Visit).where(Visit.status == "submitted"))).scalars().all()
        assert len(submitted) == len(pairs)
        session = json.loads(submitted[0].session)
        assert session["state"] == "submitted"


async def test_households_in_scope_follow_the_role(roster: Database):
    async with roster.session() as s:
        secretary = await cadre_by_code(s, "GB001")
        helper = await cadre_by_code(s, "GB002")
        mine = await households_in_scope(s, secretary, "villages")
        helped = await households_in_scope(s, helper, "helper")
        everyone = (await s.execute(select(Household))).scalars().all()
    assert len(mine) == 22 and {h.village.name for h in mine} == {"新华村"}
    assert helped and all(h.helper_id == helper.id for h in helped)
    assert len(everyone) == 132


async def test_current_facts_come_from_the_latest_submission_not_the_earliest_draft(roster: Database):
    """A visit begun first but submitted last is the household's current state (ids follow draft starts)."""
    flow = VisitFlow(roster, SCRIPT, Settings())
    async with roster.session() as s:
        secretary = await cadre_by_code(s, "GB001")
        helper = await cadre_by_code(s, "GB002")
        household = next(
            h for h in await households_in_scope(s, helper, "helper") if h.village.name == "新华村"
        )
    early = await flow.start(secretary, household, channel="console")
    late = await flow.start(helper, household, channel="console")
    poor = [*FULL[:12], "0", "0", "0", "0", "0", *FULL[17:]]  # no income: below the monitoring line
    await walk(flow, late.visit_id, poor)
    await walk(flow, early.visit_id, FULL)  # submitted last, with 5833.33 per person
    async with roster.session() as s:
        warned = await warning_list(s, Area(), None)
        groups = await household_groups(s, Area(), UNMET_ITEMS, None)
    assert sum(row[1] for row in groups) == 1  # one household, counted by its latest visit
    # FULL has unmet housing and water, so still warned, but not for income
    assert [row[6] for row in warned if row[2] == household.code] == ["unmet_needs"]


async def test_demo_never_replaces_a_file_that_is_not_a_demo_database(tmp_path: Path):
    precious = tmp_path / "zoufang.db"
    precious.write_bytes(b"county data")
    with pytest.raises(DemoError):
        await run_demo(Settings(), precious, visits=1, seed=1, out=io.StringIO())
    assert precious.read_bytes() == b"county data"


async def test_a_submitted_visit_queues_the_villagers_poll_for_the_next_morning(roster: Database):
    from datetime import UTC, datetime

    from storage.models import OutboxMessage, Poll

    clock_now = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)  # 15:30 in Asia/Shanghai
    flow = VisitFlow(roster, SCRIPT, Settings(), clock=lambda: clock_now)
    cadre, _ = await first_secretary_and_household(roster)
    async with roster.session() as s:
        household = next(h for h in await households_in_scope(s, cadre, "villages") if h.phone)
    outcome = await flow.start(cadre, household, channel="console")
    await walk(flow, outcome.visit_id, FULL)
    async with roster.session() as s:
        poll = (await s.execute(select(Poll))).scalar_one()
        message = (await s.execute(select(OutboxMessage))).scalar_one()
    assert poll.household_id == household.id and poll.phone == household.phone
    assert message.to == household.phone and message.kind == "poll/ask"
    assert message.next_attempt_at == datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # 10:00 local, the next day
    assert household.village.name in message.body


async def test_a_talk_not_given_is_answered_no_not_refused_and_changes_no_fact(roster: Database):
    """四讲 were `confirm` questions: 否 was refused, so a cadre who skipped a talk had to claim it was given."""
    flow = VisitFlow(roster, SCRIPT, Settings())
    cadre, household = await first_secretary_and_household(roster)
    outcome = await flow.start(cadre, household, channel="console")
    honest = [*FULL]
    assert FULL[23:28] == ["是", "已讲", "1 3", "是", "是"]  # talk_party … talk_aspiration
    honest[23], honest[27] = "否", "没讲"
    outcome = await walk(flow, outcome.visit_id, honest)
    assert outcome.finished
    async with roster.session() as s:
        visit = await s.get(Visit, outcome.visit_id)
        rows = (await s.execute(select(Answer).where(Answer.visit_id == visit.id))).scalars().all()
        talks = {r.field: r.value_bool for r in rows if r.field.startswith("talk_")}
        assert talks == {
            "talk_party": False,
            "talk_policy": True,
            "talk_hope": True,
            "talk_aspiration": False,
        }
        # the facts read the income and 两不愁三保障 answers only: the same as in the visit with every talk given
        assert float(visit.per_capita_net) == pytest.approx(5833.33)
        assert visit.household_group == "safety_net" and visit.unmet == "housing,water"


async def test_the_summary_shows_per_capita_net_income_under_the_countys_own_lines(roster: Database):
    """The summary left out 人均纯收入, the figure the household's group and warnings are read from (issue 16);
    it is computed as at submission: the county's count_guaranteed over ZOUFANG_COUNT_GUARANTEED."""
    guaranteed = [*FULL[:-1]]  # up to the summary
    assert FULL[15] == "0"  # income_guaranteed
    guaranteed[15] = "3000"
    flow = VisitFlow(roster, SCRIPT, Settings())
    cadre, household = await first_secretary_and_household(roster)
    outcome = await walk(flow, (await flow.start(cadre, household, channel="console")).visit_id, guaranteed)
    assert isinstance(outcome.reply.step, engine.Summary)
    assert (
        "人均纯收入：5,833.33 元/年" in outcome.text
    )  # (12000 + 5000 + 1000 − 500) / 3: 保底收益 not counted
    async with roster.session() as s:
        county = (await s.execute(select(County))).scalars().first()
        county.count_guaranteed = True  # zoufang county set 县 --count-guaranteed
    assert "人均纯收入：6,833.33 元/年" in (await flow.resume(outcome.visit_id)).text
    counted = VisitFlow(roster, SCRIPT, Settings(count_guaranteed=False))
    assert (
        "人均纯收入：6,833.33 元/年" in (await counted.resume(outcome.visit_id)).text
    )  # the county's own wins


def test_a_summary_without_household_size_says_per_capita_income_was_not_collected():
    summary = engine.Summary(lines=())
    assert "人均纯收入：未采集" in render_summary(SCRIPT, summary, "zh_CN", "某户", Lines())
    assert "Per-capita net income: —" in render_summary(SCRIPT, summary, "en", "a household", Lines())
