"""Hostile roster files: truncated, mis-named, mis-encoded, huge or not files at all.

Each is refused through the real `zoufang import` with exit 1 and exactly one line on standard error, and the
database is left as it was. GBK/GB18030, UTF-8 with BOM and UTF-16 with BOM (Excel's "Unicode text") are read.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.demo import write_roster
from bot.roster_files import MAX_CELLS, MAX_FILE_MB, MAX_ROWS, MAX_UNPACKED_MB, RosterError, import_file
from storage.db import Database
from storage.models import Cadre, County, Household, Township, Village
from tests.cli_support import ok, query, zoufang
from tests.test_roster import count

TABLES = ("counties", "townships", "villages", "cadres", "households", "cadre_villages")
NOT_IMPORTED = "未导入任何数据"


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the demo roster imported through the CLI into z.db; each test works on a copy."""
    folder = tmp_path_factory.mktemp("county")
    write_roster(folder, random.Random(3))
    ok(zoufang(folder, "init"))
    ok(zoufang(folder, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(folder, "import", "households", "households.csv"))
    return folder


@pytest.fixture
def folder(county: Path, tmp_path: Path) -> Path:
    for name in ("z.db", "cadres.csv", "households.csv"):
        shutil.copy(county / name, tmp_path / name)
    return tmp_path


def snapshot(db: Path) -> dict[str, list[tuple]]:
    tables = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {table: sorted(query(db, f"SELECT * FROM {table}")) for table in TABLES if table in tables}


def households_rows(folder: Path) -> list[list[str]]:
    with (folder / "households.csv").open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue()


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_sheet(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The workbook with its first sheet's XML changed (the zip otherwise as it was)."""
    source, target = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            part = source.read(info)
            out.writestr(info.filename, change(part) if info.filename == "xl/worksheets/sheet1.xml" else part)
    return target.getvalue()


def refused(folder: Path, kind: str, name: str) -> str:
    """Run the import, check the refusal's form and that nothing changed; the one line on standard error."""
    before = snapshot(folder / "z.db")
    args = ("--county", "示范县") if kind == "cadres" else ()
    result = zoufang(folder, "import", kind, name, *args, timeout=30)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    assert NOT_IMPORTED in lines[0]
    assert snapshot(folder / "z.db") == before
    return lines[0]


# --- files that are not what their name says, or are damaged ---


XLS_FIXTURE = Path(__file__).parent / "fixtures" / "households.xls"


def _valid_xlsx(folder: Path) -> bytes:
    return xlsx_bytes(households_rows(folder))


CASES: dict[str, tuple[str, Callable[[Path], bytes], str]] = {
    # case: (file name, its content from the county folder, what the line says)
    "zero-byte xlsx": ("花名册.xlsx", lambda f: b"", "是空的"),
    "zero-byte csv": ("花名册.csv", lambda f: b"", "是空的"),
    "truncated xlsx": ("truncated.xlsx", lambda f: _valid_xlsx(f)[: len(_valid_xlsx(f)) // 2], "文件已损坏"),
    "random bytes named xlsx": ("random.xlsx", lambda f: random.Random(1).randbytes(20_000), "文件已损坏"),
    "random bytes behind a zip header": (
        "fake.xlsx",
        lambda f: b"PK\x03\x04" + random.Random(2).randbytes(20_000),
        "文件已损坏",
    ),
    "xlsx named csv": ("hh.csv", _valid_xlsx, "实际是 Excel (.xlsx) 文件"),
    "csv named xlsx": ("hh.xlsx", lambda f: (f / "households.csv").read_bytes(), "看起来是 CSV 文本"),
    "old xls named xlsx": (
        "old.xlsx",
        lambda f: bytes.fromhex("d0cf11e0a1b11ae1") + bytes(4000),
        "旧版 .xls",
    ),
    "old xls named csv": ("old.csv", lambda f: bytes.fromhex("d0cf11e0a1b11ae1") + bytes(4000), "旧版 .xls"),
    "sheet with broken XML": (
        "broken-xml.xlsx",
        lambda f: rewrite_sheet(_valid_xlsx(f), lambda xml: xml[: len(xml) // 2]),
        "文件已损坏",
    ),
    "sheet with a damaged deflate stream": (
        "damaged.xlsx",
        lambda f: _damage_sheet(_valid_xlsx(f)),
        "文件已损坏",
    ),
    "random bytes behind an .xls header": (
        "fake.xls",
        lambda f: bytes.fromhex("d0cf11e0a1b11ae1") + random.Random(4).randbytes(20_000),
        "文件已损坏",
    ),
    "truncated xls": ("truncated.xls", lambda f: XLS_FIXTURE.read_bytes()[:3000], "文件已损坏"),
    "xls full of zeros": (
        "zeros.xls",
        lambda f: bytes.fromhex("d0cf11e0a1b11ae1") + bytes(4000),
        "文件已损坏",
    ),
    "xlsx named xls": ("hh.xls", _valid_xlsx, "实际是 .xlsx 文件"),
    "csv named xls": ("hh-csv.xls", lambda f: (f / "households.csv").read_bytes(), "看起来是 CSV 文本"),
    "web page named xls": (
        "export.xls",
        lambda f: "<html><body><table><tr><td>户编号</td></tr></table></body></html>".encode(),
        "网页（HTML）",
    ),
    "random bytes named xls": ("random.xls", lambda f: random.Random(5).randbytes(20_000), "文件已损坏"),
    "random bytes named csv": (
        "random.csv",
        lambda f: random.Random(3).randbytes(20_000),
        "既不是 UTF-8 也不是 GB18030",
    ),
    "UTF-16 without BOM": (
        "utf16.csv",
        lambda f: csv_text(households_rows(f)).encode("utf-16-le"),
        "既不是 UTF-8 也不是 GB18030",
    ),
    "Latin-1 garbage": (
        "latin1.csv",
        lambda f: "Nom,Prénom,Ville\nDupont,René,Orléans\nMüller,Zoë,Besançon\n".encode("latin-1"),
        "既不是 UTF-8 也不是 GB18030",
    ),
}


def _damage_sheet(data: bytes) -> bytes:
    """Bytes of the sheet's compressed data overwritten: the zip's directory still reads, the sheet does not."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(data)
    for offset in range(start + 20, start + info.compress_size - 4, 7):
        damaged[offset] ^= 0x5A
    return bytes(damaged)


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_file_is_refused_with_one_line(folder: Path, case: str) -> None:
    name, content, expected = CASES[case]
    (folder / name).write_bytes(content(folder))
    line = refused(folder, "households", name)
    assert expected in line, line
    assert name in line


def test_latin1_garbage_is_not_gb18030_either() -> None:
    """The Latin-1 case is a real test of the refusal: the bytes fail both decodings."""
    data = "Dupont,René,Orléans\n".encode("latin-1")
    for encoding in ("utf-8", "gb18030"):
        with pytest.raises(UnicodeDecodeError):
            data.decode(encoding)


# --- not a file ---


def test_a_missing_file(folder: Path) -> None:
    assert "找不到文件" in refused(folder, "households", "nope.xlsx")


def test_a_broken_symlink(folder: Path) -> None:
    (folder / "link.csv").symlink_to(folder / "gone.csv")
    assert "找不到文件" in refused(folder, "cadres", "link.csv")


def test_a_directory(folder: Path) -> None:
    (folder / "花名册.xlsx").mkdir()
    assert "是文件夹" in refused(folder, "households", "花名册.xlsx")


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(folder: Path) -> None:
    os.mkfifo(folder / "pipe.csv")
    assert "不是普通文件" in refused(folder, "households", "pipe.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(folder: Path) -> None:
    path = folder / "secret.csv"
    shutil.copy(folder / "households.csv", path)
    path.chmod(0)
    assert "没有读取权限" in refused(folder, "households", "secret.csv")


# --- huge files ---


@pytest.mark.parametrize("name", ["huge.csv", "huge.xlsx", "huge.xls"])
def test_a_file_over_the_size_limit_is_refused_before_it_is_read(folder: Path, name: str) -> None:
    magic = {".xlsx": b"PK\x03\x04", ".xls": bytes.fromhex("d0cf11e0a1b11ae1"), ".csv": "户编号\n".encode()}
    with (folder / name).open("wb") as file:  # sparse: the size is checked, the bytes never read
        file.write(magic[Path(name).suffix])
        file.truncate(MAX_FILE_MB * 1024 * 1024 + 1)
    line = refused(folder, "households", name)
    assert f"超过 {MAX_FILE_MB} MB 的上限" in line


def test_a_csv_over_the_row_limit_is_refused(folder: Path) -> None:
    (folder / "rows.csv").write_bytes("户编号\n".encode() + b"1\n" * (MAX_ROWS + 1))
    assert f"超过 {MAX_ROWS} 个数据行的上限" in refused(folder, "households", "rows.csv")


def test_an_xlsx_that_unpacks_huge_is_refused_without_unpacking(folder: Path) -> None:
    path = folder / "bomb.xlsx"
    blank = b" " * (1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            for _ in range(MAX_UNPACKED_MB + 1):
                sheet.write(blank)
    assert path.stat().st_size < MAX_FILE_MB * 1024 * 1024
    assert f"解压后超过 {MAX_UNPACKED_MB} MB 的上限" in refused(folder, "households", "bomb.xlsx")


def test_an_absurd_sheet_dimension_is_ignored_quickly(folder: Path) -> None:
    """A writer's used range A1:XFD1048576 neither hangs the reader nor pads the rows."""
    data = rewrite_sheet(
        _valid_xlsx(folder),
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', xml),
    )
    assert b"XFD1048576" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    (folder / "wide.xlsx").write_bytes(data)
    started = time.monotonic()
    result = ok(zoufang(folder, "import", "households", "wide.xlsx", timeout=30))
    assert time.monotonic() - started < 15
    assert "导入户：新增 0，更新 0，未变 132" in result.stdout


def _far_cells(xml: bytes, cell: bytes) -> bytes:
    """A cell (in the given XML) put at the end of the sheet's last row."""
    head, _, tail = xml.rpartition(b"</row>")
    return head + cell + b"</row>" + tail


def test_an_empty_cell_far_right_is_ignored_and_a_value_there_refused(folder: Path) -> None:
    styled = rewrite_sheet(_valid_xlsx(folder), lambda xml: _far_cells(xml, b'<c r="XFD133" s="0"/>'))
    (folder / "styled.xlsx").write_bytes(styled)
    assert "未变 132" in ok(zoufang(folder, "import", "households", "styled.xlsx")).stdout
    valued = rewrite_sheet(
        _valid_xlsx(folder), lambda xml: _far_cells(xml, b'<c r="XFD133" t="inlineStr"><is><t>x</t></is></c>')
    )
    (folder / "valued.xlsx").write_bytes(valued)
    assert "第 133 行超过 256 列的上限" in refused(folder, "households", "valued.xlsx")


def test_rows_padded_to_the_last_column_are_refused_quickly(folder: Path) -> None:
    """A small zip of many rows, each with an empty cell in column XFD: 16,384 cells a row once read."""
    padding = b"".join(b'<row r="%d"><c r="XFD%d" s="0"/></row>' % (n, n) for n in range(134, 100_000))
    data = rewrite_sheet(
        _valid_xlsx(folder), lambda xml: xml.replace(b"</sheetData>", padding + b"</sheetData>")
    )
    (folder / "padded.xlsx").write_bytes(data)
    started = time.monotonic()
    assert f"超过 {MAX_CELLS} 个单元格的上限" in refused(folder, "households", "padded.xlsx")
    assert time.monotonic() - started < 15


def test_a_row_number_beyond_excel_is_refused_quickly(folder: Path) -> None:
    data = rewrite_sheet(
        _valid_xlsx(folder),
        lambda xml: _far_cells(xml, b"").replace(
            b"</sheetData>",
            b'<row r="999999999"><c r="A999999999" t="inlineStr"><is><t>x</t></is></c></row></sheetData>',
        ),
    )
    (folder / "deep.xlsx").write_bytes(data)
    started = time.monotonic()
    assert "超过 1048576 行" in refused(folder, "households", "deep.xlsx")
    assert time.monotonic() - started < 15


# --- encodings that are read ---


def _renamed(folder: Path, names: dict[int, str]) -> list[list[str]]:
    """The households file with some heads of household renamed (row index → name)."""
    rows = households_rows(folder)
    head = rows[0].index("户主姓名")
    for index, name in names.items():
        rows[index][head] = name
    return rows


@pytest.mark.parametrize(
    ("encoding", "name", "delimiter"),
    [
        ("gbk", "黄灿灿", ","),
        ("gb18030", "韦𠮷", ","),  # 𠮷 is outside GBK: four bytes in GB18030
        ("utf-8-sig", "蓝𠮷", ","),
        ("utf-8", "罗𠮷", ","),
        ("utf-16", "覃𠮷", "\t"),  # Excel's "Unicode text": UTF-16 with BOM, tab-separated
        ("utf-16", "莫𠮷", ","),
    ],
)
def test_chinese_excel_encodings_are_read(folder: Path, encoding: str, name: str, delimiter: str) -> None:
    rows = _renamed(folder, {5: name})
    (folder / "hh.csv").write_bytes(csv_text(rows, delimiter).encode(encoding))
    result = ok(zoufang(folder, "import", "households", "hh.csv"))
    assert "导入户：新增 0，更新 1，未变 131" in result.stdout
    code = rows[5][rows[0].index("户编号")]
    assert query(folder / "z.db", "SELECT head_name FROM households WHERE code = ?", code) == [(name,)]


# --- in process, on every backend: nothing written ---


async def _counts(db: Database) -> list[int]:
    return [await count(db, model) for model in (County, Township, Village, Cadre, Household)]


@pytest.mark.parametrize(
    "case", ["truncated xlsx", "xlsx named csv", "UTF-16 without BOM", "sheet with broken XML"]
)
async def test_nothing_is_written_on_any_backend(roster: Database, tmp_path: Path, case: str) -> None:
    name, content, expected = CASES[case]
    (tmp_path / name).write_bytes(content(tmp_path))
    before = await _counts(roster)
    with pytest.raises(RosterError) as error:
        await import_file(roster, "households", tmp_path / name)
    [line] = error.value.lines()
    assert expected in line
    assert await _counts(roster) == before
