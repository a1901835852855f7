"""Roster files (.xlsx, .csv) read into tables, checked and imported in one transaction.

`import_file` is what the CLI calls: it reads, validates, checks against the database and writes
everything in one transaction, or raises `RosterError` having written nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from storage.db import Database
from storage.roster import ImportCounts, check_cadres, check_households, import_cadres, import_households
from survey.roster import RosterError, RowError, validate_cadres, validate_households

__all__ = ["ImportSummary", "Kind", "RosterError", "RowError", "Table", "import_file", "read_table"]

Kind = Literal["households", "cadres"]
KIND_LABELS: dict[str, str] = {"households": "户", "cadres": "干部"}
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_NOTHING_IMPORTED = "未导入任何数据。"


@dataclass
class Table:
    """A sheet as text: the header row and the non-blank rows below it, each with its spreadsheet row number."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)  # parallel to rows; the header is row 1

    def numbered_rows(self) -> Iterator[tuple[int, list[str]]]:
        return zip(self.row_numbers, self.rows, strict=True)


# --- cells ---


def cell_text(value: object) -> str:
    """A cell as stripped text: None → "", 3.0 → "3", 13812345678.0 → "13812345678", dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value)
    return text.strip().strip(_INVISIBLE).strip()


def _table(records: Iterable[Sequence[object]], name: str) -> Table:
    """The first non-blank record is the header; blank records are dropped but keep their numbers."""
    header: list[str] | None = None
    table = Table(headers=[])
    for number, record in enumerate(records, start=1):
        cells = [cell_text(value) for value in record]
        if not any(cells):
            continue
        if header is None:
            header = cells
            table.headers = cells
            continue
        table.rows.append(cells + [""] * (len(header) - len(cells)))
        table.row_numbers.append(number)
    if header is None:
        raise RosterError(f"文件 {name} 是空的，{_NOTHING_IMPORTED}")
    if not table.rows:
        raise RosterError(f"文件 {name} 只有表头，没有数据行，{_NOTHING_IMPORTED}")
    return table


# --- formats ---


def _read_xlsx(path: Path) -> Table:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise RosterError(
            f"无法读取 Excel 文件 {path.name}：文件已损坏或不是 .xlsx 格式，{_NOTHING_IMPORTED}"
        ) from error
    try:
        if not workbook.worksheets:
            raise RosterError(f"文件 {path.name} 没有工作表，{_NOTHING_IMPORTED}")
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some writers record a wrong used range; read every cell there is
        return _table(sheet.iter_rows(min_row=1, values_only=True), path.name)
    finally:
        workbook.close()


def _decode(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError(
        f"无法识别文件 {name} 的编码：请另存为 UTF-8 或 GB18030 编码的 CSV，{_NOTHING_IMPORTED}"
    )


def _read_csv(path: Path) -> Table:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RosterError(
            f"无法读取文件 {path.name}：{error.strerror or error}，{_NOTHING_IMPORTED}"
        ) from error
    text = _decode(data, path.name)
    try:
        return _table(list(csv.reader(io.StringIO(text, newline=""))), path.name)
    except csv.Error as error:
        raise RosterError(f"文件 {path.name} 不是有效的 CSV：{error}，{_NOTHING_IMPORTED}") from error


def read_table(path: Path) -> Table:
    """The first sheet of an .xlsx, or a .csv (UTF-8 with or without BOM, else GB18030), as a Table."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        hint = "旧版 .xls 请在 Excel 中另存为 .xlsx 或 .csv" if suffix == ".xls" else "只支持 .xlsx 和 .csv"
        raise RosterError(f"不支持的文件类型“{path.suffix or path.name}”：{hint}，{_NOTHING_IMPORTED}")
    if not path.is_file():
        raise RosterError(f"找不到文件 {path}，{_NOTHING_IMPORTED}")
    return _read_xlsx(path) if suffix == ".xlsx" else _read_csv(path)


# --- import ---


@dataclass
class ImportSummary:
    kind: Kind
    counts: ImportCounts
    ignored_columns: list[str] = field(default_factory=list)

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
        if self.ignored_columns:
            lines.append("忽略的列：" + "、".join(self.ignored_columns))
        return lines


async def import_file(db: Database, kind: Kind, path: Path, *, county: str | None = None) -> ImportSummary:
    """Read, check and import a roster file in one transaction, or raise RosterError having written nothing.

    `county` (cadres only) is where townships not yet in the database go; without it they go to the
    database's only county, and a cadres file naming unknown townships is refused when there is none or several.
    """
    if kind not in KIND_LABELS:
        raise ValueError(f"unknown roster kind {kind!r}; expected households or cadres")
    table = await asyncio.to_thread(read_table, Path(path))
    if kind == "households":
        households = validate_households(table)
        async with db.session() as session:
            errors = households.errors + await check_households(session, households.rows, households.columns)
            if errors:
                raise RosterError(errors)
            counts = await import_households(session, households.rows, households.columns)
        return ImportSummary(kind, counts, households.ignored_columns)
    cadres = validate_cadres(table)
    async with db.session() as session:
        errors = cadres.errors + await check_cadres(session, cadres.rows, cadres.columns, county)
        if errors:
            raise RosterError(errors)
        counts = await import_cadres(session, cadres.rows, cadres.columns, county)
    return ImportSummary(kind, counts, cadres.ignored_columns)
