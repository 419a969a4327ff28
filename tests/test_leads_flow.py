"""The lead path end to end on a real database (SQLite, and PostgreSQL when configured):
intake → quality/dedupe → routing under a lock → offer + claim ladder → claim / expiry /
manager queue, driven by a FakeClock and the timer sweep (no sleeps)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.clock import FakeClock
from bot.runtime import Runtime
from handlers.leads import commands, service
from handlers.leads.intake import LeadInput
from reminders.timers import sweep_timers
from storage.models import Lead, LeadOffer, Opportunity, OutboxRow, Person, Timer
from tests.conftest import RuntimeFactory
from tests.harness import MONDAY, Harness, rows

WEIGHTED = """
[settings]
max_offers = 3
[[pool]]
id = "east"
strategy = "weighted_rr"
members = [{rep = "zhangwei", weight = 2}, {rep = "lina", weight = 1}, {rep = "chenjing", weight = 1}]
[[rule]]
id = "all"
when = {}
pool = "east"
"""


def rules_file(tmp_path: Path, text: str = WEIGHTED) -> str:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def lead_runtime(make_runtime: RuntimeFactory, tmp_path: Path, clock: FakeClock, *, rules: str = WEIGHTED,
                       org: Any = "default") -> Runtime:
    kw: dict[str, Any] = {"clock": clock}
    if org != "default":
        kw["org"] = org
    runtime = await make_runtime({"leads": {"rules": rules_file(tmp_path, rules)}}, **kw)
    async with runtime.app.sessions() as s, s.begin():
        await s.execute(update(Person).values(capacity=10_000))
    return runtime


def lead(i: int, **kw: Any) -> LeadInput:
    data = dict(external_id=f"L{i}", hospital=f"第{i}人民医院", department="心内科", contact=f"王{i}主任",
                phone=f"139{i:08d}", region="上海", product_line="心血管", grade="三甲", source="test")
    data.update(kw)
    return LeadInput(**data)


async def intake(runtime: Runtime, item: LeadInput, now: datetime | None = None) -> service.Outcome:
    app = runtime.app
    async with app.sessions() as s, s.begin():
        return await service.intake(app, s, item, now=now or app.clock.now())


async def person_id(runtime: Runtime, key: str) -> int:
    async with runtime.app.sessions() as s:
        return int(await s.scalar(select(Person.id).where(Person.key == key)))


async def holder(runtime: Runtime, lead_id: int) -> str:
    """The org key of whoever holds the lead now."""
    async with runtime.app.sessions() as s:
        return str(await s.scalar(select(Person.key).join(Lead, Lead.assignee_id == Person.id).where(Lead.id == lead_id)))


NAMES = {"zhangwei": "张伟", "lina": "李娜", "chenjing": "陈静"}


async def live_offers_per_lead(runtime: Runtime) -> Counter[int]:
    async with runtime.app.sessions() as s:
        ids = (await s.scalars(select(LeadOffer.lead_id).where(LeadOffer.status == "offered"))).all()
    return Counter(ids)


async def assignees(runtime: Runtime) -> Counter[str]:
    async with runtime.app.sessions() as s:
        keys = (await s.scalars(select(Person.key).join(Lead, Lead.assignee_id == Person.id)
                                .where(Lead.status == "offered"))).all()
    return Counter(keys)


# ------------------------------------------------------------------ weighted routing under concurrency

async def _eight_writers(runtimes: list[Runtime], total: int = 400) -> None:
    async def writer(w: int) -> None:
        runtime = runtimes[w % len(runtimes)]
        for j in range(total // 8):
            await intake(runtime, lead(w * 1000 + j))

    await asyncio.gather(*(writer(w) for w in range(8)))


async def test_weights_2_1_1_hold_for_400_leads_from_8_concurrent_intakes(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    await _eight_writers([runtime])
    counts = await assignees(runtime)
    assert sum(counts.values()) == 400
    assert abs(counts["zhangwei"] - 200) <= 1 and abs(counts["lina"] - 100) <= 1 and abs(counts["chenjing"] - 100) <= 1, counts
    assert max((await live_offers_per_lead(runtime)).values()) == 1
    async with runtime.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(LeadOffer)) == 400


async def test_weights_hold_with_two_runtimes_on_one_database(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY)
    first = await lead_runtime(make_runtime, tmp_path, clock)
    second = await lead_runtime(make_runtime, tmp_path, clock, org=None)  # another node, same database
    await _eight_writers([first, second])
    counts = await assignees(first)
    assert sum(counts.values()) == 400
    assert abs(counts["zhangwei"] - 200) <= 1 and abs(counts["lina"] - 100) <= 1 and abs(counts["chenjing"] - 100) <= 1, counts
    assert max((await live_offers_per_lead(first)).values()) == 1


async def test_a_second_live_offer_for_one_lead_is_refused_by_the_database(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    out = await intake(runtime, lead(1))
    lina = await person_id(runtime, "lina")
    with pytest.raises(IntegrityError):
        async with runtime.app.sessions() as s, s.begin():
            s.add(LeadOffer(lead_id=out.lead.id, rep_id=lina, offered_at=MONDAY, status="offered", reason=""))  # type: ignore[union-attr]


# ------------------------------------------------------------------ expiry, exclusion, manager queue

async def test_expired_reps_are_never_offered_the_lead_again_and_the_third_expiry_queues_it(
        make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY)  # 09:30 on a working Monday
    runtime = await lead_runtime(make_runtime, tmp_path, clock)
    h = Harness(runtime)
    out = await intake(runtime, lead(1))
    lead_id = out.lead.id  # type: ignore[union-attr]
    holders: list[str] = []
    for round_ in range(3):
        holders.append(await holder(runtime, lead_id))
        # each level exactly at its business-clock moment (15 min remind, 120 min expire; lunch does not count)
        for level in (1, 2):
            async with runtime.app.sessions() as s:
                offer_id = await s.scalar(select(LeadOffer.id).where(LeadOffer.lead_id == lead_id, LeadOffer.status == "offered"))
                due = await s.scalar(select(Timer.due_at).where(Timer.subject_type == "lead_offer", Timer.subject_id == offer_id))
            assert due is not None
            clock.set(due - timedelta(seconds=1))
            await sweep_timers(runtime.app)
            assert await holder(runtime, lead_id) == holders[-1]
            clock.set(due)
            await sweep_timers(runtime.app)
        assert await holder(runtime, lead_id) != holders[-1]
    assert sorted(holders) == ["chenjing", "lina", "zhangwei"]  # three different reps, none twice
    async with runtime.app.sessions() as s:
        row = await s.get(Lead, lead_id)
        assert row is not None and row.status == "manager_queue" and row.assignee_id is None
        offers = (await s.scalars(select(LeadOffer).where(LeadOffer.lead_id == lead_id))).all()
        assert [o.status for o in offers] == ["expired", "expired", "expired"]
    # no fourth offer however long we wait
    clock.advance(timedelta(days=3))
    await sweep_timers(runtime.app)
    async with runtime.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(LeadOffer).where(LeadOffer.lead_id == lead_id)) == 3
    await h.settle()
    queue = [t for t in h.pushes("wang_jl") if "待经理分配" in t]
    assert len(queue) == 1 and f"指派 {lead_id} 给" in queue[0]
    # the first holder was told it was passed on
    assert any("超时未认领，已转派" in t for t in h.pushes(holders[0]))


async def test_the_15_minute_level_reminds_the_rep_once(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY)
    runtime = await lead_runtime(make_runtime, tmp_path, clock)
    h = Harness(runtime)
    out = await intake(runtime, lead(1))
    await h.settle()
    rep = await holder(runtime, out.lead.id)  # type: ignore[union-attr]
    assert any(f"新线索待认领 #{out.lead.id}" in t for t in h.pushes(rep))  # type: ignore[union-attr]
    clock.advance(timedelta(minutes=14, seconds=59))
    await sweep_timers(runtime.app)
    await h.settle()
    assert not any("还未认领" in t for t in h.pushes(rep))
    clock.advance(timedelta(seconds=1))
    await sweep_timers(runtime.app)
    await sweep_timers(runtime.app)
    await h.settle()
    assert sum("还未认领" in t for t in h.pushes(rep)) == 1


# ------------------------------------------------------------------ duplicates and quality

async def test_same_hospital_and_phone_within_90_days_merges_and_tells_the_owner_once(
        make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY)
    runtime = await lead_runtime(make_runtime, tmp_path, clock)
    first = await intake(runtime, lead(1))
    owner = await holder(runtime, first.lead.id)  # type: ignore[union-attr]
    clock.advance(timedelta(days=89))
    second = await intake(runtime, lead(2, hospital="第1人民医院", phone="+86 139 0000 0001", contact="李医生"))
    third = await intake(runtime, lead(3, hospital="第1人民医院", phone="13900000001", contact="赵医生"))
    assert second.status == third.status == "merged"
    assert second.lead.merged_into_id == third.lead.merged_into_id == first.lead.id  # type: ignore[union-attr]
    cards = await rows(Harness(runtime), OutboxRow, OutboxRow.dedupe_key.like("lead-dup:%"))
    assert [r.recipient for r in cards] == [owner]
    # after the window it is a new lead
    clock.advance(timedelta(days=2))
    fourth = await intake(runtime, lead(4, hospital="第1人民医院", phone="13900000001"))
    assert fourth.status == "offered"


async def test_a_hospital_only_match_against_30_open_leads_is_not_merged(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    for i in range(30):
        await intake(runtime, lead(i, hospital="瑞金医院"))
    out = await intake(runtime, lead(99, hospital="瑞金医院", contact="新来的刘医生"))
    assert out.status == "offered" and out.lead.merged_into_id is None  # type: ignore[union-attr]


async def test_a_lead_without_phone_is_quarantined_never_offered_and_ops_get_a_card(
        make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY)
    runtime = await lead_runtime(make_runtime, tmp_path, clock)
    h = Harness(runtime)
    out = await intake(runtime, lead(1, phone=""))
    assert out.status == "quarantined" and out.lead.problems == ["缺少电话"]  # type: ignore[union-attr]
    clock.advance(timedelta(hours=3))
    await sweep_timers(runtime.app)
    await h.settle()
    async with runtime.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(LeadOffer)) == 0
    assert any("已隔离" in t and "缺少电话" in t for t in h.pushes("sunyy"))
    assert not any("新线索" in t for k in ("zhangwei", "lina", "chenjing") for t in h.pushes(k))


async def test_intake_is_idempotent_on_the_callers_id(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    a = await intake(runtime, lead(1))
    b = await intake(runtime, lead(1, hospital="另一家医院"))
    assert b.status == "existing" and b.lead.id == a.lead.id  # type: ignore[union-attr]
    async with runtime.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Lead)) == 1


# ------------------------------------------------------------------ claims

async def test_claim_and_a_manager_assignment_at_the_same_moment_one_wins_the_loser_is_told_who(
        make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    out = await intake(runtime, lead(1))
    lead_id = out.lead.id  # type: ignore[union-attr]
    app = runtime.app

    async def as_(key: str, action: str) -> service.Outcome:
        async with app.sessions() as s, s.begin():
            person = await s.scalar(select(Person).where(Person.key == key))
            assert person is not None
            if action == "claim":
                return await commands.claim(app, s, lead_id, person, now=app.clock.now())
            return await commands.assign(app, s, lead_id, person, "lina", now=app.clock.now())

    rep = await holder(runtime, lead_id)
    other = next(k for k in NAMES if k != rep)

    async def assign_other() -> service.Outcome:
        async with app.sessions() as s, s.begin():
            manager = await s.scalar(select(Person).where(Person.key == "wang_jl"))
            return await commands.assign(app, s, lead_id, manager, other, now=app.clock.now())  # type: ignore[arg-type]

    claimed, assigned = await asyncio.gather(as_(rep, "claim"), assign_other())
    assert sorted([claimed.status, assigned.status]) == ["claimed", "lost"]
    loser = claimed if claimed.status == "lost" else assigned
    winner_name = NAMES[other] if assigned.status == "claimed" else NAMES[rep]
    assert f"已被{winner_name}认领" in loser.message
    async with app.sessions() as s:
        row = await s.get(Lead, lead_id)
        assert row is not None and row.status == "claimed"
        assert await s.scalar(select(func.count()).select_from(LeadOffer).where(LeadOffer.status == "offered")) == 0


async def test_two_claim_clicks_at_the_same_moment_make_one_claim(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    out = await intake(runtime, lead(1))
    app = runtime.app
    rep = await holder(runtime, out.lead.id)  # type: ignore[union-attr]

    async def click() -> service.Outcome:
        async with app.sessions() as s, s.begin():
            person = await s.scalar(select(Person).where(Person.key == rep))
            return await commands.claim(app, s, out.lead.id, person, now=app.clock.now())  # type: ignore[arg-type, union-attr]

    results = await asyncio.gather(click(), click())
    assert sorted(r.status for r in results) == ["claimed", "lost"]
    assert "你已认领" in next(r for r in results if r.status == "lost").message
    async with app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Opportunity)) == 1


async def test_claim_in_chat_opens_the_deal_and_the_next_note_attaches_to_it(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    h = Harness(runtime)
    out = await intake(runtime, lead(1, hospital="瑞金医院"))
    lead_id = out.lead.id  # type: ignore[union-attr]
    rep = await holder(runtime, lead_id)
    other = next(k for k in NAMES if k != rep)
    assert any("无权" in t for t in await h.say(other, f"认领 {lead_id}"))
    answer = await h.say(rep, f"认领 {lead_id}")
    assert any("已认领线索" in t and "13900000001" in t for t in answer), answer
    async with runtime.app.sessions() as s:
        row = await s.get(Lead, lead_id)
        opp = await s.get(Opportunity, row.opportunity_id)  # type: ignore[union-attr]
        assert opp is not None and opp.stage == "first_contact"
    await h.say(rep, "今天去瑞金医院见了王主任，下周三再去演示")
    notes_opps = await rows(h, Opportunity)
    assert len(notes_opps) == 1


async def test_the_offered_rep_returns_with_a_reason_and_is_excluded(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    h = Harness(runtime)
    out = await intake(runtime, lead(1))
    lead_id = out.lead.id  # type: ignore[union-attr]
    first = await holder(runtime, lead_id)
    answer = await h.say(first, f"退回 {lead_id} 不在我的区域")
    assert any("已重新分配" in t for t in answer), answer
    second = await holder(runtime, lead_id)
    assert second not in (first, "None")
    assert any("没有派给你" in t or "已转派" in t for t in await h.say(first, f"认领 {lead_id}"))
    # 信息错误 → quarantine, ops told
    await h.say(second, f"退回 {lead_id} 信息错误 电话是空号")
    async with runtime.app.sessions() as s:
        assert (await s.get(Lead, lead_id)).status == "quarantined"  # type: ignore[union-attr]


async def test_transfer_to_a_named_colleague(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    h = Harness(runtime)
    out = await intake(runtime, lead(1))
    lead_id = out.lead.id  # type: ignore[union-attr]
    rep = await holder(runtime, lead_id)
    other = next(k for k in NAMES if k != rep)
    assert any(f"转派给{NAMES[other]}" in t for t in await h.say(rep, f"转派 {lead_id} 给 {NAMES[other]}"))
    assert any(f"新线索待认领 #{lead_id}" in t for t in h.pushes(other))
    assert any(f"已转派给{NAMES[other]}" in t for t in await h.say(rep, f"认领 {lead_id}"))
    assert any("已认领线索" in t for t in await h.say(other, f"认领 {lead_id}"))


# ------------------------------------------------------------------ authorization

async def test_a_rep_cannot_assign_and_another_teams_manager_cannot_assign_or_see(
        make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY)
    runtime = await lead_runtime(make_runtime, tmp_path, clock)
    h = Harness(runtime)
    out = await intake(runtime, lead(1, hospital="华山医院"))
    lead_id = out.lead.id  # type: ignore[union-attr]
    rep = await holder(runtime, lead_id)
    other = next(k for k in NAMES if k != rep)
    assert any("无权" in t for t in await h.say(rep, f"指派 {lead_id} 给 {rep}"))
    assert any("无权" in t for t in await h.say("zhao_jl", f"指派 {lead_id} 给 liuyang"))
    assert any("无权" in t for t in await h.say("zhao_jl", f"详情 {lead_id}"))
    assert any("无权" in t for t in await h.say("liuyang", f"认领 {lead_id}"))  # a forged click from another team
    assert not any("华山医院" in t for t in await h.say("zhao_jl", "#线索"))
    assert any("华山医院" in t for t in await h.say("wang_jl", "#线索"))
    rep_id = await person_id(runtime, rep)
    async with runtime.app.sessions() as s:
        row = await s.get(Lead, lead_id)
        assert row is not None and row.status == "offered" and row.assignee_id == rep_id
    # the right manager may
    assert any(f"指派给{NAMES[other]}" in t for t in await h.say("wang_jl", f"指派 {lead_id} 给 {NAMES[other]}"))
    assert any("指派给你线索" in t for t in h.pushes(other))
    from storage.models import AuditLog

    forbidden = await rows(h, AuditLog, AuditLog.field == "forbidden")
    assert len(forbidden) == 4


async def test_rep_lists_their_offers_and_claimed_untouched_leads(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    h = Harness(runtime)
    made = [await intake(runtime, lead(i, hospital=name)) for i, name in enumerate("甲乙丙丁", start=1)]
    # weights 2:1:1 → zhangwei gets two of the four
    mine = [o for o in made if await holder(runtime, o.lead.id) == "zhangwei"]  # type: ignore[union-attr]
    others = [o for o in made if o not in mine]
    assert len(mine) == 2
    a, b = mine
    await h.say("zhangwei", f"认领 {a.lead.id}")  # type: ignore[union-attr]
    listing = "\n".join(await h.say("zhangwei", "#线索"))
    assert others[0].lead.hospital not in listing  # type: ignore[union-attr]
    assert a.lead.hospital in listing and b.lead.hospital in listing  # type: ignore[union-attr]
    assert "已认领未跟进" in listing and f"认领 {b.lead.id}" in listing  # type: ignore[union-attr]


# ------------------------------------------------------------------ chat intake, away

async def test_marketing_enters_a_lead_in_chat_and_confirms_before_routing(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    h = Harness(runtime)
    card = "\n".join(await h.say("ma_sc", "#线索 瑞金医院 心内科 王主任 13812345678 心血管 三甲 展会"))
    assert "请确认这条线索" in card and "13812345678" in card
    async with runtime.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Lead)) == 0  # nothing before 确认
    done = "\n".join(await h.say("ma_sc", "确认"))
    assert "已录入" in done
    async with runtime.app.sessions() as s:
        row = await s.scalar(select(Lead))
        assert row is not None and row.source == "展会" and row.status == "offered"
    await h.say("ma_sc", "#线索 华山医院 神经外科 李主任 13912345678 心血管 三甲 官网")
    assert any("已取消" in t for t in await h.say("ma_sc", "取消"))
    async with runtime.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Lead)) == 1


async def test_a_rep_on_leave_gets_no_offers_until_back(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await lead_runtime(make_runtime, tmp_path, FakeClock(MONDAY))
    h = Harness(runtime)
    assert any("已登记请假" in t for t in await h.say("zhangwei", "#请假 到周五"))
    got = Counter()
    for i in range(6):
        out = await intake(runtime, lead(i))
        got[out.lead.assignee_id] += 1  # type: ignore[union-attr]
    assert await person_id(runtime, "zhangwei") not in got
    await h.say("zhangwei", "#销假")
    out = await intake(runtime, lead(100))
    assert out.lead.assignee_id == await person_id(runtime, "zhangwei")  # type: ignore[union-attr]


