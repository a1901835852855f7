"""Settings: environment over .env, empty means unset, bad values are refused naming the variable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings, masked


def test_env_file_with_byte_order_mark_keeps_its_first_setting(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "ZOUFANG_DB_URL=sqlite+aiosqlite:///county.db\nZOUFANG_LOCALE=en\n", encoding="utf-8-sig"
    )
    settings = load_settings({}, dotenv)
    assert settings.db_url == "sqlite+aiosqlite:///county.db" and settings.locale == "en"


def test_environment_wins_and_empty_means_unset(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("ZOUFANG_INCOME_LINE=3442\nZOUFANG_TIMEZONE=Asia/Urumqi\n", encoding="utf-8")
    settings = load_settings({"ZOUFANG_INCOME_LINE": "4000", "ZOUFANG_TIMEZONE": ""}, dotenv)
    assert settings.income_line == Decimal(4000)
    assert settings.timezone == "Asia/Urumqi"
    assert load_settings({"ZOUFANG_QUIET_HOURS": ""}, None).quiet_hours == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZOUFANG_COUNT_GUARANTEED", "ture"),
        ("ZOUFANG_INCOME_LINE", "NaN"),
        ("ZOUFANG_INCOME_LINE", "-1"),
        ("ZOUFANG_SMS_RATE", "fast"),
        ("ZOUFANG_TIMEZONE", "Mars/Base"),
        ("ZOUFANG_LOCALE", "fr"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value}, None)


def test_booleans_and_secrets():
    settings = load_settings({"ZOUFANG_COUNT_GUARANTEED": "yes", "TWILIO_AUTH_TOKEN": "abc"}, None)
    assert settings.count_guaranteed is True
    shown = dict(masked(settings))
    assert shown["TWILIO_AUTH_TOKEN"] == "******" and "abc" not in str(shown)


def test_poll_settings():
    settings = load_settings({"ZOUFANG_POLL_PERIOD": "month", "ZOUFANG_POLL_AFTER_VISIT": "09:30"}, None)
    assert settings.poll_period == "month" and settings.after_visit_time.isoformat() == "09:30:00"
    with pytest.raises(SettingsError, match="ZOUFANG_POLL_PERIOD"):
        load_settings({"ZOUFANG_POLL_PERIOD": "fortnight"}, None)
    with pytest.raises(SettingsError, match="ZOUFANG_POLL_AFTER_VISIT"):
        load_settings({"ZOUFANG_POLL_AFTER_VISIT": "ten"}, None)
