"""`zoufang county list|set`: per-county lines in the database, the settings only their defaults."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.demo import write_roster
from bot.flows.visit import VisitFlow
from bot.settings import Settings
from storage.db import Database, sqlite_url
from storage.models import Visit
from storage.visits import cadre_by_code, households_in_scope
from tests.cli_support import clean_env, ok, query, zoufang, zoufang_process
from tests.test_visit_flow import FULL, SCRIPT, walk

COUNTY = "示范县"


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def county_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(COUNTY)]
    assert len(lines) == 1, stdout
    return lines[0]


def part(line: str, label: str) -> str:
    """The piece of a county line about one value, e.g. "收入线 4000 元（默认）"."""
    return next(piece for piece in line.split("：", 1)[1].split("，") if piece.startswith(label))


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("county")
    write_roster(folder, random.Random(1))
    ok(zoufang(folder, "init"))
    ok(zoufang(folder, "import", "cadres", "cadres.csv", "--county", COUNTY))
    ok(zoufang(folder, "import", "households", "households.csv"))
    return folder


@pytest.fixture
def folder(imported: Path, tmp_path: Path) -> Path:
    for name in ("z.db", "z.db-wal", "z.db-shm"):
        if (imported / name).exists():
            shutil.copy(imported / name, tmp_path / name)
    return tmp_path


def test_county_commands_answer_help(tmp_path: Path) -> None:
    for words in (["county"], ["county", "list"], ["county", "set"]):
        assert ok(zoufang(tmp_path, *words, "--help")).stdout.startswith("用法:")
    assert not (tmp_path / "z.db").exists()


def test_list_on_an_empty_database_says_there_are_no_counties(tmp_path: Path) -> None:
    ok(zoufang(tmp_path, "init"))
    result = ok(zoufang(tmp_path, "county", "list"))
    assert "还没有县" in result.stdout


def test_list_shows_the_settings_defaults_marked(folder: Path) -> None:
    line = county_line(ok(zoufang(folder, "county", "list")).stdout)
    assert part(line, "收入线") == "收入线 3600 元（默认）"
    assert part(line, "监测线") == "监测线 5000 元（默认）"
    assert part(line, "保底收益") == "保底收益计入收入 否（默认）"


def test_set_income_line_is_stored_and_listed_as_the_countys_own(folder: Path) -> None:
    """`zoufang county set` and `county list` in real processes (their end-to-end test)."""
    changed = county_line(
        ok(zoufang_process(folder, "county", "set", COUNTY, "--income-line", "4000")).stdout
    )
    assert part(changed, "收入线") == "收入线 4000 元"
    line = county_line(ok(zoufang_process(folder, "county", "list")).stdout)
    assert part(line, "收入线") == "收入线 4000 元"
    assert part(line, "监测线") == "监测线 5000 元（默认）"
    assert query(
        folder / "z.db", "SELECT income_line, monitoring_line FROM counties WHERE name = ?", COUNTY
    ) == [(4000, None)]


def test_set_monitoring_line_and_count_guaranteed(folder: Path) -> None:
    result = ok(zoufang(folder, "county", "set", COUNTY, "--monitoring-line", "5200.5", "--count-guaranteed"))
    line = county_line(result.stdout)
    assert part(line, "监测线") == "监测线 5200.50 元"
    assert part(line, "保底收益") == "保底收益计入收入 是"
    assert query(folder / "z.db", "SELECT monitoring_line, count_guaranteed FROM counties") == [(5200.5, 1)]


def test_default_sets_the_value_back_to_null(folder: Path) -> None:
    ok(zoufang(folder, "county", "set", COUNTY, "--income-line", "4000", "--no-count-guaranteed"))
    result = ok(
        zoufang(folder, "county", "set", COUNTY, "--default", "income-line", "--default", "count-guaranteed")
    )
    line = county_line(result.stdout)
    assert part(line, "收入线") == "收入线 3600 元（默认）"
    assert part(line, "保底收益") == "保底收益计入收入 否（默认）"
    assert query(folder / "z.db", "SELECT income_line, count_guaranteed FROM counties") == [(None, None)]
    # the default follows the setting in force
    env_line = county_line(
        ok(
            zoufang(
                folder,
                "county",
                "list",
                env=clean_env(folder, ZOUFANG_INCOME_LINE="3800"),
            )
        ).stdout
    )
    assert part(env_line, "收入线") == "收入线 3800 元（默认）"


def test_the_lines_are_english_with_zoufang_locale_en(folder: Path) -> None:
    en = clean_env(folder, ZOUFANG_LOCALE="en")
    changed = county_line(
        ok(zoufang(folder, "county", "set", COUNTY, "--income-line", "4000", env=en)).stdout
    )
    assert changed == (
        f"{COUNTY}: income line 4000 yuan, monitoring line 5000 yuan (default), "
        "guaranteed returns (保底收益) count as income: no (default)"
    )
    line = one_line_failure(zoufang(folder, "county", "set", "某县", "--income-line", "1", env=en))
    assert line == f"zoufang: no county named 某县; the counties: {COUNTY}"
    line = one_line_failure(zoufang(folder, "county", "set", COUNTY, "--income-line", "abc", env=en))
    assert line == "zoufang: --income-line 'abc': give an amount in yuan, 0 or more, e.g. 4000"


def test_unknown_county_names_the_known_ones(folder: Path) -> None:
    line = one_line_failure(zoufang(folder, "county", "set", "某县", "--income-line", "4000"))
    assert "某县" in line and COUNTY in line
    assert query(folder / "z.db", "SELECT income_line FROM counties") == [(None,)]


@pytest.mark.parametrize("amount", ["-5", "abc", "NaN"])
def test_a_negative_or_non_numeric_amount_is_refused(folder: Path, amount: str) -> None:
    line = one_line_failure(zoufang(folder, "county", "set", COUNTY, "--income-line", amount))
    assert "--income-line" in line
    assert query(folder / "z.db", "SELECT income_line FROM counties") == [(None,)]


def test_set_without_an_option_is_refused(folder: Path) -> None:
    line = one_line_failure(zoufang(folder, "county", "set", COUNTY))
    assert "--income-line" in line


def test_set_and_default_of_the_same_value_is_refused(folder: Path) -> None:
    one_line_failure(
        zoufang(folder, "county", "set", COUNTY, "--income-line", "4000", "--default", "income-line")
    )
    one_line_failure(zoufang(folder, "county", "set", COUNTY, "--default", "meeting-day"))
    assert query(folder / "z.db", "SELECT income_line FROM counties") == [(None,)]


# --- the county's line decides the visit's group ------------------------------------------------------------

# FULL with no 低保, a safe house, safe water and no problems: only the income line can make it 重点帮扶.
# Per-capita net stays (12000 + 5000 + 1000 − 500) / 3 = 5833.33.
NOTHING_UNMET = [*FULL[:3], "无", *FULL[4:28], "是", "是", *FULL[32:35], "否", "提交"]


async def submit_visit(folder: Path, n: int) -> Visit:
    db = Database(sqlite_url(folder / "z.db"))
    try:
        async with db.session() as s:
            cadre = await cadre_by_code(s, "GB001")
            assert cadre is not None
            household = (await households_in_scope(s, cadre, "villages"))[n]
        flow = VisitFlow(db, SCRIPT, Settings())
        outcome = await flow.start(cadre, household, channel="console")
        outcome = await walk(flow, outcome.visit_id, NOTHING_UNMET)
        assert outcome.finished and outcome.text.startswith("走访已提交")
        async with db.session() as s:
            visit = await s.get(Visit, outcome.visit_id)
            assert visit is not None
            return visit
    finally:
        await db.close()


async def test_a_visit_after_county_set_uses_the_countys_income_line(folder: Path) -> None:
    before = await submit_visit(folder, 0)
    assert float(before.per_capita_net) == pytest.approx(5833.33)
    assert before.household_group != "key_support"  # above the default 3600

    ok(zoufang(folder, "county", "set", COUNTY, "--income-line", "9000"))
    after = await submit_visit(folder, 1)
    assert float(after.per_capita_net) == pytest.approx(5833.33)
    assert after.household_group == "key_support"  # 重点帮扶: below the county's 9000
