"""Logging for the long-running commands: every line (tracebacks included) with phones and secrets masked.

The call sites log numbers masked already; this is the net under them, for what libraries and exception
messages carry (a provider's error naming the number, a URL with the bot token in it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from survey.phones import mask_phones_in

SECRET_MASK = "******"


class MaskingFormatter(logging.Formatter):
    """A Formatter whose output has every mainland mobile masked and each of `secrets` replaced."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        # longest first: a token's secret part must not be masked before the whole token is
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, SECRET_MASK)
        return mask_phones_in(text)


def configure_logging(fmt: str, secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    """logging.basicConfig(level, fmt), then the masking formatter on the root logger's handlers."""
    logging.basicConfig(level=level, format=fmt)
    formatter = MaskingFormatter(fmt, secrets)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def secrets_of(settings: object) -> list[str]:
    """The settings' secret values (bot.settings.SECRETS), and a bot token's part after the colon."""
    from bot.settings import SECRETS

    values = [str(getattr(settings, name.lower(), "") or "") for name in SECRETS]
    return values + [value.split(":", 1)[1] for value in values if ":" in value]
