"""Shared fixtures: a migrated database per test, copied from one migrated template, for speed.

The `db` fixture (and `roster`, built on it) is SQLite by default. With ZOUFANG_TEST_PG_URL set (an asyncpg URL
of a database whose user may create databases), every test that uses `db` but not `db_path` runs a second time on
PostgreSQL: each such test gets a fresh database created from a migrated template. Tests that need the SQLite
file itself (`db_path`: the CLI in a subprocess, sqlite3 queries) stay on SQLite.
"""

from __future__ import annotations

import asyncio
import itertools
import os
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


def _run(make: object) -> None:
    """Run a coroutine function to completion in a thread of its own: session fixtures may be first requested
    from inside a running event loop (an async fixture), where asyncio.run cannot be called."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[operator]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def build() -> None:
        db = Database(sqlite_url(path))
        await upgrade(db)
        await db.close()

    _run(build)
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated_template: Path) -> Path:
    path = tmp_path / "zoufang.db"
    shutil.copy(migrated_template, path)
    return path


PG_URL = os.environ.get("ZOUFANG_TEST_PG_URL", "")
REDIS_URL = os.environ.get("ZOUFANG_TEST_REDIS_URL", "")
_PG_TEMPLATE = f"zoufang_template_{os.getpid()}"
_PG_NAMES = itertools.count(1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses `db` on every configured backend (only SQLite when it also needs the file)."""
    if "backend" not in metafunc.fixturenames:
        return
    backends = ["sqlite"]
    if PG_URL and "db_path" not in metafunc.fixturenames:
        backends.append("postgresql")
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


def _pg_url(database: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{database}"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_template() -> AsyncIterator[str] | str:
    """A migrated PostgreSQL database that each test's database is copied from (CREATE DATABASE … TEMPLATE)."""
    if not PG_URL:
        pytest.skip("ZOUFANG_TEST_PG_URL is not set")

    async def build() -> None:
        await _pg_admin(f"DROP DATABASE IF EXISTS {_PG_TEMPLATE} WITH (FORCE)")
        await _pg_admin(f"CREATE DATABASE {_PG_TEMPLATE}")
        database = Database(_pg_url(_PG_TEMPLATE))
        await upgrade(database)
        await database.close()

    _run(build)
    yield _PG_TEMPLATE
    _run(lambda: _pg_admin(f"DROP DATABASE IF EXISTS {_PG_TEMPLATE} WITH (FORCE)"))


@pytest.fixture
async def fsm_redis_url(backend: str) -> AsyncIterator[str]:
    """On the PostgreSQL run, the Telegram tests keep FSM state and chat order in Redis (an emptied database);
    on the SQLite run, in memory ("")."""
    if backend != "postgresql" or not REDIS_URL:
        yield ""
        return
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    yield REDIS_URL
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if backend == "postgresql":
        template = request.getfixturevalue("pg_template")
        name = f"zoufang_t{os.getpid()}_{next(_PG_NAMES)}"
        await _pg_admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        database = Database(_pg_url(name))
        yield database
        await database.close()
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    path = request.getfixturevalue("db_path")
    database = Database(sqlite_url(path))
    yield database
    await database.close()


@pytest.fixture
async def roster(db: Database, tmp_path: Path) -> Database:
    """The demo county's roster (132 households, 28 cadres), imported through the real importer."""
    write_roster(tmp_path, random.Random(7))
    await import_file(db, "cadres", tmp_path / "cadres.csv", county="示范县")
    await import_file(db, "households", tmp_path / "households.csv")
    return db
