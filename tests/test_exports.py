"""`zoufang export visits|polls|problems`: what lands in which row and column, CSV against XLSX, periods,
townships and bad input. On the demo county (SQLite) and on the demo roster with visits placed by hand (SQLite
and PostgreSQL). In this process (tests.cli_support), but for one test of each export, in a real process
(`process=True`: the bytes the console script writes to a pipe), and the test of what an export imports."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select

from storage.db import Database
from storage.models import Answer, Household, Township, Village
from storage.visits import answer_rows
from survey.script import load_script
from tests.cli_support import clean_env, ok, zoufang, zoufang_bytes, zoufang_process
from tests.report_data import add_visit, hh, local

TZ = ZoneInfo("Asia/Shanghai")
SUPPORT = "support 享受的兜底保障（可多选）"
FOOD = "food_secure 不愁吃？"
CAUSE = "main_cause 主要致贫原因"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def xlsx_rows(path: Path, sheet: int = 0) -> list[list[object]]:
    book = load_workbook(path, read_only=True)
    return [list(row) for row in book.worksheets[sheet].iter_rows(values_only=True)]


def as_csv_text(value: object) -> str:
    """A spreadsheet cell as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def csv_of(result: subprocess.CompletedProcess[bytes]) -> list[list[str]]:
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark
    return list(csv.reader(io.StringIO(result.stdout.decode("utf-8-sig"))))


# --- the demo county (zoufang demo: 36 visits walked through the engine, a poll round, problems) -----------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export-demo")
    ok(zoufang(folder, "demo", "--db", str(folder / "demo.db"), timeout=180))
    return folder / "demo.db"


def run_demo(db: Path, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    env = clean_env(db.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db}")
    return (zoufang_process if process else zoufang)(db.parent, *args, env=env)


def run_bytes(
    db_url: str, folder: Path, *args: str, process: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """`zoufang ARGS`, its output as bytes: in this process, or with `process` in a real one (a pipe)."""
    env = clean_env(folder, ZOUFANG_DB_URL=db_url)
    if not process:
        return zoufang_bytes(folder, *args, env=env)
    from tests.cli_support import COMMAND

    return subprocess.run([*COMMAND, *args], cwd=folder, env=env, capture_output=True, timeout=120)


def sql(db: Path, query: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def test_demo_wide_csv_holds_each_visit_with_its_answers_in_script_order(demo: Path) -> None:
    """`zoufang export visits` in a real process (its end-to-end test)."""
    table = csv_of(run_bytes(f"sqlite+aiosqlite:///{demo}", demo.parent, "export", "visits", process=True))
    header, body = table[0], table[1:]
    assert header[:3] == ["户编号", "县", "乡镇"] and header[-1].startswith("其他答案")
    assert len(body) == sql(demo, "SELECT count(*) FROM visits WHERE status = 'submitted'")[0][0] == 36
    names = [h.split(" ")[0] for h in header if " " in h]
    script = [q.name for q in load_script().questions() if q.type != "repeat"]
    assert [n for n in names if n in script] == script  # one column per question, in script order
    # a visit with a several-of answer of two options, checked against the answers table
    visit_id, code, submitted = sql(
        demo,
        "SELECT v.id, h.code, v.submitted_at FROM visits v JOIN households h ON h.id = v.household_id "
        "WHERE v.id IN (SELECT visit_id FROM answers WHERE field = 'support' AND seq = 1) ORDER BY v.id LIMIT 1",
    )[0]
    row = dict(
        zip(header, next(r for r in body if r[header.index("走访编号")] == str(visit_id)), strict=True)
    )
    assert row["户编号"] == code
    options = [
        v
        for (v,) in sql(
            demo,
            "SELECT value_text FROM answers WHERE visit_id = ? AND field = 'support' ORDER BY seq",
            visit_id,
        )
    ]
    assert row[SUPPORT] == "、".join(options) and len(options) == 2
    members = sql(demo, "SELECT value_int FROM answers WHERE visit_id = ? AND field = 'members'", visit_id)[
        0
    ][0]
    assert row["members 家庭共同生活人口数（人）"] == str(members)
    food = sql(demo, "SELECT value_bool FROM answers WHERE visit_id = ? AND field = 'food_secure'", visit_id)[
        0
    ][0]
    assert row[FOOD] == ("是" if food else "否")
    utc = datetime.fromisoformat(submitted).replace(tzinfo=UTC)
    assert row["提交时间"] == utc.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S")  # local time, not UTC
    # the repeat group: numbered columns, as many items as the longest answer
    most = sql(demo, "SELECT max(item) FROM answers WHERE field = 'category'")[0][0] + 1
    assert f"problems_{most}_category 问题类别（第{most}项）" in header
    assert f"problems_{most + 1}_category 问题类别（第{most + 1}项）" not in header
    with_problem, category = sql(
        demo, "SELECT visit_id, value_text FROM answers WHERE field = 'category' AND item = 0 LIMIT 1"
    )[0]
    line = dict(
        zip(header, next(r for r in body if r[header.index("走访编号")] == str(with_problem)), strict=True)
    )
    assert line["problems_1_category 问题类别（第1项）"] == category


def test_demo_xlsx_has_the_same_rows_as_the_csv(demo: Path) -> None:
    table = csv_of(run_bytes(f"sqlite+aiosqlite:///{demo}", demo.parent, "export", "visits"))
    out = ok(run_demo(demo, "export", "visits", "--format", "xlsx", "--output", "v.xlsx")).stdout
    assert "已写入" in out and "（36 行）" in out
    env = clean_env(demo.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{demo}", ZOUFANG_LOCALE="en")
    out = ok(
        zoufang(demo.parent, "export", "visits", "--format", "xlsx", "--output", "en.xlsx", env=env)
    ).stdout
    assert out.strip() == f"wrote {(demo.parent / 'en.xlsx').resolve()} (36 rows)"
    sheet = xlsx_rows(demo.parent / "v.xlsx")
    assert [[as_csv_text(v) for v in row] for row in sheet] == table
    book = load_workbook(demo.parent / "v.xlsx")
    assert book.active.freeze_panes == "A2" and book.active["A1"].font.b
    assert isinstance(book.active["N2"].value, datetime)  # 提交时间 is a spreadsheet time, not text


def test_demo_long_layout_is_one_row_per_answer_value(demo: Path) -> None:
    table = csv_of(
        run_bytes(f"sqlite+aiosqlite:///{demo}", demo.parent, "export", "visits", "--layout", "long")
    )
    header, body = table[0], table[1:]
    assert header == ["户编号", "走访编号", "题号", "题目", "第几项", "代码", "值"]
    assert len(body) == sql(demo, "SELECT count(*) FROM answers")[0][0]
    food = next(r for r in body if r[2] == "food_secure")
    assert food[3] == "不愁吃？" and food[4] == "" and (food[5], food[6]) in (("1", "是"), ("0", "否"))
    categories = [r for r in body if r[2] == "category"]
    assert categories and all(r[4].isdigit() and int(r[4]) >= 1 for r in categories)  # item index from 1
    first = [r[2] for r in body if r[1] == body[0][1]]
    assert first.index("members") < first.index("satisfaction") < first.index("policies_explained")


def test_demo_polls_by_household_with_rating_reason_and_outcome(demo: Path) -> None:
    """`zoufang export polls` in a real process (its end-to-end test)."""
    result = ok(run_demo(demo, "export", "polls", "--output", "p.csv", process=True))
    assert "已写入" in result.stdout
    body = rows_of((demo.parent / "p.csv").read_text(encoding="utf-8-sig"))
    assert len(body) == sql(demo, "SELECT count(*) FROM polls")[0][0] > 0
    poll_id, code, rating, problem_id = sql(
        demo,
        "SELECT p.id, h.code, p.rating, p.problem_id FROM polls p JOIN households h ON h.id = p.household_id "
        "WHERE p.problem_id IS NOT NULL ORDER BY p.id LIMIT 1",
    )[0]
    row = next(r for r in body if r["调查编号"] == str(poll_id))
    assert row["户编号"] == code and row["评价"] == rating == "不满意"
    assert row["不满意原因"] and row["问题编号"] == str(problem_id)
    assert row["结果"] == f"不满意，已转问题 #{problem_id}" and row["计入满意度"] == "是"
    assert row["状态代码"] == "answered" and row["状态"] == "已回复"


def test_demo_problems_with_their_whole_history(demo: Path) -> None:
    """`zoufang export problems` in a real process (its end-to-end test)."""
    table = csv_of(run_bytes(f"sqlite+aiosqlite:///{demo}", demo.parent, "export", "problems", process=True))
    header, body = table[0], [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    assert header[:2] == ["问题编号", "户编号"] and header[-1] == "处理记录"
    assert len(body) == sql(demo, "SELECT count(*) FROM problems")[0][0] > 0
    for problem_id, events in sql(
        demo, "SELECT problem_id, count(*) FROM problem_events GROUP BY problem_id"
    ):
        row = next(r for r in body if r["问题编号"] == str(problem_id))
        assert len(row["处理记录"].splitlines()) == events
    closed = next(r for r in body if r["状态代码"] == "closed" and r["当场化解"] == "是")
    assert "当场化解 已提出→已销号" in closed["处理记录"]
    ok(run_demo(demo, "export", "problems", "--format", "xlsx", "--output", "pr.xlsx"))
    assert [[as_csv_text(v) for v in r] for r in xlsx_rows(demo.parent / "pr.xlsx")] == table
    history = xlsx_rows(demo.parent / "pr.xlsx", sheet=1)
    assert history[0][:3] == ["问题编号", "户编号", "时间"]
    assert len(history) - 1 == sql(demo, "SELECT count(*) FROM problem_events")[0][0]


def test_demo_empty_period_gives_the_header_row_only(demo: Path) -> None:
    for what in ("visits", "polls"):
        table = csv_of(
            run_bytes(f"sqlite+aiosqlite:///{demo}", demo.parent, "export", what, "--period", "2000Q1")
        )
        assert len(table) == 1 and table[0][0] == "户编号"
    ok(run_demo(demo, "export", "visits", "--period", "2000", "--format", "xlsx", "--output", "e.xlsx"))
    assert len(xlsx_rows(demo.parent / "e.xlsx")) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("export", "visits", "--period", "2026Q5"), "未知周期 '2026Q5'"),
        (("export", "polls", "--township", "无此乡"), "没有乡镇 '无此乡'；现有：东风镇、福顺乡"),
        (("export", "problems", "--township", "无此乡"), "现有：东风镇、福顺乡"),
        (("export", "visits", "--format", "xlsx", "--output", "no/such/dir/x.xlsx"), "无法写入"),
    ],
)
def test_bad_input_is_one_line_on_stderr(demo: Path, args: tuple[str, ...], says: str) -> None:
    result = run_demo(demo, *args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr and "Traceback" not in result.stderr


# --- visits placed by hand on the demo roster (SQLite and PostgreSQL) --------------------------------------

ANSWERS = {
    "members": 5,
    "labour_members": 2,
    "main_cause": "因病",
    "support": ["低保", "特困供养(五保)"],
    "food_secure": True,
    "clothing_secure": False,
    "school_children": 0,
    "satisfaction": "基本满意",
    "opinion": "=希望修路",  # a spreadsheet would run it as a formula
    "problems": [
        {"category": "住房", "description": "屋顶漏雨", "resolved_on_site": False},
        {"category": "饮水", "description": "冬季冻管", "resolved_on_site": True, "resolution": "已修"},
    ],
}


async def add_answered(db: Database, household: str, submitted: datetime, answers: dict) -> int:
    visit_id = await add_visit(db, household, "GB001", submitted, at=(45.3712, 122.8098))
    rows = answer_rows(load_script(), visit_id, answers)
    rows.append({**rows[0], "field": "old_question", "value_int": 7})  # asked by an older script
    async with db.session() as s:
        await s.execute(insert(Answer.__table__), rows)
    return visit_id


@pytest.fixture
async def visits(roster: Database, tmp_path: Path) -> tuple[str, str]:
    """Two visits in 2026Q4: DEMO0001 (东风镇) with every kind of answer, and one household of 福顺乡."""
    await add_answered(roster, hh(1), local("2026-10-10 09:00"), ANSWERS)
    async with roster.session() as s:
        query = (
            select(Household.code)
            .join(Village, Village.id == Household.village_id)
            .join(Township, Township.id == Village.township_id)
            .where(Township.name == "福顺乡")
            .order_by(Household.code)
            .limit(1)
        )
        other = (await s.execute(query)).scalar_one()
    await add_answered(roster, other, local("2026-12-31 23:30"), {"members": 2, "support": ["无"]})
    return roster.url, other


def test_wide_row_columns_codes_labels_and_local_times(visits: tuple[str, str], tmp_path: Path) -> None:
    url, other = visits
    body = rows_of(csv_text(url, tmp_path, "export", "visits", "--period", "2026Q4"))
    assert [r["户编号"] for r in body] == [hh(1), other]
    row = body[0]
    assert row["乡镇"] == "东风镇" and row["干部编号"] == "GB001" and row["干部角色"] == "第一书记"
    assert row["开始时间"] == "2026-10-10 08:30:00" and row["提交时间"] == "2026-10-10 09:00:00"
    assert (row["纬度"], row["经度"]) == ("45.3712", "122.8098")
    assert row[SUPPORT] == "低保、特困供养(五保)" and row[CAUSE] == "因病"
    assert row[FOOD] == "是" and row["clothing_secure 不愁穿？"] == "否"
    assert row["school_children 义务教育阶段孩子人数"] == "0" and row["dropout 有没有孩子因贫辍学？"] == ""
    assert row["opinion 群众的意见建议（没有可跳过）"] == "'=希望修路"  # inert in a spreadsheet
    assert row["problems_1_category 问题类别（第1项）"] == "住房"
    assert row["problems_2_description 问题描述（第2项）"] == "冬季冻管"
    assert row["problems_2_resolution 化解情况说明（第2项）"] == "已修"
    assert row["problems_1_resolution 化解情况说明（第1项）"] == ""
    assert row["其他答案（现用脚本中没有的题目）"] == "old_question=7"
    assert body[1]["提交时间"] == "2026-12-31 23:30:00"  # Q4 in Beijing time, 2026-12-31 15:30 UTC
    coded = rows_of(csv_text(url, tmp_path, "export", "visits", "--choices", "code"))[0]
    assert (
        coded[FOOD] == "1"
        and coded["clothing_secure 不愁穿？"] == "0"
        and coded[SUPPORT] == "低保、特困供养(五保)"
    )
    both = rows_of(csv_text(url, tmp_path, "export", "visits", "--choices", "both"))[0]
    assert both[FOOD] == "是" and both["food_secure_code 不愁吃？（代码）"] == "1"
    assert both["problems_2_resolved_on_site_code 已当场化解？（第2项）（代码）"] == "1"


def csv_text(url: str, folder: Path, *args: str) -> str:
    table = csv_of(run_bytes(url, folder, *args))
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    return buffer.getvalue()


def test_township_and_period_choose_the_visits(visits: tuple[str, str], tmp_path: Path) -> None:
    url, other = visits
    assert [
        r["户编号"] for r in rows_of(csv_text(url, tmp_path, "export", "visits", "--township", "福顺乡"))
    ] == [other]
    assert len(csv_of(run_bytes(url, tmp_path, "export", "visits", "--period", "2026Q3"))) == 1  # header only
    december = rows_of(csv_text(url, tmp_path, "export", "visits", "--period", "2026-12", "--layout", "long"))
    assert {r["户编号"] for r in december} == {other}


def test_long_rows_carry_item_index_code_and_label(visits: tuple[str, str], tmp_path: Path) -> None:
    url, _ = visits
    body = rows_of(csv_text(url, tmp_path, "export", "visits", "--layout", "long", "--township", "东风镇"))
    support = [(r["代码"], r["值"]) for r in body if r["题号"] == "support"]
    assert support == [("低保", "低保"), ("特困供养(五保)", "特困供养(五保)")]
    categories = [(r["第几项"], r["值"]) for r in body if r["题号"] == "category"]
    assert categories == [("1", "住房"), ("2", "饮水")]
    food = next(r for r in body if r["题号"] == "food_secure")
    assert (food["题目"], food["代码"], food["值"]) == ("不愁吃？", "1", "是")
    assert body[-1]["题号"] == "old_question" and body[-1]["题目"] == ""  # no longer in the script: last


def test_xlsx_rows_equal_the_csv_rows(visits: tuple[str, str], tmp_path: Path) -> None:
    url, _ = visits
    for layout in ("wide", "long"):
        table = csv_of(run_bytes(url, tmp_path, "export", "visits", "--layout", layout))
        result = run_bytes(url, tmp_path, "export", "visits", "--layout", layout, "--format", "xlsx")
        assert result.returncode == 0, result.stderr.decode()
        name = "visits-all.xlsx" if layout == "wide" else "visits-long-all.xlsx"  # the default names
        sheet = xlsx_rows(tmp_path / name)
        # CSV guards a formula-like text with a quote; the XLSX cell is plain text, never a formula
        assert [
            ["'" + v if v.startswith("=") else v for v in map(as_csv_text, row)] for row in sheet
        ] == table


def test_no_visit_yet_gives_the_header_only(roster: Database, tmp_path: Path) -> None:
    table = csv_of(run_bytes(roster.url, tmp_path, "export", "visits"))
    assert len(table) == 1 and "problems_1_category 问题类别（第1项）" not in table[0]  # no repeat item yet


async def test_period_bounds_are_local_midnight(roster: Database, tmp_path: Path) -> None:
    """00:30 on 1 January in Beijing is still 31 December in UTC: the visit is January's, shown at 00:30."""
    await add_answered(roster, hh(2), local("2027-01-01 00:30"), {"members": 3})
    january = rows_of(csv_text(roster.url, tmp_path, "export", "visits", "--period", "2027-01"))
    assert [(r["户编号"], r["提交时间"]) for r in january] == [(hh(2), "2027-01-01 00:30:00")]
    assert len(csv_of(run_bytes(roster.url, tmp_path, "export", "visits", "--period", "2026-12"))) == 1


@pytest.mark.parametrize(
    "words", [["export"], ["export", "visits"], ["export", "polls"], ["export", "problems"]]
)
def test_every_export_command_answers_help(tmp_path: Path, words: list[str]) -> None:
    result = ok(zoufang(tmp_path, *words, "--help"))
    assert result.stdout.startswith("用法:") and not (tmp_path / "z.db").exists()


def test_an_export_loads_neither_aiogram_nor_twilio(demo: Path) -> None:
    import sys

    code = (
        "import sys\nfrom bot.cli import main\n"
        "try:\n    main(['export', 'visits', '--format', 'xlsx', '--output', 'x.xlsx'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('aiogram', 'twilio', 'aiohttp', 'matplotlib') if m in sys.modules))"
    )
    env = clean_env(demo.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{demo}")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=demo.parent, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


async def test_odd_text_is_kept_as_typed_in_both_files(roster: Database, tmp_path: Path) -> None:
    """HTML, ampersands, emoji, right-to-left marks and formula-looking text reach the XLSX as plain text;
    control characters XML cannot carry are dropped there (the CSV keeps them)."""
    typed = "<b>路灯</b> & 水管 😀 \u202e=SUM(A1)\x01 末尾 "
    await add_answered(roster, hh(1), local("2026-10-10 09:00"), {"members": 2, "opinion": typed})
    url = roster.url
    table = csv_of(run_bytes(url, tmp_path, "export", "visits"))
    opinion = table[0].index("opinion 群众的意见建议（没有可跳过）")
    assert table[1][opinion] == typed
    result = run_bytes(url, tmp_path, "export", "visits", "--format", "xlsx", "--output", "odd.xlsx")
    assert result.returncode == 0, result.stderr.decode()
    sheet = xlsx_rows(tmp_path / "odd.xlsx")
    assert sheet[1][opinion] == typed.replace("\x01", "")


async def test_long_layout_guards_formula_text_on_every_row_it_is_on(
    roster: Database, tmp_path: Path
) -> None:
    """The long layout encodes a repeated answer value once for the whole export: a villager's formula-like
    text is still guarded in the CSV on each visit's row, in both value columns; the XLSX keeps it as typed."""
    for n in (1, 2):
        await add_answered(roster, hh(n), local(f"2026-10-1{n} 09:00"), {"members": 2, "opinion": "=SUM(A1)"})
    url = roster.url
    body = rows_of(csv_text(url, tmp_path, "export", "visits", "--layout", "long"))
    opinions = [(r["户编号"], r["代码"], r["值"]) for r in body if r["题号"] == "opinion"]
    assert opinions == [(hh(1), "'=SUM(A1)", "'=SUM(A1)"), (hh(2), "'=SUM(A1)", "'=SUM(A1)")]
    args = ("export", "visits", "--layout", "long", "--format", "xlsx", "--output", "long.xlsx")
    result = run_bytes(url, tmp_path, *args)
    assert result.returncode == 0, result.stderr.decode()
    sheet = xlsx_rows(tmp_path / "long.xlsx")
    assert [row[5:] for row in sheet if row[2] == "opinion"] == [["=SUM(A1)", "=SUM(A1)"]] * 2


def test_a_full_xlsx_sheet_continues_on_the_next(
    visits: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past XLSX_MAX_ROWS rows (the header's included) a sheet continues on "<title> (2)", …: every long row
    is on one of them, in order, the grouped rows split mid-visit as plain ones would be."""
    from bot import exports

    url, _ = visits
    table = csv_of(run_bytes(url, tmp_path, "export", "visits", "--layout", "long"))
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 7)
    result = run_bytes(url, tmp_path, "export", "visits", "--layout", "long", "--format", "xlsx")
    assert result.returncode == 0, result.stderr.decode()
    book = load_workbook(tmp_path / "visits-long-all.xlsx", read_only=True)
    assert book.sheetnames[:3] == ["答案", "答案 (2)", "答案 (3)"]
    sheets = [[list(r) for r in sheet.iter_rows(values_only=True)] for sheet in book.worksheets]
    assert all(len(rows) == 7 for rows in sheets[:-1]) and all(rows[0] == table[0] for rows in sheets)
    body = [["'" + v if v.startswith("=") else v for v in map(as_csv_text, r)] for s in sheets for r in s[1:]]
    assert body == table[1:]
