"""The Alembic migrations build the schema the models describe, on SQLite and PostgreSQL, and undo cleanly.

Why compare with the models: the tests' databases are built by the migrations, so an index
declared only in ``storage.models`` (or only in a migration) would never be noticed by the
rest of the suite, yet production would run without it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import alembic_config, upgrade
from storage.models import Base


async def _run(url: str, work: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _differences(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))


def _escalation_indexes(conn: Connection) -> set[str]:
    return {ix["name"] for ix in inspect(conn).get_indexes("escalations") if ix["name"]}


async def test_migrations_build_the_schema_the_models_describe(db_url: str) -> None:
    await upgrade(db_url)
    assert await _run(db_url, _differences) == []


async def test_every_migration_downgrades_and_upgrades_again(db_url: str) -> None:
    await upgrade(db_url)
    assert "ix_escalations_awaiting" in await _run(db_url, _escalation_indexes)
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0005")
    assert "ix_escalations_awaiting" not in await _run(db_url, _escalation_indexes)
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "base")
    await upgrade(db_url)
    assert await _run(db_url, _differences) == []


async def test_who_an_escalation_awaits_is_looked_up_by_index(tmp_path: Any) -> None:
    """The question asked on every message (handlers.common.waiting) must not scan the table (SQLite's plan)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    await upgrade(url)

    def plan(conn: Connection) -> str:
        rows = conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM escalations WHERE awaiting_person_id = :p"
            " AND awaiting_until > :now AND closed_at IS NULL)"), {"p": 1, "now": "2026-12-01 00:00:00"})
        return "\n".join(str(row[-1]) for row in rows)

    assert "USING INDEX ix_escalations_awaiting" in await _run(url, plan)
