"""Shared fixtures: a migrated SQLite database per test (copied from one migrated template, for speed)."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.demo import write_roster
from bot.roster_files import import_file
from storage.db import Database, sqlite_url
from storage.migrate import upgrade
from tests.fake_telegram import fake_telegram  # noqa: F401 - a fixture for the Telegram tests
from tests.fake_twilio import fake_twilio  # noqa: F401 - a fixture for the SMS tests


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def build() -> None:
        db = Database(sqlite_url(path))
        await upgrade(db)
        await db.close()

    asyncio.run(build())
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated_template: Path) -> Path:
    path = tmp_path / "zoufang.db"
    shutil.copy(migrated_template, path)
    return path


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(db_path))
    yield database
    await database.close()


@pytest.fixture
async def roster(db: Database, tmp_path: Path) -> Database:
    """The demo county's roster (132 households, 28 cadres), imported through the real importer."""
    write_roster(tmp_path, random.Random(7))
    await import_file(db, "cadres", tmp_path / "cadres.csv", county="示范县")
    await import_file(db, "households", tmp_path / "households.csv")
    return db
