"""Roster import: phones, file reading, validation, and the whole import against a migrated database."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bot.roster_files import ImportSummary, RosterError, Table, import_file, read_table
from storage.db import Database
from storage.models import Cadre, County, Household, Township, Village
from survey.phones import mask_phone, normalize_phone, read_phones
from survey.roster import RowError, split_villages, validate_cadres, validate_households

HOUSEHOLD_HEADERS = [
    "户编号",
    "县",
    "乡镇",
    "行政村",
    "屯",
    "户主姓名",
    "联系电话",
    "家庭人口",
    "脱贫状态",
    "主要致贫原因",
    "纬度",
    "经度",
    "帮扶责任人编号",
]
HOUSEHOLDS = [
    [
        "H001",
        "凤山县",
        "砦牙乡",
        "松仁村",
        "弄谋屯",
        "韦大山",
        "138 1234 5678",
        "4",
        "已脱贫",
        "因病",
        "24.55",
        "107.04",
        "C01",
    ],
    [
        "H002",
        "凤山县",
        "砦牙乡",
        "松仁村",
        "",
        "黄二妹",
        "+86-139-0000-1111",
        "2",
        "监测户",
        "因残",
        "",
        "",
        "C01",
    ],
    ["H003", "凤山县", "砦牙乡", "坡心村", "", "罗三", "", "6", "未脱贫", "", "", "", "C02"],
    [
        "H004",
        "凤山县",
        "长洲镇",
        "长洲村",
        "",
        "蓝四",
        "008615012345678",
        "1",
        "已脱贫",
        "缺技术",
        "",
        "",
        "",
    ],
]
CADRE_HEADERS = ["干部编号", "姓名", "手机", "角色", "乡镇", "行政村"]
CADRES = [
    ["C01", "李书记", "13800001111", "第一书记", "砦牙乡", "松仁村"],
    ["C02", "王干部", "139 0000 2222", "乡镇包保干部", "砦牙乡", "松仁村；坡心村"],
    ["C03", "赵专干", "+86 150 0000 3333", "扶贫专干", "砦牙乡", ""],
]


# --- fixture files ---


def write_csv(
    path: Path, headers: Sequence[str], rows: Sequence[Sequence[object]], encoding: str = "utf-8"
) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, headers: Sequence[object], rows: Sequence[Sequence[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "花名册"
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def as_cells(rows: Sequence[Sequence[str]]) -> list[list[object]]:
    """The fixture rows the way Excel often keeps them: numbers as numbers, phones as plain integers."""
    typed: list[list[object]] = []
    for row in rows:
        cells: list[object] = []
        for index, value in enumerate(row):
            if index == 7 and value:  # 家庭人口 as an int
                cells.append(int(value))
            elif index in (10, 11) and value:  # coordinates as floats
                cells.append(float(value))
            elif value.isdigit() and len(value) == 11:  # a phone stored as a number
                cells.append(int(value))
            else:
                cells.append(value or None)
        typed.append(cells)
    return typed


def reordered(
    headers: Sequence[str], rows: Sequence[Sequence[str]], order: Sequence[int]
) -> tuple[list[str], list[list[str]]]:
    return [headers[i] for i in order], [[row[i] for i in order] for row in rows]


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def households_by_code(db: Database) -> dict[str, Household]:
    async with db.session() as session:
        query = select(Household).options(selectinload(Household.village).selectinload(Village.township))
        return {h.code: h for h in await session.scalars(query)}


async def cadres_by_code(db: Database) -> dict[str, Cadre]:
    async with db.session() as session:
        query = select(Cadre).options(selectinload(Cadre.villages), selectinload(Cadre.township))
        return {c.code: c for c in await session.scalars(query)}


async def import_both(db: Database, tmp_path: Path) -> tuple[ImportSummary, ImportSummary]:
    cadres = await import_file(
        db, "cadres", write_csv(tmp_path / "cadres.csv", CADRE_HEADERS, CADRES), county="凤山县"
    )
    households = await import_file(  # 长洲镇 is in no cadre's roster: a new township, on purpose
        db, "households", write_csv(tmp_path / "hh.csv", HOUSEHOLD_HEADERS, HOUSEHOLDS), new_places=True
    )
    return cadres, households


def refused(error: pytest.ExceptionInfo[RosterError]) -> list[tuple[int, str]]:
    return [(e.row, e.column) for e in error.value.errors]


# --- phones ---


@pytest.mark.parametrize(
    "text",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "008613812345678",
        "8613812345678",
        "86 138-1234-5678",
        "１３８１２３４５６７８",
    ],
)
def test_normalize_phone_accepts_mainland_mobiles(text: str) -> None:
    assert normalize_phone(text) == "+8613812345678"


def test_normalize_phone_accepts_possible_numbers_in_ranges_not_yet_known() -> None:
    assert normalize_phone("10012345678") == "+8610012345678"  # not a valid range today, but possible


@pytest.mark.parametrize(
    "text",
    ["12345", "1381234567", "138123456789", "23812345678", "0771-1234567", "+85291234567", "138abc45678", ""],
)
def test_normalize_phone_refuses_impossible_numbers_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError) as error:
        normalize_phone(text)
    assert str(error.value)  # a zh-CN reason


def test_mask_phone() -> None:
    assert mask_phone("+8613812348000") == "138****8000"


# --- reading files ---


def test_read_table_csv_encodings_agree(tmp_path: Path) -> None:
    tables = [
        read_table(write_csv(tmp_path / f"{name}.csv", HOUSEHOLD_HEADERS, HOUSEHOLDS, encoding))
        for name, encoding in (("utf8", "utf-8"), ("bom", "utf-8-sig"), ("gb", "gb18030"))
    ]
    for table in tables:
        assert table.headers == HOUSEHOLD_HEADERS
        assert table.rows == HOUSEHOLDS
        assert table.row_numbers == [2, 3, 4, 5]


def test_read_table_xlsx_numbers_come_back_as_their_digits(tmp_path: Path) -> None:
    cadres = read_table(write_xlsx(tmp_path / "c.xlsx", CADRE_HEADERS, as_cells(CADRES)))
    assert cadres.rows[0][2] == "13800001111"
    path = write_xlsx(tmp_path / "hh.xlsx", HOUSEHOLD_HEADERS, as_cells(HOUSEHOLDS))
    table = read_table(path)
    assert table.headers == HOUSEHOLD_HEADERS
    assert table.rows[0][6] == "138 1234 5678"
    assert table.rows[3][7] == "1"
    assert table.rows[0][10] == "24.55"


def test_read_table_xlsx_cell_values(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "cells.xlsx",
        ["a", "b", "c", "d", "e"],
        [[13812345678, 3.0, 3, None, "  x "], [1.5e10, 0.25, -107.04, "", 0]],
    )
    table = read_table(path)
    assert table.rows == [["13812345678", "3", "3", "", "x"], ["15000000000", "0.25", "-107.04", "", "0"]]


def test_blank_rows_are_dropped_but_keep_the_numbering(tmp_path: Path) -> None:
    rows = [HOUSEHOLDS[0], [""] * 13, HOUSEHOLDS[1], ["", "  "], HOUSEHOLDS[2]]
    csv_table = read_table(write_csv(tmp_path / "gaps.csv", HOUSEHOLD_HEADERS, rows))
    xlsx_table = read_table(
        write_xlsx(tmp_path / "gaps.xlsx", HOUSEHOLD_HEADERS, [[c or None for c in r] for r in rows])
    )
    for table in (csv_table, xlsx_table):
        assert table.row_numbers == [2, 4, 6]
        assert [row[0] for row in table.rows] == ["H001", "H002", "H003"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "是空的"),
        ("blank.csv", b"\xef\xbb\xbf\r\n,,\r\n", "是空的"),
        ("header.csv", "户编号,县\r\n".encode(), "没有数据行"),
        ("roster.xls", b"whatever", ".xls"),
        ("roster.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "不是 .xls 格式"),
        ("roster.txt", b"a,b", "不支持"),
        ("broken.xlsx", b"not a zip", "无法读取"),
    ],
)
def test_unreadable_files_are_refused_with_one_message(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RosterError) as error:
        read_table(path)
    assert error.value.errors == []
    [line] = error.value.lines()
    assert expected in line
    assert "未导入任何数据" in line


def test_an_empty_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)
    with pytest.raises(RosterError, match="是空的"):
        read_table(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="找不到文件"):
        read_table(tmp_path / "nope.csv")


# --- validation (pure) ---


def table(headers: list[str], rows: list[list[str]]) -> Table:
    return Table(headers=headers, rows=rows, row_numbers=list(range(2, len(rows) + 2)))


def test_validate_households_gives_typed_rows() -> None:
    result = validate_households(table(HOUSEHOLD_HEADERS, HOUSEHOLDS))
    assert result.errors == []
    first = result.rows[0]
    assert (first.row, first.code, first.county, first.township, first.village) == (
        2,
        "H001",
        "凤山县",
        "砦牙乡",
        "松仁村",
    )
    assert (first.hamlet, first.phone, first.members, first.status, first.cause) == (
        "弄谋屯",
        "+8613812345678",
        4,
        "已脱贫",
        "因病",
    )
    assert (first.lat, first.lon, first.helper_code) == (24.55, 107.04, "C01")
    assert result.rows[2].hamlet is None and result.rows[2].phone is None and result.rows[2].cause is None
    assert result.rows[3].helper_code is None


def test_validate_cadres_splits_villages() -> None:
    result = validate_cadres(table(CADRE_HEADERS, CADRES))
    assert result.errors == []
    assert [row.villages for row in result.rows] == [("松仁村",), ("松仁村", "坡心村"), ()]
    assert result.rows[1].phone == "+8613900002222"
    assert split_villages(" 甲村; 乙村；；甲村 ") == ("甲村", "乙村")


def test_english_headers_in_any_case_and_order() -> None:
    english = [
        "Household_ID",
        "county",
        "TOWNSHIP",
        "village",
        "hamlet",
        "head_name",
        "Phone",
        "members",
        "status",
        "cause",
        "lat",
        "lon",
        "helper_id",
    ]
    headers, rows = reordered(english, HOUSEHOLDS, [12, 7, 0, 3, 2, 1, 5, 4, 6, 8, 9, 11, 10])
    result = validate_households(table(headers, rows))
    assert result.errors == []
    assert result.rows == validate_households(table(HOUSEHOLD_HEADERS, HOUSEHOLDS)).rows


def test_row_errors_name_the_column_as_the_file_has_it() -> None:
    headers = ["household_id", "county", "township", "village", "head_name", "members", "status"]
    result = validate_households(table(headers, [["H1", "县", "乡", "村", "户主", "0", "已脱贫"]]))
    assert result.errors == [RowError(2, "members", "应为 1–20 的整数，实际为“0”")]


def test_duplicate_header_is_refused() -> None:
    result = validate_cadres(table([*CADRE_HEADERS, "phone"], [[*CADRES[0], "13800001111"]]))
    assert [(e.row, e.column) for e in result.errors] == [(1, "phone")]
    assert result.rows == []


# --- importing ---


async def test_good_csv_files_import(db: Database, tmp_path: Path) -> None:
    cadres, households = await import_both(db, tmp_path)
    assert cadres.lines() == [
        "导入干部：新增 3，更新 0，未变 0",
        "新建地名：县 1，乡镇 1，行政村 2",
        "  凤山县、凤山县/砦牙乡、凤山县/砦牙乡/松仁村、凤山县/砦牙乡/坡心村",  # a county's first import
    ]
    assert households.lines() == [
        "导入户：新增 4，更新 0，未变 0",
        "新建地名：乡镇 1，行政村 1",
        "  凤山县/长洲镇、凤山县/长洲镇/长洲村",
        "没有手机号码的户：1（短信问卷会跳过这些户）",
    ]
    assert await count(db, County) == 1
    assert await count(db, Township) == 2
    assert await count(db, Village) == 3
    stored = await households_by_code(db)
    assert stored["H001"].phone == "+8613812345678"
    assert stored["H002"].phone == "+8613900001111"
    assert stored["H004"].phone == "+8615012345678"
    assert stored["H003"].phone is None
    assert stored["H001"].village.name == "松仁村" and stored["H001"].village.township.name == "砦牙乡"
    assert (stored["H001"].members, stored["H001"].status, stored["H001"].cause) == (4, "已脱贫", "因病")
    assert (stored["H001"].lat, stored["H001"].lon, stored["H001"].hamlet) == (24.55, 107.04, "弄谋屯")
    cadres_stored = await cadres_by_code(db)
    assert stored["H001"].helper_id == cadres_stored["C01"].id
    assert stored["H004"].helper_id is None
    assert [v.name for v in cadres_stored["C02"].villages] == ["松仁村", "坡心村"]
    assert cadres_stored["C03"].villages == []
    assert cadres_stored["C01"].phone == "+8613800001111"
    assert cadres_stored["C01"].role == "第一书记" and cadres_stored["C01"].township.name == "砦牙乡"
    # the cadres' villages are the villages the households live in
    assert stored["H003"].village_id == cadres_stored["C02"].villages[1].id


async def test_good_xlsx_files_import(db: Database, tmp_path: Path) -> None:
    async with db.session() as session:
        session.add(County(name="凤山县"))  # the single county: unknown townships of cadres go there
    cadre_path = write_xlsx(tmp_path / "cadres.xlsx", CADRE_HEADERS, as_cells(CADRES))
    household_path = write_xlsx(tmp_path / "hh.xlsx", HOUSEHOLD_HEADERS, as_cells(HOUSEHOLDS))
    cadres = await import_file(db, "cadres", cadre_path)
    households = await import_file(db, "households", household_path, new_places=True)  # 长洲镇
    assert (cadres.counts.created, households.counts.created) == (3, 4)
    assert cadres.counts.counties_created == 0
    stored = await households_by_code(db)
    assert stored["H003"].members == 6
    assert stored["H001"].lat == 24.55
    assert (await cadres_by_code(db))["C01"].phone == "+8613800001111"  # stored in Excel as a number


async def test_importing_twice_changes_nothing(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    before = await households_by_code(db)
    cadres, households = await import_both(db, tmp_path)
    assert cadres.lines() == ["导入干部：新增 0，更新 0，未变 3"]
    assert households.lines() == [
        "导入户：新增 0，更新 0，未变 4",
        "没有手机号码的户：1（短信问卷会跳过这些户）",
    ]
    after = await households_by_code(db)
    assert {code: h.id for code, h in after.items()} == {code: h.id for code, h in before.items()}
    assert await count(db, Village) == 3


async def test_an_updated_file_updates_in_place(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    before = await households_by_code(db)
    rows = [list(row) for row in HOUSEHOLDS]
    rows[1][7] = "3"  # H002: a child was born
    rows.append(["H005", "凤山县", "长洲镇", "新村", "", "覃五", "", "5", "未脱贫", "缺资金", "", "", "C02"])
    path = write_csv(tmp_path / "hh2.csv", HOUSEHOLD_HEADERS, rows)
    summary = await import_file(db, "households", path, new_places=True)  # 新村
    assert (summary.counts.created, summary.counts.updated, summary.counts.unchanged) == (1, 1, 3)
    after = await households_by_code(db)
    assert after["H002"].id == before["H002"].id
    assert after["H002"].members == 3
    assert after["H005"].village.name == "新村"


async def test_an_updated_cadres_file_moves_villages(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    rows = [list(row) for row in CADRES]
    rows[1][5] = "坡心村;新寨村"
    rows[2][2] = "15000009999"
    path = write_csv(tmp_path / "c2.csv", CADRE_HEADERS, rows)
    summary = await import_file(db, "cadres", path, new_places=True)  # 新寨村
    assert (summary.counts.created, summary.counts.updated, summary.counts.unchanged) == (0, 2, 1)
    assert summary.counts.villages_created == 1
    stored = await cadres_by_code(db)
    assert [v.name for v in stored["C02"].villages] == ["坡心村", "新寨村"]
    assert stored["C03"].phone == "+8615000009999"


async def test_english_headers_other_order_and_ignored_columns(db: Database, tmp_path: Path) -> None:
    english = ["cadre_id", "NAME", "Phone", "role", "township", "villages"]
    headers, rows = reordered(english, CADRES, [4, 2, 0, 5, 1, 3])
    headers = ["备注", *headers, "身份证号", "备注"]
    rows = [["", *row, "", "x"] for row in rows]
    summary = await import_file(db, "cadres", write_csv(tmp_path / "c.csv", headers, rows), county="凤山县")
    assert summary.ignored_columns == ["备注", "身份证号"]
    assert summary.lines()[-1] == "忽略的列：备注、身份证号"
    assert summary.counts.created == 3
    assert [v.name for v in (await cadres_by_code(db))["C02"].villages] == ["松仁村", "坡心村"]


async def test_a_bad_file_is_refused_whole_with_every_bad_row_named(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    before = {code: (h.members, h.status, h.phone) for code, h in (await households_by_code(db)).items()}
    rows = [list(row) for row in HOUSEHOLDS]
    rows[0][7] = "25"  # row 2
    rows[1][8] = "已返贫"  # row 3
    rows[2][6] = "12345"  # row 4
    rows[3][10] = "24.6"  # row 5: lat without lon
    rows.append(["", "", "", "", "", "", "", "", "", "", "", "", ""])  # row 6: blank, dropped
    rows.append(
        ["H001", "凤山县", "砦牙乡", "松仁村", "", "重复户", "", "3", "已脱贫", "", "", "", ""]
    )  # row 7
    rows.append(
        ["H006", "凤山县", "砦牙乡", "松仁村", "", "新户", "", "3", "已脱贫", "", "", "", "C99"]
    )  # row 8
    rows.append(
        ["H007", "凤山县", "砦牙乡", "松仁村", "", "好户", "", "3", "已脱贫", "", "", "", "C01"]
    )  # row 9: fine
    path = write_csv(tmp_path / "bad.csv", HOUSEHOLD_HEADERS, rows)
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", path)
    assert refused(error) == [
        (2, "家庭人口"),
        (3, "脱贫状态"),
        (4, "联系电话"),
        (5, "经度"),
        (7, "户编号"),
        (8, "帮扶责任人编号"),
    ]
    lines = error.value.lines()
    assert lines[0] == "文件有 6 处错误，未导入任何数据："
    assert lines[1] == "第 2 行 · 家庭人口：应为 1–20 的整数，实际为“25”"
    assert "已返贫" in lines[2] and "未脱贫、已脱贫、监测户" in lines[2]
    assert "“12345”" in lines[3]
    assert lines[4].startswith("第 5 行 · 经度：")
    assert lines[5] == "第 7 行 · 户编号：户编号“H001”与第 2 行重复"
    assert lines[6].startswith("第 8 行 · 帮扶责任人编号：") and "C99" in lines[6]
    after = {code: (h.members, h.status, h.phone) for code, h in (await households_by_code(db)).items()}
    assert after == before
    assert await count(db, Village) == 3


async def test_a_bad_xlsx_counts_rows_as_the_spreadsheet_shows_them(db: Database, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        *as_cells(HOUSEHOLDS[3:]),
        [None] * 13,
        ["H010", "凤山县", "长洲镇", "长洲村", None, "韦十", 12345, 21, "已脱贫"],
    ]
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", write_xlsx(tmp_path / "bad.xlsx", HOUSEHOLD_HEADERS, rows))
    assert refused(error) == [(4, "联系电话"), (4, "家庭人口")]
    assert await count(db, County) == 0


async def test_a_missing_required_column_refuses_the_file(db: Database, tmp_path: Path) -> None:
    headers = [h for h in HOUSEHOLD_HEADERS if h != "家庭人口"]
    rows = [[c for i, c in enumerate(row) if i != 7] for row in HOUSEHOLDS[3:]]
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", write_csv(tmp_path / "h.csv", headers, rows))
    assert refused(error) == [(1, "家庭人口")]
    assert "缺少必填列“家庭人口”" in error.value.lines()[1]
    assert await count(db, Household) == 0
    assert await count(db, County) == 0


async def test_an_empty_file_is_refused(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(RosterError) as error:
        await import_file(db, "cadres", path)
    assert error.value.lines() == ["文件 empty.csv 是空的，未导入任何数据。"]


async def test_cadres_with_unknown_township_and_no_county_are_refused(db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", CADRE_HEADERS, CADRES)
    with pytest.raises(RosterError) as error:
        await import_file(db, "cadres", path)
    assert refused(error) == [(2, "乡镇"), (3, "乡镇"), (4, "乡镇")]
    assert "砦牙乡" in error.value.lines()[1] and "--county 县名" in error.value.lines()[1]
    assert await count(db, Township) == 0


async def test_the_first_rosters_advice_names_county_instead_of_going_in_a_circle(
    db: Database, tmp_path: Path
) -> None:
    """Issue 16: cadres without --county said "import the household roster first", households said "import the
    cadre roster first"; both now name the way out, the cadres with --county."""
    with pytest.raises(RosterError) as cadres:
        await import_file(db, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADERS, CADRES))
    with pytest.raises(RosterError) as households:
        await import_file(db, "households", write_csv(tmp_path / "h.csv", HOUSEHOLD_HEADERS, HOUSEHOLDS))
    for error in (cadres, households):
        assert "zoufang import cadres 文件 --county 县名" in error.value.lines()[1], error.value.lines()
    assert "户花名册" not in cadres.value.lines()[1]


async def test_cadres_with_unknown_township_and_several_counties_are_refused(
    db: Database, tmp_path: Path
) -> None:
    async with db.session() as session:
        session.add_all([County(name="凤山县"), County(name="东兰县")])
    with pytest.raises(RosterError) as error:
        await import_file(db, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADERS, CADRES[:1]))
    assert "多个县" in error.value.lines()[1] and "--county 县名" in error.value.lines()[1]


async def test_cadres_find_their_township_among_several_counties(db: Database, tmp_path: Path) -> None:
    await import_file(
        db,
        "households",
        write_csv(tmp_path / "h.csv", HOUSEHOLD_HEADERS, [[*r[:12], ""] for r in HOUSEHOLDS]),
    )
    async with db.session() as session:
        session.add(County(name="东兰县"))
    summary = await import_file(db, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADERS, CADRES))
    assert summary.counts.created == 3
    assert (summary.counts.townships_created, summary.counts.villages_created) == (0, 0)


async def test_a_household_code_of_another_county_is_a_bad_row(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    row = ["H001", "东兰县", "武篆镇", "东里村", "", "别人", "", "3", "已脱贫", "", "", "", ""]
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", write_csv(tmp_path / "other.csv", HOUSEHOLD_HEADERS, [row]))
    assert refused(error) == [(2, "县"), (2, "户编号")]  # a new county, and a code it cannot have: one pass
    assert await count(db, County) == 1


def test_a_mainland_e164_number_is_taken_as_it_is_and_agrees_with_the_full_reading() -> None:
    rng = random.Random(3)
    for second in "0123456789":
        for _ in range(20):
            number = f"+861{second}{rng.randrange(10**9):09d}"
            # with spaces around it the number takes the full reading
            assert normalize_phone(number) == normalize_phone(f" {number} ") == number


# --- issue 16: rosters as counties keep them ---


def test_the_monitored_household_categories_are_monitored_households() -> None:
    rows = [
        [*HOUSEHOLDS[0][:8], category, *HOUSEHOLDS[0][9:]]
        for category in ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户", "监测对象", " 已脱贫 ")
    ]
    rows = [[f"H{index}", *row[1:]] for index, row in enumerate(rows)]
    result = validate_households(table(HOUSEHOLD_HEADERS, rows))
    assert result.errors == []
    assert [row.status for row in result.rows] == ["监测户", "监测户", "监测户", "监测户", "已脱贫"]


def test_an_unknown_status_is_still_a_bad_row() -> None:
    row = [*HOUSEHOLDS[0][:8], "小康户", *HOUSEHOLDS[0][9:]]
    result = validate_households(table(HOUSEHOLD_HEADERS, [row]))
    assert [(error.row, error.column) for error in result.errors] == [(2, "脱贫状态")]


@pytest.mark.parametrize(
    ("written", "role"),
    [
        ("村支书", "村党支部书记"),
        ("驻村工作队员", "驻村工作队"),
        ("工作队员", "驻村工作队"),
        ("驻村第一书记", "第一书记"),
        ("第一书记", "第一书记"),
        ("包村干部", "乡镇包保干部"),
        ("帮扶干部", "帮扶责任人"),
        ("镇党委书记", "乡镇党委书记"),
    ],
)
def test_common_role_names_are_the_roles_they_mean(written: str, role: str) -> None:
    result = validate_cadres(table(CADRE_HEADERS, [["C09", "某某", "13800009999", written, "砦牙乡", ""]]))
    assert result.errors == []
    assert result.rows[0].role == role


def county_workbook(path: Path, sheets: dict[str, list[list[object]]], merge_title: bool = True) -> Path:
    """A workbook as a county keeps it: sheets in order, a merged title cell on a sheet starting with one."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if merge_title and rows and rows[0][1:] == [None] * (len(rows[0]) - 1):
            sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HOUSEHOLD_HEADERS))
    workbook.save(path)
    return path


TITLE_ROWS: list[list[object]] = [
    ["凤山县建档立卡贫困户花名册", *[None] * 12],
    ["填报单位：凤山县乡村振兴局", *[None] * 9, "2026年11月", None, None],
    [None] * 13,
]


async def test_a_title_row_above_the_header_gave_five_missing_columns(db: Database, tmp_path: Path) -> None:
    path = county_workbook(tmp_path / "title.xlsx", {"花名册": [*TITLE_ROWS, HOUSEHOLD_HEADERS, *HOUSEHOLDS]})
    table = read_table(path, "households")
    assert (table.header_row, table.row_numbers) == (4, [5, 6, 7, 8])
    await import_both(db, tmp_path)
    summary = await import_file(db, "households", path)
    assert summary.counts.unchanged == len(HOUSEHOLDS)


async def test_a_title_row_in_a_csv_is_skipped_and_rows_keep_their_numbers(
    db: Database, tmp_path: Path
) -> None:
    bad = [*HOUSEHOLDS[:1], ["H009", *HOUSEHOLDS[1][1:7], "99", *HOUSEHOLDS[1][8:]]]
    path = tmp_path / "title.csv"
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([["某县花名册"], ["2026年"], HOUSEHOLD_HEADERS, *bad])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", path)
    assert (5, "家庭人口") in refused(error)  # row 4's helper is unknown here: cadres are not imported


async def test_no_header_in_the_first_rows_names_the_required_columns_not_found(
    db: Database, tmp_path: Path
) -> None:
    headers = [h for h in HOUSEHOLD_HEADERS if h not in ("家庭人口", "脱贫状态")]
    rows = [[c for i, c in enumerate(row) if i not in (7, 8)] for row in HOUSEHOLDS]
    path = county_workbook(tmp_path / "h.xlsx", {"花名册": [*TITLE_ROWS, headers, *rows]})
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", path)
    assert refused(error) == [(4, "家庭人口"), (4, "脱贫状态")]
    assert all("前 8 行中都没有找到这一列" in line for line in error.value.lines()[1:]), error.value.lines()
    assert await count(db, Household) == 0


INSTRUCTIONS: list[list[object]] = [
    ["填表说明"],
    ["1. 户编号：全县唯一"],
    ["2. 脱贫状态：未脱贫/已脱贫/监测户"],
]


async def test_an_instructions_sheet_before_the_data_gave_only_a_header(db: Database, tmp_path: Path) -> None:
    path = county_workbook(
        tmp_path / "sheets.xlsx",
        {"填表说明": INSTRUCTIONS, "花名册": [*TITLE_ROWS, HOUSEHOLD_HEADERS, *HOUSEHOLDS]},
        merge_title=False,
    )
    table = read_table(path, "households")
    assert (table.sheet, table.header_row, len(table.rows)) == ("花名册", 4, len(HOUSEHOLDS))
    await import_both(db, tmp_path)
    assert (await import_file(db, "households", path)).counts.unchanged == len(HOUSEHOLDS)


async def test_errors_name_the_sheet_of_a_workbook_with_several(db: Database, tmp_path: Path) -> None:
    bad = ["H009", *HOUSEHOLDS[1][1:7], "99", *HOUSEHOLDS[1][8:]]
    path = county_workbook(tmp_path / "s.xlsx", {"说明": INSTRUCTIONS, "数据": [HOUSEHOLD_HEADERS, bad]})
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", path)
    assert error.value.lines()[0].startswith("工作表“数据”有 2 处错误")  # 人口 99, and 帮扶责任人 C01 unknown
    only_header = county_workbook(tmp_path / "o.xlsx", {"说明": INSTRUCTIONS, "数据": [HOUSEHOLD_HEADERS]})
    with pytest.raises(RosterError, match=r"o\.xlsx 的工作表“数据” 只有表头（第 1 行）"):
        read_table(only_header, "households")


@pytest.mark.parametrize(
    ("cell", "mobiles", "landlines"),
    [
        ("13800138000/13900139000", ["+8613800138000", "+8613900139000"], []),
        ("13800138000、13900139000", ["+8613800138000", "+8613900139000"], []),
        ("13800138000，13900139000", ["+8613800138000", "+8613900139000"], []),
        ("13800138000 13900139000", ["+8613800138000", "+8613900139000"], []),
        ("138 1234 5678 139 0000 1111", ["+8613812345678", "+8613900001111"], []),
        ("0771-1234567", [], ["0771-1234567"]),
        ("(0771)1234567", [], ["(0771)1234567"]),
        ("（0771）1234567", [], ["(0771)1234567"]),
        ("0771-1234567/13800138000", ["+8613800138000"], ["0771-1234567"]),
        ("138 1234 5678", ["+8613812345678"], []),
    ],
)
def test_a_phone_cell_with_two_numbers_or_a_landline_is_read(
    cell: str, mobiles: list[str], landlines: list[str]
) -> None:
    phones = read_phones(cell)
    assert (phones.mobiles, phones.landlines) == (mobiles, landlines)
    assert phones.sms == (mobiles[0] if mobiles else None)


def test_a_phone_cell_with_a_bad_part_names_it() -> None:
    with pytest.raises(ValueError, match="“12345”位数不对"):
        read_phones("13800138000/12345")


async def test_two_phones_in_one_cell_or_a_landline_refused_the_row(db: Database, tmp_path: Path) -> None:
    rows = [list(row) for row in HOUSEHOLDS]
    rows[0][6] = "13800138000/13900139000"
    rows[1][6] = "(0771)1234567"
    await import_both(db, tmp_path)
    summary = await import_file(db, "households", write_csv(tmp_path / "two.csv", HOUSEHOLD_HEADERS, rows))
    assert summary.counts.updated == 2
    assert "没有手机号码的户：2（短信问卷会跳过这些户）" in summary.lines()
    households = await households_by_code(db)
    assert (households["H001"].phone, households["H002"].phone) == ("+8613800138000", None)


def test_a_cadre_with_only_a_landline_is_a_bad_row() -> None:
    result = validate_cadres(
        table(CADRE_HEADERS, [["C09", "某某", "0771-1234567", "第一书记", "砦牙乡", ""]])
    )
    assert [(error.row, error.column) for error in result.errors] == [(2, "手机")]
    assert "只有座机号码" in result.errors[0].message
    two = validate_cadres(
        table(CADRE_HEADERS, [["C09", "某某", "13800009999/0771-1234567", "第一书记", "砦牙乡", ""]])
    )
    assert two.errors == [] and two.rows[0].phone == "+8613800009999"


FIXTURES = Path(__file__).parent / "fixtures"  # the .xls files: written once by tests/fixtures/make_xls.py


async def test_an_old_xls_roster_was_not_read(db: Database, tmp_path: Path) -> None:
    households = read_table(FIXTURES / "households.xls", "households")
    assert (households.sheet, households.header_row, households.row_numbers) == ("花名册", 4, [5, 6, 7, 8])
    assert households.headers == HOUSEHOLD_HEADERS
    assert households.rows == [
        [cell for cell in row] for row in HOUSEHOLDS
    ]  # numbers come back as their digits
    cadres = await import_file(db, "cadres", FIXTURES / "cadres.xls", county="凤山县")
    imported = await import_file(db, "households", FIXTURES / "households.xls", new_places=True)  # 长洲镇
    assert (cadres.counts.created, imported.counts.created) == (len(CADRES), len(HOUSEHOLDS))
    assert (await households_by_code(db))["H001"].phone == "+8613812345678"
    again = await import_file(db, "households", write_csv(tmp_path / "hh.csv", HOUSEHOLD_HEADERS, HOUSEHOLDS))
    assert again.counts.unchanged == len(HOUSEHOLDS)  # the .xls reads as the same roster as the .csv


async def test_a_misspelt_village_or_county_is_refused_with_the_nearest_name_not_made(
    db: Database, tmp_path: Path
) -> None:
    """A typo in 行政村 or 县 used to make a new place and move the household there, silently."""
    await import_both(db, tmp_path)
    rows = [list(row) for row in HOUSEHOLDS]
    rows[0][3] = "松仁材"  # H001: 松仁村 misspelt
    rows[1][1] = "凤三县"  # H002: 凤山县 misspelt
    rows[2][12] = "C99"  # H003: an unknown 帮扶责任人, reported in the same pass
    rows[3][7] = "很多"  # H004: a bad 人口数 (a row error of its own)
    path = write_csv(tmp_path / "typos.csv", HOUSEHOLD_HEADERS, rows)
    with pytest.raises(RosterError) as error:
        await import_file(db, "households", path)
    lines = error.value.lines()
    assert lines[0] == "文件有 5 处错误，未导入任何数据："  # the misspelt county also cannot hold H002
    assert (
        "第 2 行 · 行政村：行政村“松仁材”尚未登记：最接近的已有名称是“松仁村”；若确是新地名，导入时加 --new-places"
        in lines
    )
    assert (
        "第 3 行 · 县：县“凤三县”尚未登记：最接近的已有名称是“凤山县”；若确是新地名，导入时加 --new-places"
        in lines
    )
    assert any(line.startswith("第 4 行 · 帮扶责任人") and "C99" in line for line in lines)
    assert any(line.startswith("第 5 行 · 家庭人口") for line in lines)
    stored = await households_by_code(db)
    assert stored["H001"].village.name == "松仁村" and await count(db, County) == 1  # nothing moved or made


async def test_new_places_makes_them_and_the_summary_lists_them(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    rows = [list(row) for row in HOUSEHOLDS]
    rows[0][3] = "松仁新村"  # a village really split off
    summary = await import_file(
        db, "households", write_csv(tmp_path / "new.csv", HOUSEHOLD_HEADERS, rows), new_places=True
    )
    assert "  凤山县/砦牙乡/松仁新村" in summary.lines()
    assert (await households_by_code(db))["H001"].village.name == "松仁新村"


async def test_a_cadre_in_a_misspelt_township_or_village_is_refused(db: Database, tmp_path: Path) -> None:
    await import_both(db, tmp_path)
    rows = [list(row) for row in CADRES]
    rows[0][4] = "寨牙乡"  # 砦牙乡 misspelt
    rows[1][5] = "松仁村;坡心材"
    with pytest.raises(RosterError) as error:
        await import_file(db, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADERS, rows))
    assert [(e.row, e.message.split("：")[0]) for e in error.value.errors] == [
        (2, "乡镇“寨牙乡”尚未登记"),
        (3, "行政村“坡心材”尚未登记"),
    ]
    assert "最接近的已有名称是“砦牙乡”" in error.value.errors[0].message


@pytest.mark.parametrize(
    ("head", "phone", "members"), [("户主", "联系方式", "人口数"), ("户主姓名", "手机号码", "家庭人口数")]
)
def test_headers_counties_write_for_the_same_columns_are_read(head: str, phone: str, members: str) -> None:
    headers = ["户编号", "县", "乡镇", "行政村", head, phone, members, "脱贫状态", "致贫原因"]
    result = validate_households(
        table(headers, [["H1", "县", "乡", "村", "韦一", "13812345678", "3", "已脱贫", "因病"]])
    )
    assert result.errors == [] and result.ignored_columns == []
    [row] = result.rows
    assert (row.head_name, row.phone, row.members, row.cause) == ("韦一", "+8613812345678", 3, "因病")
    assert result.columns["members"] == members  # errors name the column as the file does


def test_a_file_with_a_header_and_its_synonym_is_refused_naming_both_columns() -> None:
    headers = ["户编号", "县", "乡镇", "行政村", "户主姓名", "户主", "家庭人口", "脱贫状态"]
    result = validate_households(table(headers, [["H1", "县", "乡", "村", "韦一", "韦一", "3", "已脱贫"]]))
    assert [e.message for e in result.errors] == ["第 E 列和第 F 列都是“户主姓名”，只能有一列"]
