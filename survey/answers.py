"""Parse answers the way cadres type them on phones (Chinese IME) or in a terminal.

Every parser takes the raw text and returns a typed value or raises `AnswerError`, whose `code`
and `params` the caller turns into a message. Standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal

__all__ = [
    "PARSERS",
    "AnswerError",
    "code_key",
    "is_blank",
    "normalize",
    "parse_choice",
    "parse_choices",
    "parse_date",
    "parse_decimal",
    "parse_integer",
    "parse_location",
    "parse_number",
    "parse_text",
    "parse_yes_no",
]


class AnswerError(ValueError):
    """An answer that could not be read; `code` and `params` drive the message shown to the cadre."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params: dict[str, object] = dict(params)

    def __str__(self) -> str:
        if not self.params:
            return self.code
        details = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.code} ({details})"


# --------------------------------------------------------------------------- normalising

# Phones sometimes slip these invisible characters into pasted or predicted text.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_TRAILING_PUNCT = "。.!~,;"


def normalize(text: str) -> str:
    """NFKC (full-width digits, letters and punctuation become ASCII), strip, collapse inner whitespace."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return " ".join(text.split())


def code_key(text: str) -> str:
    """A roster id as typed (干部编号, 户编号) in the roster's form: full-width and spaces gone, upper case, so
    that `gb002`, `ＧＢ００２` and ` GB 002 ` all find GB002."""
    return "".join(normalize(text).split()).upper()


def is_blank(text: str) -> bool:
    """True when nothing but whitespace is left after `normalize`."""
    return not normalize(text)


def _nothing_given(normalized: str) -> bool:
    """Blank or only punctuation (a stray "。" or "-" is not an answer)."""
    return all(ch.isspace() or unicodedata.category(ch).startswith("P") for ch in normalized)


def _require(text: str) -> str:
    """Normalise, raising `empty` when nothing was given."""
    normalized = normalize(text)
    if _nothing_given(normalized):
        raise AnswerError("empty")
    return normalized


# --------------------------------------------------------------------------- numbers

_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "幺": 1, "壹": 1, "二": 2, "两": 2, "俩": 2, "贰": 2, "三": 3, "仨": 3,
    "叁": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8,
    "九": 9, "玖": 9,
}  # fmt: skip
_ZEROS = frozenset("零〇")
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000, "k": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "w": 10_000, "亿": 100_000_000, "億": 100_000_000}
# Units that only say what was counted; longest first so 块钱 wins over 块.
_COUNT_UNITS = ("块钱", "周岁", "人", "口", "个", "元", "块", "岁", "户", "次", "亩", "斤", "名", "位", "间")
_ARABIC = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_SIGNS = {"+": 1, "-": -1, "\u2212": -1, "负": -1}

_Token = tuple[str, Decimal, bool]  # (kind: "digit" | "small" | "big" | "zero", value, single char)


def _tokenize(body: str) -> list[_Token] | None:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(body):
        match = _ARABIC.match(body, pos)
        if match:
            digits = match.group().replace(",", "")
            tokens.append(("digit", Decimal(digits), len(digits) == 1))
            pos = match.end()
            continue
        ch = body[pos]
        if ch in _ZEROS:
            tokens.append(("zero", Decimal(0), True))
        elif ch in _DIGITS:
            tokens.append(("digit", Decimal(_DIGITS[ch]), True))
        elif ch in _SMALL_UNITS:
            tokens.append(("small", Decimal(_SMALL_UNITS[ch]), True))
        elif ch in _BIG_UNITS:
            tokens.append(("big", Decimal(_BIG_UNITS[ch]), True))
        else:
            return None
        pos += 1
    return tokens


def _combine(tokens: list[_Token]) -> Decimal | None:
    """Value of digits and multipliers: 一百零五, 两千五, 一万二千, 1.2万, 3k. None if malformed."""
    total = section = Decimal(0)
    digit: Decimal | None = None
    single = False
    last_small: Decimal | None = None
    last_big: Decimal | None = None
    last_unit: Decimal | None = None
    previous = ""
    for kind, value, is_single in tokens:
        if kind == "zero" and last_unit is not None:
            previous = "zero"  # 零 as a placeholder: 一百零五
            continue
        if kind in ("digit", "zero"):
            if digit is not None:
                return None
            digit, single = value, is_single
        elif kind == "small":
            if digit is None:
                if value != 10:  # only 十 may stand alone (十二); 百 or 千 alone is not a number
                    return None
                digit = Decimal(1)
            if last_small is not None and value >= last_small:
                return None
            section += digit * value
            digit, last_small, last_unit = None, value, value
        else:
            if digit is not None:
                section += digit
            if section == 0 or (last_big is not None and value >= last_big):
                return None
            total += section * value
            section, digit, last_small, last_big, last_unit = Decimal(0), None, None, value, value
        previous = kind
    if digit is not None:
        # 两千五 / 三万五 / 1万2: a lone digit right after a unit counts in the next unit down.
        after_unit = previous == "digit" and len(tokens) > 1 and tokens[-2][0] in ("small", "big")
        if single and after_unit and last_unit is not None and last_unit >= 100:
            digit *= last_unit / 10
        section += digit
    return total + section


def parse_number(text: str) -> Decimal:
    """Read a number as typed: 12, １２, -5, 12,000, 1.5, 三, 一百零五, 两千五, 1.2万, 3k, 3人, 500块."""
    body = normalize(text).lower()
    if re.search(r"[0-9]\s+[0-9]", body):  # "3 5" is two numbers, not 35
        raise AnswerError("not_number")
    body = body.replace(" ", "").rstrip(_TRAILING_PUNCT)
    sign = 1
    if body[:1] in _SIGNS:
        sign, body = _SIGNS[body[0]], body[1:]
    stripped = True
    while stripped:  # 5口人, 1.2万元
        stripped = False
        for unit in _COUNT_UNITS:
            if body.endswith(unit):
                body, stripped = body[: -len(unit)], True
                break
    tokens = _tokenize(body)
    value = _combine(tokens) if tokens else None
    if value is None:
        raise AnswerError("not_number")
    if value == value.to_integral_value():
        value = Decimal(int(value))  # 1.2万 gives 12000, not 12000.0
    return -value if sign < 0 and value else value


def parse_integer(text: str) -> int:
    """A whole number; 1.2万 is fine (12000), 1.5 is `not_integer`."""
    _require(text)
    try:
        value = parse_number(text)
    except AnswerError:
        raise AnswerError("not_integer") from None
    if value != value.to_integral_value():
        raise AnswerError("not_integer")
    return int(value)


def parse_decimal(text: str) -> Decimal:
    """Any number `parse_number` reads."""
    _require(text)
    return parse_number(text)


# --------------------------------------------------------------------------- yes / no

_YES = frozenset({
    "是", "是的", "是啊", "是滴", "有", "有的", "对", "对的", "嗯", "嗯嗯", "好", "好的", "要", "需要",
    "已", "已经", "可以", "y", "yes", "ok", "true", "1", "✓", "✔", "√", "☑",
    "已讲", "已宣讲", "已讲解", "讲了", "讲过", "done",  # the four talks are asked yes/no: "done" says yes
})  # fmt: skip
_NO = frozenset({
    "否", "不", "不是", "没", "没有", "无", "不对", "不要", "不需要", "不用", "未", "n", "no", "false", "0",
    "✗", "✘", "×", "☒",
    "没讲", "未讲", "没有讲", "没宣讲", "未宣讲", "not done",
})  # fmt: skip


def parse_yes_no(text: str) -> bool:
    """是/否 and their everyday variants; "1" is yes and "0" is no, but "2" is not read as no."""
    word = _require(text).casefold().rstrip(_TRAILING_PUNCT + " ")
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise AnswerError("not_yes_no")


# --------------------------------------------------------------------------- choices

_NUMBERED = re.compile(r"([0-9]+)\s*[.、):]?\s*(.*)")
_CHINESE_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十]+")
_SEPARATORS = re.compile(r"(\s*[,、;/和]\s*|\s+)")
_MAX_JOINED = 8  # how many separated pieces may form one option text ("no labour force")


def _key(text: str) -> str:
    return normalize(text).casefold()


def _texts(options: Sequence[str], labels: Sequence[Sequence[str]]) -> list[list[str]]:
    """Every accepted text per option, normalised and case-folded."""
    table = []
    for index, code in enumerate(options):
        extra = labels[index] if index < len(labels) else ()
        extra = [extra] if isinstance(extra, str) else list(extra)
        table.append([key for key in (_key(t) for t in [code, *extra]) if key])
    return table


def _exact(word: str, table: list[list[str]]) -> list[int]:
    return [i for i, texts in enumerate(table) if word in texts]


def _starting(word: str, table: list[list[str]]) -> list[int]:
    return [i for i, texts in enumerate(table) if any(t.startswith(word) for t in texts)]


def _by_number(word: str) -> int | None:
    """1-based number typed as digits (２ is already 2) or a small Chinese numeral (二)."""
    if word.isascii() and word.isdigit():
        return int(word)
    if _CHINESE_NUMERAL.fullmatch(word):
        try:
            return int(parse_number(word))
        except AnswerError:
            return None
    return None


def _choose(word: str, options: Sequence[str], table: list[list[str]]) -> int:
    """Index of the option `word` (normalised, case-folded, not blank) names."""
    count = len(options)
    trimmed = word.rstrip(_TRAILING_PUNCT + " ")
    for candidate in dict.fromkeys((word, trimmed)):
        hits = _exact(candidate, table)
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise AnswerError("ambiguous_choice", matches=[options[i] for i in hits])
    number = _by_number(trimmed)
    if number is not None:
        if 1 <= number <= count:
            return number - 1
        raise AnswerError("unknown_choice", count=count)
    hits = _starting(trimmed, table)
    if len(hits) > 1:
        raise AnswerError("ambiguous_choice", matches=[options[i] for i in hits])
    if hits and len(trimmed) >= 2:
        return hits[0]
    numbered = _NUMBERED.fullmatch(trimmed)
    if numbered and numbered.group(2):  # "2. 因残": the number and the text must agree
        index = int(numbered.group(1)) - 1
        rest = numbered.group(2)
        if index in _exact(rest, table) or index in _starting(rest, table):
            return index
    raise AnswerError("unknown_choice", count=count)


def parse_choice(text: str, options: Sequence[str], labels: Sequence[Sequence[str]] = ()) -> str:
    """One of `options`, by code, label, 1-based number, "2. 因残", or an unambiguous prefix (≥ 2 chars)."""
    word = _require(text).casefold()
    return options[_choose(word, options, _texts(options, labels))]


def parse_choices(text: str, options: Sequence[str], labels: Sequence[Sequence[str]] = ()) -> list[str]:
    """Several of `options`, separated by , ， 、 ; / space or 和; returned once each, in option order."""
    normalized = _require(text).casefold()
    table = _texts(options, labels)
    parts = _SEPARATORS.split(normalized)
    items = parts[0::2]
    chosen: set[int] = set()
    i = 0
    while i < len(items):
        # An option text may itself contain a separator ("no labour"), so try the longest span first.
        for j in range(min(len(items), i + _MAX_JOINED), i + 1, -1):
            span = "".join(parts[2 * i : 2 * j - 1])  # items i..j-1 with their separators
            hits = _exact(span, table)
            if len(hits) == 1:
                chosen.add(hits[0])
                i = j
                break
        else:
            chosen.update(_choose_item(items[i], options, table))
            i += 1
    if not chosen:
        raise AnswerError("empty")
    return [options[i] for i in sorted(chosen)]


def _choose_item(item: str, options: Sequence[str], table: list[list[str]]) -> list[int]:
    if _nothing_given(item):
        return []
    if len(options) < 10 and len(item) > 1 and item.isascii() and item.isdigit() and not _exact(item, table):
        return [_choose(digit, options, table) for digit in item]  # "13" means 1 and 3
    return [_choose(item, options, table)]


# --------------------------------------------------------------------------- text and location


def parse_text(text: str, max_length: int) -> str:
    """Free text, stripped, inner newlines kept; too long is an error, never truncated."""
    _require(text)
    value = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(value) > max_length:
        raise AnswerError("too_long", length=len(value), max_length=max_length)
    return value


_COORD = r"([+-]?[0-9]+(?:\.[0-9]+)?)°?"
_LOCATION = re.compile(rf"{_COORD}\s*(?:[,;/、]\s*|\s)\s*{_COORD}")


def parse_location(text: str) -> tuple[float, float]:
    """Latitude and longitude typed as "lat,lon", "lat, lon" or "lat lon" (decimal degrees)."""
    normalized = _require(text).strip("()[] ")
    match = _LOCATION.fullmatch(normalized)
    if not match:
        raise AnswerError("not_location")
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise AnswerError("not_location")
    return lat, lon


# --------------------------------------------------------------------------- dates

_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")


def parse_date(text: str) -> str:
    """A calendar date as ISO text: 2026-12-03, 2026/12/3, 2026.12.3, 2026年12月3日, 20261203."""
    normalized = normalize(_require(text)).strip().rstrip(_TRAILING_PUNCT + " ")
    match = _DATE.fullmatch(normalized) or _COMPACT_DATE.fullmatch(normalized)
    if not match:
        raise AnswerError("not_date")
    try:
        return date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:  # 2026-02-30
        raise AnswerError("not_date") from None


PARSERS: dict[str, Callable[..., object]] = {
    "integer": parse_integer,
    "decimal": parse_decimal,
    "yes_no": parse_yes_no,
    "one_of": parse_choice,
    "several_of": parse_choices,
    "text": parse_text,
    "location": parse_location,
    "date": parse_date,
}
