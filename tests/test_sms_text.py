import pytest

from survey.sms_text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    ReplyMeaning,
    encoding,
    fits_one_segment,
    normalize_reply,
    parse_reply,
    segments,
    utf16_units,
)

# --------------------------------------------------------------------------- encoding and segments


def test_gsm_tables_have_the_standard_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions less the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "GSM-7"),
        ("Hello @ £5, ok?", "GSM-7"),
        ("Ünïcödé? no: ï is not GSM", "UCS-2"),
        ("ÄÖÑÜäöñüà¿¡§ΔΩ", "GSM-7"),
        ("price 5€ [x] {y} ~ | ^ \\", "GSM-7"),
        ("回复1满意", "UCS-2"),
        ("ok 👍", "UCS-2"),
        ("`backtick`", "UCS-2"),
        ("ç lower-case cedilla", "UCS-2"),
    ],
)
def test_encoding(text: str, expected: str) -> None:
    assert encoding(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), ("abc", 3), ("满意", 2), ("👍", 2), ("1👍", 3), ("👨\u200d👩\u200d👧", 8)],
)
def test_utf16_units(text: str, expected: int) -> None:
    assert utf16_units(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("满" * 70, 1),
        ("满" * 71, 2),
        ("满" * 134, 2),
        ("满" * 135, 3),
        ("满" * 69 + "👍", 2),  # 69 + 2 units = 71 > 70
        ("满" * 68 + "👍", 1),  # exactly 70 units
        # Extension characters cost two septets each.
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),
        ("a" * 158 + "€", 1),
        # A concatenated segment never splits an escape pair: 152 + "€" does not fit into 153.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("a" * 151 + "€" + "a" * 153, 2),
        # ...nor a surrogate pair: 66 units + an emoji does not fit into 67.
        ("满" * 66 + "👍" + "满" * 66, 3),
        ("满" * 65 + "👍" + "满" * 67, 2),
    ],
)
def test_segments(text: str, expected: int) -> None:
    assert segments(text) == expected


def test_one_chinese_character_makes_the_whole_message_ucs2() -> None:
    assert segments("a" * 70) == 1
    assert segments("a" * 70 + "满") == 2


def test_fits_one_segment() -> None:
    assert fits_one_segment("您好！请回复1满意 2基本满意 3不满意，回复TD退订。")
    assert not fits_one_segment("满" * 71)


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  ＳＴＯＰ！ ", "stop"),
        ("１ 👍", "1"),
        ("满意！", "满意"),
        ("\u3000基本\u3000满意。", "基本满意"),
        ("1\ufe0f\u20e3", "1"),
        ("👍🏽", ""),
    ],
)
def test_normalize_reply(text: str, expected: str) -> None:
    assert normalize_reply(text) == expected


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("1", "满意"),
        ("2", "基本满意"),
        ("3", "不满意"),
        ("１", "满意"),
        ("２", "基本满意"),
        ("３", "不满意"),
        ("1 👍", "满意"),
        ("👍1", "满意"),
        (" 2 。", "基本满意"),
        ("3!", "不满意"),
        ("1️⃣", "满意"),
        ("①", "满意"),
        ("满意", "满意"),
        ("满意！", "满意"),
        ("非常满意", "满意"),
        ("很满意😊", "满意"),
        ("十分满意", "满意"),
        ("非 常 满 意", "满意"),
        ("基本满意", "基本满意"),
        ("比较满意。", "基本满意"),
        ("不满意", "不满意"),
        ("很不满意！！", "不满意"),
        ("非常不满意", "不满意"),
        ("差", "不满意"),
        ("太差", "不满意"),
        ("很差👎", "不满意"),
        ("3 不满意", "不满意"),
        ("1，满意", "满意"),
    ],
)
def test_ratings(text: str, rating: str) -> None:
    assert parse_reply(text) == ReplyMeaning("rating", rating)


@pytest.mark.parametrize(
    ("text", "rating", "extra"),
    [
        ("3 路没修", "不满意", "路没修"),
        ("３　路没修。", "不满意", "路没修"),
        ("不满意，路没修好", "不满意", "路没修好"),
        ("不满意：路没修好，坑很多！", "不满意", "路没修好，坑很多"),
        ("3. Road not fixed", "不满意", "Road not fixed"),
        ("1 谢谢政府", "满意", "谢谢政府"),
    ],
)
def test_rating_with_text(text: str, rating: str, extra: str) -> None:
    assert parse_reply(text) == ReplyMeaning("rating", rating, extra)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("TD", "opt_out"),
        ("td", "opt_out"),
        ("T D", "opt_out"),
        ("退订", "opt_out"),
        ("退订。", "opt_out"),
        ("STOP", "opt_out"),
        ("ＳＴＯＰ", "opt_out"),
        ("Stop!", "opt_out"),
        ("取消", "opt_out"),
        ("取消订阅", "opt_out"),
        ("unsubscribe", "opt_out"),
        ("UNSUBSCRIBE", "opt_out"),
        ("3 退订", "opt_out"),  # the keyword wins over the rating
        ("订阅", "opt_in"),
        (" 订阅！", "opt_in"),
        ("start", "opt_in"),
        ("START", "opt_in"),
        ("Ｓｔａｒｔ", "opt_in"),
    ],
)
def test_keywords(text: str, kind: str) -> None:
    assert parse_reply(text) == ReplyMeaning(kind)


@pytest.mark.parametrize(
    "text",
    [
        "一般",
        "还行",
        "还可以",
        "ok",
        "OK",
        "不好",
        "挺好",
        "4",
        "0",
        "12",
        "1 3",  # contradicts itself
        "1、2",
        "3.5",
        "1,2,3",
        "3 5",
        "差不多",  # not 差
        "满意度不高",  # not 满意
        "3路没修",  # no separator: not read as a rating
        "路没修 不满意",  # the rating is not first
        "我不满意",
        "满意吗",
        "td 1",
        "stop it",
        "非常 满意，路好",
    ],
)
def test_unclear(text: str) -> None:
    assert parse_reply(text) == ReplyMeaning("unclear")


@pytest.mark.parametrize("text", ["", "   ", "👍", "。。。", "🙏🏻\u200d", "\u3000"])
def test_empty(text: str) -> None:
    assert parse_reply(text) == ReplyMeaning("empty")
