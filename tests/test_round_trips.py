"""Round trips per note and the per-process caches that save them (issue 18).

Statements are counted with a ``before_cursor_execute`` listener on the app's engine
(BEGIN, COMMIT and ROLLBACK included), split into what the pipeline costs (claim, done
mark, outbox write, delivery) and what the handlers cost (everything inside
``Router.dispatch``). Both backends run these (``db_url`` fixture).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, update

from bot.clock import FakeClock
from bot.messages import Inbound, Kind
from bot.pipeline import inbox
from bot.pipeline.dispatcher import UNREGISTERED_REPLY
from bot.router import Router
from storage.db import create_engine, session_factory, transaction
from storage.lookups import DEFAULT_TTL_SECONDS
from storage.models import Account, InboxRow, Note, OutboxRow, Person
from storage.org import import_org, parse_org_file
from tests.conftest import DEMO_ORG, RuntimeFactory
from tests.harness import MONDAY, Harness

REPS = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
TYPICAL = "今天拜访了华山医院设备科张科长，下周三前把报价单发给他"  # known hospital, a contact, a due date


class Counted:
    """Statements on an engine, each marked as the handlers' or the pipeline's."""

    def __init__(self, router: Router) -> None:
        self.pipeline: list[str] = []
        self.handlers: list[str] = []
        self._in_handlers = False
        original = router.dispatch

        async def dispatch(msg: Any, hc: Any) -> Any:
            self._in_handlers = True
            try:
                return await original(msg, hc)
            finally:
                self._in_handlers = False

        router.dispatch = dispatch  # type: ignore[method-assign]

    def seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        (self.handlers if self._in_handlers else self.pipeline).append(statement)

    def ended(self, conn: Any) -> None:
        (self.handlers if self._in_handlers else self.pipeline).append("END")


@asynccontextmanager
async def counting(h: Harness) -> AsyncIterator[Counted]:
    counted = Counted(h.runtime.dispatcher.router)
    engine = h.app.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counted.seen)
    event.listen(engine, "commit", counted.ended)
    event.listen(engine, "rollback", counted.ended)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", counted.seen)
        event.remove(engine, "commit", counted.ended)
        event.remove(engine, "rollback", counted.ended)


async def _store(h: Harness, user: str, text: str) -> None:
    await inbox.accept(h.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=user, kind=Kind.TEXT,
                                      conversation=user, text=text))


async def test_typical_note_costs_at_most_five_pipeline_round_trips(make_runtime: RuntimeFactory) -> None:
    """Steady state (caches warm, a batch of reps' notes): ≤ 5 pipeline statements per note, no people/account reads."""
    h = Harness(await make_runtime(clock=FakeClock(MONDAY)))
    for _ in range(2):  # warm: people (their first message also records where they write from), the hospital
        for rep in REPS:
            await _store(h, rep, TYPICAL)
        await h.settle()
    for rep in REPS:
        await _store(h, rep, TYPICAL)
    async with counting(h) as counted:
        await h.settle()
    notes = len(REPS)
    async with h.app.sessions() as s:
        assert len((await s.scalars(select(Note))).all()) == 3 * notes
        assert len((await s.scalars(select(OutboxRow).where(OutboxRow.status == "sent"))).all()) == 3 * notes
    pipeline_per_note = len(counted.pipeline) / notes
    assert pipeline_per_note <= 5, [" ".join(s.split())[:60] for s in counted.pipeline]
    everything = counted.pipeline + counted.handlers
    # (the batch's waiting read anchors on the senders' people rows by id; a sender look-up reads people by key)
    assert not [s for s in everything if s.startswith("SELECT people.")], "the sender comes from the cache"
    by_name = [s for s in everything if "FROM accounts" in s and "accounts.name IN" in " ".join(s.split())]
    assert not by_name, "a known hospital is matched from the cache"


async def test_renamed_hospital_and_reimported_org_are_seen_by_the_next_note(make_runtime: RuntimeFactory) -> None:
    """Writes through this app invalidate the caches at commit: no stale name, no inactive rep served."""
    h = Harness(await make_runtime(clock=FakeClock(MONDAY)))
    await h.say("zhangwei", TYPICAL)
    await h.say("zhangwei", TYPICAL)  # the hospital is now cached
    async with transaction(h.app.sessions) as s:
        account = (await s.scalars(select(Account))).one()
        old_name = account.name
        account.name = "华山医院（总院）"
        account.aliases = [*(account.aliases or []), old_name, "华山医院"]
    replies = await h.say("zhangwei", TYPICAL)
    assert any("华山医院（总院）" in r for r in replies), replies

    spec = parse_org_file(DEMO_ORG)
    spec.people[[p.key for p in spec.people].index("zhangwei")].active = False  # type: ignore[misc]
    async with transaction(h.app.sessions) as s:
        await import_org(s, spec)
    await h.say("zhangwei", TYPICAL)  # inactive now: handled as unregistered (told once a day, so silent here)
    async with h.app.sessions() as s:
        assert len((await s.scalars(select(Note))).all()) == 3, "no note from someone the org no longer has"
    assert await h.say("nobody_yet", TYPICAL) == [UNREGISTERED_REPLY]


async def test_changes_made_elsewhere_are_seen_within_the_ttl(make_runtime: RuntimeFactory, db_url: str) -> None:
    """Another node (here: another engine) renames a hospital: seen once the cache entry is older than the TTL."""
    clock = FakeClock(MONDAY)
    h = Harness(await make_runtime(clock=clock))
    await h.say("zhangwei", TYPICAL)
    await h.say("zhangwei", TYPICAL)  # sender and hospital now cached
    elsewhere = create_engine(db_url)
    try:
        async with transaction(session_factory(elsewhere)) as s:
            await s.execute(update(Account).values(name="华山医院（东院）"))
            await s.execute(update(Person).where(Person.key == "zhangwei").values(name="张伟（东院）"))
    finally:
        await elsewhere.dispose()
    assert not any("东院" in r for r in await h.say("zhangwei", TYPICAL))  # cached: bounded staleness, by design
    clock.advance(timedelta(seconds=DEFAULT_TTL_SECONDS))
    assert any("华山医院（东院）" in r for r in await h.say("zhangwei", TYPICAL))


async def test_a_failing_message_in_a_shared_transaction_leaves_the_others_committed(make_runtime: RuntimeFactory) -> None:
    """Several senders' messages share a transaction; one failing is retried alone, the rest commit once."""
    runtime = await make_runtime({"pipeline": {"max_attempts": 2}}, clock=FakeClock(MONDAY))
    h = Harness(runtime)
    original = runtime.dispatcher.router.dispatch
    calls: dict[str, int] = {}

    async def flaky(msg: Inbound, hc: Any) -> Any:
        calls[msg.text] = calls.get(msg.text, 0) + 1
        if msg.text == "boom":
            raise RuntimeError("handler bug")
        return await original(msg, hc)

    runtime.dispatcher.router.dispatch = flaky  # type: ignore[method-assign]
    await _store(h, "zhangwei", TYPICAL)
    await _store(h, "lina", "boom")
    await _store(h, "chenjing", TYPICAL)
    assert await runtime.work_once() == 3
    async with h.app.sessions() as s:
        rows = {r.sender: r for r in (await s.scalars(select(InboxRow))).all()}
        notes = (await s.scalars(select(Note))).all()
    assert rows["zhangwei"].status == rows["chenjing"].status == "done"
    assert rows["lina"].status == "pending" and rows["lina"].attempts == 1 and "handler bug" in rows["lina"].error
    assert len(notes) == 2  # the rolled-back shared attempt left nothing behind; each good note exists once
    h.app.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    await h.settle()
    async with h.app.sessions() as s:
        lina = (await s.scalars(select(InboxRow).where(InboxRow.sender == "lina"))).one()
    assert lina.status == "failed" and lina.attempts == 2
    assert any("抱歉" in d.text for d in h.delivered if d.recipient == "lina")


async def test_a_worker_whose_lease_was_taken_over_commits_nothing_in_a_batch(make_runtime: RuntimeFactory) -> None:
    """The done mark is the ownership check: a row claimed again by another worker is skipped, the others commit."""
    runtime = await make_runtime(clock=FakeClock(MONDAY))
    h = Harness(runtime)
    await _store(h, "zhangwei", TYPICAL)
    await _store(h, "lina", TYPICAL)
    rows = await inbox.claim_batch(h.app)
    async with transaction(h.app.sessions) as s:  # another worker took lina's row over after her lease expired
        await s.execute(update(InboxRow).where(InboxRow.sender == "lina").values(attempts=InboxRow.attempts + 1))
    await runtime.dispatcher.handle_batch(h.app, rows)
    async with h.app.sessions() as s:
        status = {r.sender: r.status for r in (await s.scalars(select(InboxRow))).all()}
        authors = (await s.scalars(select(Note.author_id))).all()
    assert status == {"zhangwei": "done", "lina": "processing"}
    assert len(authors) == 1
