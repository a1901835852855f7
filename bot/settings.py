"""Settings from environment variables; a `.env` file in the working directory may supply them.

Vendor credentials keep the vendor's names; everything else is ZOUFANG_<NAME>. Values that differ per county
(income lines) live in the database; the variables here are only their defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from messages import Refusal
from survey.facts import Lines
from survey.integrity import Thresholds

DEFAULT_DB_URL = "sqlite+aiosqlite:///zoufang.db"
SECRETS = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TWILIO_AUTH_TOKEN", "ZOUFANG_WEB_SECRET")


class SettingsError(Refusal, ValueError):
    """A bad setting: macro `key` of cli/settings.txt, shown in the reader's language at the CLI's edge; its
    str() is the English sentence (logs, tracebacks)."""

    def __init__(self, key: str, /, **params: Any) -> None:
        shown = {k: repr(v) if k == "given" else v for k, v in params.items()}  # a value as typed, quoted
        super().__init__(key, source="cli/settings.txt", **shown)

    def __str__(self) -> str:
        return self.text("en")


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_DB_URL
    redis_url: str = ""
    script: str = ""
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    quiet_hours: str = "21:00-08:00"
    sms_rate: float = 1.0
    # seconds one provider call may take; a row claimed twice as long ago is a dead sender's, sent again
    send_timeout: float = 60.0
    poll_period: str = "quarter"  # one satisfaction poll per household per period: month|quarter|half|year
    poll_after_visit: str = "10:00"  # the poll after a visit goes out the next day at this local time
    income_line: Decimal = Decimal(3600)
    monitoring_line: Decimal = Decimal(5000)
    count_guaranteed: bool = False
    satisfaction_target: float = 0.9  # the seeds' ≥ 90%
    awareness_target: float = 1.0  # 政策知晓率: the seeds' 100 %
    # the plans' 98 % targets (report targets): safe housing, 医保, 养老保险
    housing_target: float = 0.98
    medical_target: float = 0.98
    pension_target: float = 0.98
    # the visit period of the roles the seeds give no figure for (indicators.md): month|quarter|half|year
    helper_period: str = "quarter"  # 帮扶责任人
    village_secretary_period: str = "year"  # 村党支部书记
    township_secretary_period: str = "year"  # 乡镇党委书记
    # integrity flags (report integrity): thresholds, never verdicts
    integrity_min_visit_minutes: float = 10.0
    integrity_max_distance_m: float = 1000.0
    integrity_burst_visits: int = 3
    integrity_burst_minutes: float = 15.0
    integrity_satisfaction_gap: float = 20.0  # percentage points, visit-recorded above SMS
    # the dashboard (/dash/): the key signing its cookies (empty: one made once and kept in the database),
    # how long a `zoufang web invite` link stays usable, and how long a session lasts
    web_secret: str = ""
    web_link_minutes: int = 30
    web_session_hours: int = 12
    web_cache_seconds: int = 60  # how long the dashboard keeps a page's tables (0: built on every view)
    telegram_bot_token: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_secret: str = ""
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = ""
    public_base_url: str = ""
    sms_backend: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def after_visit_time(self) -> time:
        return time.fromisoformat(self.poll_after_visit)

    @property
    def lines(self) -> Lines:
        return Lines(self.income_line, self.monitoring_line, self.count_guaranteed)

    @property
    def role_periods(self) -> dict[str, str]:
        return {
            "帮扶责任人": self.helper_period,
            "村党支部书记": self.village_secretary_period,
            "乡镇党委书记": self.township_secretary_period,
        }

    @property
    def integrity(self) -> Thresholds:
        return Thresholds(
            min_visit_minutes=self.integrity_min_visit_minutes,
            max_distance_m=self.integrity_max_distance_m,
            burst_visits=self.integrity_burst_visits,
            burst_minutes=self.integrity_burst_minutes,
            satisfaction_gap_points=self.integrity_satisfaction_gap,
        )

    def env_names(self) -> dict[str, str]:
        """Setting → the environment variable that sets it."""
        return {f.name: _env_name(f.name) for f in fields(self)}


_VENDOR = ("telegram_", "twilio_", "public_base_url", "sms_backend")


def _env_name(field_name: str) -> str:
    if field_name.startswith(_VENDOR):
        return field_name.upper()
    return f"ZOUFANG_{field_name.upper()}"


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Environment variables win over the .env file; a bad value is a SettingsError naming the variable."""
    given = os.environ if environ is None else environ
    # An empty variable counts as unset (it neither hides the .env value nor replaces the default),
    # except where empty has a meaning: ZOUFANG_QUIET_HOURS= means no quiet hours.
    keep_empty = {"ZOUFANG_QUIET_HOURS"}
    env = {
        **(read_dotenv(dotenv) if dotenv else {}),
        **{k: v for k, v in given.items() if v or k in keep_empty},
    }
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = env.get(_env_name(f.name))
        if raw is None or (raw == "" and f.name != "quiet_hours"):
            continue
        values[f.name] = _convert(f.name, str(f.type), raw)
    settings = Settings(**values)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _convert(name: str, type_name: str, raw: str) -> object:
    if type_name == "bool":
        return _boolean(name, raw)
    if type_name == "int":
        return _whole(name, raw)
    if type_name not in ("Decimal", "float"):
        return raw.strip()
    try:
        number = Decimal(raw)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number < 0:
        raise SettingsError("not_number", name=_env_name(name), given=raw)
    return number if type_name == "Decimal" else float(number)


def _whole(name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or int(text) < 1:
        raise SettingsError("not_whole", name=_env_name(name), given=raw)
    return int(text)


def _boolean(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on", "是"):
        return True
    if word in ("0", "false", "no", "off", "否"):
        return False
    raise SettingsError("not_boolean", name=_env_name(name), given=raw)


def _validate(settings: Settings) -> None:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError("bad_timezone", given=settings.timezone) from exc
    if settings.locale not in ("zh_CN", "en"):
        raise SettingsError("bad_locale", given=settings.locale)
    if settings.poll_period not in ("month", "quarter", "half", "year"):
        raise SettingsError("bad_period", name="ZOUFANG_POLL_PERIOD", given=settings.poll_period)
    for name in ("helper_period", "village_secretary_period", "township_secretary_period"):
        if getattr(settings, name) not in ("month", "quarter", "half", "year"):
            raise SettingsError("bad_period", name=_env_name(name), given=getattr(settings, name))
    if not 0 < settings.satisfaction_target <= 1:
        raise SettingsError(
            "bad_fraction",
            name="ZOUFANG_SATISFACTION_TARGET",
            given=settings.satisfaction_target,
            example="0.9",
        )
    if settings.send_timeout < 1:
        raise SettingsError("send_timeout_low")
    if not 0 < settings.awareness_target <= 1:
        raise SettingsError(
            "bad_fraction", name="ZOUFANG_AWARENESS_TARGET", given=settings.awareness_target, example="1"
        )
    for name in ("housing_target", "medical_target", "pension_target"):
        if not 0 < getattr(settings, name) <= 1:
            raise SettingsError(
                "bad_fraction", name=_env_name(name), given=getattr(settings, name), example="0.98"
            )
    if settings.integrity_burst_visits < 2:
        raise SettingsError("burst_low")
    try:
        settings.after_visit_time  # noqa: B018 - parse it now, not at the first submitted visit
    except ValueError as exc:
        raise SettingsError(
            "bad_time", name="ZOUFANG_POLL_AFTER_VISIT", given=settings.poll_after_visit
        ) from exc


def masked(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) pairs for `zoufang config`, secrets masked."""
    rows = []
    for f in fields(settings):
        name = _env_name(f.name)
        value = str(getattr(settings, f.name))
        if name in SECRETS and value:
            value = "******"
        rows.append((name, value))
    return rows
