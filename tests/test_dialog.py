"""Missing-field questions and their answers: one at a time, at most two, never twice."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from bot.clock import FakeClock
from storage.models import (
    Account,
    AuditLog,
    Contact,
    DialogState,
    Note,
    Opportunity,
    Task,
)
from tests.harness import MONDAY, SH, Harness, rows


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(MONDAY)


@pytest.fixture
async def h(make_runtime, clock: FakeClock) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=clock))



def questions(replies: list[str]) -> list[str]:
    return [line for r in replies for line in r.splitlines() if line.startswith("❓")]


async def test_question_answer_task_flow(h: Harness) -> None:
    first = await h.say("zhangwei", "市一院心内科初步聊了一下，对我们的支架很感兴趣。")
    assert questions(first) == ["❓ 对接的是哪位老师？"]

    second = await h.say("zhangwei", "心内科刘主任")
    assert "刘主任" in second[0]
    assert questions(second) == ["❓ 下一步打算做什么？"]
    [note] = await rows(h, Note)
    assert note.fields["contacts"] == ["刘主任"]
    [contact] = await rows(h, Contact)
    assert contact.name == "刘主任" and contact.account_id == note.account_id and contact.department == "心内科"
    assert note.contact_id == contact.id

    third = await h.say("zhangwei", "下周一上午去科室拜访")
    assert questions(third) == []  # two questions asked: that is the limit
    [task] = await rows(h, Task)
    assert task.note_id == note.id and task.due_date == date(2026, 11, 30)
    assert task.remind_at is not None and task.remind_at.astimezone(SH).date() == date(2026, 11, 30)
    [opp] = await rows(h, Opportunity)
    assert task.opportunity_id == opp.id
    assert await rows(h, DialogState) == []
    audit = await rows(h, AuditLog, AuditLog.note_id == note.id, AuditLog.entity == "note")
    assert any(a.field == "contacts" and a.new == "刘主任" for a in audit)


async def test_due_question_answered_with_a_weekday(h: Harness) -> None:
    replies = await h.say("lina", "今天在华山医院给王主任做了产品演示，反响不错，下周约采购办谈")
    assert questions(replies) == ["❓ 下一步什么时候做？"]
    [task] = await rows(h, Task)
    assert task.due_date is None and task.remind_at is None
    answer = await h.say("lina", "周四")
    assert "11月26日" in answer[0]
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 11, 26)
    assert task.remind_at == datetime(2026, 11, 26, 9, 0, tzinfo=SH).astimezone(timezone.utc)


async def test_missing_hospital_answered_later_attaches_everything(h: Harness) -> None:
    replies = await h.say("chenjing", "李院长对报价有异议，觉得比美敦力贵了百分之十五，下周三前把参数对比表发给他。")
    assert questions(replies) == ["❓ 是哪家医院？"]
    assert await rows(h, Opportunity) == []  # no hospital yet, no opportunity yet
    await h.say("chenjing", "华山医院")
    [account] = await rows(h, Account)
    assert account.name == "复旦大学附属华山医院"
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "negotiation" and opp.account_id == account.id
    [note] = await rows(h, Note)
    [task] = await rows(h, Task)
    [contact] = await rows(h, Contact)
    assert note.account_id == account.id and note.opportunity_id == opp.id
    assert task.opportunity_id == opp.id and contact.account_id == account.id


async def test_never_more_than_two_questions_never_the_same_twice(h: Harness) -> None:
    # a trial note without department, action: both are asked, one at a time
    replies = await h.say("yangfan", "湘雅医院的试用确认书签好了")
    assert questions(replies) == ["❓ 是哪个科室？"]
    replies = await h.say("yangfan", "介入科")
    assert questions(replies) == ["❓ 下一步打算做什么？"]
    replies = await h.say("yangfan", "下周二送两台样机过去")
    assert questions(replies) == []
    [note] = await rows(h, Note)
    assert note.fields["asked"] == ["departments", "next_action"]
    # a negotiation note missing amount, action and date: only two questions in all
    replies = await h.say("yangfan", "新华医院报价单已经发了，对方要求再降5个点")
    assert questions(replies) == ["❓ 金额大概多少？"]
    replies = await h.say("yangfan", "86.5万")
    assert questions(replies) == ["❓ 下一步打算做什么？"]
    replies = await h.say("yangfan", "准备重新出个配置方案")  # no date: "due" would be a third question
    assert questions(replies) == []
    asked = [n.fields["asked"] for n in await rows(h, Note)]
    assert all(len(a) <= 2 and len(set(a)) == len(a) for a in asked)


async def test_a_new_note_drops_the_pending_question(h: Harness) -> None:
    replies = await h.say("liuyang", "瑞金医院的合同已经盖章了")
    assert questions(replies) == ["❓ 金额大概多少？"]
    replies = await h.say("liuyang", "仁济医院设备科张科长说下个月招标，周五前把技术参数发给他。")
    assert "已记录" in replies[0]  # a note of its own, not an answer
    notes = await rows(h, Note)
    assert len(notes) == 2 and notes[1].fields["stage"] == "tender"
    opps = {o.account_id: o for o in await rows(h, Opportunity)}
    assert all(o.amount is None for o in opps.values())
    # the amount question is gone: an amount now is not taken as the old note's answer; it completes
    # the latest note (a follow-up), and the reply says which one
    [reply] = await h.say("liuyang", "120万")
    assert "已补充到 上海交通大学医学院附属仁济医院 的记录" in reply
    opps = {o.account_id: o for o in await rows(h, Opportunity)}
    notes = await rows(h, Note)
    assert len(notes) == 2 and opps[notes[0].account_id].amount is None


async def test_chatter_keeps_the_question_open(h: Harness) -> None:
    replies = await h.say("huangli", "瑞金医院的合同已经盖章了")
    assert questions(replies) == ["❓ 金额大概多少？"]
    assert await h.say("huangli", "好的") == ["好的 👌"]
    replies = await h.say("huangli", "一百二十万")
    assert "120万" in replies[0]
    [opp] = await rows(h, Opportunity)
    assert opp.amount == 1_200_000


async def test_not_an_answer_is_not_forced_into_the_note(h: Harness) -> None:
    replies = await h.say("zhangwei", "中山医院介入科的试用确认书签好了")
    assert questions(replies) == ["❓ 下一步打算做什么？"]
    await h.say("zhangwei", "哈哈哈，今天太累了")
    assert await rows(h, Task) == []
    assert await rows(h, DialogState) == []  # the question was dropped, not repeated
    replies = await h.say("zhangwei", "你好")
    assert questions(replies) == []


async def test_answers_only_count_inside_the_window(make_runtime, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    h = Harness(await make_runtime({"notes": {"question_window_minutes": 10}}, clock=clock))
    replies = await h.say("lina", "市一院心内科初步聊了一下，对我们的支架很感兴趣。")
    assert questions(replies) == ["❓ 对接的是哪位老师？"]
    clock.advance(timedelta(minutes=11))
    await h.say("lina", "刘主任")
    notes = await rows(h, Note)
    assert notes[0].fields["contacts"] == []  # too late to be an answer to the first note
    assert len(notes) == 2 and notes[1].fields["contacts"] == ["刘主任"]


async def test_past_due_date_is_confirmed_not_scheduled(h: Harness) -> None:
    replies = await h.say("chenjing", "市二院设备科孙科长要我们11月3日前提供注册证")
    assert "11月3日 已经过了，是指明年吗？还是改个日期？" in replies[0]
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 11, 3) and task.remind_at is None  # no reminder in the past
    answer = await h.say("chenjing", "是的")
    assert "2027年11月3日" in answer[0]
    [task] = await rows(h, Task)
    assert task.due_date == date(2027, 11, 3)
    assert task.remind_at == datetime(2027, 11, 3, 9, 0, tzinfo=SH).astimezone(timezone.utc)


async def test_past_due_date_can_be_moved_or_left_without_reminder(h: Harness) -> None:
    await h.say("chenjing", "仁济医院让我们11月10号前把标书交上去")
    answer = await h.say("chenjing", "改到12月5号")
    assert "12月5日" in answer[0]
    await h.say("chenjing", "鼓楼医院设备科要我们11月12号前补交授权书")
    answer = await h.say("chenjing", "不用")
    assert "不设提醒" in answer[0]
    tasks = await rows(h, Task)
    assert [(t.due_date, t.remind_at is not None) for t in tasks] == [
        (date(2026, 12, 5), True),
        (date(2026, 11, 12), False),
    ]
