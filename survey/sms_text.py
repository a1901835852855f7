"""SMS text: segment counting (what a message costs) and reading villagers' replies to a poll.

Twilio has no segment counter, so templates are checked here. Replies are read strictly: an answer
we would have to guess at ("一般", "还行") is reported as unclear, because guessing inflates the
satisfaction rate. Standard library only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "HELP_WORDS",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "RATING_WORDS",
    "Encoding",
    "Rating",
    "ReplyKind",
    "ReplyMeaning",
    "encoding",
    "fits_one_segment",
    "normalize_reply",
    "parse_reply",
    "segments",
    "utf16_units",
]

Encoding = Literal["GSM-7", "UCS-2"]
Rating = Literal["满意", "基本满意", "不满意"]
ReplyKind = Literal["rating", "opt_out", "opt_in", "help", "unclear", "empty"]

# --------------------------------------------------------------------------- segments

# GSM 03.38 default alphabet, positions 0x00-0x7F in order, without 0x1B (the escape to the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + char, so it costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_SEGMENT_LIMITS: dict[Encoding, tuple[int, int]] = {
    # (a single-segment message, each segment of a concatenated one: the rest is the UDH)
    "GSM-7": (160, 153),
    "UCS-2": (70, 67),
}


def utf16_units(text: str) -> int:
    """UTF-16 code units: what UCS-2 SMS actually counts (a character outside the BMP, e.g. an emoji, is 2)."""
    return len(text.encode("utf-16-le")) // 2


def encoding(text: str) -> Encoding:
    """GSM-7 when every character is in the basic or extension table; otherwise the whole message is UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return "GSM-7"
    return "UCS-2"


def _units(text: str, enc: Encoding) -> list[int]:
    """The cost of each character; a character is never split across two segments."""
    if enc == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [utf16_units(ch) for ch in text]


def segments(text: str) -> int:
    """How many SMS segments `text` is billed as; 0 for the empty text (nothing is sent)."""
    enc = encoding(text)
    single, multi = _SEGMENT_LIMITS[enc]
    costs = _units(text, enc)
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    # Concatenated: fill each segment greedily; an escape pair or surrogate pair moves whole to the next one.
    count, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            count, used = count + 1, 0
        used += cost
    return count


def fits_one_segment(text: str) -> bool:
    """True when the (rendered) text goes out as a single SMS."""
    return segments(text) <= 1


# --------------------------------------------------------------------------- replies

# Only words no reasonable reader could read differently; "一般", "还行", "还可以", "ok", "不好" are
# deliberately absent (they stay unclear and get one clarifying SMS).
RATING_WORDS: dict[str, Rating] = {
    "1": "满意",
    "满意": "满意",
    "非常满意": "满意",
    "很满意": "满意",
    "十分满意": "满意",
    "2": "基本满意",
    "基本满意": "基本满意",
    "比较满意": "基本满意",
    "3": "不满意",
    "不满意": "不满意",
    "很不满意": "不满意",
    "非常不满意": "不满意",
    "差": "不满意",
    "很差": "不满意",
    "太差": "不满意",
}
# Compared after `normalize_reply`, so already case-folded and without spaces or dashes ("STOP ALL", "OPT-OUT").
# Twilio acts on its own keywords before we see them (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
# OPTOUT block the number; START, YES, UNSTOP unblock it): every one is ours too, so our opt-out list and
# Twilio's never disagree.
TWILIO_OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
TWILIO_OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
OPT_OUT_WORDS = frozenset({"td", "退订", "取消", "取消订阅"}) | TWILIO_OPT_OUT_WORDS
OPT_IN_WORDS = frozenset({"订阅", "重新订阅"}) | TWILIO_OPT_IN_WORDS
HELP_WORDS = frozenset({"help", "info", "帮助"})  # answered with how to reply; a poll stays as it is

# Variation selectors (emoji vs text presentation) are category Mn, so they are listed by range.
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))


@dataclass(frozen=True)
class ReplyMeaning:
    """What a reply says. `extra` is text that came after a rating (e.g. the reason for 不满意)."""

    kind: ReplyKind
    rating: Rating | None = None
    extra: str | None = None


def _is_noise(ch: str) -> bool:
    """Spaces, punctuation, symbols (most emoji), control and format chars (ZWJ), keycaps, variation selectors."""
    code = ord(ch)
    if any(low <= code <= high for low, high in _VARIATION_SELECTORS):
        return True
    category = unicodedata.category(ch)
    return category[0] in "PSZ" or category in ("Cc", "Cf", "Me")


def _is_noise_char(ch: str) -> bool:
    """`_is_noise` after NFKC, for one character of the original text (an ideographic space is noise)."""
    return all(_is_noise(c) for c in unicodedata.normalize("NFKC", ch))


def normalize_reply(text: str) -> str:
    """NFKC, case-fold and drop every noise character: "  ＳＴＯＰ！" and "stop" compare equal."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not _is_noise(ch))


def _trim(text: str) -> str:
    """Strip noise from both ends only, keeping the villager's own words and inner punctuation."""
    start, end = 0, len(text)
    while start < end and _is_noise_char(text[start]):
        start += 1
    while end > start and _is_noise_char(text[end - 1]):
        end -= 1
    return text[start:end]


def _keyword(core: str) -> ReplyMeaning | None:
    if core in OPT_OUT_WORDS:
        return ReplyMeaning("opt_out")
    if core in OPT_IN_WORDS:
        return ReplyMeaning("opt_in")
    if core in HELP_WORDS:
        return ReplyMeaning("help")
    return None


def _rating_with_text(text: str) -> ReplyMeaning:
    """A rating word, a separator, then more text ("3 路没修", "不满意，路没修好"); anything else is unclear.

    The separator is required: "差不多" and "满意度不高" must not read as ratings.
    """
    text = _trim(text)
    end = 0
    while end < len(text) and not _is_noise_char(text[end]):
        end += 1
    rating = RATING_WORDS.get(normalize_reply(text[:end]))
    rest = _trim(text[end:])
    if rating is None or not rest:
        return ReplyMeaning("unclear")
    rest_core = normalize_reply(rest)
    keyword = _keyword(rest_core)
    if keyword is not None:
        return keyword
    if rest_core in RATING_WORDS:
        # "3 不满意" repeats itself; "1 3" contradicts itself and is not guessed at.
        same = RATING_WORDS[rest_core] == rating
        return ReplyMeaning("rating", rating) if same else ReplyMeaning("unclear")
    if rest_core[0].isdigit():
        # "3.5", "1,2": a number or a list, not a rating with words.
        return ReplyMeaning("unclear")
    return ReplyMeaning("rating", rating, extra=rest)


def parse_reply(text: str) -> ReplyMeaning:
    """Read a reply to a poll: opt-out/opt-in keywords first, then exact ratings, then rating + text."""
    core = normalize_reply(text)
    if not core:
        return ReplyMeaning("empty")
    keyword = _keyword(core)
    if keyword is not None:
        return keyword
    if core in RATING_WORDS:
        return ReplyMeaning("rating", RATING_WORDS[core])
    return _rating_with_text(text)
