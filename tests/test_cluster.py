"""Two ``genjin serve`` nodes on one PostgreSQL database, one killed with SIGKILL mid-burst.

The burst is split across both nodes the way a load balancer would (a post the killed
node cannot take goes to the survivor, as the platform's retry would). Afterwards every
message is processed exactly once with exactly one set of replies in the database, the
rows the killed node had claimed are taken over by the survivor once their lease runs
out (node A is killed at a moment it holds claimed rows: it leases for 10 s, the survivor
for 2 s, so a row leased for longer than 4 s from now is A's), and every reply reached the receiving end. On the wire delivery is
at-least-once: a reply the killed node was sending when it died may arrive twice, and
only such a reply.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from storage.db import create_engine, session_factory
from storage.models import InboxRow, utcnow
from tests.conftest import DEMO_ORG
from tests.serve import Server, assert_each_message_once, free_port, import_org, post, settled_rows, write_config

pytestmark = pytest.mark.slow

REPS = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
MESSAGES = 120
A_LEASE_SECONDS = 10  # node A's [pipeline] lease_seconds; the survivor keeps write_config's 2 s
OUTBOX_CLAIM_LIMIT = 20  # [pipeline] outbox_batch in tests/serve.write_config: what one node can have in flight on the wire


def _delivered(transcript: Path) -> list[int]:
    if not transcript.exists():
        return []
    return [json.loads(line)["id"] for line in transcript.read_text(encoding="utf-8").splitlines() if line.strip()]


async def test_two_nodes_one_killed_mid_burst_every_message_once(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several nodes need PostgreSQL (SQLite is one box, one writer)")
    port_a, port_b = free_port(), free_port()
    config = tmp_path / "genjin.toml"
    transcripts = {name: tmp_path / f"delivered-{name}.jsonl" for name in ("a", "b")}
    write_config(config, db_url, port_a, transcripts["a"])
    import_org(config, DEMO_ORG)
    engine = create_engine(db_url)
    sessions = session_factory(engine)

    async def unfinished() -> int:
        async with sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status != "done")) or 0)

    async def held_by_a() -> int:
        """Rows claimed and still leased beyond any lease the survivor takes (so node A's)."""
        async with sessions() as session:
            return int(await session.scalar(
                select(func.count()).select_from(InboxRow).where(
                    InboxRow.status == "processing", InboxRow.lease_until > utcnow() + timedelta(seconds=A_LEASE_SECONDS / 2.5))
            ) or 0)

    node_a = Server(config, port_a, workers=2, env={"GENJIN_LOCAL_TRANSCRIPT": str(transcripts["a"]),
                                                    "GENJIN_PIPELINE_LEASE_SECONDS": str(A_LEASE_SECONDS)})
    node_b = Server(config, port_b, workers=2, env={"GENJIN_LOCAL_TRANSCRIPT": str(transcripts["b"])})
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(node_a.ready(http), node_b.ready(http))
            killed = asyncio.Event()
            served: Counter[str] = Counter()
            retried: list[int] = []

            async def send(i: int) -> None:
                node = node_a if i % 2 == 0 and not killed.is_set() else node_b
                try:
                    await post(http, node.base, i, user=REPS[i % len(REPS)])
                except aiohttp.ClientError:
                    assert node is node_a and killed.is_set()
                    node = node_b  # the platform retries; the balancer sends it to the survivor
                    retried.append(i)  # (node A may have stored it before it died: the same id, a duplicate)
                    await post(http, node.base, i, user=REPS[i % len(REPS)])
                served[node.base] += 1

            async def kill_a_mid_burst() -> None:
                # once node A is delivering replies (its workers hold claimed rows), while posts still arrive
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 60
                while (not _delivered(transcripts["a"]) or sum(served.values()) < MESSAGES // 3) and loop.time() < deadline:
                    await asyncio.sleep(0.02)
                # then freeze node A at a moment it holds claimed rows, and kill it frozen
                while loop.time() < deadline:
                    node_a.pause()
                    if await held_by_a():
                        break
                    node_a.resume()
                    await asyncio.sleep(0.02)
                assert sum(served.values()) < MESSAGES, "the burst was over before node A could be killed"
                node_a.kill()
                killed.set()

            sem = asyncio.Semaphore(4)

            async def paced(i: int) -> None:
                # a gap after each post, so node A's workers (held back while callbacks stream in) get to work
                async with sem:
                    await send(i)
                    await asyncio.sleep(0.15)

            await asyncio.gather(kill_a_mid_burst(), *(paced(i) for i in range(MESSAGES)))
            assert served[node_a.base] > 0 and served[node_b.base] > 0

        inbox_rows, outbox_rows, notes = await settled_rows(sessions, MESSAGES, timeout=180)
    finally:
        node_a.stop()
        node_b.stop()
        await engine.dispose()

    # nothing lost, nothing processed twice
    assert_each_message_once(inbox_rows, outbox_rows, notes, MESSAGES)
    # the killed node's claims were taken over by the survivor after their lease
    assert any(r.attempts >= 2 for r in inbox_rows), "node A held no claimed rows when it was killed"
    # every reply reached the receiving end; a second copy only of what node A was sending when it died
    on_a, on_b = _delivered(transcripts["a"]), _delivered(transcripts["b"])
    assert all(r.status == "sent" for r in outbox_rows)
    assert set(on_a) | set(on_b) == {r.id for r in outbox_rows}
    twice = [row_id for row_id, count in Counter(on_a + on_b).items() if count > 1]
    assert len(twice) <= OUTBOX_CLAIM_LIMIT and all(row_id in on_a and on_b.count(row_id) == 1 for row_id in twice), twice
