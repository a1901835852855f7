"""Text as every database can keep it: PostgreSQL refuses NUL in text, and neither SQLite nor PostgreSQL can
store a lone UTF-16 surrogate (JSON may carry "\\ud800"). Both become U+FFFD, visibly; everything else, HTML,
formula-looking text and emoji included, is kept exactly as typed (it is escaped where it is shown)."""

from __future__ import annotations

import re
from datetime import date, datetime, time

__all__ = ["REPLACEMENT", "cell_text", "storable", "storable_json"]

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD; the same object when there are none."""
    if "\x00" not in text:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_json(value: object) -> object:
    """Every string in a parsed JSON value (keys too) made `storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    if isinstance(value, dict):
        return {storable(str(key)): storable_json(item) for key, item in value.items()}
    return value


# a spreadsheet's invisible marks around a cell's text (a BOM, zero-width spaces and joiners)
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


def cell_text(value: object) -> str:
    """A cell as stripped text: None → "", 3.0 → "3", 13812345678.0 → "13812345678", dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value)
    return text.strip().strip(_INVISIBLE).strip()
