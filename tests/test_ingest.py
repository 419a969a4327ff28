"""Group commit on the acknowledgement path: every caller hears back only after its row is committed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.pipeline import inbox
from storage.models import InboxRow
from tests.harness import Harness


async def _count(h: Harness) -> int:
    async with h.app.sessions() as session:
        return int(await session.scalar(select(func.count(InboxRow.id))) or 0)


async def test_a_burst_is_stored_together_and_each_caller_gets_its_own_answer(harness: Harness) -> None:
    ingestor = inbox.Ingestor(harness.app)
    messages = [harness.message("zhangwei", f"第{i}条", msg_id=f"burst-{i % 40}") for i in range(60)]
    results = await asyncio.gather(*(ingestor.accept(m) for m in messages))
    assert sum(not r.duplicate for r in results) == 40  # 20 ids came twice: the first copy is stored
    assert len({r.inbox_id for r in results if not r.duplicate}) == 40
    assert all(results[i].duplicate for i in range(40, 60))
    assert await _count(harness) == 40
    await asyncio.wait_for(harness.app.ingest_idle.wait(), timeout=5)  # handlers are let in once the burst is over


async def test_a_failed_write_is_nobodys_ack(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    ingestor = inbox.Ingestor(harness.app)

    async def broken(app, stmt):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(inbox, "_insert", broken)
    calls = [ingestor.accept(harness.message("lina", f"m{i}")) for i in range(5)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    await asyncio.wait_for(harness.app.ingest_idle.wait(), timeout=5)  # handlers are not held back forever
    monkeypatch.undo()
    assert not (await ingestor.accept(harness.message("lina", "again"))).duplicate


async def test_handlers_stay_out_between_batches_of_a_burst(harness: Harness) -> None:
    """The platform sends its next callbacks just after our 200: a handler must not slip into that gap."""
    idle = harness.app.ingest_idle
    ingestor = inbox.Ingestor(harness.app, quiet=0.5, max_hold=60)
    await asyncio.gather(*(ingestor.accept(harness.message("zhangwei", f"a{i}")) for i in range(5)))
    assert not idle.is_set()  # everything is stored, but the burst may not be over
    await asyncio.gather(*(ingestor.accept(harness.message("zhangwei", f"b{i}")) for i in range(5)))
    assert not idle.is_set()
    await asyncio.wait_for(idle.wait(), timeout=10)  # quiet for 0.5 s: handlers go on
    assert await _count(harness) == 10


async def test_sustained_traffic_cannot_hold_handlers_back_for_longer_than_the_bound(harness: Harness) -> None:
    idle = harness.app.ingest_idle
    patient = inbox.Ingestor(harness.app, quiet=60, max_hold=60)
    await patient.accept(harness.message("lina", "one"))
    assert not idle.is_set()  # a minute of quiet would be needed ...
    bounded = inbox.Ingestor(harness.app, quiet=60, max_hold=0)
    await bounded.accept(harness.message("lina", "two"))
    assert idle.is_set()  # ... but held past max_hold, handlers go on as soon as nothing waits


async def test_workers_do_not_claim_while_callbacks_are_being_acknowledged(harness: Harness) -> None:
    ingestor = inbox.Ingestor(harness.app, quiet=60, max_hold=60)
    stored = await ingestor.accept(harness.message("zhangwei", "今天拜访了华山医院"))
    claiming = asyncio.create_task(inbox.claim(harness.app))
    done, _ = await asyncio.wait({claiming}, timeout=0.2)
    assert not done  # no write transaction behind the burst's back
    harness.app.ingest_idle.set()  # the burst is over
    assert [row_id for row_id, _ in await asyncio.wait_for(claiming, timeout=10)] == [stored.inbox_id]
