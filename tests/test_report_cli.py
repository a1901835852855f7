"""`zoufang report …`: formats, files read back, bad input, and what it imports.

In this process (tests.cli_support.zoufang); real processes where the process is the point (the bytes of its
standard output, its imports, its start-up time) and for one test of each report (`process=True`)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from storage.db import Database
from tests.cli_support import clean_env, ok, zoufang, zoufang_process
from tests.report_data import add_poll, add_visit, hh, local

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def county(roster: Database, db_path: Path) -> Path:
    """The demo roster with a quarter's worth of SMS answers and visits in 2026Q4."""
    for n in range(1, 12):
        await add_poll(roster, hh(n), local("2026-10-15 10:00"), "不满意" if n == 1 else "满意")
    for n in range(67, 70):
        await add_poll(roster, hh(n), local("2026-10-15 10:00"), None)
    for n in range(1, 6):
        await add_visit(roster, hh(n), "GB001", local("2026-10-10 09:00") + timedelta(hours=n))
    return db_path


def env_for(db_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}", **extra)


def run(db_path: Path, *args: str, process: bool = False, **extra: str) -> subprocess.CompletedProcess[str]:
    """`zoufang ARGS` in this process, or with `process` in a real one."""
    return (zoufang_process if process else zoufang)(db_path.parent, *args, env=env_for(db_path, **extra))


def test_table_on_screen_names_the_period_and_rates(county: Path):
    out = ok(run(county, "report", "satisfaction", "--period", "2026Q4")).stdout
    assert "群众满意度（2026Q4，按行政村）" in out
    assert "新华村" in out
    assert "11/11*" in out  # answered/sent, starred: a small sample
    assert "Wilson" in out


def test_csv_has_a_bom_and_exactly_one_header_row(county: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "report",
            "satisfaction",
            "--period",
            "2026Q4",
            "--by",
            "township",
            "--format",
            "csv",
        ],
        cwd=county.parent,
        env=env_for(county),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(result.stdout.decode("utf-8-sig"))))
    blank = rows.index([])  # the table, an empty row, then the notes the screen prints under it
    header, body, notes = rows[0], rows[1:blank], rows[blank + 1 :]
    assert header[:2] == ["乡镇", "短信发出"]
    assert notes and all(len(n) == 1 for n in notes) and any("Wilson" in n[0] for n in notes)
    assert all(row[0] != "乡镇" for row in body)
    by_town = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert by_town["东风镇"]["短信满意度"] == "90.9%"  # 10 of 11
    assert by_town["东风镇"]["短信小样本"] == "是"
    assert by_town["福顺乡"]["短信满意度"] == ""  # 3 sent, none answered: no rate, not 0%
    assert by_town["福顺乡"]["短信回复率"] == "0.0%"
    assert by_town["合计"]["走访n"] == "5"


def test_xlsx_read_back(county: Path, tmp_path: Path):
    target = tmp_path / "满意度.xlsx"
    result = ok(
        run(
            county,
            "report",
            "satisfaction",
            "--period",
            "2026Q4",
            "--format",
            "xlsx",
            "--output",
            str(target),
        )
    )
    assert str(target) in result.stdout
    book = load_workbook(target)
    assert len(book.sheetnames) == 1
    sheet = book.active
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["乡镇", "行政村", "短信发出"]
    rows = {r[1]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    xinhua = rows["新华村"]
    assert xinhua["短信满意度"] == pytest.approx(10 / 11)  # numbers stay numbers
    assert xinhua["短信n"] == 11
    assert sheet.cell(row=2, column=header.index("短信满意度") + 1).number_format == "0.0%"
    assert sheet.column_dimensions["A"].width >= 6


def test_png_is_drawn_with_a_cjk_font(county: Path, tmp_path: Path):
    target = tmp_path / "sat.png"
    result = ok(
        run(
            county, "report", "satisfaction", "--period", "2026Q4", "--format", "png", "--output", str(target)
        )
    )
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "missing" not in result.stderr  # matplotlib warns "Glyph … missing from font" for each empty box
    coverage = tmp_path / "cov.png"
    ok(run(county, "report", "coverage", "--format", "png", "--output", str(coverage)))
    assert coverage.stat().st_size > 5000


def test_every_report_answers_in_each_format(county: Path, tmp_path: Path):
    for name, formats in (
        ("satisfaction", ("table", "csv", "xlsx", "png")),
        ("coverage", ("table", "csv", "xlsx", "png")),
        ("households", ("table", "csv", "xlsx")),
        ("integrity", ("table", "csv", "xlsx")),
        ("problems", ("table", "csv", "xlsx", "png")),
    ):
        for fmt in formats:
            out = tmp_path / f"{name}.{fmt}"
            ok(run(county, "report", name, "--format", fmt, "--output", str(out)))
            assert out.stat().st_size > 0, (name, fmt)


def test_empty_period_says_so_and_exits_zero(county: Path, tmp_path: Path):
    """`report integrity` in a real process (its end-to-end test; satisfaction and households have the byte ones)."""
    result = ok(run(county, "report", "satisfaction", "--period", "2025-03"))
    assert "2025-03 没有短信回复，也没有走访记录" in result.stdout
    out = tmp_path / "empty.csv"
    result = ok(
        run(
            county,
            "report",
            "integrity",
            "--period",
            "2025",
            "--format",
            "csv",
            "--output",
            str(out),
            process=True,
        )
    )
    assert "没有需要核实的提示" in result.stdout
    assert out.read_text(encoding="utf-8-sig").splitlines() == ["提示,乡镇,行政村,干部,农户,时间,情况"]


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (("report", "satisfaction", "--period", "2026Q5"), "2026H2"),
        (("report", "satisfaction", "--township", "西山乡"), "东风镇、福顺乡"),
        (("report", "coverage", "--role", "村长"), "第一书记"),
        (("report", "households", "--group", "贫困户"), "政策兜底"),
    ],
)
def test_bad_input_is_one_line_listing_what_exists(county: Path, args: tuple[str, ...], listed: str):
    result = run(county, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and listed in lines[0], result.stderr


def test_english_headers_with_the_english_locale(county: Path):
    """`report coverage` in a real process (its end-to-end test)."""
    out = ok(run(county, "report", "coverage", "--format", "csv", process=True, ZOUFANG_LOCALE="en")).stdout
    assert out.lstrip("\ufeff").startswith("cadre id,name,role,township,period")


def test_help_is_quick_and_reports_load_no_bot_libraries(county: Path):
    started = time.perf_counter()
    ok(run(county, "report", "--help", process=True))  # a new process's start-up, imports included
    assert (
        time.perf_counter() - started < 5
    )  # generous for a loaded CI machine; benchmarks/reports.py measures it
    probe = (
        "import sys\n"
        "from bot.cli import main\n"
        "try:\n"
        "    main(['report', 'satisfaction', '--period', '2026Q4'], standalone_mode=False)\n"
        "finally:\n"
        "    print('LOADED', sorted(m for m in ('aiogram', 'twilio', 'aiohttp') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=county.parent,
        env=env_for(county),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout


def test_an_empty_report_still_draws_its_chart(county: Path, tmp_path: Path):
    """`report problems` in a real process (its end-to-end test), with the other charts: matplotlib and the
    CJK font found from a fresh start."""
    for name in ("satisfaction", "coverage", "problems"):
        target = tmp_path / f"{name}.png"
        result = ok(
            run(
                county,
                "report",
                name,
                "--period",
                "2020Q1",
                "--format",
                "png",
                "--output",
                str(target),
                process=True,
            )
        )
        assert target.read_bytes()[:4] == b"\x89PNG", name
        assert "已写入" in result.stdout


async def _problem_saying(roster: Database, text: str) -> None:
    from storage.models import Problem

    async with roster.session() as s:
        s.add(
            Problem(
                household_id=1,
                source="sms",
                category="其他",
                description=text,
                status="escalated",
                created_at=local("2026-11-02 10:00"),
                escalated_at=local("2026-11-02 10:00"),
            )
        )


async def test_text_from_villagers_is_never_a_formula_or_markup(
    county: Path, roster: Database, tmp_path: Path
):
    await _problem_saying(roster, '=HYPERLINK("http://evil.example","详情")')
    await _problem_saying(roster, "水管坏了 [/] 请尽快 [b]不[/b]满意")
    table = ok(run(county, "tally", "--township", "东风镇", "--month", "2026-11", "--wide")).stdout
    assert "[/]" in table and "[b]不[/b]满意" in table
    csv_out = ok(run(county, "tally", "--township", "东风镇", "--month", "2026-11", "--format", "csv")).stdout
    assert "'=HYPERLINK(" in csv_out
    target = tmp_path / "t.xlsx"
    ok(
        run(
            county,
            "tally",
            "--township",
            "东风镇",
            "--month",
            "2026-11",
            "--format",
            "xlsx",
            "--output",
            str(target),
        )
    )
    sheet = load_workbook(target).active
    cells = [
        c
        for row in sheet.iter_rows(min_row=2)
        for c in row
        if isinstance(c.value, str) and "HYPERLINK" in c.value
    ]
    assert len(cells) == 1 and cells[0].data_type == "s" and cells[0].value.startswith("=HYPERLINK")


def test_csv_on_a_gbk_console_is_still_utf8(county: Path):
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "report", "households", "--format", "csv"],
        cwd=county.parent,
        env={**env_for(county), "PYTHONIOENCODING": "gbk"},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert result.stdout.startswith(b"\xef\xbb\xbf") and "类别".encode() in result.stdout


def test_an_unwritable_output_is_one_line(county: Path):
    result = run(county, "report", "households", "--format", "csv", "--output", "/nonexistent/x.csv")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "/nonexistent/x.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_empty_group_says_so(county: Path):
    out = ok(run(county, "report", "households", "--group", "巩固提升")).stdout
    assert "没有“巩固提升”类农户" in out


async def test_tally_defines_its_resolution_rate(county: Path, roster: Database):
    """化解率 was printed with no definition, so 0 % of 3 read as "nothing solved" while most problems
    were solved on the spot: the note now says what is counted and that on-the-spot ones are not."""
    await _problem_saying(roster, "屋顶漏雨")
    table = ok(run(county, "tally", "--township", "东风镇", "--month", "2026-11")).stdout
    assert "化解率 = 本月销号的上报问题" in table
    assert "当场化解、未上报的问题不计入" in table


# --- issue 16: screen tables were 137–150 columns wide -----------------------------------------------------

SCREEN_REPORTS = [
    "report satisfaction --period 2026Q4",
    "report satisfaction --period 2026Q4 --by township",
    "report satisfaction --period 2026Q4 --by cadre",
    "report awareness --period 2026Q4",
    "report handbook --period 2026Q4",
    "report talks --period 2026Q4",
    "report changes --month 2026-11 --list",
    "report coverage --period 2026Q4",
    "report households",
    "report households --warning",
    "report integrity --period 2026Q4",
    "report problems --period 2026",
    "report problems --period 2026 --by township",
    "report overdue",
    "audit --since 2026-01-01",
    "worklog sample --year 2026 --seed 7",
]


@pytest.mark.parametrize("command", SCREEN_REPORTS)
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_report_tables_fit_100_columns_and_wide_prints_them_unwrapped(
    county: Path, command: str, locale: str
):
    from bot.cli.help import width

    narrow = ok(run(county, *command.split(), ZOUFANG_LOCALE=locale)).stdout
    assert max(width(line) for line in narrow.splitlines()) <= 100, narrow
    wide = ok(run(county, *command.split(), "--wide", ZOUFANG_LOCALE=locale)).stdout
    assert len(wide.splitlines()) <= len(narrow.splitlines())  # nothing wrapped: no more lines than wrapped


async def _solved_on_the_spot(roster: Database, at: str) -> None:
    from storage.models import Problem

    async with roster.session() as s:
        s.add(
            Problem(
                household_id=1,
                source="visit",
                category="住房",
                description="屋顶漏雨",
                resolved_on_site=True,
                resolution="当场修好",
                status="closed",
                created_at=local(at),
                closed_at=local(at),
            )
        )


async def test_tally_counts_the_problems_solved_on_the_spot_beside_the_rate(county: Path, roster: Database):
    """化解率 counts escalated problems only, and nothing said how many were solved on the spot, so a township
    that solved most problems during visits read as solving none: the count stands beside the rate."""
    await _problem_saying(roster, "水管坏了")
    await _solved_on_the_spot(roster, "2026-11-05 10:00")
    await _solved_on_the_spot(roster, "2026-11-20 16:00")
    await _solved_on_the_spot(roster, "2026-10-31 16:00")  # another month
    table = ok(run(county, "tally", "--township", "东风镇", "--month", "2026-11")).stdout
    assert "化解率 0.0%" in table and "本月走访时当场化解 2 个（不计入化解率）" in table
    english = ok(run(county, "tally", "--township", "东风镇", "--month", "2026-11", ZOUFANG_LOCALE="en"))
    assert "Solved on the spot during visits this month: 2 (not in the rate)" in english.stdout
