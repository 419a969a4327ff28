"""A pooled PostgreSQL connection the server has closed is replaced at checkout, without a ping per checkout."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from storage.db import create_engine


async def test_a_terminated_backend_is_replaced_at_checkout_without_pinging(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL pool")
    engine = create_engine(db_url, pool_size=1)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    dialect = engine.sync_engine.dialect
    pings: list[object] = []
    ping = dialect.do_ping
    dialect.do_ping = lambda conn: pings.append(conn) or ping(conn)  # type: ignore[method-assign]
    try:
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            driver = (await conn.get_raw_connection()).driver_connection
        statements.clear()
        async with engine.connect() as conn:  # an idle pooled connection is checked out with no SELECT 1 first
            await conn.scalar(text("SELECT 2"))
        assert statements == ["SELECT 2"] and not pings

        url = make_url(db_url)
        admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        for _ in range(500):  # the idle pooled connection sees the server's goodbye as the event loop reads its socket
            if driver.is_closed():
                break
            await asyncio.sleep(0.01)
        assert driver.is_closed()
        async with engine.connect() as conn:  # first try, no error: the closed connection was swapped for a new one
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()

