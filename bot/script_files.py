"""Script files as counties keep them: zoufang's JSON, or an XLSForm workbook (.xlsx) read and written with
openpyxl here, so that survey/ (which maps the sheets to the script) does no file or spreadsheet I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from survey.script import Script, load_script
from survey.xlsform import FormError, Sheet, build_located, definition_from_sheets, sheet_of, sheets_of


def load_script_file(source: str | Path | None = None) -> Script:
    """The built-in script (None), a JSON script, or an XLSForm workbook; ScriptError naming every fault."""
    if source is not None and Path(source).suffix.lower() == ".xlsx":
        return load_xlsform(Path(source))
    return load_script(source)


def load_xlsform(path: Path) -> Script:
    return build_located(definition_from_sheets(read_workbook(path)))


def read_workbook(path: Path) -> dict[str, Sheet]:
    """The sheets of an .xlsx by lower-case name, as rows of header → text (blank rows left out)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise FormError([f"{path}: 无法读取 / cannot read: {exc.strerror or exc}"]) from exc
    except (
        Exception
    ) as exc:  # a damaged zip or XML raises whatever its parser raises: one reason, no traceback
        raise FormError(
            [f"{path}: 无法读取这个 Excel 文件，文件已损坏或不是 .xlsx / not a readable workbook"]
        ) from exc
    try:
        sheets = [sheet_of(ws.title, ws.iter_rows(values_only=True)) for ws in book]
    except Exception as exc:  # a sheet's XML cut off half-way is only met while reading it
        raise FormError(
            [f"{path}: 无法读取这个 Excel 文件，文件已损坏 / a sheet of the workbook is damaged"]
        ) from exc
    finally:
        book.close()
    return {sheet.name: sheet for sheet in sheets}


def write_xlsform(script: Script, path: Path) -> None:
    """The script as an XLSForm workbook a county edits in Excel (bold headers, frozen, readable widths)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets_of(script).items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for index, width in enumerate(_widths(rows), start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
    book.save(path)


def _widths(rows: list[list[Any]]) -> list[float]:
    return [min(60.0, max(8.0, *(len(str(v)) * 1.6 for v in column))) for column in zip(*rows, strict=False)]
