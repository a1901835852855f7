"""A report as a value (columns and rows), and its forms: a table on screen, CSV, XLSX, PNG.

Rows hold plain values: counts as int, rates as fractions 0..1, gaps in percentage points, flags as bool,
None where there is nothing to say. Each form formats them its own way (a spreadsheet keeps numbers numeric).

The PNG charts (satisfaction by village, coverage by role, problems opened and closed per month) are drawn
headless (the Agg canvas, no pyplot and no screen) with the Noto Sans CJK SC font that the `mplfonts` package
ships, because matplotlib's bundled DejaVu Sans has no Chinese glyphs and would draw empty boxes. rich, openpyxl
and matplotlib are imported inside the functions, so the CLI pays for each only when its form is asked for, and
the font is set with `matplotlib.rc_context` per chart, never in the process-wide rcParams.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Callable, Iterator, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = ("table", "csv", "xlsx", "png")
DASH = "—"


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the header: in the report's language (the reports take it from messages/), or in Chinese
    en: str | None = None  # the English header of a Chinese label (bot/worklog); None: label is the header
    kind: str = "text"  # text | int | yuan | pct | points | flag | interval (screen: row[key] is (low, high))
    screen: bool = True  # shown in the terminal table
    file: bool = True  # written to CSV and XLSX
    wrap: bool = False  # long text: wrapped in its XLSX cells

    def header(self, locale: str) -> str:
        # the one locale choice left here: bot/worklog's columns still carry both headers in code
        return self.en if self.en is not None and locale == "en" else self.label


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
    yes, no = _flag_words(locale)
    return yes if value else no


@functools.cache
def _flag_words(locale: str) -> tuple[str, str]:
    """是/否 as a flag cell reads, from messages/ once per language (jinja2 loads on the first flag shown)."""
    from messages import error_text

    source = "reports/parts.txt"
    return error_text("flag_yes", locale, source=source), error_text("flag_no", locale, source=source)


def cell_text(column: Column, value: Any, locale: str) -> str:
    """A value as it reads on screen and in CSV ("" for nothing; the screen shows a dash instead)."""
    if value is None:
        return ""
    if isinstance(value, str):  # a figure that was not collected says so (未采集) in any column
        return value
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


SCREEN_WIDTH = 100  # a terminal table fits this many columns (a CJK character takes two), long cells wrapped
WIDE = 100_000  # `--wide`: every column at its natural width, nothing wrapped


def print_table(report: Report, out: TextIO, width: int | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, never markup: a villager's "[b]" or "[/]" in a problem's description is shown as typed.
    console = Console(
        file=out, width=width or SCREEN_WIDTH, color_system=None, force_terminal=False, soft_wrap=False
    )
    console.print(Text(report.title))
    if not report.rows:
        console.print(Text(report.empty))
    else:
        table = Table(show_lines=False)
        columns = report.screen_columns()
        cells = [
            [cell_text(c, row.get(c.key), report.locale) or DASH for c in columns] for row in report.rows
        ]
        for i, column in enumerate(columns):
            numeric = column.kind in ("int", "yuan", "pct", "points")
            header = column.header(report.locale)
            if width != WIDE:  # a long header takes lines, not the width its cells do not need
                header = _fold(header, max(8, max((_display_width(row[i]) for row in cells), default=0)))
            table.add_column(
                Text(header),
                justify="right" if numeric else "left",
                no_wrap=width == WIDE,
                overflow="fold",
            )
        for row_cells in cells:
            table.add_row(*(Text(text) for text in row_cells))
        console.print(table)
    for note in filter(None, report.notes):
        console.print(Text(note))


def _fold(text: str, limit: int) -> str:
    """`text` in lines of at most `limit` display columns, broken at a space or between any characters."""
    lines, line = [], ""
    for char in text:
        if line and _display_width(line + char) > limit:
            lines.append(line.rstrip())
            line = "" if char == " " else char
        else:
            line += char
    return "\n".join([*lines, line])


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


# --- charts (PNG) -----------------------------------------------------------------------------------------

CJK_FONT_FILE_NAME = "NotoSansCJKsc-Regular.otf"
NO_DATA = "无数据"
DPI = 120
_HEIGHT = 4.8  # inches
_MIN_WIDTH = 6.4
_MAX_WIDTH = 24.0  # 2880 px at DPI: 60 villages of two bars still get ~45 px a group
_INCH_PER_BAR = 0.22
_INCH_PER_GROUP = 0.25  # the gap and the label between groups
_TARGET_COLOR = "tab:red"

RateSeries = tuple[str, Sequence[float | None], Sequence[float | None], Sequence[float | None]]
CountSeries = tuple[str, Sequence[int]]


@functools.cache
def cjk_font_path() -> Path:
    """The Chinese font file inside the installed `mplfonts` package (its data only, not its Python API)."""
    import importlib.resources

    path = Path(str(importlib.resources.files("mplfonts") / "fonts" / CJK_FONT_FILE_NAME))
    if not path.is_file():
        raise FileNotFoundError(f"{CJK_FONT_FILE_NAME} not found in the mplfonts package ({path})")
    return path


@functools.cache
def _cjk_family() -> str:
    """Register the font with matplotlib once, so it can be chosen by family name like any installed font."""
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=path).get_name()


@contextmanager
def _cjk_rc() -> Iterator[None]:
    """rcParams for one chart: text in the CJK font (DejaVu Sans as per-glyph fallback), ASCII hyphen for minus."""
    import matplotlib

    rc = {"font.family": [_cjk_family(), "DejaVu Sans"], "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        yield


def rate_bars(
    path: Path,
    title: str,
    labels: Sequence[str],
    series: Sequence[RateSeries],
    target: float | None,
    target_label: str,
    ylabel: str,
) -> None:
    """Grouped bars of fractions (0..1, shown as 0–100 %) with low–high whiskers and a dashed target line.

    One group per label and one bar per series `(name, values, lows, highs)`; the whiskers show an interval
    (e.g. Wilson's), so a small village's 100 % is not read as certain. A None (or NaN) value draws no bar
    and no whisker, and a None low or high draws no whisker: nothing is made up for what was not measured.
    (A measured 0 % is also a flat bar; its whisker, if given, is what tells it apart.)
    """
    for name, values, lows, highs in series:
        _check_lengths(labels, name, values, lows, highs)
    with _cjk_rc():
        fig = _rate_figure(title, labels, series, target, target_label, ylabel)
        _save(fig, path)


def count_bars(
    path: Path, title: str, labels: Sequence[str], series: Sequence[CountSeries], ylabel: str
) -> None:
    """Grouped bars of counts, one group per label (e.g. problems opened vs closed per month)."""
    for name, values in series:
        _check_lengths(labels, name, values)
    with _cjk_rc():
        fig = _count_figure(title, labels, series, ylabel)
        _save(fig, path)


def _check_lengths(labels: Sequence[str], name: str, *columns: Sized) -> None:
    """A list shorter than the labels would silently shift bars onto the wrong village; refuse it instead."""
    for column in columns:
        if len(column) != len(labels):
            raise ValueError(f"series {name!r}: {len(column)} values for {len(labels)} labels")


def _present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _rate_figure(
    title: str,
    labels: Sequence[str],
    series: Sequence[RateSeries],
    target: float | None,
    target_label: str,
    ylabel: str,
) -> Figure:
    """Build (not save) the rate chart; call inside `_cjk_rc()`, the tests inspect what it draws."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MultipleLocator, PercentFormatter

    if not labels or not series:
        return _no_data_figure(title)
    fig, ax = _bars_axes(title, labels, len(series), ylabel)
    handles: list[Patch | Line2D] = []
    for i, (name, values, lows, highs) in enumerate(series):
        color = f"C{i}"
        handles.append(Patch(facecolor=color, label=name))
        xs = _offsets(len(labels), len(series), i)
        drawn = [(x, v) for x, v in zip(xs, values, strict=True) if _present(v)]
        if drawn:
            ax.bar([x for x, _ in drawn], [v for _, v in drawn], _bar_width(len(series)), color=color)
        whiskers = [
            (x, v, lo, hi)
            for x, v, lo, hi in zip(xs, values, lows, highs, strict=True)
            if _present(v) and _present(lo) and _present(hi)
        ]
        if whiskers:
            ax.errorbar(
                [x for x, *_ in whiskers],
                [v for _, v, _, _ in whiskers],
                yerr=[
                    [max(v - lo, 0.0) for _, v, lo, _ in whiskers],
                    [max(hi - v, 0.0) for _, v, _, hi in whiskers],
                ],
                fmt="none",
                ecolor="black",
                elinewidth=1,
                capsize=3 if len(labels) <= 30 else 1.5,
            )
    if target is not None:
        ax.axhline(target, color=_TARGET_COLOR, linestyle="--", linewidth=1.2)
        handles.append(Line2D([], [], color=_TARGET_COLOR, linestyle="--", label=target_label))
    ax.set_ylim(0, 1.05)  # room above 100 % for a whisker's cap
    ax.yaxis.set_major_locator(MultipleLocator(0.1 if fig.get_figwidth() > 10 else 0.2))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    _legend(ax, handles)
    return fig


def _count_figure(title: str, labels: Sequence[str], series: Sequence[CountSeries], ylabel: str) -> Figure:
    """Build (not save) the count chart; call inside `_cjk_rc()`."""
    from matplotlib.ticker import MaxNLocator

    if not labels or not series:
        return _no_data_figure(title)
    fig, ax = _bars_axes(title, labels, len(series), ylabel)
    few = len(labels) * len(series) <= 24
    for i, (name, values) in enumerate(series):
        bars = ax.bar(
            _offsets(len(labels), len(series), i), values, _bar_width(len(series)), label=name, color=f"C{i}"
        )
        if few:  # the number on top of each bar, while there is room for it
            ax.bar_label(bars, padding=2, fontsize="small")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.margins(y=0.12)
    handles, _ = ax.get_legend_handles_labels()
    _legend(ax, handles)
    return fig


def _figure_width(n_labels: int, n_series: int) -> float:
    """Grow with the bars so 60 villages stay readable, within a cap a report page or screen can still hold."""
    width = 1.5 + n_labels * (_INCH_PER_GROUP + _INCH_PER_BAR * n_series)
    return min(_MAX_WIDTH, max(_MIN_WIDTH, width))


def _bar_width(n_series: int) -> float:
    return 0.8 / n_series


def _offsets(n_labels: int, n_series: int, i: int) -> list[float]:
    """x of series i's bar in each group: the groups sit at 0..n-1, their bars side by side around them."""
    width = _bar_width(n_series)
    shift = (i - (n_series - 1) / 2) * width
    return [x + shift for x in range(n_labels)]


def _bars_axes(title: str, labels: Sequence[str], n_series: int, ylabel: str) -> tuple[Figure, Axes]:
    """A figure sized for the labels, with the x labels turned once they would run into each other."""
    fig = _new_figure(_figure_width(len(labels), n_series))
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    inches_per_label = fig.get_figwidth() / len(labels)
    if max(_text_inches(label) for label in labels) > inches_per_label:
        rotation = 90 if inches_per_label < 0.35 else 45
        for tick in ax.get_xticklabels():
            tick.set_rotation(rotation)
            tick.set_horizontalalignment("center" if rotation == 90 else "right")
            tick.set_rotation_mode("anchor" if rotation == 45 else "default")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def _text_inches(text: str) -> float:
    """Rough width at 10 pt: a CJK character is a full em, a Latin one about half."""
    return sum(0.16 if ord(ch) >= 0x2E80 else 0.09 for ch in text)


def _legend(ax: Axes, handles: Sequence[object]) -> None:
    """Outside the plot, right of it, so it never hides a bar near 100 %."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)


def _no_data_figure(title: str) -> Figure:
    """Still a PNG, so a report that embeds it does not break; it says 无数据 rather than showing empty axes."""
    fig = _new_figure(_MIN_WIDTH)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_axis_off()
    ax.text(
        0.5, 0.5, NO_DATA, ha="center", va="center", fontsize="xx-large", color="0.4", transform=ax.transAxes
    )
    return fig


def _new_figure(width: float) -> Figure:
    """A Figure on its own Agg canvas: no pyplot, no global backend, nothing kept after it is saved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, _HEIGHT), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")


# --- choosing the form -------------------------------------------------------------------------------------


def default_output(report: Report, fmt: str, period_label: str = "") -> Path:
    stem = f"{report.name}-{period_label}" if period_label else report.name
    return Path(f"{stem}.{fmt}")


def emit(
    report: Report,
    fmt: str,
    output: Path | None,
    out: TextIO,
    period_label: str = "",
    width: int | None = None,
) -> Path | None:
    """Write the report in the asked form; return the file written, or None when it went to `out`. A table is
    `width` columns wide at most (default SCREEN_WIDTH; WIDE: unwrapped)."""
    if fmt == "table":
        if output is None:
            print_table(report, out, width)
            return None
        with output.open("w", encoding="utf-8") as handle:
            print_table(report, handle, width)
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
