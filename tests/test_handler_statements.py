"""What the handlers cost a typical note in statements (issue 18), pinned so it cannot silently grow back.

A typical note names a known hospital, a contact and a due date: it creates a note, a task
and audit rows, restarts the deal's escalation timer and answers with a card. Counted are
the statements issued inside ``Router.dispatch`` (the pipeline's claim, done mark, outbox
insert and commit are :mod:`tests.test_round_trips`' business), in steady state: the rep,
the hospitals, the contacts, the deals and their timers exist, and the rep's previous note
may have left a question open (the two notes below alternate: the first asks one, the
second drops it).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, select

from bot.clock import FakeClock
from bot.messages import Inbound, Kind
from bot.pipeline import inbox
from storage.models import AuditLog, DialogState, Note, Opportunity, Task, Timer
from tests.conftest import RuntimeFactory
from tests.harness import MONDAY, Harness

TYPICAL = (
    "今天拜访了华山医院设备科张科长，下周三前把报价单发给他",  # asks a question (the deal's stage)
    "瑞金医院的李主任说下个月招标，周五前把参数发给她",  # drops that question, asks none
)
LIMIT = 5  # per note, on SQLite and PostgreSQL alike (it was 19-21, then 9)


@asynccontextmanager
async def handler_statements(h: Harness) -> AsyncIterator[list[str]]:
    """The statements issued while the root router dispatches (one list for the block)."""
    seen: list[str] = []
    inside = [False]
    router = h.runtime.dispatcher.router
    original = router.dispatch

    async def dispatch(msg: Any, hc: Any) -> Any:
        inside[0] = True
        try:
            return await original(msg, hc)
        finally:
            inside[0] = False

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if inside[0]:
            seen.append(" ".join(statement.split()))

    engine = h.app.engine.sync_engine
    router.dispatch = dispatch  # type: ignore[method-assign]
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        router.dispatch = original  # type: ignore[method-assign]


async def _note(h: Harness, text: str) -> None:
    await inbox.accept(h.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender="zhangwei", kind=Kind.TEXT,
                                      conversation="zhangwei", text=text))
    await h.settle()


async def test_a_typical_note_costs_at_most_five_handler_statements(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(MONDAY)
    h = Harness(await make_runtime(clock=clock))
    for _ in range(2):  # warm: the rep, both hospitals, contacts, deals and their timers
        for text in TYPICAL:
            await _note(h, text)
    clock.advance(timedelta(seconds=10))  # later (within the lookups' TTL): the notes touch the deals and restart their timers
    per_note: list[list[str]] = []
    for text in TYPICAL:
        async with handler_statements(h) as seen:
            await _note(h, text)
        per_note.append(seen)
    for text, seen in zip(TYPICAL, per_note, strict=True):
        assert len(seen) <= LIMIT, (text, len(seen), [s[:80] for s in seen])
        # what used to be read again and again is read once or not at all
        selects = [s for s in seen if s.startswith("SELECT")]
        # the dialog row, the note it names and whether an escalation awaits an answer: one read
        assert sum("dialog_state.state" in s for s in selects) == 1, selects
        assert not [s for s in selects if s.startswith("SELECT escalations.")], "no escalation is read on its own"
        assert not [s for s in selects if "FROM accounts" in s], "hospitals come from the per-process cache"
        assert not [s for s in selects if s.startswith("SELECT notes.")], "no note is looked up (neither the pending one nor the inbox row's)"
        assert sum("timers.id" in s for s in selects) == 1, "the deal's timers are read once (with its open episode)"

    # and every effect is still there: six notes and tasks, the timer restarted by the last one, the question cycle
    async with h.app.sessions() as s:
        notes = (await s.scalars(select(Note).order_by(Note.id))).all()
        tasks = (await s.scalars(select(Task))).all()
        created = (await s.scalars(select(AuditLog).where(AuditLog.field == "created", AuditLog.entity.in_(("note", "task"))))).all()
        timers = (await s.scalars(select(Timer).where(Timer.state == "running"))).all()
        question = await s.get(DialogState, notes[-1].author_id)
        touched = {o.last_activity_at for o in (await s.scalars(select(Opportunity))).all()}
    assert len(notes) == len(tasks) == 6 and len(created) == 12
    assert len({t.subject_id for t in timers}) == len(timers) == 2  # one running timer per deal, none doubled
    assert {t.anchor_at for t in timers} == {clock.now()}, "each deal's timer was restarted by the measured note (written at commit)"
    assert touched == {clock.now()}, "each deal was touched by the measured note (written at commit)"
    assert question is None  # the second note dropped the first one's question and asked none
    assert notes[-2].fields.get("asked") and not notes[-1].fields.get("asked")  # stored with the insert, no UPDATE
    assert not [s for s in per_note[0] if s.startswith("UPDATE notes")], per_note[0]


async def test_a_batch_reads_what_waits_for_its_senders_once(make_runtime: RuntimeFactory) -> None:
    """The dispatcher's prefetch: one waiting read for the whole batch, and each sender's open question still found."""
    h = Harness(await make_runtime(clock=FakeClock(MONDAY)))
    reps = ["zhangwei", "lina", "chenjing", "liuyang"]
    for rep in reps:  # each rep's first note leaves a question open (the deal's stage)
        await inbox.accept(h.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=rep, kind=Kind.TEXT,
                                          conversation=rep, text=TYPICAL[0]))
        await h.settle()
    async with h.app.sessions() as s:
        asked = {row.person_id: dict(row.state) for row in (await s.scalars(select(DialogState))).all()}
    assert len(asked) == len(reps)

    seen: list[str] = []

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    for rep in reps:  # answered together: the stage each question asked for
        await inbox.accept(h.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=rep, kind=Kind.TEXT,
                                          conversation=rep, text="在谈价格"))
    event.listen(h.app.engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        assert await h.runtime.work_once() == len(reps)  # one batch
    finally:
        event.remove(h.app.engine.sync_engine, "before_cursor_execute", on_statement)
    assert sum("dialog_state.state" in s for s in seen) == 1, [s[:80] for s in seen if "dialog_state" in s]
    async with h.app.sessions() as s:
        left = (await s.scalars(select(DialogState))).all()
        notes = (await s.scalars(select(Note).order_by(Note.id))).all()
    assert not left, "every rep's answer was taken as the answer to the question waiting for them"
    assert len(notes) == len(reps), "no answer became a note of its own"
