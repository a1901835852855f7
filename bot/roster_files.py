"""Roster files (.xlsx, .xls, .csv) read into tables, checked and imported in one transaction.

`import_file` is what the CLI calls: it reads, validates, checks against the database and writes
everything in one transaction, or raises `RosterError` having written nothing.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import itertools
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openpyxl import load_workbook

from storage.db import Database
from storage.roster import ImportCounts, check_cadres, check_households, import_cadres, import_households
from survey.roster import (
    CADRE_COLUMNS,
    HOUSEHOLD_COLUMNS,
    Column,
    RosterError,
    RowError,
    header_key,
    is_header,
    known_headers,
    validate_cadres,
    validate_households,
)
from survey.text import cell_text

__all__ = ["ImportSummary", "Kind", "RosterError", "RowError", "Table", "import_file", "read_table"]

Kind = Literal["households", "cadres"]
KIND_LABELS: dict[str, str] = {"households": "户", "cadres": "干部"}
_NOTHING_IMPORTED = "未导入任何数据。"

# Limits: a county has at most tens of thousands of households, a roster of them is a few MB (about 150 bytes a
# row); the limits leave ten times that and refuse a wrong or hostile file before it is read into memory.
MAX_FILE_MB = 50  # on disk, either format
MAX_ROWS = 200_000  # data rows
MAX_COLUMNS = 256  # a roster has 13; cells further right must be empty
MAX_CELLS = 10_000_000  # read, empty ones included (200,000 rows of 50 columns): a sheet padded far right
MAX_SHEET_ROW = 1_048_576  # Excel's last row: a sheet claiming rows beyond it is not a real sheet
MAX_UNPACKED_MB = 200  # the .xlsx's XML parts once unzipped: 200,000 rows of 13 columns are about 100 MB
_ZIP_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: the old .xls (and .doc)


@dataclass
class Table:
    """A sheet as text: the header row and the non-blank rows below it, each with its spreadsheet row number."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    row_numbers: list[int] = field(
        default_factory=list
    )  # parallel to rows, numbered as the spreadsheet shows
    header_row: int = 1  # where the header was found: a title row or two may sit above it
    scanned: int = 0  # how many rows were searched for the header (0: it was taken as the first row)
    seen: frozenset[str] = frozenset()  # header_key of every cell in the searched rows
    sheet: str | None = None  # the sheet's name when the workbook has several

    def numbered_rows(self) -> Iterator[tuple[int, list[str]]]:
        return zip(self.row_numbers, self.rows, strict=True)


# Counties put a title (a merged "XX县建档立卡贫困户花名册" cell), a date or a unit line above the header:
# the header is looked for among the first rows, and an instructions sheet may come before the data sheet.
HEADER_SCAN_ROWS = 20
_SPECS: dict[str, tuple[Column, ...]] = {"households": HOUSEHOLD_COLUMNS, "cadres": CADRE_COLUMNS}


def _nonblank(records: Iterable[Sequence[object]], name: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank records as text with their row numbers, refusing a sheet beyond the limits."""
    cells_read = 0
    for number, record in enumerate(records, start=1):
        if number > MAX_SHEET_ROW:
            raise RosterError(f"文件 {name} 超过 {MAX_SHEET_ROW} 行（Excel 的上限），{_NOTHING_IMPORTED}")
        cells_read += len(record)
        if cells_read > MAX_CELLS:
            raise RosterError(f"文件 {name} 超过 {MAX_CELLS} 个单元格的上限，{_NOTHING_IMPORTED}")
        if record.count(None) + record.count("") == len(record):
            continue  # blank, found cheaply: a sheet may pad its rows far to the right
        cells = [cell_text(value) for value in _within_columns(record, number, name)]
        if any(cells):
            yield number, cells


@dataclass
class _Head:
    """A sheet's first rows and which of them is the header."""

    rows: list[tuple[int, list[str]]]  # the non-blank rows among the first HEADER_SCAN_ROWS
    rest: Iterator[tuple[int, list[str]]]  # the rows after them
    header: int  # index into rows; meaningless when rows is empty
    found: bool  # the header names every required column
    score: int  # how many known columns it names


def _head(records: Iterable[Sequence[object]], name: str, specs: Sequence[Sequence[Column]]) -> _Head:
    """Read the first rows and take as header the one naming every required column and the most known ones;
    failing that, the one naming the most known columns; failing that, the first non-blank row."""
    rest = _nonblank(records, name)
    rows: list[tuple[int, list[str]]] = []
    for number, cells in rest:
        rows.append((number, cells))
        if number >= HEADER_SCAN_ROWS:
            break
    if rows and rows[-1][0] > HEADER_SCAN_ROWS:
        extra = rows.pop()
        rest = itertools.chain([extra], rest)
    best, best_key = 0, (False, 0)
    for index, (_, cells) in enumerate(rows):
        key = max((is_header(cells, spec), len(known_headers(cells, spec))) for spec in specs)
        if key > best_key:
            best, best_key = index, key
    return _Head(rows, rest, best, *best_key)


def _table(head: _Head, name: str, sheet: str | None = None) -> Table:
    """The rows below the header; blank rows are dropped but keep their numbers."""
    if not head.rows:
        raise RosterError(f"文件 {name} 是空的，{_NOTHING_IMPORTED}")
    header_row, header = head.rows[head.header]
    seen = frozenset(header_key(cell) for _, cells in head.rows for cell in cells if cell)
    scanned = min(HEADER_SCAN_ROWS, head.rows[-1][0]) if header_row > 1 or not head.found else 0
    table = Table(headers=header, header_row=header_row, scanned=scanned, seen=seen, sheet=sheet)
    for number, cells in itertools.chain(head.rows[head.header + 1 :], head.rest):
        if len(table.rows) == MAX_ROWS:
            raise RosterError(
                f"文件 {name} 超过 {MAX_ROWS} 个数据行的上限：请按乡镇拆分后分别导入，{_NOTHING_IMPORTED}"
            )
        table.rows.append(cells + [""] * (len(header) - len(cells)))
        table.row_numbers.append(number)
    if not table.rows:
        raise RosterError(f"文件 {name} 只有表头（第 {header_row} 行），没有数据行，{_NOTHING_IMPORTED}")
    return table


def _sheets_table(
    sheets: Iterable[tuple[str, Iterable[Sequence[object]]]],
    count: int,
    name: str,
    specs: Sequence[Sequence[Column]],
) -> Table:
    """The first sheet with a recognisable header; failing that, the one looking most like a roster (the first
    when none does). With several sheets, errors name the sheet."""
    chosen: tuple[_Head, str, str] | None = None
    for title, records in sheets:
        label = f"{name} 的工作表“{title}”" if count > 1 else name
        head = _head(records, label, specs)
        if head.found:
            return _table(head, label, title if count > 1 else None)
        if chosen is None or head.score > chosen[0].score:
            chosen = (head, label, title)
    if chosen is None:
        raise RosterError(f"文件 {name} 没有工作表，{_NOTHING_IMPORTED}")
    head, label, title = chosen
    return _table(head, label, title if count > 1 else None)


def _within_columns(record: Sequence[object], number: int, name: str) -> Sequence[object]:
    """The record cut to MAX_COLUMNS, refused when a cell beyond is not empty (a sheet may be padded far right)."""
    if len(record) <= MAX_COLUMNS:
        return record
    beyond = list(record[MAX_COLUMNS:])
    if beyond.count(None) + beyond.count("") != len(beyond):
        raise RosterError(f"文件 {name} 第 {number} 行超过 {MAX_COLUMNS} 列的上限，{_NOTHING_IMPORTED}")
    return record[:MAX_COLUMNS]


# --- formats ---


def _readable(path: Path) -> bytes:
    """The file's first bytes, after refusing what is not a readable regular file of a sensible size."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise RosterError(f"找不到文件 {path}，{_NOTHING_IMPORTED}") from None
    except OSError as error:
        raise RosterError(f"无法读取文件 {path}：{_os_reason(error)}，{_NOTHING_IMPORTED}") from error
    if stat.S_ISDIR(status.st_mode):
        raise RosterError(f"{path} 是文件夹，不是花名册文件，{_NOTHING_IMPORTED}")
    if not stat.S_ISREG(status.st_mode):
        raise RosterError(f"{path} 不是普通文件，{_NOTHING_IMPORTED}")
    if status.st_size == 0:
        raise RosterError(f"文件 {path.name} 是空的，{_NOTHING_IMPORTED}")
    if status.st_size > MAX_FILE_MB * 1024 * 1024:
        raise RosterError(
            f"文件 {path.name} 有 {status.st_size / 1024 / 1024:.0f} MB，超过 {MAX_FILE_MB} MB 的上限"
            f"（一个县的花名册只有几 MB）：请检查是否选错了文件，或按乡镇拆分后分别导入，{_NOTHING_IMPORTED}"
        )
    try:
        with path.open("rb") as file:
            return file.read(8)
    except OSError as error:
        raise RosterError(f"无法读取文件 {path.name}：{_os_reason(error)}，{_NOTHING_IMPORTED}") from error


def _os_reason(error: OSError) -> str:
    if isinstance(error, PermissionError):
        return "没有读取权限"
    if isinstance(error, IsADirectoryError):
        return "这是文件夹"
    return error.strerror or str(error)


def _broken_xlsx(name: str) -> RosterError:
    return RosterError(f"无法读取 Excel 文件 {name}：文件已损坏或不是 .xlsx 格式，{_NOTHING_IMPORTED}")


def _not_excel_hint(path: Path) -> str | None:
    """What an Excel-named file plainly is instead: a web page (what many online systems export as .xls) or CSV."""
    if not _looks_like_text(path):
        return None
    with path.open("rb") as file:
        start = file.read(512).removeprefix(codecs.BOM_UTF8).lstrip()
    if start.startswith(b"<"):
        return "它实际是网页（HTML）格式，请在 Excel 中打开后另存为 .xlsx"
    return "它看起来是 CSV 文本，请把扩展名改为 .csv"


def _check_magic(
    path: Path,
    head: bytes,
    magic: bytes,
    other: tuple[bytes, str, str],
    broken: Callable[[str], RosterError],
) -> None:
    """Refuse a file whose first bytes are not its Excel format's: the other Excel format (rename it, as
    `other` = (its magic, what it is, its extension) says), a plainly different format (a hint), or a damaged
    file."""
    other_magic, what, extension = other
    if head.startswith(other_magic):
        raise RosterError(f"文件 {path.name} 实际是{what}：请把扩展名改为 {extension}，{_NOTHING_IMPORTED}")
    if not head.startswith(magic):
        hint = _not_excel_hint(path)
        if hint:
            raise RosterError(f"无法读取 Excel 文件 {path.name}：{hint}，{_NOTHING_IMPORTED}")
        raise broken(path.name)


def _check_xlsx(path: Path, head: bytes) -> None:
    """Refuse what is not a zip, with a hint when it is plainly another format, and a zip that unpacks to a bomb."""
    _check_magic(path, head, _ZIP_MAGIC, (_XLS_MAGIC, "旧版 .xls 格式", ".xls"), _broken_xlsx)
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist() if info.filename.endswith(".xml"))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise _broken_xlsx(path.name) from error
    if unpacked > MAX_UNPACKED_MB * 1024 * 1024:
        raise RosterError(
            f"Excel 文件 {path.name} 解压后超过 {MAX_UNPACKED_MB} MB 的上限：请检查是否选错了文件，"
            f"或按乡镇拆分后分别导入，{_NOTHING_IMPORTED}"
        )


def _looks_like_text(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            _decode(file.read(4096), path.name, partial=True)
    except (RosterError, OSError):
        return False
    return True


def _read_xlsx(path: Path, specs: Sequence[Sequence[Column]]) -> Table:
    _check_xlsx(path, _readable(path))
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises whatever its parsers meet in a malformed part
        raise _broken_xlsx(path.name) from error
    try:
        sheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]  # not chartsheets
        for sheet in sheets:
            sheet.reset_dimensions()  # some writers record a wrong used range; read every cell there is
        rows = ((sheet.title, sheet.iter_rows(min_row=1, values_only=True)) for sheet in sheets)
        return _sheets_table(rows, len(sheets), path.name, specs)
    except RosterError:
        raise
    except Exception as error:  # a damaged sheet (bad XML, a bad deflate stream, a wrong CRC) shows only now
        raise _broken_xlsx(path.name) from error
    finally:
        workbook.close()


def _broken_xls(name: str) -> RosterError:
    return RosterError(f"无法读取 Excel 文件 {name}：文件已损坏或不是 .xls 格式，{_NOTHING_IMPORTED}")


def _read_xls(path: Path, specs: Sequence[Sequence[Column]]) -> Table:
    """An old-format (BIFF, Excel 97–2003) workbook, read with xlrd; the same limits as the other formats.

    xlrd holds a whole sheet, but a .xls is not compressed, so MAX_FILE_MB bounds it: the largest roster the
    format can hold (65,535 rows of 13 columns, 14 MB) reads in 1.3 s and 51 MB, a 50 MB file in about 200 MB.
    The sheet's rows and cells are then counted as for the other formats."""
    _check_magic(path, _readable(path), _XLS_MAGIC, (_ZIP_MAGIC, " .xlsx 文件", ".xlsx"), _broken_xls)
    import xlrd  # only here: the other formats do not need it loaded

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except Exception as error:  # xlrd raises its own errors, and whatever its parsers meet in a damaged file
        raise _broken_xls(path.name) from error
    try:
        sheets = ((name, _xls_rows(book, index)) for index, name in enumerate(book.sheet_names()))
        return _sheets_table(sheets, book.nsheets, path.name, specs)
    except RosterError:
        raise
    except Exception as error:  # a damaged sheet shows only when it is loaded
        raise _broken_xls(path.name) from error
    finally:
        book.release_resources()


def _xls_rows(book: Any, index: int) -> Iterator[list[object]]:
    """A sheet's rows as values: dates as datetimes (a .xls keeps them as numbers), error cells empty."""
    import xlrd

    sheet = book.sheet_by_index(index)
    for row in sheet.get_rows():
        values: list[object] = []
        for cell in row:
            if cell.ctype == xlrd.XL_CELL_DATE:
                try:
                    values.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                except (xlrd.xldate.XLDateError, ValueError, OverflowError):
                    values.append(cell.value)
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                values.append(bool(cell.value))
            elif cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                values.append(None)
            else:
                values.append(cell.value)
        yield values


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _decode(data: bytes, name: str, *, partial: bool = False) -> str:
    """UTF-8 (with or without BOM), else GB18030 (what Chinese Excel writes); UTF-16 with a BOM (Excel's
    "Unicode text"). Both decodings are strict; text with NUL characters is UTF-16 without a BOM or binary.
    `partial`: the data is a file's first bytes, which may end inside a character."""
    encodings = ("utf-16",) if data.startswith(_UTF16_BOMS) else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(data, final=not partial)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise RosterError(
        f"无法识别文件 {name} 的编码：既不是 UTF-8 也不是 GB18030，请在 Excel 中另存为“CSV UTF-8”，"
        f"{_NOTHING_IMPORTED}"
    )


def _read_csv(path: Path, specs: Sequence[Sequence[Column]]) -> Table:
    head = _readable(path)
    if head.startswith(_ZIP_MAGIC):
        raise RosterError(
            f"文件 {path.name} 实际是 Excel (.xlsx) 文件：请把扩展名改为 .xlsx，{_NOTHING_IMPORTED}"
        )
    if head.startswith(_XLS_MAGIC):
        raise RosterError(f"文件 {path.name} 实际是旧版 .xls 文件：请把扩展名改为 .xls，{_NOTHING_IMPORTED}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RosterError(f"无法读取文件 {path.name}：{_os_reason(error)}，{_NOTHING_IMPORTED}") from error
    text = _decode(data, path.name)
    first_line = text.partition("\n")[0]
    dialect = csv.excel_tab if data.startswith(_UTF16_BOMS) and "\t" in first_line else csv.excel
    try:
        return _table(_head(csv.reader(io.StringIO(text, newline=""), dialect), path.name, specs), path.name)
    except csv.Error as error:
        raise RosterError(f"文件 {path.name} 不是有效的 CSV：{error}，{_NOTHING_IMPORTED}") from error


def read_table(path: Path, kind: Kind | None = None) -> Table:
    """The roster sheet of an .xlsx or .xls, or a .csv (UTF-8 with or without BOM, else GB18030), as a Table.

    The header is the row, among the first HEADER_SCAN_ROWS, naming the columns of `kind` (of either kind
    when None); the sheet is the first having such a row."""
    path = Path(path)
    specs = list(_SPECS.values()) if kind is None else [_SPECS[kind]]
    suffix = path.suffix.lower()
    readers = {".xlsx": _read_xlsx, ".xls": _read_xls, ".csv": _read_csv}
    if suffix not in readers:
        raise RosterError(
            f"不支持的文件类型“{path.suffix or path.name}”：只支持 .xlsx、.xls 和 .csv，{_NOTHING_IMPORTED}"
        )
    return readers[suffix](path, specs)


# --- import ---


NEW_PLACES_SHOWN = 30  # names of new places the summary lists (a county's first import makes hundreds)


@dataclass
class ImportSummary:
    kind: Kind
    counts: ImportCounts
    ignored_columns: list[str] = field(default_factory=list)
    without_mobile: int = 0  # households in the file with no mobile (none, or a landline only): no SMS

    def lines(self) -> list[str]:
        """zh-CN lines for the CLI."""
        counts = self.counts
        lines = [
            f"导入{KIND_LABELS[self.kind]}：新增 {counts.created}，更新 {counts.updated}，未变 {counts.unchanged}"
        ]
        places = [
            (label, number)
            for label, number in (
                ("县", counts.counties_created),
                ("乡镇", counts.townships_created),
                ("行政村", counts.villages_created),
            )
            if number
        ]
        if places:
            lines.append("新建地名：" + "，".join(f"{label} {number}" for label, number in places))
            shown = counts.new_places[:NEW_PLACES_SHOWN]
            more = len(counts.new_places) - len(shown)
            lines.append("  " + "、".join(shown) + (f" 等 {len(counts.new_places)} 个" if more else ""))
        if self.without_mobile:
            lines.append(f"没有手机号码的户：{self.without_mobile}（短信问卷会跳过这些户）")
        if self.ignored_columns:
            lines.append("忽略的列：" + "、".join(self.ignored_columns))
        return lines


async def import_file(
    db: Database, kind: Kind, path: Path, *, county: str | None = None, new_places: bool = False
) -> ImportSummary:
    """Read, check and import a roster file in one transaction, or raise RosterError having written nothing.

    `county` (cadres only) is where townships not yet in the database go; without it they go to the
    database's only county, and a cadres file naming unknown townships is refused when there is none or several.
    A 县/乡镇/行政村 not yet known where its parent already has places is refused (most often a typo, which
    would move households to a new place) unless `new_places`; the places made are listed in the summary.
    Every fault of the file is named in one pass: the database's checks run on the bad rows too.
    """
    if kind not in KIND_LABELS:
        raise ValueError(f"unknown roster kind {kind!r}; expected households or cadres")
    table = await asyncio.to_thread(read_table, Path(path), kind)
    if kind == "households":
        households = validate_households(table)
        async with db.session() as session:
            found = await check_households(
                session, households.refs, households.columns, new_places=new_places
            )
            if errors := households.errors + found:
                raise RosterError(errors, sheet=table.sheet)
            counts = await import_households(
                session, households.rows, households.columns, new_places=new_places
            )
        without_mobile = sum(row.phone is None for row in households.rows)
        return ImportSummary(kind, counts, households.ignored_columns, without_mobile)
    cadres = validate_cadres(table)
    async with db.session() as session:
        found = await check_cadres(session, cadres.refs, cadres.columns, county, new_places=new_places)
        if errors := cadres.errors + found:
            raise RosterError(errors, sheet=table.sheet)
        counts = await import_cadres(session, cadres.rows, cadres.columns, county, new_places=new_places)
    return ImportSummary(kind, counts, cadres.ignored_columns)
