"""The async engine and sessions. SQLite (WAL, busy timeout) by default; any SQLAlchemy async URL otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

T = TypeVar("T")

# The transaction handles the flows are given (`Database.run` a Connection, `run_orm` a Session, `session()`
# an AsyncSession): flows name them from here and never import SQLAlchemy themselves.
__all__ = [
    "AsyncSession",
    "Connection",
    "Database",
    "Session",
    "make_engine",
    "make_thread_engine",
    "sqlite_url",
]

SQLITE_BUSY_MS = 5000
POOL_SIZE, POOL_OVERFLOW, POOL_TIMEOUT = 10, 10, 10.0  # connections a process keeps, may add, waits for (s)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path).resolve()}"


def make_engine(url: str, *, writer: bool = True, **kwargs: Any) -> AsyncEngine:
    """An engine; on SQLite a writer's transactions take the write lock up front, a reader's do not."""
    if url.startswith("sqlite") and writer:
        # One writer connection: SQLite has one write lock anyway, and waiting for it in asyncio is fair and
        # cheap, while many connections polling SQLite's busy handler are neither (p99 in seconds, timeouts).
        kwargs = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 30, **kwargs}
    elif not url.startswith("sqlite"):
        # A webhook waits at most this long for a connection, then fails (503 for Twilio, 500 for Telegram:
        # both send again) well inside their own timeouts (15 s, 60 s), instead of holding every request.
        kwargs = {
            "pool_size": POOL_SIZE,
            "max_overflow": POOL_OVERFLOW,
            "pool_timeout": POOL_TIMEOUT,
            **kwargs,
        }
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if writer:
            event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def make_thread_engine(url: str, *, writer: bool) -> Engine:
    """SQLite through the standard library's driver, for work run whole in the database thread (Database.run)."""
    engine = create_engine(make_url(url).set(drivername="sqlite"), pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _sqlite_pragmas)
    if writer:
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; the busy timeout makes concurrent writers wait, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Reports scan large tables: reading them through the page cache mapping, not copies, halves their time.
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.close()
    # Let SQLAlchemy, not the driver, start transactions (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Any) -> None:
    # A deferred transaction that reads, then writes, fails at once with "database is locked" when another
    # writer committed in between (the busy timeout cannot help). Taking the write lock up front makes
    # concurrent writers queue on the busy timeout instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_file(url: str) -> Path | None:
    """The SQLite file of `url`, absolute (a relative one is in the working directory); None for another
    database, an in-memory one or a URL that does not parse."""
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).absolute()


def ensure_sqlite_dir(url: str) -> None:
    """Refuse (messages.Refusal) a URL that is not one: a plain path is shown its URL form. An absolute SQLite
    file's folder is made; a relative one's must exist (`sqlite+aiosqlite:///rel/x.db` is relative to the
    working directory, which is rarely what was meant), and the refusal names the file it resolved to."""
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        from messages import Refusal  # here, not above: reports never load jinja2 when nothing fails

        raise Refusal("db_url_not_url", given=repr(url), example=sqlite_url(url) if url else None) from None
    path = sqlite_file(url)
    if path is None:
        return
    if Path(parsed.database).is_absolute():
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        from messages import Refusal

        raise Refusal("db_folder_missing", url=url, path=path, absolute=sqlite_url(path))


def check_url(url: str) -> None:
    """Refuse (messages.Refusal) what Database(url) would refuse, without connecting: for a parent that only
    forks the processes that open it (`zoufang serve --workers N`), which would otherwise die one by one."""
    ensure_sqlite_dir(url)
    _engine_or_refusal(url).sync_engine.dispose()


def _engine_or_refusal(url: str) -> AsyncEngine:
    """The writer's engine; a URL naming no usable async driver (sqlite://, postgres://, a driver not installed)
    is refused (messages.Refusal) with SQLAlchemy's reason and the password masked."""
    from sqlalchemy.exc import InvalidRequestError, NoSuchModuleError

    try:
        return make_engine(url)
    except (InvalidRequestError, NoSuchModuleError, ImportError) as exc:
        from messages import Refusal

        shown = make_url(url).render_as_string(hide_password=True)
        raise Refusal("db_url_driver", given=shown, why=str(exc).splitlines()[0]) from exc


class Database:
    """One engine and its session factory; `session()` is a unit of work that commits or rolls back."""

    def __init__(self, url: str) -> None:
        ensure_sqlite_dir(url)
        self.url = url
        self.engine = _engine_or_refusal(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite readers need no write lock (WAL lets them run beside the writer); elsewhere one engine serves
        self.reader = make_engine(url, writer=False) if self.engine.dialect.name == "sqlite" else self.engine
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)
        self._thread: ThreadPoolExecutor | None = None
        self._thread_writer: Engine | None = None
        self._thread_reader: Engine | None = None
        if self.engine.dialect.name == "sqlite":
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="zoufang-sqlite")
            self._thread_writer = make_thread_engine(url, writer=True)
            self._thread_reader = make_thread_engine(url, writer=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work: it never waits for, or holds up, the writers."""
        # closing the session ends its transaction; objects stay loaded (expunged, not expired) for the caller
        async with self.read_sessions() as session:
            yield session

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run `work`, plain synchronous Core on a Connection, as one transaction, and return what it returns;
        an exception rolls it back. For the hot paths (an inbound SMS batch, a Telegram answer).

        On SQLite it runs in the database's own thread, on a connection of the standard library's driver: one
        hop to that thread for the whole transaction, where aiosqlite costs three or four hops a statement
        (each ~75 µs of CPU: far more than the statement). The thread is one, so its transactions queue in
        order. Elsewhere (PostgreSQL) the same code runs on the async engine's connection (`run_sync`)."""
        if self._thread is None:
            if write:
                async with self.engine.begin() as conn:
                    return await conn.run_sync(work)
            async with self.reader.connect() as conn:
                return await conn.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._in_thread, work, write)

    async def run_orm(self, work: Callable[[Session], T]) -> T:
        """`run` for ORM work: `work` gets a sync Session in the transaction (on SQLite in the database's
        thread; elsewhere the async session's own, through `run_sync`)."""
        if self._thread is None:
            async with self.session() as s:
                return await s.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._orm_in_thread, work)

    def _orm_in_thread(self, work: Callable[[Session], T]) -> T:
        with Session(self._thread_writer, expire_on_commit=False) as session, session.begin():
            return work(session)

    def _in_thread(self, work: Callable[[Connection], T], write: bool) -> T:
        engine = self._thread_writer if write else self._thread_reader
        assert engine is not None
        with engine.begin() as conn:
            return work(conn)

    async def ping(self) -> bool:
        try:
            async with self.reader.connect() as conn:  # never queues behind the single SQLite writer
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()
        if self._thread is not None:
            thread, self._thread = self._thread, None
            for engine in (self._thread_writer, self._thread_reader):
                if engine is not None:  # in the thread that made their connections
                    await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)
            thread.shutdown(wait=True)
