"""Rows written at commit (storage.deferred): grouped, seen by reads of their table, gone with a rollback."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import deferred
from storage.audit import audit, audit_many, audit_row
from storage.db import create_engine, session_factory, transaction, upgrade
from storage.models import AuditLog, Team

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def _row(entity_id: int, new: str = "x") -> dict[str, Any]:
    return audit_row(actor_id=None, entity="note", entity_id=entity_id, field_name="created", old=None, new=new,
                     note_id=None, now=NOW)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(db_url)
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


def _count_inserts(engine: AsyncEngine) -> list[int]:
    """How many INSERT INTO audit_log statements run (an executemany counts once)."""
    seen: list[int] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO audit_log"):
            seen.append(1)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    return seen


async def _audit_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count(AuditLog.id))) or 0)


async def test_rows_of_a_transaction_are_written_at_commit_in_one_statement(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inserts = _count_inserts(engine)
    async with transaction(sessions) as session:
        for i in range(5):
            await audit(session, actor_id=None, entity="note", entity_id=i, field_name="created", old=None, new="text",
                        note_id=None, now=NOW)
        await audit_many(session, [_row(10), _row(11)])
        await session.execute(select(Team.id))  # other reads leave them waiting
        assert not inserts
    assert len(inserts) == 1
    assert await _audit_count(sessions) == 7


async def test_a_read_of_the_table_in_the_transaction_sees_them(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        await audit_many(session, [_row(1), _row(2)])
        assert await session.scalar(select(func.count(AuditLog.id))) == 2
        await audit_many(session, [_row(3)])
        rows = (await session.scalars(select(AuditLog).order_by(AuditLog.entity_id))).all()
        assert [r.entity_id for r in rows] == [1, 2, 3]
    assert await _audit_count(sessions) == 3


async def test_a_join_or_a_subquery_of_the_table_sees_them(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Not only a query whose first entity is the table: a report joining it, a filter on a subquery of it."""
    async with transaction(sessions) as session:
        session.add(Team(key="north", name="North"))
    async with transaction(sessions) as session:
        team_id = await session.scalar(select(Team.id))
        await audit_many(session, [_row(team_id)])
        joined = select(Team.key, func.count(AuditLog.id)).outerjoin(AuditLog, AuditLog.entity_id == Team.id).group_by(Team.key)
        assert (await session.execute(joined)).all() == [("north", 1)]
        await audit_many(session, [_row(team_id, "again")])
        audited = select(Team.key).where(Team.id.in_(select(AuditLog.entity_id).where(AuditLog.new == "again")))
        assert (await session.scalars(audited)).all() == ["north"]
    assert await _audit_count(sessions) == 2


async def test_a_rollback_forgets_them_and_the_next_transaction_starts_empty(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        async with session.begin():
            await audit_many(session, [_row(1)])
            await session.rollback()
        async with session.begin():
            await audit_many(session, [_row(2)])
    async with sessions() as session:
        assert (await session.scalars(select(AuditLog.entity_id))).all() == [2]


async def test_a_rolled_back_savepoint_does_not_take_them_along(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        await audit_many(session, [_row(1)])
        session.add(Team(key="north", name="North"))
        await session.flush()
        with pytest.raises(IntegrityError):
            async with session.begin_nested():  # its commit flushes the clashing row, fails and rolls back
                session.add(Team(key="north", name="North again"))
        await audit_many(session, [_row(2)])
    assert await _audit_count(sessions) == 2


async def test_with_a_key_the_last_write_wins(sessions: async_sessionmaker[AsyncSession]) -> None:
    from storage.audit import _INSERT, _TABLE

    async with transaction(sessions) as session:
        deferred.later(session, _INSERT, _row(1, "first"), table=_TABLE, key=("k", 1))
        deferred.later(session, _INSERT, _row(2), table=_TABLE, key=("k", 2))
        deferred.later(session, _INSERT, _row(1, "second"), table=_TABLE, key=("k", 1))
    async with sessions() as session:
        rows = (await session.execute(select(AuditLog.entity_id, AuditLog.new).order_by(AuditLog.entity_id))).all()
    assert [tuple(r) for r in rows] == [(1, "second"), (2, "x")]


async def test_write_now_writes_them_inside_the_transaction(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        await audit_many(session, [_row(1)])
        await deferred.write_now(session)
        count = await session.execute(select(func.count()).select_from(AuditLog.__table__))  # a Core read, no guard needed
        assert count.scalar() == 1


async def test_a_read_writes_only_its_own_tables_rows(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
    from sqlalchemy import insert

    teams = Team.__table__
    async with transaction(sessions) as session:
        deferred.later(session, insert(teams), {"key": "north", "name": "North", "region": "", "manager_key": "",
                                                "robot_webhook": ""}, table=teams)
        await audit_many(session, [_row(1)])
        assert await session.scalar(select(func.count(AuditLog.id))) == 1  # the audit read wrote the audit row…
        connection = await session.connection()  # (read past the session: it would write what it reads first)
        waiting = await connection.execute(select(func.count()).select_from(teams))
        assert waiting.scalar() == 0  # …and left the team row waiting for the commit
    async with sessions() as session:
        assert await session.scalar(select(func.count(Team.id))) == 1


async def test_a_row_set_later_is_what_the_transaction_reads_after_its_holder_let_go(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The identity map holds an unmodified row weakly: the row set later must not be dropped and read back stale."""
    async with transaction(sessions) as session:
        session.add(Team(key="north", name="North"))
    async with transaction(sessions) as session:
        team = await session.scalar(select(Team))
        assert team is not None
        deferred.set_later(team, {"name": "Nord"}, table=None)
        del team
        gc.collect()
        again = await session.scalar(select(Team))  # a read by key, as the timers are read (table=None: nothing written first)
        assert again is not None and again.name == "Nord"
    async with sessions() as session:
        assert (await session.scalar(select(Team.name))) == "Nord"
