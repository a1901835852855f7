"""`zoufang worklog` and `zoufang worklog sample` through the real command, and the pure parts underneath.

The county is the demo roster imported through the CLI. GB001's March and April 2026 come from real visits walked
through the visit flow at 23:30 on 31 March and 00:30 on 1 April (local); the other entries are inserted as rows.
2025 holds a larger made-up set of logs for the spot check.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import random
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from bot.demo import write_roster
from bot.flows.visit import VisitFlow
from bot.settings import Settings
from storage.db import Database, sqlite_url
from storage.models import Cadre, WorkLogEntry
from storage.visits import cadre_by_code, households_in_scope
from storage.worklog import year_logs_query
from survey.sampling import SamplingError, draw, parse_rate, parse_seed, sample_size
from survey.worklog import signer_for
from tests.cli_support import clean_env, ok, query, zoufang, zoufang_process
from tests.test_visit_flow import FULL, SCRIPT, walk

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COUNTY = "示范县"
TZ = ZoneInfo("Asia/Shanghai")
HEADERS = ["干部编号", "姓名", "角色", "乡镇", "月份", "条目数"]

# (cadre, local day, text) inserted as rows; GB001's walked visits come on top (see `populate`)
ROWS = [
    ("GB001", date(2026, 2, 28), "二月最后一天的记录"),
    ("GB001", date(2026, 3, 1), "三月第一天的记录"),
    ("GB011", date(2026, 3, 10), "东风镇工作队的记录"),
    ("GB024", date(2026, 3, 12), "福顺乡工作队的记录"),
    ("GB027", date(2026, 3, 15), "市级包保领导的记录"),
    ("GB010", date(2026, 3, 20), "乡镇包保干部的记录"),
    ("GB002", date(2024, 12, 31), "2024 年最后一天"),
    ("GB002", date(2026, 1, 1), "2026 年第一天"),
]


def spot_check_2025() -> dict[tuple[str, str], int]:
    """The 2025 logs: (cadre, month) -> entries, for about a third of the 28 cadres' months."""
    logs = {}
    for i in range(1, 29):
        for month in range(1, 13):
            if (i * 7 + month) % 3 == 0:
                logs[(f"GB{i:03d}", f"2025-{month:02d}")] = (i + month) % 4 + 1
    return logs


LOGS_2025 = spot_check_2025()


async def populate(path: Path) -> dict[str, str]:
    """Walk GB001's two visits, insert the rows; return the household codes of the March and April visits."""
    db = Database(sqlite_url(path))
    moments = iter(
        [
            datetime(2026, 3, 31, 15, 30, tzinfo=UTC),  # 23:30 on 31 March in Beijing
            datetime(2026, 3, 31, 16, 30, tzinfo=UTC),  # 00:30 on 1 April in Beijing
        ]
    )
    clock_now = {"now": datetime(2026, 3, 31, 15, 0, tzinfo=UTC)}
    codes = {}
    try:
        async with db.session() as s:
            cadre = await cadre_by_code(s, "GB001")
            assert cadre is not None
            households = (await households_in_scope(s, cadre, "villages"))[:2]
        flow = VisitFlow(db, SCRIPT, Settings(), clock=lambda: clock_now["now"])
        for label, household in zip(("march", "april"), households, strict=True):
            clock_now["now"] = next(moments)
            outcome = await flow.start(cadre, household, channel="console")
            outcome = await walk(flow, outcome.visit_id, FULL)
            assert outcome.finished
            codes[label] = household.code
        async with db.session() as s:
            ids = dict((await s.execute(select(Cadre.code, Cadre.id))).tuples().all())
            for code, day, text in ROWS:
                at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ)
                s.add(WorkLogEntry(cadre_id=ids[code], day=day, kind="visit", text=text, created_at=at))
            for (code, month), entries in LOGS_2025.items():
                year, number = map(int, month.split("-"))
                for n in range(entries):
                    day = date(year, number, 1 + n * 9)
                    at = datetime(year, number, day.day, 10, 0, tzinfo=TZ)
                    s.add(
                        WorkLogEntry(
                            cadre_id=ids[code], day=day, kind="visit", text=f"{code} {day}", created_at=at
                        )
                    )
    finally:
        await db.close()
    return codes


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("worklog")
    write_roster(folder, random.Random(1))
    ok(zoufang(folder, "init"))
    ok(zoufang(folder, "import", "cadres", "cadres.csv", "--county", COUNTY))
    ok(zoufang(folder, "import", "households", "households.csv"))
    codes = asyncio.run(populate(folder / "z.db"))
    return folder, codes


@pytest.fixture
def folder(county: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    for name in ("z.db", "z.db-wal", "z.db-shm"):
        if (county[0] / name).exists():
            shutil.copy(county[0] / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def codes(county: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return county[1]


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def worklog(folder: Path, *args: str, process: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    """`zoufang worklog ARGS` in this process, or with `process` in a real one."""
    return (zoufang_process if process else zoufang)(folder, "worklog", *args, env=clean_env(folder, **env))


def name_of(folder: Path, code: str) -> str:
    return query(folder / "z.db", "SELECT name FROM cadres WHERE code = ?", code)[0][0]


def sign_off(markdown: str) -> str:
    """The part after the rule: the sign-off line and any note."""
    return markdown.split("\n---\n", 1)[1].strip()


# --- help and missing input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("words", [["worklog"], ["worklog", "sample"]])
def test_worklog_commands_answer_help(tmp_path: Path, words: list[str]) -> None:
    result = ok(zoufang(tmp_path, *words, "--help"))
    assert result.stdout.startswith("用法:")
    assert not (tmp_path / "z.db").exists()


def test_help_states_the_population_of_the_spot_check(tmp_path: Path) -> None:
    text = "".join(ok(zoufang(tmp_path, "worklog", "sample", "--help")).stdout.split())
    assert "总体是该年每个至少有一条记录的（干部，月份）日志" in text
    en = clean_env(tmp_path, ZOUFANG_LOCALE="en")
    text = " ".join(ok(zoufang(tmp_path, "worklog", "sample", "--help", env=en)).stdout.split())
    assert "every (cadre, month) log of the year with at least one entry" in text


def test_worklog_without_options_is_a_one_line_error(folder: Path) -> None:
    line = one_line_failure(worklog(folder))
    assert "--cadre" in line and "--month" in line and "YYYY-MM" in line


def test_a_missing_month_or_cadre_is_named(folder: Path) -> None:
    assert "--month" in one_line_failure(worklog(folder, "--cadre", "GB001"))
    assert "--cadre" in one_line_failure(worklog(folder, "--month", "2026-03"))


def test_month_options_with_sample_are_refused(folder: Path) -> None:
    line = one_line_failure(worklog(folder, "--cadre", "GB001", "sample", "--year", "2025", "--seed", "1"))
    assert "--cadre" in line and "sample" in line


# --- the month's log ----------------------------------------------------------------------------------------


def test_the_month_lists_its_entries_by_day_with_the_counts(folder: Path, codes: dict[str, str]) -> None:
    """`zoufang worklog` in a real process (its end-to-end test)."""
    text = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-03", process=True)).stdout
    assert text.startswith("# 扶贫日志 · 2026年3月")
    for field in ("姓名：" + name_of(folder, "GB001"), "干部编号：GB001", "角色：第一书记", "乡镇：东风镇"):
        assert field in text
    assert "负责村：新华村" in text
    assert "月份：2026-03" in text
    assert "本月：走访 2 次 / 化解问题 1 个" in text
    # the first and the last day of the month are in; the day before and the day after are not
    assert "三月第一天的记录" in text
    assert codes["march"] in text
    assert "二月最后一天的记录" not in text
    assert codes["april"] not in text
    # by day, in order, with the local time of writing
    first, last = text.index("### 2026-03-01"), text.index("### 2026-03-31")
    assert first < last
    march_31 = text[last:].split("\n---\n")[0]
    assert "23:30 〔走访〕" in march_31 and "23:30 〔化解问题〕" in march_31
    assert "屋顶漏雨" in march_31
    assert march_31.index("〔走访〕") < march_31.index("〔化解问题〕")


def test_the_next_month_starts_with_the_visit_after_midnight(folder: Path, codes: dict[str, str]) -> None:
    text = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-04")).stdout
    assert "### 2026-04-01" in text and "00:30 〔走访〕" in text
    assert codes["april"] in text and codes["march"] not in text
    assert "本月：走访 1 次 / 化解问题 1 个" in text


def test_first_secretary_is_signed_by_the_township_leaders(folder: Path) -> None:
    text = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-03")).stdout
    assert sign_off(text).startswith("审核签字：乡镇主要领导（东风镇）")
    assert "注：" not in sign_off(text)


def test_work_team_is_signed_by_the_townships_city_leader_by_name(folder: Path) -> None:
    leader = name_of(folder, "GB027")
    assert query(folder / "z.db", "SELECT role FROM cadres WHERE code = 'GB027'") == [("市级包保领导",)]
    text = ok(worklog(folder, "--cadre", "GB011", "--month", "2026-03")).stdout
    assert "角色：驻村工作队" in text and "东风镇工作队的记录" in text
    assert sign_off(text).startswith(f"审核签字：市级包保领导 {leader} ")
    assert "注：" not in sign_off(text)


def test_work_team_without_a_city_leader_in_the_township_gets_the_title(folder: Path) -> None:
    text = ok(worklog(folder, "--cadre", "GB024", "--month", "2026-03")).stdout
    assert "乡镇：福顺乡" in text
    signed = sign_off(text)
    assert signed.startswith("审核签字：市级包保领导（福顺乡）")
    assert name_of(folder, "GB027") not in signed
    assert "没有角色为“市级包保领导”的干部" in signed


def test_city_leader_is_signed_by_the_four_bodies_principal_leaders(folder: Path) -> None:
    text = ok(worklog(folder, "--cadre", "GB027", "--month", "2026-03")).stdout
    assert sign_off(text).startswith("审核签字：市级四个班子主要领导")


def test_other_roles_get_a_generic_reviewer_line_and_a_note(folder: Path) -> None:
    text = ok(worklog(folder, "--cadre", "GB010", "--month", "2026-03")).stdout
    signed = sign_off(text)
    assert signed.startswith("审核人：")
    assert "乡镇包保干部的日志由县里指定的审核人签字" in signed
    assert "本日志列出本人本月在走访系统中登记的走访" in signed


def test_worklog_note_does_not_quote_the_internal_seed_file(folder: Path) -> None:
    """The note a cadre signs said "种子文件未规定…" — words from the project's brief, not a county's."""
    text = ok(worklog(folder, "--cadre", "GB010", "--month", "2026-03")).stdout
    assert "种子文件" not in text and "seed" not in text.lower()


def test_an_empty_month_says_so_and_still_has_the_sign_off(folder: Path) -> None:
    result = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-06"))
    assert "本月无记录" in result.stdout
    assert "本月：走访 0 次 / 化解问题 0 个" in result.stdout
    assert sign_off(result.stdout).startswith("审核签字：乡镇主要领导")
    assert result.stderr == ""


def test_english(folder: Path) -> None:
    text = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-03", ZOUFANG_LOCALE="en")).stdout
    assert text.startswith("# Work log (扶贫日志) · March 2026")
    assert "Role: first secretary (第一书记)" in text
    assert "This month: 2 visit(s) / 1 problem(s) resolved" in text
    assert "23:30 [problem resolved]" in text
    assert "Signed by the township's principal leaders (乡镇主要领导, 东风镇)" in sign_off(text)
    empty = ok(worklog(folder, "--cadre", "GB010", "--month", "2026-06", ZOUFANG_LOCALE="en")).stdout
    assert "No entries this month." in empty and "Reviewer (审核人)" in empty


def test_md_to_a_file(folder: Path) -> None:
    result = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-03", "--output", "log.md"))
    written = (folder / "log.md").read_text(encoding="utf-8")
    assert written.startswith("# 扶贫日志") and "三月第一天的记录" in written
    assert result.stdout.strip() == f"已写入 {(folder / 'log.md').resolve()}"


def test_xlsx_has_chinese_headers_a_frozen_row_the_entries_and_the_sign_off(folder: Path) -> None:
    result = ok(worklog(folder, "--cadre", "GB001", "--month", "2026-03", "--format", "xlsx"))
    path = folder / "worklog-GB001-2026-03.xlsx"
    assert result.stdout.strip() == f"已写入 {path.resolve()}"
    book = load_workbook(path)
    assert len(book.worksheets) == 1
    sheet = book.active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["日期", "时间", "类型", "内容"]
    assert sheet.freeze_panes == "A2"
    entries = rows[1:4]
    assert [(r[0].date(), r[1], r[2]) for r in entries] == [
        (date(2026, 3, 1), "09:00", "走访"),
        (date(2026, 3, 31), "23:30", "走访"),
        (date(2026, 3, 31), "23:30", "化解问题"),
    ]
    assert entries[0][3] == "三月第一天的记录"
    assert rows[4] == [None, None, None, None]  # a blank row between the table and the lines under it
    below = [r[0] for r in rows[5:]]
    assert "本月：走访 2 次 / 化解问题 1 个" in below
    assert any(line.startswith("审核签字：乡镇主要领导（东风镇）") for line in below)
    assert sheet.column_dimensions["D"].width > sheet.column_dimensions["B"].width


def test_xlsx_of_an_empty_month_and_an_other_role(folder: Path) -> None:
    ok(worklog(folder, "--cadre", "GB010", "--month", "2026-06", "--format", "xlsx", "--output", "e.xlsx"))
    sheet = load_workbook(folder / "e.xlsx").active
    rows = [r[0] for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == "日期" and sheet.freeze_panes == "A2"
    assert "本月无记录。" in rows
    assert any(str(line).startswith("审核人：") for line in rows)
    assert any("县里指定的审核人签字" in str(line) for line in rows)
    assert not any("种子文件" in str(line) for line in rows)


def test_unknown_cadre_names_near_codes_and_the_roster_size(folder: Path) -> None:
    line = one_line_failure(worklog(folder, "--cadre", "GB0001", "--month", "2026-03"))
    assert "GB0001" in line and "GB001" in line and "28" in line
    assert len(re.findall(r"GB\d{3}\b", line)) <= 10
    far = one_line_failure(worklog(folder, "--cadre", "ZZ", "--month", "2026-03"))
    assert "ZZ" in far and "28" in far
    by_name = one_line_failure(worklog(folder, "--cadre", name_of(folder, "GB011"), "--month", "2026-03"))
    assert "GB011" in by_name


def test_unknown_cadre_on_an_empty_roster_says_to_import(tmp_path: Path) -> None:
    ok(zoufang(tmp_path, "init"))
    line = one_line_failure(zoufang(tmp_path, "worklog", "--cadre", "GB001", "--month", "2026-03"))
    assert "zoufang import cadres" in line


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "nov", "2026", "2026Q1", "2026-00"])
def test_a_bad_month_shows_the_accepted_form(folder: Path, month: str) -> None:
    line = one_line_failure(worklog(folder, "--cadre", "GB001", "--month", month))
    assert month in line and "YYYY-MM" in line


def test_a_bad_month_in_english(folder: Path) -> None:
    line = one_line_failure(worklog(folder, "--cadre", "GB001", "--month", "nov", ZOUFANG_LOCALE="en"))
    assert line == 'zoufang: month "nov" is not valid: use YYYY-MM, e.g. 2026-03'


# --- the spot check ------------------------------------------------------------------------------------------


def sample_rows(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The CSV's table: its rows up to the empty row the notes (the summary with the seed) follow."""
    assert result.stdout.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(result.stdout.removeprefix("\ufeff"))))
    assert rows[0] == HEADERS
    return rows[1 : rows.index([])]


def sample_notes(result: subprocess.CompletedProcess[str]) -> str:
    rows = list(csv.reader(io.StringIO(result.stdout.removeprefix("\ufeff"))))
    return "\n".join(row[0] for row in rows[rows.index([]) + 1 :])


def sample(folder: Path, *args: str, process: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    return worklog(folder, "sample", *args, process=process, **env)


def test_the_population_is_the_cadre_months_with_entries(folder: Path) -> None:
    """`zoufang worklog sample` in real processes (its end-to-end test)."""
    rows = sample_rows(
        ok(sample(folder, "--year", "2026", "--rate", "1", "--seed", "1", "--format", "csv", process=True))
    )
    assert [(r[0], r[4], int(r[5])) for r in rows] == [
        ("GB001", "2026-02", 1),
        ("GB001", "2026-03", 3),
        ("GB001", "2026-04", 2),
        ("GB002", "2026-01", 1),
        ("GB010", "2026-03", 1),
        ("GB011", "2026-03", 1),
        ("GB024", "2026-03", 1),
        ("GB027", "2026-03", 1),
    ]
    assert rows[0][1:4] == [name_of(folder, "GB001"), "第一书记", "东风镇"]
    every = sample_rows(
        ok(sample(folder, "--year", "2025", "--rate", "1", "--seed", "1", "--format", "csv", process=True))
    )
    assert {(r[0], r[4]): int(r[5]) for r in every} == LOGS_2025


def test_the_same_seed_gives_the_same_sample_and_another_seed_another(folder: Path) -> None:
    first = ok(sample(folder, "--year", "2025", "--rate", "0.3", "--seed", "7", "--format", "csv"))
    again = ok(sample(folder, "--year", "2025", "--rate", "0.3", "--seed", "7", "--format", "csv"))
    other = ok(sample(folder, "--year", "2025", "--rate", "0.3", "--seed", "8", "--format", "csv"))
    assert first.stdout == again.stdout
    assert sample_rows(first) != sample_rows(other)
    rows = sample_rows(first)
    assert len(rows) == math.ceil(Fraction(3, 10) * len(LOGS_2025)) == len(sample_rows(other))
    assert {(r[0], r[4]) for r in rows} <= set(LOGS_2025)
    assert rows == sorted(rows, key=lambda r: (r[0], r[4]))
    # CSV on standard output: the summary goes to standard error
    assert f"总体 {len(LOGS_2025)} 份" in sample_notes(first) and "随机种子 7" in sample_notes(first)


def test_the_table_carries_the_summary_line(folder: Path) -> None:
    n = len(LOGS_2025)
    k = math.ceil(Fraction(3, 10) * n)
    result = ok(sample(folder, "--year", "2025", "--rate", "30%", "--seed", "7", "--wide"))
    assert (
        result.stdout == ok(sample(folder, "--year", "2025", "--seed", "7", "--wide")).stdout
    )  # 0.3 is the default
    summary = result.stdout.strip().splitlines()[-1]
    assert f"总体 {n} 份" in summary and f"抽取 {k} 份" in summary
    assert "比例 30%" in summary and "随机种子 7" in summary
    assert "干部编号" in result.stdout


def test_without_a_seed_one_is_taken_from_the_clock_and_printed(folder: Path) -> None:
    result = ok(sample(folder, "--year", "2025", "--format", "csv"))
    match = re.search(r"随机种子 (\d+)（未给 --seed，取自时钟", sample_notes(result))
    assert match, result.stdout
    again = ok(sample(folder, "--year", "2025", "--seed", match.group(1), "--format", "csv"))
    assert sample_rows(again) == sample_rows(result)


@pytest.mark.parametrize("rate", ["0", "1.5", "-0.3", "abc", "0%"])
def test_a_rate_outside_zero_to_one_is_refused(folder: Path, rate: str) -> None:
    line = one_line_failure(sample(folder, "--year", "2025", "--rate", rate, "--seed", "1"))
    assert "--rate" in line and rate in line and "(0, 1]" in line


def test_a_rate_below_the_seeds_minimum_is_drawn_with_a_warning(folder: Path) -> None:
    result = ok(sample(folder, "--year", "2025", "--rate", "0.1", "--seed", "1"))
    assert "低于种子文件要求的每年至少 30%" in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rate", "0.3"], "--year"),
        (["--year", "26"], "26"),
        (["--year", "2026-03"], "2026-03"),
        (["--year", "2025", "--seed", "x1"], "--seed"),
        (["--year", "2025", "--seed", "-4"], "--seed"),
    ],
)
def test_bad_year_or_seed_is_a_one_line_error(folder: Path, args: list[str], option: str) -> None:
    assert option in one_line_failure(sample(folder, *args))


def test_a_year_without_logs_samples_nothing(folder: Path) -> None:
    result = ok(sample(folder, "--year", "2030", "--seed", "3"))
    assert "2030 年没有任何扶贫日志记录" in result.stdout
    assert "总体 0 份" in result.stdout and "抽取 0 份" in result.stdout


def test_sample_xlsx_keeps_the_summary_under_the_table(folder: Path) -> None:
    result = ok(sample(folder, "--year", "2025", "--seed", "7", "--format", "xlsx"))
    path = folder / "worklog-sample-2025.xlsx"
    assert f"已写入 {path.resolve()}" in result.stdout and "随机种子 7" in result.stdout
    sheet = load_workbook(path).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADERS and sheet.freeze_panes == "A2"
    k = math.ceil(Fraction(3, 10) * len(LOGS_2025))
    assert all(isinstance(r[5], int) for r in rows[1 : k + 1])
    assert rows[k + 1] == [None] * 6
    assert "随机种子 7" in rows[k + 2][0]
    csv_rows = sample_rows(ok(sample(folder, "--year", "2025", "--seed", "7", "--format", "csv")))
    assert [[str(v) for v in r] for r in rows[1 : k + 1]] == csv_rows


def test_sample_in_english(folder: Path) -> None:
    result = ok(sample(folder, "--year", "2025", "--seed", "7", ZOUFANG_LOCALE="en"))
    assert "Cadre ID" in result.stdout and f"population {len(LOGS_2025)} log(s)" in result.stdout


# --- pure parts ----------------------------------------------------------------------------------------------


def test_sample_size_is_the_exact_ceiling() -> None:
    assert sample_size(Fraction(3, 10), 10) == 3  # 0.3 × 10 in floats is 3.0000000000000004
    assert sample_size(0.3, 10) == 3
    assert sample_size(Fraction(3, 10), 7) == 3
    assert sample_size(1, 7) == 7
    assert sample_size(Fraction(1, 100), 1) == 1
    assert sample_size(Fraction(3, 10), 0) == 0


@pytest.mark.parametrize(
    ("text", "rate"),
    [("0.3", Fraction(3, 10)), (".3", Fraction(3, 10)), ("30%", Fraction(3, 10)), ("1", Fraction(1))],
)
def test_parse_rate(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "1.5", "-0.1", "abc", "nan", "inf", "", "101%"])
def test_parse_rate_refuses_rates_outside_zero_to_one(text: str) -> None:
    with pytest.raises(SamplingError):
        parse_rate(text)


def test_parse_seed() -> None:
    assert parse_seed(" 2026 ") == 2026
    for bad in ("-1", "1.5", "seed", ""):
        with pytest.raises(SamplingError):
            parse_seed(bad)


POPULATION = [(f"GB{i:03d}", f"2025-{m:02d}") for i in range(1, 11) for m in (1, 5, 9)]


def test_draw_is_reproducible_and_independent_of_the_input_order() -> None:
    chosen = draw(POPULATION, Fraction(3, 10), 11, key=lambda log: log)
    assert len(chosen) == 9 and set(chosen) <= set(POPULATION)
    assert chosen == sorted(chosen)
    for shuffle_seed in range(5):
        shuffled = POPULATION[:]
        random.Random(shuffle_seed).shuffle(shuffled)
        assert draw(shuffled, Fraction(3, 10), 11, key=lambda log: log) == chosen
    assert draw(POPULATION, Fraction(3, 10), 12, key=lambda log: log) != chosen
    assert draw(POPULATION, 1, 11, key=lambda log: log) == sorted(POPULATION)
    assert draw([], Fraction(3, 10), 11, key=lambda log: log) == []


def test_draw_is_pinned() -> None:
    """The draw uses only Random(seed).random(), whose sequence Python keeps across versions: pin it."""
    chosen = draw([str(i) for i in range(20)], Fraction(3, 10), 2026, key=int)
    assert chosen == PINNED


PINNED = ["0", "4", "5", "14", "16", "18"]


def test_draw_refuses_items_it_cannot_tell_apart() -> None:
    with pytest.raises(SamplingError):
        draw([("GB001", "2025-01"), ("GB001", "2025-01")], 1, 1, key=lambda log: log)


def test_signer_for_each_role() -> None:
    assert signer_for("第一书记").kind == "township_leaders"
    assert signer_for("驻村工作队", ["王一", "王一", "李二"]).names == ("王一", "李二")
    assert signer_for("驻村工作队").unnamed_city_leader
    assert signer_for("市级包保领导").kind == "city_principals"
    other = signer_for("乡镇包保干部", ["王一"])
    assert not other.specified and other.names == ()


def test_the_population_query_groups_by_cadre_and_month_on_both_dialects() -> None:
    statement = year_logs_query(date(2025, 1, 1), date(2026, 1, 1))
    on_postgres = str(statement.compile(dialect=postgresql.dialect()))
    on_sqlite = str(statement.compile(dialect=sqlite.dialect()))
    assert "GROUP BY work_log_entries.cadre_id, EXTRACT(month FROM work_log_entries.day)" in on_postgres
    assert (
        "GROUP BY work_log_entries.cadre_id, CAST(STRFTIME('%m', work_log_entries.day) AS INTEGER)"
        in on_sqlite
    )
    assert "count(work_log_entries.id)" in on_postgres
