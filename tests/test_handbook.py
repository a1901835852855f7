"""`zoufang report handbook` (一册两表更新率): of the visits that answered all three 一册两表 questions, those that
found all up to date, by village, with n, the Wilson interval and each item's count, through the real command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from storage.db import Database
from storage.models import Answer
from survey.stats import wilson
from tests.cli_support import clean_env, ok, zoufang, zoufang_process
from tests.report_data import add_visit, hh, local

DEFAULT = Path(__file__).parents[1] / "survey" / "default_script.json"
ITEMS = ("handbook_current", "income_sheet_current", "medical_sheet_current")


async def visit_seeing(
    db: Database, household: str, cadre: str, at: str, seen: tuple[bool | None, ...]
) -> None:
    visit = await add_visit(db, household, cadre, local(at))
    async with db.session() as s:
        for field, value in zip(ITEMS, seen, strict=True):
            if value is not None:
                s.add(Answer(visit_id=visit, field=field, item=-1, seq=0, value_bool=value))


@pytest.fixture
async def county(roster: Database, db_path: Path) -> Path:
    """新华村: 2 of 3 complete visits all up to date (a fourth left an item unanswered); 永安村: 1 of 1; one visit of
    the previous quarter that must not count."""
    yes = (True, True, True)
    await visit_seeing(roster, hh(1), "GB001", "2026-10-11 10:00", yes)
    await visit_seeing(roster, hh(2), "GB001", "2026-10-12 10:00", yes)
    await visit_seeing(roster, hh(3), "GB001", "2026-10-13 10:00", (True, False, True))
    await visit_seeing(roster, hh(4), "GB001", "2026-10-14 10:00", (True, None, True))
    await visit_seeing(roster, hh(23), "GB004", "2026-11-02 10:00", yes)
    await visit_seeing(roster, hh(6), "GB001", "2026-09-20 10:00", (False, False, False))  # 2026Q3
    return db_path


def run(db_path: Path, *args: str, process: bool = False, **extra: str):
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}", **extra)
    return (zoufang_process if process else zoufang)(db_path.parent, "report", "handbook", *args, env=env)


def rows_of(result) -> dict[str, dict[str, str]]:
    rows = csv.DictReader(io.StringIO(ok(result).stdout.lstrip("\ufeff")))
    return {r["行政村"] or r["乡镇"]: r for r in rows if r.get("乡镇")}


def test_by_village_with_n_interval_and_each_item(county: Path):
    """`zoufang report handbook` in a real process (its end-to-end test)."""
    rows = rows_of(run(county, "--period", "2026Q4", "--format", "csv", process=True))
    xinhua = rows["新华村"]
    low, high = wilson(2, 3)
    assert (xinhua["回答户次"], xinhua["均已更新"], xinhua["更新率"]) == ("3", "2", "66.7%")
    assert (xinhua["95%下限"], xinhua["95%上限"], xinhua["达标"]) == (f"{low:.1%}", f"{high:.1%}", "否")
    assert (
        xinhua["看两表：家庭收入情况一览表与实际相符？"] == "2"
        and xinhua["看一册：扶贫手册齐全、上墙并及时更新？"] == "3"
    )
    assert (rows["永安村"]["回答户次"], rows["永安村"]["达标"]) == ("1", "是")
    total = rows["合计"]
    assert (total["回答户次"], total["均已更新"]) == ("4", "3")


def test_a_script_without_the_questions_says_not_collected(county: Path):
    definition = json.loads(DEFAULT.read_text(encoding="utf-8"))
    for section in definition["sections"]:
        for question in section["questions"]:
            if question.get("role") in ITEMS:
                del question["role"]
    for section in definition["sections"]:  # renamed: the built-in names cannot be read for them either
        for question in section["questions"]:
            if question["name"] in ITEMS:
                question["name"] = "cun_" + question["name"]
    script = county.parent / "own.json"
    script.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    out = ok(run(county, "--period", "2026Q4", ZOUFANG_SCRIPT=str(script))).stdout
    assert "更新率未采集，不是 0" in out


def test_an_empty_period_and_a_bad_one(county: Path):
    assert "没有完整回答一册两表各题的" in ok(run(county, "--period", "2025Q1")).stdout
    bad = run(county, "--period", "2026Q5")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0


TALKS = ("talk_party", "talk_policy", "talk_hope", "talk_aspiration")


async def test_talks_counts_visits_where_all_four_were_given(roster: Database, db_path: Path):
    """`zoufang report talks` (四讲落实率): a talk answered 否 (not given) makes that visit not count as done."""
    for n, given in ((1, (True,) * 4), (2, (True, True, False, True)), (3, (True,) * 4)):
        visit = await add_visit(roster, hh(n), "GB001", local(f"2026-10-1{n} 10:00"))
        async with roster.session() as s:
            for field, value in zip(TALKS, given, strict=True):
                s.add(Answer(visit_id=visit, field=field, item=-1, seq=0, value_bool=value))
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    done = zoufang(db_path.parent, "report", "talks", "--period", "2026Q4", "--format", "csv", env=env)
    rows = rows_of(done)
    xinhua = rows["新华村"]
    assert (xinhua["回答户次"], xinhua["均已宣讲"], xinhua["落实率"]) == ("3", "2", "66.7%")
    assert xinhua["讲希望：已宣讲？"] == "2" and xinhua["讲党恩：已宣讲？"] == "3"
    table = ok(zoufang(db_path.parent, "report", "talks", "--period", "2026Q4", env=env)).stdout
    assert "四讲落实率（2026Q4，按行政村）" in table and "落实率 = 4 讲" in table
