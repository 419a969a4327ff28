"""Engines, sessions and migrations for SQLite (default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).with_name("migrations")


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
    Code must therefore never hold two sessions at once on SQLite.

    ``busy_timeout_ms=0`` is for a connection whose caller retries a locked database
    itself, in short asynchronous steps (the acknowledgement path), instead of letting
    SQLite's busy handler sleep in its growing steps.
    """
    if is_sqlite(url):
        _prepare_sqlite_file(url)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000}, pool_size=1, max_overflow=0, pool_timeout=60
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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked": another connection holds the write lock (retry shortly)."""
    return "database is locked" in str(exc)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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
