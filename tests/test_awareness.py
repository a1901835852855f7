"""`zoufang report awareness`: 政策知晓率 from the visits' policy-awareness answers, by village, township or cadre,
with n and the Wilson interval against ZOUFANG_AWARENESS_TARGET (100 % by default), through the real command."""

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


async def visit_knowing(db: Database, household: str, cadre: str, at: str, knows: bool | None) -> None:
    visit = await add_visit(db, household, cadre, local(at))
    if knows is None:
        return  # the question was not answered (skipped, or an older script)
    async with db.session() as s:
        s.add(Answer(visit_id=visit, field="policy_known", item=-1, seq=0, value_bool=knows))


@pytest.fixture
async def county(roster: Database, db_path: Path) -> Path:
    """新华村 (DEMO0001–0022, GB001): 3 of 4 know; 永安村 (DEMO0023–, GB004): 2 of 2; one unanswered; one
    visit of the previous quarter that must not count."""
    for n, knows in ((1, True), (2, True), (3, False), (4, True), (5, None)):
        await visit_knowing(roster, hh(n), "GB001", f"2026-10-1{n} 10:00", knows)
    for n in (23, 24):
        await visit_knowing(roster, hh(n), "GB004", "2026-11-02 10:00", True)
    await visit_knowing(roster, hh(6), "GB001", "2026-09-20 10:00", False)  # 2026Q3
    return db_path


def run(db_path: Path, *args: str, process: bool = False, **extra: str):
    """`zoufang report awareness ARGS` in this process, or with `process` in a real one."""
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}", **extra)
    return (zoufang_process if process else zoufang)(db_path.parent, "report", "awareness", *args, env=env)


def rows_of(result) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ok(result).stdout.lstrip("\ufeff"))))


def test_by_village_with_n_interval_and_the_100_percent_target(county: Path):
    """`zoufang report awareness` in a real process (its end-to-end test)."""
    result = run(county, "--period", "2026Q4", "--format", "csv", process=True)
    rows = {r["行政村"] or r["乡镇"]: r for r in rows_of(result)}
    xinhua = rows["新华村"]
    low, high = wilson(3, 4)
    assert (xinhua["回答户次"], xinhua["知晓"], xinhua["知晓率"]) == ("4", "3", "75.0%")
    assert (xinhua["95%下限"], xinhua["95%上限"]) == (f"{low:.1%}", f"{high:.1%}")
    assert (xinhua["达标"], xinhua["小样本"]) == ("否", "是")
    assert (rows["永安村"]["知晓率"], rows["永安村"]["达标"]) == ("100.0%", "是")  # 100 % meets 100 %
    assert rows["红旗村"]["回答户次"] == "0" and rows["红旗村"]["知晓率"] == ""  # asked nobody: no rate
    assert (rows["合计"]["回答户次"], rows["合计"]["知晓"]) == (
        "6",
        "5",
    )  # Q3's visit and the unanswered left out


def test_by_cadre_and_township_and_a_target_of_the_countys_own(county: Path):
    cadres = {
        r["干部编号"]: r
        for r in rows_of(run(county, "--by", "cadre", "--period", "2026Q4", "--format", "csv"))
    }
    assert cadres["GB001"]["知晓率"] == "75.0%" and cadres["GB004"]["知晓率"] == "100.0%"
    townships = rows_of(
        run(
            county,
            "--by",
            "township",
            "--period",
            "2026Q4",
            "--format",
            "csv",
            ZOUFANG_AWARENESS_TARGET="0.8",
        )
    )
    dongfeng = next(r for r in townships if r["乡镇"] == "东风镇")
    assert (dongfeng["知晓率"], dongfeng["达标"]) == (f"{5 / 6:.1%}", "是")
    screen = ok(run(county, "--period", "2026Q4")).stdout
    assert "政策知晓率（2026Q4，按行政村）" in screen and "目标 100%" in screen


def test_a_script_without_the_question_says_not_collected_never_zero(county: Path):
    definition = json.loads(DEFAULT.read_text(encoding="utf-8"))
    for section in definition["sections"]:
        section["questions"] = [q for q in section["questions"] if q["name"] != "policy_known"]
    own = county.parent / "own.json"
    own.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    out = ok(run(county, "--period", "2026Q4", ZOUFANG_SCRIPT=str(own))).stdout
    assert "没有政策知晓题" in out and "不是 0" in out and "0.0%" not in out


def test_an_empty_period_and_bad_input(county: Path):
    assert "没有政策知晓的回答" in ok(run(county, "--period", "2025")).stdout
    bad = run(county, "--period", "2026Q4", ZOUFANG_AWARENESS_TARGET="1.5")
    assert bad.returncode == 1 and "ZOUFANG_AWARENESS_TARGET" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "西山乡" in run(county, "--township", "西山乡").stderr


def test_each_visit_counts_in_its_own_period(county: Path):
    rows = rows_of(run(county, "--period", "2026Q3", "--format", "csv"))
    total = next(r for r in rows if r["乡镇"] == "合计")
    assert (total["回答户次"], total["知晓"]) == ("1", "0")
