"""Kill -9 the server between acknowledgement and processing (and mid-processing);
after a restart every acknowledged message has exactly one result."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from storage.db import create_engine, session_factory
from tests.conftest import DEMO_ORG
from tests.serve import Server, assert_each_message_once, free_port, import_org, post, settled_rows, write_config

pytestmark = pytest.mark.slow


async def test_sigkill_between_ack_and_processing_then_restart(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "genjin.toml"
    transcript = tmp_path / "delivered.jsonl"
    write_config(config, db_url, port, transcript)
    import_org(config, DEMO_ORG)

    async with aiohttp.ClientSession() as http:
        # 1. an ingest-only node acknowledges 5 messages and is killed before any processing
        server = Server(config, port, workers=0)
        try:
            await server.ready(http)
            for i in range(5):
                await post(http, server.base, i)
        finally:
            server.kill()

        # 2. a full node is killed at an arbitrary point while processing a burst
        server = Server(config, port, workers=2)
        try:
            await server.ready(http)
            await asyncio.gather(*(post(http, server.base, i) for i in range(5, 35)))
        finally:
            server.kill()

        # 3. restart: everything acknowledged is processed exactly once
        server = Server(config, port, workers=2)
        engine = create_engine(db_url)
        sessions = session_factory(engine)
        try:
            await server.ready(http)
            inbox_rows, outbox_rows, notes = await settled_rows(sessions, 35, timeout=90)
        finally:
            server.stop()
            await engine.dispose()

    assert_each_message_once(inbox_rows, outbox_rows, notes, 35)
    assert all(r.status == "sent" for r in outbox_rows)
    delivered = transcript.read_text(encoding="utf-8").splitlines()
    assert len(delivered) >= len(outbox_rows)  # at-least-once to the wire; once in the database
