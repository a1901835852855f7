"""The PNG charts: valid files, Chinese glyphs really in the font (with a control that the check can fail), gaps."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from matplotlib.image import imread

from bot.reports.output import (
    NO_DATA,
    _cjk_rc,
    _count_figure,
    _rate_figure,
    cjk_font_path,
    count_bars,
    rate_bars,
)

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SATISFACTION_TITLE = "满意度（按村）"
VILLAGES = ["王家村", "李庄", "张家湾村", "石桥村"]
SATISFACTION = [
    ("村民短信", [0.95, 0.82, None, 1.0], [0.85, 0.70, None, 0.72], [0.99, 0.90, None, 1.0]),
    ("走访记录", [0.92, None, 0.88, 0.97], [0.80, None, 0.75, 0.85], [0.97, None, 0.95, 0.995]),
]
TARGET_LABEL = "目标 90%"
COVERAGE_TITLE = "入户率（按角色）"
ROLES = ["驻村工作队", "帮扶责任人", "第一书记"]
COVERAGE = [("入户率", [1.0, 0.86, 0.5], [None, 0.80, None], [None, 0.90, None])]
PROBLEMS_TITLE = "问题新增与办结（按月）"
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04"]
PROBLEMS = [("新增", [5, 8, 0, 12]), ("办结", [2, 6, 5, 1])]

TEST_TEXT = [
    SATISFACTION_TITLE,
    *VILLAGES,
    *(name for name, *_ in SATISFACTION),
    TARGET_LABEL,
    "满意度",
    COVERAGE_TITLE,
    *ROLES,
    "入户率",
    "目标 100%",
    PROBLEMS_TITLE,
    *(name for name, _ in PROBLEMS),
    "问题数",
    NO_DATA,
]


def chinese_chars(texts: list[str]) -> set[str]:
    return {ch for text in texts for ch in text if "\u4e00" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"}


def missing_glyphs(font_file: str | Path, chars: set[str]) -> set[str]:
    font = FT2Font(str(font_file))
    return {ch for ch in chars if font.get_char_index(ord(ch)) == 0}


def glyph_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing" in str(w.message)]


def assert_png(path: Path, min_width: int = 300, min_height: int = 200) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width, *_ = imread(path).shape
    assert width >= min_width and height >= min_height, (width, height)
    return width, height


def draw_all(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "satisfaction.png", tmp_path / "coverage.png", tmp_path / "problems.png"]
    rate_bars(paths[0], SATISFACTION_TITLE, VILLAGES, SATISFACTION, 0.9, TARGET_LABEL, "满意度")
    rate_bars(paths[1], COVERAGE_TITLE, ROLES, COVERAGE, 1.0, "目标 100%", "入户率")
    count_bars(paths[2], PROBLEMS_TITLE, MONTHS, PROBLEMS, "问题数")
    return paths


def test_each_chart_is_a_png(tmp_path):
    for path in draw_all(tmp_path):
        assert_png(path)


def test_the_font_has_every_chinese_character_the_charts_use():
    chars = chinese_chars(TEST_TEXT)
    assert len(chars) > 30  # the check below looks at real text
    assert cjk_font_path().is_file()
    assert missing_glyphs(cjk_font_path(), chars) == set()


def test_drawing_warns_of_no_missing_glyph(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw_all(tmp_path)
        count_bars(tmp_path / "empty.png", PROBLEMS_TITLE, [], [], "问题数")
    assert glyph_warnings(caught) == []


def test_negative_control_matplotlibs_default_font_has_no_chinese(tmp_path):
    """Both checks above can fail: DejaVu Sans lacks 满, and drawing it in that font warns of the missing glyph."""
    dejavu = font_manager.findfont("DejaVu Sans", fallback_to_default=False)
    assert "满" in missing_glyphs(dejavu, chinese_chars(TEST_TEXT))

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with (
        warnings.catch_warnings(record=True) as caught,
        matplotlib.rc_context({"font.family": ["DejaVu Sans"]}),
    ):
        warnings.simplefilter("always")
        fig = Figure()
        FigureCanvasAgg(fig)
        fig.suptitle("满意度")
        fig.savefig(io.BytesIO(), format="png")
    assert any("满" in message or "28385" in message for message in glyph_warnings(caught))


def test_the_font_is_set_per_chart_not_globally(tmp_path):
    before = list(matplotlib.rcParams["font.family"])
    draw_all(tmp_path)
    assert matplotlib.rcParams["font.family"] == before


def test_none_draws_no_bar_and_no_whisker():
    with _cjk_rc():
        fig = _rate_figure(SATISFACTION_TITLE, VILLAGES, SATISFACTION, 0.9, TARGET_LABEL, "满意度")
    ax = fig.axes[0]
    bars = [container for container in ax.containers if container.__class__.__name__ == "BarContainer"]
    whiskers = [
        container for container in ax.containers if container.__class__.__name__ == "ErrorbarContainer"
    ]
    assert [len(bar) for bar in bars] == [3, 3]  # one None in each series
    assert sorted(bar.get_height() for bar in bars[0]) == pytest.approx([0.82, 0.95, 1.0])
    assert [len(whisker.lines[2][0].get_segments()) for whisker in whiskers] == [3, 3]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["村民短信", "走访记录", TARGET_LABEL]


def test_missing_intervals_draw_bars_without_whiskers(tmp_path):
    with _cjk_rc():
        fig = _rate_figure(COVERAGE_TITLE, ROLES, COVERAGE, None, "", "入户率")
    ax = fig.axes[0]
    whiskers = [
        container for container in ax.containers if container.__class__.__name__ == "ErrorbarContainer"
    ]
    assert len(ax.patches) == 3
    assert [len(whisker.lines[2][0].get_segments()) for whisker in whiskers] == [1]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "入户率"
    ]  # no target, no target entry

    rate_bars(
        tmp_path / "all-none.png",
        COVERAGE_TITLE,
        ROLES,
        [("入户率", [None] * 3, [None] * 3, [None] * 3)],
        1.0,
        "目标",
        "入户率",
    )
    assert_png(tmp_path / "all-none.png")


def test_empty_charts_say_no_data(tmp_path):
    rate_bars(tmp_path / "rate.png", SATISFACTION_TITLE, [], [], 0.9, TARGET_LABEL, "满意度")
    count_bars(tmp_path / "count.png", PROBLEMS_TITLE, [], [], "问题数")
    assert_png(tmp_path / "rate.png")
    assert_png(tmp_path / "count.png")
    with _cjk_rc():
        for fig in (_rate_figure("t", [], [], 0.9, "", ""), _count_figure("t", [], [], "")):
            assert NO_DATA in [text.get_text() for text in fig.axes[0].texts]


def test_sixty_villages_widen_the_figure_and_turn_the_labels(tmp_path):
    villages = [f"第{i}村" if i % 3 else f"张家湾{i}村" for i in range(60)]
    values = [0.6 + (i % 10) / 25 for i in range(60)]
    series = [("村民短信", values, [v - 0.1 for v in values], [v + 0.03 for v in values])]
    rate_bars(tmp_path / "many.png", SATISFACTION_TITLE, villages, series, 0.9, TARGET_LABEL, "满意度")
    few_width, _ = assert_png(draw_all(tmp_path)[0])
    many_width, _ = assert_png(tmp_path / "many.png")
    assert few_width < many_width <= 24 * 120 + 200  # wider, but capped (24 in at 120 dpi, plus the legend)
    with _cjk_rc():
        fig = _rate_figure(SATISFACTION_TITLE, villages, series, 0.9, TARGET_LABEL, "满意度")
    assert all(label.get_rotation() > 0 for label in fig.axes[0].get_xticklabels())


def test_counts_label_their_bars_when_few(tmp_path):
    with _cjk_rc():
        fig = _count_figure(PROBLEMS_TITLE, MONTHS, PROBLEMS, "问题数")
    ax = fig.axes[0]
    assert [text.get_text() for text in ax.texts] == ["5", "8", "0", "12", "2", "6", "5", "1"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["新增", "办结"]


def test_a_series_of_the_wrong_length_is_refused(tmp_path):
    with pytest.raises(ValueError, match="走访记录"):
        rate_bars(tmp_path / "x.png", "t", VILLAGES, [("走访记录", [0.9], [0.8], [0.95])], None, "", "")
    with pytest.raises(ValueError, match="办结"):
        count_bars(tmp_path / "x.png", "t", MONTHS, [("办结", [1, 2])], "")
    assert not (tmp_path / "x.png").exists()


def test_importing_the_reports_does_not_import_matplotlib():
    """The charts live in bot/reports/output.py with the other forms; matplotlib (and rich, openpyxl) wait until
    a form that needs them is asked for, and no report brings the Telegram library along."""
    libraries = "('matplotlib', 'rich', 'openpyxl', 'aiogram')"
    code = f"import sys, bot.reports.output; print(sorted(m for m in {libraries} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
