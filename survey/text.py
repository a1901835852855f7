"""Text as every database can keep it: PostgreSQL refuses NUL in text, and neither SQLite nor PostgreSQL can
store a lone UTF-16 surrogate (JSON may carry "\\ud800"). Both become U+FFFD, visibly; everything else, HTML,
formula-looking text and emoji included, is kept exactly as typed (it is escaped where it is shown)."""

from __future__ import annotations

import re

__all__ = ["REPLACEMENT", "storable", "storable_json"]

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
