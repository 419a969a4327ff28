"""Writes made at commit (storage.deferred) meeting the reads of later messages in the same batch."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.messages import Inbound, Kind
from bot.pipeline import inbox
from storage.models import Escalation, Timer
from tests.conftest import RuntimeFactory
from tests.harness import Harness, rows
from tests.test_escalations import at, esc_harness, tick
from tests.test_escalations_receivables import imported
from tests.test_timers import calendar_dir, start, timers_runtime


async def _store(h: Harness, user: str, text: str) -> None:
    await inbox.accept(h.app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=user, kind=Kind.TEXT,
                                      conversation=user, text=text))


async def test_a_pause_survives_a_partial_payment_later_in_the_same_batch(make_runtime: RuntimeFactory,
                                                                         tmp_path: Path) -> None:
    """The rep pauses an overdue episode and finance books part of the money in the same transaction."""
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-02T10:00")
    await h.say("zhangwei", "今天拜访仁济医院王主任，预算80万")
    assert (await imported(h, tmp_path, "INV-9,仁济医院,500000,2026-03-01,0,zhangwei\n"))[0] == 0
    await tick(h, clock, at("2026-03-16T09:30"))
    [esc] = await rows(h, Escalation, Escalation.kind == "overdue_payment")
    await _store(h, "zhangwei", f"暂停 E{esc.id} 4月20日 等院长出差回来")
    await _store(h, "qian_cw", "#回款 仁济医院 10万 已到账")
    assert await h.runtime.work_once() == 2  # one batch, one transaction
    [timer] = await rows(h, Timer, Timer.subject_type == "installment")
    assert timer.attributes["amount"] == 400_000
    assert timer.state == "paused", (timer.state, timer.paused_until)


async def test_a_pause_in_the_batch_of_a_stage_correction_holds_the_new_ladder(make_runtime: RuntimeFactory,
                                                                               tmp_path: Path) -> None:
    """The rep's stage correction moves the deal to another ladder; the manager pauses its episode in the same batch."""
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    await h.say("zhangwei", "今天拜访仁济医院王主任，聊了新设备采购，预算80万")
    await tick(h, clock, at("2026-03-18T10:10"))
    [esc] = await rows(h, Escalation, Escalation.closed_at.is_(None))
    await _store(h, "zhangwei", "阶段改成招标")
    await _store(h, "wang_jl", f"暂停 E{esc.id} 4月20日 等院长出差回来")
    assert await h.runtime.work_once() == 2  # one batch, one transaction
    timers = {t.ladder: t for t in await rows(h, Timer, Timer.subject_type == "opportunity")}
    assert timers["stalled_deal"].state == "cancelled"  # the stage's old ladder stays stopped
    assert timers["stalled_deal_tender"].state == "paused"  # the manager's pause holds the deal's ladder


async def test_a_level_another_node_fires_meanwhile_is_kept_by_a_change_of_facts(make_runtime: RuntimeFactory, db_url: str,
                                                                                tmp_path: Path) -> None:
    """A transaction refreshes a timer's facts while another node's sweep fires its level: the level stays fired."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer (one connection per process): the two transactions cannot interleave")
    clock = FakeClock(at("2026-03-13T10:00"))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    await start(runtime, "stalled_deal", 1, clock.now(), amount=100)
    clock.set(at("2026-03-18T10:00"))  # level 1 is due
    timers = runtime.app.timers
    async with runtime.app.sessions() as session, session.begin():
        row = await timers.find(session, "test", 1, "stalled_deal")
        assert row is not None
        await timers.set_attributes(session, row, {**row.attributes, "amount": 200})  # e.g. an amount correction
        assert await timers.sweep(runtime.app) == 1  # the other node, in its own transaction
    [stored] = await rows(Harness(runtime), Timer)
    assert (stored.level, stored.attributes["amount"]) == (1, 200)
    assert await timers.sweep(runtime.app) == 0
    assert [level for _, _, level, _ in recorder.fired] == [1]  # level 1 once


async def test_lead_routing_sees_the_deal_activity_of_notes_earlier_in_the_transaction(make_runtime: RuntimeFactory) -> None:
    """A deal touched by a note (written at commit) is already the most recently active one when a lead is routed
    in the same transaction: the hospital's owner is the rep who just wrote about it."""
    from datetime import timedelta

    from handlers.leads.service import hospital_owner
    from handlers.opportunities.service import apply_to_opportunity
    from storage.models import Note, Opportunity, Person

    clock = FakeClock(at("2026-03-02T10:00"))
    h = Harness(await make_runtime(clock=clock))
    await h.say("zhangwei", "今天拜访瑞金医院李主任，下周三前发报价")
    clock.advance(timedelta(days=1))
    await h.say("lina", "今天也去了瑞金医院，见了设备科张科长，周五前发参数")  # lina's deal there is the latest active
    [zhang] = await rows(h, Person, Person.key == "zhangwei")
    [zhang_deal] = await rows(h, Opportunity, Opportunity.owner_id == zhang.id)
    [zhang_note] = await rows(h, Note, Note.author_id == zhang.id)
    clock.advance(timedelta(days=1))
    async with h.app.sessions() as session, session.begin():
        deal = await session.get(Opportunity, zhang_deal.id)
        assert deal is not None
        await apply_to_opportunity(session, deal, stage=None, amount=None, stages=(), actor_id=zhang.id, note_id=zhang_note.id,
                                   now=clock.now())  # zhangwei's note today touches his deal (at commit)
        assert await hospital_owner(h.app, session, "瑞金医院") == "zhangwei"
