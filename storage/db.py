"""Engines, sessions and migrations for SQLite (default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_cursor
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from storage import deferred

MIGRATIONS = Path(__file__).with_name("migrations")


class _OneHopCursor(AsyncAdapt_dbapi_cursor):
    """An aiosqlite cursor that costs one hop to the connection's thread per statement.

    SQLAlchemy's adapter makes four (open a cursor, execute, fetch, close), each a queue
    put, a thread wake-up and a wake-up of the event loop; on a busy 2-core box those
    hops, not SQLite, were most of a message's time. Here one function runs all four on
    the connection's thread and hands back the rows, description, rowcount and lastrowid.
    """

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: Any) -> None:  # no cursor is opened up front
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(operation, parameters, False))
        except Exception as error:  # noqa: BLE001 - mapped to the DBAPI's exceptions as SQLAlchemy's adapter does
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, True))
        except Exception as error:  # noqa: BLE001
            self._adapt_connection._handle_exception(error)

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        conn = self._connection
        async with self._adapt_connection._execute_mutex:
            result = await conn._execute(_execute_on_thread, conn._conn, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)


def _execute_on_thread(raw: Any, operation: Any, parameters: Any, many: bool) -> tuple[Any, list[Any], int, Any]:
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneHopCursor  # type: ignore[assignment]


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy adapts it, with :class:`_OneHopCursor` (passed per engine as ``module=``)."""

    def connect(self, *arg: Any, **kw: Any) -> _OneHopConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy does: a forgotten connection must not keep the process alive
        return _OneHopConnection(self, await_(connection))


def _one_hop_dbapi() -> _OneHopDBAPI:
    import sqlite3

    import aiosqlite

    return _OneHopDBAPI(aiosqlite, sqlite3)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, *, echo: bool = False, pool_size: int = 5, busy_timeout_ms: int = 30_000) -> AsyncEngine:
    """Create an async engine; on SQLite turn on WAL and serialise writers.

    SQLite has one writer at a time. Within a process, one pooled connection queues
    sessions fairly on the event loop; several connections would instead contend through
    SQLite's busy handler, which sleeps in growing steps (measured: 8x lower throughput).
    Across processes (``genjin chat`` beside ``serve``) transactions start with BEGIN
    IMMEDIATE, so they wait on the busy timeout rather than deadlock on lock upgrade.
    Code must therefore never hold two sessions at once on SQLite. A session that only
    reads (:func:`read_session`) begins deferred instead: it takes no write lock, so an
    idle poll does not hold up an acknowledgement or another process.

    ``busy_timeout_ms=0`` is for a connection whose caller retries a locked database
    itself, in short asynchronous steps (the acknowledgement path), instead of letting
    SQLite's busy handler sleep in its growing steps.
    """
    if is_sqlite(url):
        _prepare_sqlite_file(url)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000}, pool_size=1, max_overflow=0, pool_timeout=60,
            module=_one_hop_dbapi() if make_url(url).get_driver_name() == "aiosqlite" else None,
        )
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READS_ONLY) else "BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)

    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # What pool_pre_ping did with a ``SELECT 1`` round trip on every checkout (3% of a node's
        # CPU and one more round trip per transaction), asked of the driver instead: asyncpg
        # reads its socket on the event loop while the connection idles in the pool, so a
        # server restart or a terminated backend has closed it by the time it is checked out.
        # Raising makes the pool discard it and connect afresh. A silent network cut is seen
        # by the next statement instead; the message is then retried like any failure.
        if dbapi_conn.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")

    return engine


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked": another connection holds the write lock (retry shortly)."""
    return "database is locked" in str(exc)


class GenjinSession(Session):
    """The sessions of the app: they write :mod:`storage.deferred` rows at commit."""


deferred.install(GenjinSession)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=GenjinSession)


#: Connection execution option of sessions that only read (see :func:`read_session`).
READS_ONLY = "genjin_reads_only"


def read_session(factory: async_sessionmaker[AsyncSession]) -> AsyncSession:
    """A session for reads only: on SQLite its transaction begins deferred, not ``BEGIN IMMEDIATE``.

    Reads in WAL mode need no lock, but ``BEGIN IMMEDIATE`` takes the write lock for the
    whole transaction: a poll that finds nothing, or a cache fill, would queue
    acknowledgements and other processes behind it. Never write in one: a deferred
    transaction that upgrades to a write can fail at once with "database is locked" when
    another process wrote in between. On PostgreSQL its statements run in autocommit: no
    ``BEGIN`` and ``ROLLBACK`` round trips around a probe (each read sees committed data,
    which is all a probe or a cache fill needs).
    """
    options: dict[str, Any] = {READS_ONLY: True}
    bind = factory.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return factory(execution_options=options)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits together or not at all."""
    async with factory() as session:
        async with session.begin():
            yield session


async def insert_unique(session: AsyncSession, row: Any, refind: Callable[[], Any]) -> tuple[Any, bool]:
    """Insert ``row``, or return the one a concurrent transaction inserted first.

    Two workers on PostgreSQL can both miss a hospital and both create it; the unique
    constraint rejects the second, and a savepoint keeps our transaction usable.
    """
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
        return row, True
    except IntegrityError:
        existing = await refind()
        if existing is None:
            raise
        return existing, False


def insert_for(dialect: str) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` (both SQLite and PostgreSQL do)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    if is_sqlite(url):
        _prepare_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations; Alembic's env runs its own event loop, so give it a thread."""
    await asyncio.to_thread(upgrade_sync, url, revision)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
