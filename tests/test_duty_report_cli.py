"""`zoufang report targets|exited-check|ranking|days-in-village|lists` through the real CLI: the forms, the
files read back, an empty database, bad input, and what a real process imports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from storage.db import Database
from storage.models import Household
from tests.cli_support import clean_env, ok, zoufang, zoufang_process
from tests.report_data import add_poll, add_visit, hh, local

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def _exited(db: Database) -> list[str]:
    async with db.session() as s:
        query = select(Household.code).where(Household.status == "已脱贫").order_by(Household.code)
        return list((await s.execute(query)).scalars())


@pytest.fixture
async def county(roster: Database, db_path: Path) -> Path:
    """The demo roster with visits in November 2026 (one exited household failing housing) and SMS answers."""
    exited = [code for code in await _exited(roster) if hh(6) <= code <= hh(22)]  # 新华村, not visited below
    await add_visit(
        roster, exited[0], "GB001", local("2026-11-02 09:00"), unmet="housing", group="key_support"
    )
    for n in range(1, 6):
        await add_visit(roster, hh(n), "GB001", local("2026-11-03 09:00") + timedelta(days=n))
    await add_visit(roster, hh(67), "GB014", local("2026-11-04 09:00"), group="safety_net")
    for n in range(1, 4):
        await add_poll(roster, hh(n), local("2026-11-10 10:00"), "满意")
    return db_path


@pytest.fixture
def empty(roster: Database, db_path: Path) -> Path:
    """The roster and nothing else: no visit, no reply, no problem."""
    return db_path


def run(db_path: Path, *args: str, process: bool = False, **extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}", **extra)
    return (zoufang_process if process else zoufang)(db_path.parent, *args, env=env)


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]], list[str]]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    blank = rows.index([]) if [] in rows else len(rows)
    header = rows[0]
    body = [dict(zip(header, r, strict=True)) for r in rows[1:blank]]
    return header, body, [r[0] for r in rows[blank + 1 :]]


def test_targets_on_screen_with_definitions_and_targets(county: Path):
    out = ok(run(county, "report", "targets", "--period", "2026Q4", "--by", "township")).stdout
    assert "两不愁三保障目标与满意度" in out
    assert "住房安全" in out and "基本医疗保险" in out and "养老保险" in out
    assert "98.0%" in out and "Wilson" in out
    assert "ZOUFANG_HOUSING_TARGET" in out and "ZOUFANG_PENSION_TARGET" in out


def test_targets_csv_and_a_setting_for_the_target(county: Path):
    out = ok(
        run(
            county, "report", "targets", "--period", "2026Q4", "--format", "csv", ZOUFANG_HOUSING_TARGET="0.8"
        )
    ).stdout
    header, body, notes = read_csv(out)
    assert header[:3] == ["乡镇", "行政村", "指标"]
    xinhua = {r["指标"]: r for r in body if r["行政村"] == "新华村"}
    housing = xinhua["住房安全"]
    assert housing["目标"] == "80.0%" and housing["n"] == "6" and housing["达标户"] == "5"
    assert housing["比率"] == "83.3%" and housing["达标"] == "是"
    assert xinhua["养老保险"]["n"] == "0" and xinhua["养老保险"]["比率"] == ""  # not asked in these visits
    assert xinhua["群众满意度(短信 2026Q4)"]["n"] == "3"
    assert any("ZOUFANG_MEDICAL_TARGET" in n for n in notes)


def test_targets_under_a_script_without_the_pension_role_say_not_collected(county: Path, tmp_path: Path):
    script = json.loads((Path(__file__).parents[1] / "survey" / "default_script.json").read_text("utf-8"))
    for section in script["sections"]:
        for question in section.get("questions", []):
            if question.get("role") == "pension_insured":
                del question["role"]
    path = tmp_path / "county.json"
    path.write_text(json.dumps(script, ensure_ascii=False), encoding="utf-8")
    out = ok(run(county, "report", "targets", "--format", "csv", ZOUFANG_SCRIPT=str(path))).stdout
    _, body, notes = read_csv(out)
    assert {r["比率"] for r in body if r["指标"] == "养老保险"} == {"未采集"}
    assert any("未采集，不是 0" in n for n in notes)


def test_targets_xlsx_keeps_rates_as_numbers_and_english_headers(county: Path, tmp_path: Path):
    target = tmp_path / "targets.xlsx"
    ok(run(county, "report", "targets", "--format", "xlsx", "--output", str(target), ZOUFANG_LOCALE="en"))
    sheet = load_workbook(target).active
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["township", "village", "indicator"]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)]
    housing = next(r for r in rows if r["village"] == "新华村" and r["indicator"] == "safe housing")
    assert housing["rate"] == pytest.approx(5 / 6) and housing["target"] == pytest.approx(0.98)


def test_a_bad_target_setting_and_an_unknown_township_are_one_line_errors(county: Path):
    bad = run(county, "report", "targets", ZOUFANG_PENSION_TARGET="98")
    assert bad.returncode != 0 and "ZOUFANG_PENSION_TARGET" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run(county, "report", "exited-check", "--township", "无此镇")
    assert (
        unknown.returncode != 0
        and "东风镇" in unknown.stderr
        and len(unknown.stderr.strip().splitlines()) == 1
    )


def test_exited_check_lists_the_failing_exited_household(county: Path, roster: Database):
    out = ok(run(county, "report", "exited-check", "--format", "csv")).stdout
    _, body, notes = read_csv(out)
    assert len(body) == 1
    assert body[0]["未保障项"] == "住房安全" and body[0]["最近走访"] == "2026-11-02 09:00"
    assert any("已脱贫" in n for n in notes)


def test_ranking_for_a_month(county: Path):
    out = ok(run(county, "report", "ranking", "--period", "2026-11", "--format", "csv")).stdout
    header, body, notes = read_csv(out)
    assert header[:3] == ["名次", "乡镇", "农户数"]
    assert [r["乡镇"] for r in body] == ["东风镇", "福顺乡"]
    assert body[0]["名次"] == "1" and body[0]["入户率"] == "9.1%"  # 6 of 66
    assert any("化解率 =" in n for n in notes)


def test_days_in_village_of_a_past_month(county: Path):
    out = ok(run(county, "report", "days-in-village", "--period", "2026-11", "--format", "csv")).stdout
    _, body, _ = read_csv(out)
    rows = {r["干部编号"]: r for r in body}
    assert rows["GB001"]["驻村天数"] == "6" and rows["GB001"]["应驻天数"] == "22"  # 5 × 30 / 7, rounded up
    assert rows["GB014"]["驻村天数"] == "1"
    assert rows["GB027"]["应驻天数"] == "3"  # 1 every two weeks: 30 / 14, rounded up
    assert body[-1]["达标"] == "否"  # nobody meets the norm; the furthest behind come first
    assert int(body[0]["差几天"]) >= int(body[-1]["差几天"])


def test_lists_xlsx_has_a_group_column_and_a_group_filter(county: Path, tmp_path: Path):
    target = tmp_path / "lists.xlsx"
    ok(run(county, "report", "lists", "--format", "xlsx", "--output", str(target)))
    sheet = load_workbook(target).active
    header = [c.value for c in sheet[1]]
    assert header[0] == "类别"
    groups = [r[0] for r in sheet.iter_rows(min_row=2, values_only=True) if r[1] in ("东风镇", "福顺乡")]
    assert len(groups) == 132
    assert groups[0] == "政策兜底" and groups[-1] == "尚未走访"
    out = ok(run(county, "report", "lists", "--group", "重点帮扶", "--format", "csv")).stdout
    _, body, _ = read_csv(out)
    assert len(body) == 1 and body[0]["未保障项"] == "住房安全"
    bad = run(county, "report", "lists", "--group", "无此类")
    assert bad.returncode != 0 and "政策兜底" in bad.stderr


def test_an_empty_database_says_so_for_every_report(empty: Path):
    said = {
        "targets": "无可计算的达标率",
        "exited-check": "核查清单为空",
        "ranking": "无可排名",
    }
    for name, words in said.items():
        assert words in ok(run(empty, "report", name)).stdout
    days = ok(run(empty, "report", "days-in-village", "--period", "2026-11")).stdout
    assert "驻村天数" in days and "GB001" in days  # every cadre with a norm, at 0 days
    _, body, _ = read_csv(ok(run(empty, "report", "lists", "--format", "csv")).stdout)
    assert len(body) == 132 and {r["类别"] for r in body} == {"尚未走访"}


def test_the_duty_reports_load_no_bot_libraries(county: Path):
    ok(run(county, "report", "targets", "--format", "csv", process=True))  # one real process end to end
    probe = (
        "import sys\n"
        "from bot.cli import main\n"
        "for name in ('targets', 'exited-check', 'ranking', 'days-in-village', 'lists'):\n"
        "    main(['report', name], standalone_mode=False)\n"
        "print('LOADED', sorted(m for m in ('aiogram', 'twilio', 'aiohttp') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=county.parent,
        env=clean_env(county.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{county}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
