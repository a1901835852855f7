from decimal import Decimal

import pytest

from survey.answers import (
    PARSERS,
    AnswerError,
    is_blank,
    normalize,
    parse_choice,
    parse_choices,
    parse_date,
    parse_decimal,
    parse_integer,
    parse_location,
    parse_number,
    parse_text,
    parse_yes_no,
)


def error_of(func, *args) -> AnswerError:
    with pytest.raises(AnswerError) as caught:
        func(*args)
    return caught.value


# --------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("１２", "12"),
        ("  a   b \t c ", "a b c"),
        ("４５．１２，１２２．５", "45.12,122.5"),
        ("\u3000是\u3000", "是"),
        ("Ｙｅｓ", "Yes"),
        ("1\u200b2", "12"),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("", True), ("  \t\n", True), ("\u3000", True), ("0", False)])
def test_is_blank(raw: str, expected: bool) -> None:
    assert is_blank(raw) is expected


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", "12"),
        ("１２", "12"),
        (" 7 ", "7"),
        ("-5", "-5"),
        ("+5", "5"),
        ("负5", "-5"),
        ("1.5", "1.5"),
        ("0.25", "0.25"),
        ("12,000", "12000"),
        ("12，000", "12000"),
        ("1,234,567.5", "1234567.5"),
        ("三", "3"),
        ("十", "10"),
        ("十二", "12"),
        ("二十", "20"),
        ("二十五", "25"),
        ("一百零五", "105"),
        ("一千零五十", "1050"),
        ("两千", "2000"),
        ("两千五", "2500"),
        ("一万二千", "12000"),
        ("三万五", "35000"),
        ("二十万", "200000"),
        ("零", "0"),
        ("1.2万", "12000"),
        ("1万2", "12000"),
        ("1万2500", "12500"),
        ("5千", "5000"),
        ("3百", "300"),
        ("2w", "20000"),
        ("2W", "20000"),
        ("3k", "3000"),
        ("1.5k", "1500"),
        ("3人", "3"),
        ("3 人", "3"),
        ("5口人", "5"),
        ("4个", "4"),
        ("1.2万元", "12000"),
        ("500块", "500"),
        ("500块钱", "500"),
        ("60岁", "60"),
        ("2户", "2"),
        ("3次", "3"),
        ("5亩", "5"),
        ("100斤", "100"),
        ("2名", "2"),
        ("2位", "2"),
        ("3间", "3"),
        ("两千元", "2000"),
        ("12。", "12"),
    ],
)
def test_parse_number(raw: str, expected: str) -> None:
    value = parse_number(raw)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)


@pytest.mark.parametrize(
    "raw",
    ["", "  ", "abc", "1.2.3", "万", "百", "人", "1,2", "3 5", "--5", "一二", "百万万", "12a", "十百"],
)
def test_parse_number_rejects(raw: str) -> None:
    assert error_of(parse_number, raw).code == "not_number"


def test_multiplied_numbers_are_plain_integers() -> None:
    assert str(parse_number("1.2万")) == "12000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12),
        ("１２", 12),
        ("-5", -5),
        ("三", 3),
        ("一万二千", 12000),
        ("1.2万", 12000),
        ("3人", 3),
        ("2.0", 2),
    ],
)
def test_parse_integer(raw: str, expected: int) -> None:
    value = parse_integer(raw)
    assert type(value) is int
    assert value == expected


@pytest.mark.parametrize("raw", ["1.5", "abc", "1.2.3", "万", "1.2.3万", "0.5人"])
def test_parse_integer_rejects(raw: str) -> None:
    assert error_of(parse_integer, raw).code == "not_integer"


@pytest.mark.parametrize(
    ("raw", "expected"), [("1.5", "1.5"), ("1.25万", "12500"), ("-0.5", "-0.5"), ("3", "3")]
)
def test_parse_decimal(raw: str, expected: str) -> None:
    assert parse_decimal(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["abc", "1.2.3", "万"])
def test_parse_decimal_rejects(raw: str) -> None:
    assert error_of(parse_decimal, raw).code == "not_number"


@pytest.mark.parametrize("func", [parse_integer, parse_decimal])
@pytest.mark.parametrize("raw", ["", "   ", "。"])
def test_numbers_empty(func, raw: str) -> None:
    assert error_of(func, raw).code == "empty"


# --------------------------------------------------------------------------- yes / no


@pytest.mark.parametrize(
    "raw",
    ["是", "是的", "有", "对", "对的", "嗯", "好", "要", "需要", "已", "已经", "可以", "是滴",
     "y", "Y", "yes", "YES", "Yes", "true", "1", "１", "✓", "√",
     "是。", "有！", "yes!", "对.", " 是 ", "ｙｅｓ"],
)  # fmt: skip
def test_yes(raw: str) -> None:
    assert parse_yes_no(raw) is True


@pytest.mark.parametrize(
    "raw",
    ["否", "不", "不是", "没", "没有", "无", "不对", "不要", "不需要", "未",
     "n", "N", "no", "NO", "false", "0", "✗", "×", "否。", "没有。", "不是！", "no.", " 无 "],
)  # fmt: skip
def test_no(raw: str) -> None:
    assert parse_yes_no(raw) is False


@pytest.mark.parametrize("raw", ["2", "也许", "maybe", "是不是", "10"])
def test_yes_no_rejects(raw: str) -> None:
    assert error_of(parse_yes_no, raw).code == "not_yes_no"


@pytest.mark.parametrize("raw", ["", "  ", "。"])
def test_yes_no_empty(raw: str) -> None:
    assert error_of(parse_yes_no, raw).code == "empty"


# --------------------------------------------------------------------------- one of

CAUSES = [
    "因病", "因残", "因学", "因灾", "缺土地", "缺水", "缺技术", "缺劳力", "缺资金",
    "交通条件落后", "自身发展动力不足", "其他",
]  # fmt: skip
CAUSE_LABELS = [
    ["illness"], ["disability"], ["schooling"], ["disaster"], ["no land"], ["no water"],
    ["no skills"], ["no labour"], ["no capital"], ["poor transport"], ["low motivation"], ["other"],
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", "因病"),
        ("2", "因残"),
        ("２", "因残"),
        ("二", "因残"),
        ("12", "其他"),
        ("因病", "因病"),
        (" 因学 ", "因学"),
        ("illness", "因病"),
        ("ILLNESS", "因病"),
        ("Disability", "因残"),
        ("no labour", "缺劳力"),
        ("2. 因残", "因残"),
        ("2.因残", "因残"),
        ("2、因残", "因残"),
        ("２．因残", "因残"),
        ("2.", "因残"),
        ("因病。", "因病"),
        ("交通", "交通条件落后"),
        ("自身发展", "自身发展动力不足"),
        ("disab", "因残"),
    ],
)
def test_parse_choice(raw: str, expected: str) -> None:
    assert parse_choice(raw, CAUSES, CAUSE_LABELS) == expected


@pytest.mark.parametrize("raw", ["13", "0", "十三", "癌症", "2. 因病", "xyz"])
def test_parse_choice_unknown(raw: str) -> None:
    error = error_of(parse_choice, raw, CAUSES, CAUSE_LABELS)
    assert error.code == "unknown_choice"
    assert error.params == {"count": 12}


def test_parse_choice_short_unique_prefix_is_not_enough() -> None:
    assert error_of(parse_choice, "交", CAUSES).code == "unknown_choice"


@pytest.mark.parametrize(
    ("raw", "matches"),
    [("因", ["因病", "因残", "因学", "因灾"]), ("缺", ["缺土地", "缺水", "缺技术", "缺劳力", "缺资金"]),
     ("no", ["缺土地", "缺水", "缺技术", "缺劳力", "缺资金"])],
)  # fmt: skip
def test_parse_choice_ambiguous(raw: str, matches: list[str]) -> None:
    error = error_of(parse_choice, raw, CAUSES, CAUSE_LABELS)
    assert error.code == "ambiguous_choice"
    assert error.params == {"matches": matches}


def test_parse_choice_exact_beats_prefix() -> None:
    assert parse_choice("缺水", ["缺水", "缺水源"]) == "缺水"


def test_parse_choice_label_given_as_plain_string() -> None:
    assert parse_choice("sick", ["因病", "因残"], ["sick", "disabled"]) == "因病"


@pytest.mark.parametrize("raw", ["", "   ", "。"])
def test_parse_choice_empty(raw: str) -> None:
    assert error_of(parse_choice, raw, CAUSES).code == "empty"


# --------------------------------------------------------------------------- several of

SUPPORT = ["低保", "特困供养", "临时救助", "医疗救助"]
SUPPORT_LABELS = [["dibao"], ["五保", "tekun"], [], ["medical aid"]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", ["低保"]),
        ("1 3", ["低保", "临时救助"]),
        ("1,3", ["低保", "临时救助"]),
        ("1，3", ["低保", "临时救助"]),
        ("1、3", ["低保", "临时救助"]),
        ("1;3", ["低保", "临时救助"]),
        ("1；3", ["低保", "临时救助"]),
        ("1/3", ["低保", "临时救助"]),
        ("1和3", ["低保", "临时救助"]),
        ("3, 1", ["低保", "临时救助"]),
        ("3 1 3", ["低保", "临时救助"]),
        ("13", ["低保", "临时救助"]),
        ("低保、五保", ["低保", "特困供养"]),
        ("五保和低保", ["低保", "特困供养"]),
        ("medical aid, dibao", ["低保", "医疗救助"]),
        ("1. 低保 4. 医疗救助", ["低保", "医疗救助"]),
        ("1，，3、", ["低保", "临时救助"]),
        ("４", ["医疗救助"]),
    ],
)
def test_parse_choices(raw: str, expected: list[str]) -> None:
    assert parse_choices(raw, SUPPORT, SUPPORT_LABELS) == expected


def test_parse_choices_digit_run_only_below_ten_options() -> None:
    assert parse_choices("13", CAUSES[:9]) == ["因病", "因学"]
    error = error_of(parse_choices, "13", CAUSES)
    assert error.code == "unknown_choice"
    assert error.params == {"count": 12}
    assert parse_choices("1 12", CAUSES) == ["因病", "其他"]


@pytest.mark.parametrize("raw", ["1 5", "15", "低保、癌症"])
def test_parse_choices_unknown(raw: str) -> None:
    error = error_of(parse_choices, raw, SUPPORT, SUPPORT_LABELS)
    assert error.code == "unknown_choice"
    assert error.params == {"count": 4}


@pytest.mark.parametrize("raw", ["", "  ", "、，"])
def test_parse_choices_empty(raw: str) -> None:
    assert error_of(parse_choices, raw, SUPPORT).code == "empty"


def test_parse_choices_ambiguous_item() -> None:
    error = error_of(parse_choices, "1, 临", ["低保", "临时救助", "临时补贴"])
    assert error.code == "ambiguous_choice"
    assert error.params == {"matches": ["临时救助", "临时补贴"]}


# --------------------------------------------------------------------------- text


def test_parse_text_strips_and_keeps_newlines() -> None:
    assert parse_text("  屋顶漏雨\n墙有裂缝  ", 500) == "屋顶漏雨\n墙有裂缝"


def test_parse_text_at_limit() -> None:
    assert parse_text("好" * 500, 500) == "好" * 500


def test_parse_text_too_long_is_not_truncated() -> None:
    error = error_of(parse_text, "字" * 5000, 500)
    assert error.code == "too_long"
    assert error.params == {"length": 5000, "max_length": 500}


@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_parse_text_empty(raw: str) -> None:
    assert error_of(parse_text, raw, 500).code == "empty"


# --------------------------------------------------------------------------- location


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("45.12, 122.5", (45.12, 122.5)),
        ("45.12,122.5", (45.12, 122.5)),
        ("45.12 122.5", (45.12, 122.5)),
        ("４５．１２，１２２．５", (45.12, 122.5)),
        ("-33.9, 18.4", (-33.9, 18.4)),
        ("(45.12, 122.5)", (45.12, 122.5)),
        ("90,180", (90.0, 180.0)),
    ],
)
def test_parse_location(raw: str, expected: tuple[float, float]) -> None:
    assert parse_location(raw) == expected


@pytest.mark.parametrize("raw", ["45.12", "abc", "91, 100", "45, 181", "-90.5 0", "1,2,3", "45.12,"])
def test_parse_location_rejects(raw: str) -> None:
    assert error_of(parse_location, raw).code == "not_location"


def test_parse_location_empty() -> None:
    assert error_of(parse_location, "  ").code == "empty"


# --------------------------------------------------------------------------- registry and error


def test_parsers_registry() -> None:
    expected = {
        "integer": parse_integer,
        "decimal": parse_decimal,
        "yes_no": parse_yes_no,
        "one_of": parse_choice,
        "several_of": parse_choices,
        "text": parse_text,
        "location": parse_location,
        "date": parse_date,
    }
    assert expected == PARSERS
    assert PARSERS["one_of"]("2", ["是", "否"]) == "否"
    assert PARSERS["text"]("x", 5) == "x"


def test_answer_error_shape() -> None:
    error = AnswerError("too_long", length=3, max_length=2)
    assert isinstance(error, ValueError)
    assert error.code == "too_long"
    assert error.params == {"length": 3, "max_length": 2}
    assert AnswerError("empty").params == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03", "2026-12-03"),
        ("2026/12/3", "2026-12-03"),
        ("2026.1.5", "2026-01-05"),
        ("2026年12月3日", "2026-12-03"),
        ("２０２６年１２月３号", "2026-12-03"),
        ("20261203", "2026-12-03"),
        (" 2026-12-03。", "2026-12-03"),
    ],
)
def test_dates_are_read_as_people_write_them(text: str, expected: str) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["2026-02-30", "12-03", "明天", "2026-13-01", "202612"])
def test_a_date_that_is_none_is_refused(text: str) -> None:
    with pytest.raises(AnswerError) as refused:
        parse_date(text)
    assert refused.value.code == "not_date"
