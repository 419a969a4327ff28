"""Issue 15, items 5 and 7: corrections in the wordings people use — and every wording the bot
suggests (help card, reminder card, error replies) works; late tasks remind once and show as overdue."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from bot.clock import FakeClock
from handlers.tasks.jobs import send_due_reminders
from storage.models import Contact, Note, Opportunity, Task
from tests.harness import MONDAY, SH, Harness, rows

NOTE = "今天去华山医院设备科拜访了张科长，谈了报价，下周三前把参数表发给他"


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))


def _works(reply: str) -> bool:
    return reply.startswith(("✅", "⏰", "↩️")) and "没看懂" not in reply


async def test_corrections_in_everyday_wordings(h: Harness) -> None:
    await h.say("zhangwei", NOTE)
    [stage] = await h.say("zhangwei", "阶段改成招标")  # a lexicon word for the stage, not its label
    assert "招标采购" in stage
    [contact] = await h.say("zhangwei", "联系人改成王主任")
    assert contact.startswith("✅ 已更正联系人") and "王主任" in contact
    [due] = await h.say("zhangwei", "截止改成12月20日")
    assert "12月20日" in due
    [note] = await rows(h, Note)  # never a new note
    [opp] = await rows(h, Opportunity)
    [task] = await rows(h, Task)
    assert opp.stage == "tender" and note.fields["contacts"][0] == "王主任" and task.due_date == date(2026, 12, 20)
    assert "王主任" in [c.name for c in await rows(h, Contact)]


async def test_postpone_right_after_a_reminder_card(h: Harness) -> None:
    await h.say("lina", "华山医院张科长要报价，明天前发过去")
    h.app.clock.set(datetime(2026, 11, 24, 9, 1, tzinfo=SH))  # type: ignore[attr-defined]
    assert await send_due_reminders(h.app) == 1
    await h.settle()
    card = h.pushes("lina")[-1]
    assert "跟进提醒" in card
    suggested = re.findall(r"“([^”]+)”", card)
    assert "推迟到周五" in suggested and "完成" in suggested
    [moved] = await h.say("lina", "推迟到周五")
    assert moved.startswith("⏰ 已推迟") and "11月27日" in moved
    [done] = await h.say("lina", "完成")
    assert done.startswith("✅ 已完成")


async def test_every_wording_the_help_card_suggests_works(h: Harness) -> None:
    [help_card] = await h.say("zhangwei", "#帮助")
    usages = re.findall(r"· ([^#：\n][^：\n]*)：", help_card)
    wordings = [w.strip() for usage in usages for w in usage.split(" / ")]
    assert {"撤销", "阶段改成招标", "联系人改成王主任", "截止改成12月20日", "金额改成90万", "完成", "推迟到周五"} <= set(wordings)
    for wording in wordings:
        if wording == "撤销":
            continue  # last: it removes the note the others correct
        await h.say("zhangwei", NOTE)
        h.app.clock.advance(timedelta(minutes=30))  # type: ignore[attr-defined]
        if wording in ("完成", "推迟到周五"):
            h.app.clock.set(datetime(2026, 12, 2, 9, 1, tzinfo=SH))  # type: ignore[attr-defined]
            await send_due_reminders(h.app)
            await h.settle()
        [reply] = await h.say("zhangwei", wording)
        assert _works(reply), (wording, reply)
    [undone] = await h.say("zhangwei", "撤销")
    assert _works(undone)


async def test_every_wording_an_error_reply_suggests_works(h: Harness) -> None:
    await h.say("chenjing", NOTE)
    hints = []
    for bad in ("金额改成很多", "联系人改成，", "截止改成改天", "推迟到哪天再说"):
        [reply] = await h.say("chenjing", bad)
        hints += re.findall(r"“([^”]+)”", reply)
    assert hints
    for hint in dict.fromkeys(hints):
        if "…" in hint:
            continue
        [reply] = await h.say("chenjing", hint)
        assert _works(reply), (hint, reply)


async def test_a_late_task_reminds_once_and_is_marked_overdue(h: Harness) -> None:
    h.app.clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=SH))  # type: ignore[attr-defined]
    await h.say("yangfan", "今天上午10点前把报价发给华山医院王主任")
    [task] = await rows(h, Task)
    assert task.remind_at is not None  # late already: reminded at once, not never
    [todo] = await h.say("yangfan", "#待办")
    assert "⚠️已逾期" in todo and "1 条已逾期" in todo
    h.app.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    assert await send_due_reminders(h.app) == 1
    await h.settle()
    assert "已逾期" in h.pushes("yangfan")[-1]
    h.app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert await send_due_reminders(h.app) == 0  # once


async def test_a_task_that_becomes_late_is_flagged_in_todo(h: Harness) -> None:
    await h.say("huangli", "华山医院张科长要报价，今天下午3点前发过去")
    h.app.clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=SH))  # type: ignore[attr-defined]
    [todo] = await h.say("huangli", "#待办")
    assert "⚠️已逾期" in todo  # due today, but its time has passed
