"""PNG charts for the reports: satisfaction by village, coverage by role, problems opened and closed per month.

They are drawn headless (the Agg canvas, no pyplot and no screen) with the Noto Sans CJK SC font that the
`mplfonts` package ships, because matplotlib's bundled DejaVu Sans has no Chinese glyphs and would draw empty
boxes. matplotlib is imported inside the functions, so the CLI pays for it only when a chart is asked for, and
the font is set with `matplotlib.rc_context` per chart, never in the process-wide rcParams.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CJK_FONT_FILE_NAME", "cjk_font_path", "count_bars", "rate_bars"]

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
