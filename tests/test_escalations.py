"""Stalled deals end to end: notes start and reset the clock, cards through notify, buttons with role/team checks.

Every timing case moves the injected clock to a second before and then to the expected
moment, sweeps, and looks at what was queued (the merge window holds alert cards up to
10 minutes) and what was delivered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from reminders.timers import sweep_timers
from storage.models import (
    AuditLog,
    Escalation,
    Opportunity,
    OutboxRow,
    Person,
    Task,
    Timer,
)
from tests.conftest import RuntimeFactory
from tests.harness import SH, Harness, rows

SECOND = timedelta(seconds=1)
NOTE = "今天拜访仁济医院王主任，聊了新设备采购，预算80万"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def calendar_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "calendar"
    folder.mkdir(exist_ok=True)
    (folder / "calendar.toml").write_text('hours = "09:00-18:00"\n', encoding="utf-8")
    return folder


async def esc_harness(make_runtime: RuntimeFactory, tmp_path: Path, start: str, **overrides: Any) -> tuple[Harness, FakeClock]:
    clock = FakeClock(at(start))
    runtime = await make_runtime({"calendar": {"dir": str(calendar_dir(tmp_path))}, **overrides}, clock=clock)
    return Harness(runtime), clock


async def alert_rows(h: Harness, tag: str = "escalation.stalled") -> list[OutboxRow]:
    """Every alert queued with this tag (held, merged or sent), in order."""
    return [r for r in await rows(h, OutboxRow, OutboxRow.merge_key.is_not(None))
            if r.payload.get("tag") == tag or any(i.get("tag") == tag for i in r.context.get("items", []))]


async def tick(h: Harness, clock: FakeClock, moment: datetime) -> None:
    clock.set(moment)
    await sweep_timers(h.app)
    await h.settle()


async def the_escalation(h: Harness) -> Escalation:
    [esc] = await rows(h, Escalation, Escalation.closed_at.is_(None))
    return esc


async def test_stalled_deal_cards_to_rep_then_manager_on_the_workday_clock(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    await h.say("zhangwei", NOTE)
    [timer] = await rows(h, Timer, Timer.subject_type == "opportunity")
    assert timer.ladder == "stalled_deal" and timer.attributes["owner"] == "zhangwei" and timer.attributes["amount"] == 800_000

    await tick(h, clock, at("2026-03-18T10:00") - SECOND)
    assert await alert_rows(h) == []
    await tick(h, clock, at("2026-03-18T10:00"))
    [row] = await alert_rows(h)
    assert row.recipient == "zhangwei" and row.status == "pending"
    assert row.next_attempt_at == at("2026-03-18T10:10")  # held by the merge window
    assert not [t for t in h.pushes("zhangwei") if "商机停滞" in t]
    await tick(h, clock, at("2026-03-18T10:10"))
    [card] = [t for t in h.pushes("zhangwei") if "商机停滞" in t]
    assert "仁济医院" in card and "80万" in card and "王主任" in card and "跟进中 E" in card
    assert "3月19日" in card  # the next level's time

    await tick(h, clock, at("2026-03-19T10:00") - SECOND)
    assert [r.recipient for r in await alert_rows(h)] == ["zhangwei"]
    await tick(h, clock, at("2026-03-19T10:00"))
    queued = [r.recipient for r in await alert_rows(h)]
    assert sorted(queued) == ["wang_jl", "zhangwei", "zhangwei"]
    await tick(h, clock, at("2026-03-19T10:10"))
    assert [t for t in h.pushes("wang_jl") if "商机停滞" in t and "张伟" in t]
    esc = await the_escalation(h)
    assert esc.level == 2 and esc.kind == "stalled_deal"


async def test_a_correction_does_not_reset_the_clock(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    await h.say("zhangwei", NOTE)
    clock.set(at("2026-03-16T11:00"))
    await h.say("zhangwei", "金额改成90万")  # a correction: facts change, the clock does not restart
    [timer] = await rows(h, Timer, Timer.subject_type == "opportunity")
    assert timer.attributes["amount"] == 900_000
    await tick(h, clock, at("2026-03-18T10:00"))
    assert len(await alert_rows(h)) == 1  # still due three working days after Friday's note


async def test_a_new_note_resets_the_clock(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h2, clock2 = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    await h2.say("zhangwei", NOTE)
    clock2.set(at("2026-03-17T15:00"))
    await h2.say("zhangwei", "仁济医院王主任回电话了，下周安排科室演示")
    await tick(h2, clock2, at("2026-03-18T10:00"))
    assert await alert_rows(h2) == []
    await tick(h2, clock2, at("2026-03-20T15:00") - SECOND)
    assert await alert_rows(h2) == []
    await tick(h2, clock2, at("2026-03-20T15:00"))
    assert [r.recipient for r in await alert_rows(h2)] == ["zhangwei"]


async def test_waiting_for_a_dated_tender_pauses_until_then(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    await h.say("zhangwei", "仁济医院参数论证完了，等招标结果，4月20号开标")
    [timer] = await rows(h, Timer, Timer.subject_type == "opportunity")
    assert timer.ladder == "stalled_deal_tender" and timer.state == "paused"
    assert timer.paused_until == at("2026-04-20T00:00")
    await tick(h, clock, at("2026-04-17T10:00"))
    assert await alert_rows(h) == []


async def _first_card(h: Harness, clock: FakeClock, note: str = NOTE) -> Escalation:
    await h.say("zhangwei", note)
    await tick(h, clock, at("2026-03-18T10:00"))
    await tick(h, clock, at("2026-03-18T10:10"))  # the held card is delivered
    return await the_escalation(h)


async def test_following_up_holds_the_ladder_until_the_promised_date(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    esc = await _first_card(h, clock)
    clock.set(at("2026-03-18T10:30"))
    assert any("下一步" in t for t in await h.say("zhangwei", f"跟进中 E{esc.id}"))
    assert any("工作日内" in t for t in await h.say("zhangwei", "下周五 约主任看方案"))  # too far
    replies = await h.say("zhangwei", "周五 约主任看方案")
    assert any("已记下" in t for t in replies), replies
    again = await h.say("zhangwei", f"跟进中 E{esc.id}")  # a repeated click does nothing
    assert again == []
    assert await h.say("wang_jl", f"跟进中 E{esc.id}") == ["已由张伟处理（跟进中）"]
    # without the hold the manager card would go out Thursday 10:00
    await tick(h, clock, at("2026-03-19T10:00"))
    await tick(h, clock, at("2026-03-23T09:00") - SECOND)
    assert len(await alert_rows(h)) == 1
    await tick(h, clock, at("2026-03-23T09:00"))  # Friday passed without activity: the next level fires
    assert sorted(r.recipient for r in (await alert_rows(h))[1:]) == ["wang_jl", "zhangwei"]
    trail = await rows(h, AuditLog, AuditLog.entity == "escalation", AuditLog.field == "follow")
    assert len(trail) == 1 and "约主任看方案" in (trail[0].new or "")


async def test_snooze_at_most_twice_and_it_never_delays_the_next_level(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    esc = await _first_card(h, clock)
    from handlers.escalations.jobs import resend_snoozed

    clock.set(at("2026-03-18T10:20"))
    assert any("再提醒" in t for t in await h.say("zhangwei", f"稍后提醒 E{esc.id}"))
    assert await h.say("zhangwei", f"稍后提醒 E{esc.id}") == []  # same click again
    clock.set(at("2026-03-18T12:20"))
    assert await resend_snoozed(h.app) == 1
    assert await resend_snoozed(h.app) == 0  # once
    await h.settle()
    assert [t for t in h.pushes("zhangwei") if "商机停滞" in t][-1:] and len([t for t in h.pushes("zhangwei") if "商机停滞" in t]) == 2
    clock.set(at("2026-03-18T12:30"))
    assert any("再提醒" in t for t in await h.say("zhangwei", f"稍后提醒 E{esc.id}"))
    clock.set(at("2026-03-18T15:00"))
    assert await resend_snoozed(h.app) == 1
    third = await h.say("zhangwei", f"稍后提醒 E{esc.id}")
    assert any("2次" in t for t in third), third
    await tick(h, clock, at("2026-03-19T10:00"))
    assert "wang_jl" in [r.recipient for r in await alert_rows(h)]


async def test_reassign_is_for_managers_of_the_team(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    esc = await _first_card(h, clock, "今天拜访仁济医院王主任，预算80万，下周三前把报价发给主任")
    clock.set(at("2026-03-18T11:00"))
    assert await h.say("zhangwei", f"改派 E{esc.id} lina") == ["只有经理可以改派。"]
    assert await h.say("zhao_jl", f"改派 E{esc.id} liuyang") == ["这条预警不属于你的团队，无法操作。"]  # forged: other team
    assert await h.say("zhao_jl", f"跟进中 E{esc.id} 周五 拜访") == ["这条预警不属于你的团队，无法操作。"]
    refused = await rows(h, AuditLog, AuditLog.entity == "escalation", AuditLog.field == "refused")
    assert len(refused) == 3
    replies = await h.say("wang_jl", f"改派 E{esc.id} lina")
    assert any("已改派给 李娜" in t for t in replies), replies
    assert any("改派给了 李娜" in t for t in h.pushes("zhangwei"))
    assert any("已转给你" in t for t in h.pushes("lina"))
    lina = (await rows(h, Person, Person.key == "lina"))[0]
    [opp] = await rows(h, Opportunity)
    assert opp.owner_id == lina.id
    assert all(t.owner_id == lina.id for t in await rows(h, Task, Task.status == "open"))
    [timer] = await rows(h, Timer, Timer.subject_type == "opportunity", Timer.state == "running")
    assert timer.attributes["owner"] == "lina"
    assert await h.say("wang_jl", f"改派 E{esc.id} lina") == []  # repeated click
    assert await h.say("zhangwei", f"跟进中 E{esc.id}") == ["已由王经理处理（已改派）"]  # outdated card
    assert await rows(h, AuditLog, AuditLog.entity == "opportunity", AuditLog.field == "owner_id")


async def test_two_nodes_produce_each_card_once(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-13T10:00")
    cal = str(calendar_dir(tmp_path))
    second = await make_runtime({"calendar": {"dir": cal}}, clock=clock, org=None)
    for n in range(5):
        await h.say(["zhangwei", "lina", "chenjing", "liuyang", "yangfan"][n], f"今天拜访仁济医院王主任，预算{80 + n}万")
    clock.set(at("2026-03-19T10:00"))
    import asyncio

    await asyncio.gather(sweep_timers(h.app), sweep_timers(second.app), sweep_timers(h.app))
    async with h.app.sessions() as s:
        keys = list((await s.scalars(select(OutboxRow.dedupe_key).where(OutboxRow.dedupe_key.is_not(None)))).all())
    assert len(keys) == len(set(keys)) == 10  # level 2 only (level 1 superseded): rep + manager for five deals
