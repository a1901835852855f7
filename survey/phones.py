"""Phone numbers: mainland mobiles as E.164, and masked for reports.

Any *possible* mobile number is accepted: new ranges are issued before phone libraries list them, so
`is_valid_number` would refuse real numbers. Only numbers that cannot be a mobile are refused.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

__all__ = ["CellPhones", "mask_phone", "mask_phones_in", "normalize_phone", "read_phones"]

# Digits with spaces, dashes, parentheses and one leading "+" (after NFKC, so full-width forms count too).
_ALLOWED = re.compile(r"\+?[0-9\s\-()]+")
_MAINLAND_MOBILE = re.compile(r"1[0-9]{10}")
_MAINLAND_E164 = re.compile(r"\+861[0-9]{10}")  # already what normalize_phone returns (Twilio's From)
_MASK = "****"
# A mainland mobile inside free text (a log line, a provider's error): +86 / 0086 / 86 / %2B86 (URL-encoded)
# or nothing, then 1 and ten digits, grouped 3-4-4 by spaces or dashes or not at all; not inside a longer number
_MOBILE_IN_TEXT = re.compile(
    r"(?<![0-9])(?:(?:\+|%2B|00)?86[ \-]?)?(1[0-9]{2})[ \-]?([0-9]{4})[ \-]?([0-9]{4})(?![0-9])"
)


def normalize_phone(text: str, region: str = "CN") -> str:
    """The number as E.164 (`+8613812345678`), or ValueError with a zh-CN reason.

    For the mainland (region "CN") the number must be a mobile: 11 digits starting with 1, written
    bare or after +86 / 0086 / 86, with spaces and dashes anywhere.
    """
    if _MAINLAND_E164.fullmatch(text):  # every such number is a possible mainland mobile, written as E.164
        return text
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned:
        raise ValueError("号码为空")
    if not _ALLOWED.fullmatch(cleaned):
        raise ValueError("号码只能包含数字、空格和短横线")
    try:
        number = phonenumbers.parse(cleaned, region)
    except NumberParseException as error:
        raise ValueError("无法识别为电话号码") from error
    if number.country_code != phonenumbers.country_code_for_region(region):
        raise ValueError("不是中国大陆的号码" if region == "CN" else f"不是 {region} 的号码")
    national = str(number.national_number)
    if region == "CN" and not _MAINLAND_MOBILE.fullmatch(national):
        if national.startswith("1"):
            raise ValueError(f"位数不对：手机号码应为 11 位，这里是 {len(national)} 位")
        raise ValueError("不是手机号码：应为 1 开头的 11 位数字")
    if not phonenumbers.is_possible_number_for_type(number, PhoneNumberType.MOBILE):
        raise ValueError("位数不对，不可能是手机号码")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# A roster cell may hold several numbers: "13800138000/13900139000", "…、…", "…，…", or separated by spaces
# (which also group the digits of one number, so space-separated parts are joined until they make a number).
_NUMBER_SEPARATORS = re.compile(r"[/／、，,;；|]+")
# A landline: an area code of 3–4 digits starting with 0, maybe in parentheses, then 7–8 digits; or the local
# 7–8 digits alone (not starting with 0 or 1); an extension after "-" or "转" is kept as written.
_LANDLINE = re.compile(
    r"(?:(?:\(0[0-9]{2,3}\)|0[0-9]{2,3})[\s\-]?[0-9]{7,8}|[2-9][0-9]{6,7})(?:(?:-|转)[0-9]{1,6})?"
)


class CellPhones:
    """The numbers of one roster cell: the mobiles as E.164 in the order written, the landlines as written."""

    def __init__(self, mobiles: list[str], landlines: list[str]) -> None:
        self.mobiles = mobiles
        self.landlines = landlines

    @property
    def sms(self) -> str | None:
        """The number SMS goes to: the first mobile, None when the cell has only landlines."""
        return self.mobiles[0] if self.mobiles else None


def read_phones(text: str) -> CellPhones:
    """Every number in a roster cell, or ValueError with a zh-CN reason naming a part that is no number.

    One mobile is what `normalize_phone` reads; several numbers are separated by / 、 ， ; or spaces."""
    mobiles: list[str] = []
    landlines: list[str] = []
    cleaned = unicodedata.normalize("NFKC", text).strip()
    parts = [part.strip() for part in _NUMBER_SEPARATORS.split(cleaned) if part.strip()]
    for part in parts:
        for number in _numbers(part):
            try:
                mobile = normalize_phone(number)
            except ValueError as error:
                if _LANDLINE.fullmatch(number):
                    landlines.append(number)
                    continue
                raise ValueError(f"“{number}”{error}" if number != cleaned else str(error)) from None
            if mobile not in mobiles:
                mobiles.append(mobile)
    if not parts:
        raise ValueError("号码为空")
    return CellPhones(mobiles, landlines)


def _numbers(part: str) -> list[str]:
    """A part of a cell as numbers: its space-separated pieces joined until they read as a number."""
    if _readable(part) or _LANDLINE.fullmatch(part):
        return [part]
    numbers: list[str] = []
    pending = ""
    for piece in part.split():
        pending = f"{pending} {piece}".strip()
        if _readable(pending) or _LANDLINE.fullmatch(pending):
            numbers.append(pending)
            pending = ""
    if pending:
        numbers.append(pending)  # what is left reads as no number: normalize_phone will say why
    return numbers


def _readable(text: str) -> bool:
    try:
        normalize_phone(text)
    except ValueError:
        return False
    return True


def mask_phone(e164: str) -> str:
    """National digits with the middle four hidden: "+8613812348000" → "138****8000"."""
    try:
        national = str(phonenumbers.parse(e164, None).national_number)
    except NumberParseException as error:
        raise ValueError(f"不是 E.164 格式的号码：{e164!r}") from error
    if len(national) <= len(_MASK):
        return _MASK
    start = (len(national) - len(_MASK)) // 2
    return national[:start] + _MASK + national[start + len(_MASK) :]


def mask_phones_in(text: str) -> str:
    """Every mainland mobile in `text` masked as mask_phone does: "to +8613812348000" → "to 138****8000"."""
    return _MOBILE_IN_TEXT.sub(lambda found: f"{found[1]}{_MASK}{found[3]}", text)
