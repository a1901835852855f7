"""A report as a value (columns and rows), and its forms: a table on screen, CSV, XLSX, PNG.

Rows hold plain values: counts as int, rates as fractions 0..1, gaps in percentage points, flags as bool,
None where there is nothing to say. Each form formats them its own way (a spreadsheet keeps numbers numeric).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

FORMATS = ("table", "csv", "xlsx", "png")
DASH = "—"


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: str = "text"  # text | int | yuan | pct | points | flag | interval (screen: row[key] is (low, high))
    screen: bool = True  # shown in the terminal table
    file: bool = True  # written to CSV and XLSX
    wrap: bool = False  # long text: wrapped in its XLSX cells

    def header(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh


@dataclass
class Report:
    name: str  # the sheet's name and the default file name's stem
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    locale: str = "zh_CN"
    notes: list[str] = field(default_factory=list)  # printed under the screen table
    empty: str = ""  # said instead of a table when there are no rows
    chart: Callable[[Path], None] | None = None  # draws the PNG form, where the report has one

    def file_columns(self) -> list[Column]:
        return [c for c in self.columns if c.file and c.kind != "interval"]

    def screen_columns(self) -> list[Column]:
        return [c for c in self.columns if c.screen]


def _yes_no(value: bool | None, locale: str) -> str:
    if value is None:
        return ""
    if locale == "en":
        return "yes" if value else "no"
    return "是" if value else "否"


def cell_text(column: Column, value: Any, locale: str) -> str:
    """A value as it reads on screen and in CSV ("" for nothing; the screen shows a dash instead)."""
    if value is None:
        return ""
    if column.kind == "pct":
        return f"{value:.1%}"
    if column.kind == "points":
        return f"{value:+.1f}"
    if column.kind == "yuan":
        return f"{value:.2f}"
    if column.kind == "flag":
        return _yes_no(value, locale)
    if column.kind == "interval":
        low, high = value
        return "" if low is None else f"{low * 100:.1f}–{high:.1%}"
    return str(value)


# --- screen -----------------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO, width: int | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, never markup: a villager's "[b]" or "[/]" in a problem's description is shown as typed.
    console = Console(file=out, width=width or 160, color_system=None, force_terminal=False, soft_wrap=False)
    console.print(Text(report.title))
    if not report.rows:
        console.print(Text(report.empty))
    else:
        table = Table(show_lines=False)
        columns = report.screen_columns()
        for column in columns:
            numeric = column.kind in ("int", "yuan", "pct", "points")
            table.add_column(Text(column.header(report.locale)), justify="right" if numeric else "left")
        for row in report.rows:
            table.add_row(*(Text(cell_text(c, row.get(c.key), report.locale) or DASH) for c in columns))
        console.print(table)
    for note in filter(None, report.notes):
        console.print(Text(note))


# --- files ------------------------------------------------------------------------------------------------


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(column: Column, text: str) -> str:
    """Text a spreadsheet would run as a formula (a villager's SMS starting with "=") gets a leading quote."""
    return "'" + text if column.kind == "text" and text.startswith(_FORMULA_STARTS) else text


def csv_text(report: Report) -> str:
    """UTF-8 CSV with a byte-order mark (Excel in a Chinese locale needs it) and exactly one header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = report.file_columns()
    writer.writerow([c.header(report.locale) for c in columns])
    for row in report.rows:
        writer.writerow([_inert(c, cell_text(c, row.get(c.key), report.locale)) for c in columns])
    notes = file_notes(report)
    if notes:  # below the table, after an empty row, one a row: what the screen prints under it
        writer.writerow([])
        writer.writerows([note] for note in notes)
    return "\ufeff" + buffer.getvalue()


def file_notes(report: Report) -> list[str]:
    """The notes a file carries under its table (counts, rates, definitions, sign-off lines): the same lines
    the screen prints under the table, in every form — CSV, XLSX and the work log alike."""
    return [line for note in report.notes if note for line in note.splitlines() if line.strip()]


_NUMBER_FORMATS = {"pct": "0.0%", "points": "+0.0;-0.0;0.0", "int": "0", "yuan": "0.00"}


def write_xlsx(report: Report, path: Path) -> None:
    """One sheet named after the report, headers in the report's language, header row frozen."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(report.title)
    columns = report.file_columns()
    sheet.append([c.header(report.locale) for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in report.rows:
        sheet.append([_xlsx_value(c, row.get(c.key), report.locale) for c in columns])
        for cell, column in zip(sheet[sheet.max_row], columns, strict=True):
            if column.kind == "text" and isinstance(cell.value, str):
                cell.data_type = "s"  # a string, never a formula, whatever it starts with
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        if column.kind in _NUMBER_FORMATS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = _NUMBER_FORMATS[column.kind]
        if column.wrap:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[letter].width = _width(column, report)
    first = sheet.max_row + 2  # under the table, an empty row between, one note a row in column A
    for offset, note in enumerate(file_notes(report)):
        sheet.cell(row=first + offset, column=1, value=note).data_type = "s"
    sheet.freeze_panes = "A2"
    book.save(path)


def _sheet_title(title: str) -> str:
    """Excel limits sheet names to 31 characters and forbids a few."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "report"


def _xlsx_value(column: Column, value: Any, locale: str) -> Any:
    if value is None:
        return None
    if column.kind == "text" and isinstance(value, str):
        # openpyxl refuses control characters in cells; a pasted SMS may carry them
        return "".join(ch for ch in value if ch in "\t\n" or ord(ch) >= 32)
    if column.kind == "flag":
        return _yes_no(value, locale)
    if column.kind == "points":
        return round(value, 1)
    return value


def _display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: CJK characters are about two wide."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _width(column: Column, report: Report, sample: int = 200) -> float:
    texts = [column.header(report.locale)]
    texts += [cell_text(column, row.get(column.key), report.locale) for row in report.rows[:sample]]
    return min(60, max(6, max(_display_width(t) for t in texts) + 2))


def _write_utf8(out: TextIO, text: str) -> None:
    """CSV is UTF-8 whatever the console's encoding (GBK on a Chinese Windows): write bytes where we can."""
    binary = getattr(out, "buffer", None)
    if binary is None:
        out.write(text)
        return
    out.flush()
    binary.write(text.encode("utf-8"))
    binary.flush()


# --- choosing the form -------------------------------------------------------------------------------------


def default_output(report: Report, fmt: str, period_label: str = "") -> Path:
    stem = f"{report.name}-{period_label}" if period_label else report.name
    return Path(f"{stem}.{fmt}")


def emit(report: Report, fmt: str, output: Path | None, out: TextIO, period_label: str = "") -> Path | None:
    """Write the report in the asked form; return the file written, or None when it went to `out`."""
    if fmt == "table":
        if output is None:
            print_table(report, out)
            return None
        with output.open("w", encoding="utf-8") as handle:
            print_table(report, handle)
        return output
    if fmt == "csv":
        if output is None:
            _write_utf8(out, csv_text(report))
            return None
        output.write_text(csv_text(report), encoding="utf-8", newline="")
        return output
    path = output or default_output(report, fmt, period_label)
    if fmt == "xlsx":
        write_xlsx(report, path)
        return path
    if fmt == "png" and report.chart is not None:
        report.chart(path)
        return path
    raise ValueError(f"report {report.name} has no {fmt} form")


def formats_of(report_has_chart: bool) -> Sequence[str]:
    return FORMATS if report_has_chart else tuple(f for f in FORMATS if f != "png")
