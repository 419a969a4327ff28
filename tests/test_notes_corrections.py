"""Corrections ("阶段改成…", "不对，是下周四", "金额改成…") and undo ("撤销"), all audited."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.clock import FakeClock
from storage.models import AuditLog, Note, Opportunity, Task
from tests.harness import MONDAY, SH, Harness, rows


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))



async def test_stage_correction_by_name_and_code(h: Harness) -> None:
    await h.say("zhangwei", "今天去华山医院设备科做了产品演示，张科长要求提供临床试用报告，周三前发过去。")
    [reply] = await h.say("zhangwei", "阶段改成商务谈判")
    assert "方案演示 → 商务谈判" in reply
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "negotiation"
    [note] = await rows(h, Note)
    assert note.fields["stage"] == "negotiation"
    # an explicit correction may go backwards, by code too
    [reply] = await h.say("zhangwei", "阶段改为 trial")
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "trial" and "临床试用" in reply
    audit = await rows(h, AuditLog, AuditLog.entity == "opportunity", AuditLog.field == "stage")
    assert [(a.old, a.new) for a in audit] == [(None, "demo"), ("demo", "negotiation"), ("negotiation", "trial")]
    assert all(a.note_id == note.id for a in audit)


async def test_unknown_stage_gets_a_helpful_answer(h: Harness) -> None:
    await h.say("lina", "瑞金医院的合同已经盖章了，总金额一百二十万，下周一安排装机。")
    [reply] = await h.say("lina", "阶段改成差不多了")
    assert "没认出" in reply and "商务谈判" in reply
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "contract"


async def test_date_correction_redates_the_last_task(h: Harness) -> None:
    await h.say("chenjing", "李院长对报价有异议，下周三前把鼓楼医院的参数对比表发给他。")
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 12, 2)
    [reply] = await h.say("chenjing", "不对，是下周四")
    assert "12月3日" in reply
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 12, 3)
    assert task.remind_at == datetime(2026, 12, 3, 9, 0, tzinfo=SH).astimezone(timezone.utc)
    assert task.reminded_at is None
    audit = await rows(h, AuditLog, AuditLog.entity == "task", AuditLog.field == "due_date")
    assert [(a.old, a.new) for a in audit] == [("2026-12-02", "2026-12-03")]


async def test_amount_correction(h: Harness) -> None:
    await h.say("liuyang", "仁济医院报价单已经发了，设备总价86.5万，对方要求再降5个点，周五前给答复。")
    [reply] = await h.say("liuyang", "金额改成90万")
    assert "86.5万 → 90万" in reply
    [opp] = await rows(h, Opportunity)
    assert opp.amount == 900_000
    [reply] = await h.say("liuyang", "不对，是八十八万")
    [opp] = await rows(h, Opportunity)
    assert opp.amount == 880_000


async def test_contact_correction(h: Harness) -> None:
    await h.say("yangfan", "中山医院介入科王主任对样机很满意，下周二把试用报告发给他。")
    [reply] = await h.say("yangfan", "不对，是黄主任")
    assert "黄主任" in reply
    [note] = await rows(h, Note)
    assert note.fields["contacts"][0] == "黄主任"


async def test_undo_reverts_the_opportunity_and_cancels_the_task(h: Harness) -> None:
    await h.say("huangli", "东方医院采购办说下个月招标，下周五前把技术参数发过去。")
    await h.say("huangli", "东方医院报价单已经发了，总价98万，对方要求再降3个点，周五前给答复。")
    [opp] = await rows(h, Opportunity)
    assert (opp.stage, opp.amount) == ("negotiation", 980_000)
    [reply] = await h.say("huangli", "撤销")
    assert "已撤销" in reply
    [opp] = await rows(h, Opportunity)
    assert (opp.stage, opp.amount) == ("tender", None)
    notes = await rows(h, Note)
    assert notes[0].deleted_at is None and notes[1].deleted_at is not None
    tasks = await rows(h, Task)
    assert [t.status for t in tasks] == ["open", "cancelled"]
    undo_rows = await rows(h, AuditLog, AuditLog.note_id == notes[1].id, AuditLog.field == "deleted_at")
    assert len(undo_rows) == 1
    # the next "撤销" undoes the note before it
    await h.say("huangli", "撤销")
    [opp] = await rows(h, Opportunity)
    assert opp.stage is None
    assert [t.status for t in await rows(h, Task)] == ["cancelled", "cancelled"]


async def test_undo_of_an_old_note_does_not_clobber_later_changes(h: Harness) -> None:
    await h.say("zhangwei", "瑞金医院心内科第一次拜访，留了电话，下周一再去一趟。")
    await h.say("zhangwei", "瑞金医院心内科做了产品演示，周四前把方案发给主任。")
    notes = await rows(h, Note)
    [reply] = await h.say("zhangwei", f"撤销 {notes[0].id}")
    assert "已撤销" in reply
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "demo"  # set by the later note, untouched
    # someone else's note cannot be undone
    [other] = await h.say("lina", f"撤销 {notes[1].id}")
    assert "没有找到" in other
    assert (await rows(h, Note))[1].deleted_at is None


async def test_undo_with_nothing_to_undo(h: Harness) -> None:
    [reply] = await h.say("chenjing", "撤销")
    assert "没有可以撤销" in reply


async def test_hospital_correction_moves_the_note_and_leaves_no_phantom_deal(h: Harness) -> None:
    await h.say("lina", "华山医院设备科张科长第一次见面，留了电话，下周二再去拜访。")
    [reply] = await h.say("lina", "不是，是仁济医院")
    assert "上海交通大学医学院附属仁济医院" in reply
    [opp] = await rows(h, Opportunity)  # the 华山 opportunity existed only because of the typo
    [note] = await rows(h, Note)
    [task] = await rows(h, Task)
    assert note.opportunity_id == opp.id == task.opportunity_id and opp.stage == "first_contact"
    async with h.app.sessions() as s:
        from storage.models import Account, Contact

        account = await s.get(Account, opp.account_id)
        contact = await s.get(Contact, note.contact_id)
    assert account is not None and account.name == "上海交通大学医学院附属仁济医院"
    assert contact is not None and contact.account_id == account.id and contact.name == "张科长"
    # undo after the move: the opportunity existed only because of this note, so it goes too
    await h.say("lina", "撤销")
    assert await rows(h, Opportunity) == []
