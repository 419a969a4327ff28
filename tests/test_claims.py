"""Claims: sized by the senders that are ready, and no write transaction when there is nothing to claim."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from bot.messages import Inbound, Kind
from bot.pipeline import inbox, outbox
from bot.pipeline.inbox import batch_size
from storage.db import transaction
from storage.models import InboxRow
from storage.org import OrgSpec, PersonSpec, import_org
from tests.conftest import RuntimeFactory
from tests.harness import Harness


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """Every statement the app's engine runs (BEGIN IMMEDIATE on SQLite included), and each COMMIT."""
    seen: list[str] = []
    engine = app.engine.sync_engine

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    def commit(conn: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)


def _writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.split()[0] in {"UPDATE", "INSERT", "DELETE", "WITH", "COMMIT"} or s == "BEGIN IMMEDIATE"]


def test_a_claim_shares_the_ready_senders_among_the_workers() -> None:
    assert batch_size(ready=6, workers=2, most=32) == 3
    assert batch_size(ready=7, workers=2, most=32) == 4
    assert batch_size(ready=200, workers=2, most=32) == 32
    assert batch_size(ready=1, workers=4, most=32) == 1
    assert batch_size(ready=5, workers=0, most=32) == 5  # an ingest-only node (0 workers) that is asked to claim


async def test_an_idle_poll_is_no_write_transaction(make_runtime: RuntimeFactory) -> None:
    h = Harness(await make_runtime())
    await h.say("zhangwei", "收到")  # something done and sent before: the tables are not empty
    with statements(h.app) as seen:
        assert await inbox.claim_batch(h.app) == []
        assert await outbox.claim(h.app, h.app.channels) == []
    assert seen, "the probes ran"
    assert _writes(seen) == [], seen


async def test_a_sender_blocked_behind_their_own_earlier_message_is_no_write_either(make_runtime: RuntimeFactory) -> None:
    h = Harness(await make_runtime())
    for text in ("收到", "好的"):
        await inbox.accept(h.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender="zhangwei", kind=Kind.TEXT,
                                          conversation="zhangwei", text=text))
    assert len(await inbox.claim_batch(h.app)) == 1  # the first; the second waits for it (per-sender order)
    with statements(h.app) as seen:
        assert await inbox.claim_batch(h.app) == []
    assert _writes(seen) == [], seen


async def test_a_claim_grows_with_the_senders_that_are_ready(make_runtime: RuntimeFactory) -> None:
    """Forty reps with a message each: one claim takes ``claim_batch`` of them (one worker), not six or ten."""
    runtime = await make_runtime({"pipeline": {"workers": 1, "claim_batch": 25}})
    reps = [f"rep{k:02d}" for k in range(40)]
    async with transaction(runtime.app.sessions) as session:
        await import_org(session, OrgSpec(teams=[], people=[PersonSpec(key=key, name=key, role="rep") for key in reps]))
    for key in reps:
        for text in ("收到", "好的"):  # each rep's second message waits for the first
            await inbox.accept(runtime.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=key, kind=Kind.TEXT,
                                                    conversation=key, text=text))
    first = await inbox.claim_batch(runtime.app)
    second = await inbox.claim_batch(runtime.app)
    assert len(first) == 25 and len(second) == 15
    assert len({row.sender for row in first + second}) == 40  # every rep's first message, none of their second
    assert await inbox.claim_batch(runtime.app) == []


async def test_a_batch_is_marked_done_in_one_statement(make_runtime: RuntimeFactory) -> None:
    """Six reps' messages in one claim: one UPDATE marks them all done (after their handler work, in its transaction)."""
    runtime = await make_runtime()
    reps = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
    for key in reps:
        await inbox.accept(runtime.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=key, kind=Kind.TEXT,
                                                conversation=key, text="收到"))
    rows = await inbox.claim_batch(runtime.app)
    assert len(rows) == len(reps)
    with statements(runtime.app) as seen:
        await runtime.dispatcher.handle_batch(runtime.app, rows)
    marks = [s for s in seen if s.startswith("UPDATE inbox")]
    assert len(marks) == 1, seen
    async with runtime.app.sessions() as session:
        done = (await session.execute(select(InboxRow.status).where(InboxRow.sender.in_(reps)))).scalars().all()
    assert done == ["done"] * len(reps)


async def test_after_a_full_claim_the_next_one_skips_its_probe(make_runtime: RuntimeFactory) -> None:
    """A backlog: the dispatcher's claim after a full batch goes straight to the write (no read transaction first);
    after a claim that was not full, the probe is back (so an idle poll is still no write)."""
    runtime = await make_runtime({"pipeline": {"workers": 1, "claim_batch": 10}})
    reps = [f"rep{k:02d}" for k in range(25)]
    async with transaction(runtime.app.sessions) as session:
        await import_org(session, OrgSpec(teams=[], people=[PersonSpec(key=key, name=key, role="rep") for key in reps]))
    for key in reps:
        await inbox.accept(runtime.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=key, kind=Kind.TEXT,
                                                conversation=key, text="收到"))
    probes: list[int] = []
    for _ in range(4):
        with statements(runtime.app) as seen:
            claimed = await runtime.dispatcher.work_once(runtime.app)
        probes.append(sum(s.startswith("SELECT inbox_1.id") for s in seen))
        if not claimed:
            break
    assert probes == [1, 0, 0, 1]  # full, full (no probe), 5 left (no probe), then the probe finds nothing
