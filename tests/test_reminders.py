"""Reminders: fired from the database exactly once, answered with 完成 / 推迟, listed by #待办."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from bot.messages import Kind
from reminders.scheduler import ReminderScheduler
from reminders.tick import run_reminder_tick
from storage.models import AuditLog, OutboxRow, Task
from tests.harness import MONDAY, SH, Harness, rows



@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(MONDAY)


@pytest.fixture
async def h(make_runtime, clock: FakeClock) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=clock))



async def tick(h: Harness) -> int:
    sent = await run_reminder_tick(h.app)
    await h.settle()
    return sent


def reminders_to(h: Harness, user: str) -> list[str]:
    return [t for t in h.pushes(user) if "跟进提醒" in t]


async def test_reminder_fires_once_at_nine_on_the_due_day(h: Harness, clock: FakeClock) -> None:
    await h.say("zhangwei", "今天去华山医院设备科做了产品演示，张科长要求提供临床试用报告，周三前发过去。")
    assert await tick(h) == 0
    clock.set(datetime(2026, 11, 25, 8, 59, tzinfo=SH))
    assert await tick(h) == 0
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=SH))
    assert await tick(h) == 1
    assert await tick(h) == 0  # the same tick again: nothing more
    clock.advance(timedelta(hours=5))
    assert await tick(h) == 0
    [card] = reminders_to(h, "zhangwei")
    assert "复旦大学附属华山医院" in card and "11月25日" in card and "今天" in card
    [task] = await rows(h, Task)
    assert f"完成 {task.id}" in card and f"推迟 {task.id} 到明天" in card
    assert task.reminded_at == datetime(2026, 11, 25, 9, 0, tzinfo=SH).astimezone(timezone.utc)


async def test_a_stated_time_is_the_reminder_time(h: Harness, clock: FakeClock) -> None:
    await h.say("lina", "明天下午三点去省肿瘤医院见胡主任，带上新版彩页。")
    [task] = await rows(h, Task)
    assert task.remind_at == datetime(2026, 11, 24, 15, 0, tzinfo=SH).astimezone(timezone.utc)
    clock.set(datetime(2026, 11, 24, 14, 59, tzinfo=SH))
    assert await tick(h) == 0
    clock.set(datetime(2026, 11, 24, 15, 0, tzinfo=SH))
    assert await tick(h) == 1


async def test_two_nodes_ticking_at_once_remind_once(make_runtime, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    first = await make_runtime(clock=clock)
    second = await make_runtime(clock=clock, org=None)  # same database, another node
    h = Harness(first)
    for text in (
        "今天去华山医院设备科做了产品演示，周三前把临床报告发给张科长。",
        "中山医院介入科的试用确认书签好了，周三前送两台样机过去。",
        "鼓楼医院检验科的发票开了，周三前去财务对账。",
    ):
        await h.say("chenjing", text)
    clock.set(datetime(2026, 11, 25, 9, 5, tzinfo=SH))
    counts = await asyncio.gather(
        run_reminder_tick(first.app), run_reminder_tick(second.app),
        run_reminder_tick(first.app), run_reminder_tick(second.app),
    )
    assert sum(counts) == 3
    async with first.app.sessions() as s:
        outbox = (await s.scalars(select(OutboxRow).where(OutboxRow.payload["tag"].as_string() == "reminder"))).all()
    assert len(outbox) == 3
    assert len({row.payload["card"]["meta"]["task_id"] for row in outbox}) == 3
    await h.settle()
    assert len(reminders_to(h, "chenjing")) == 3


async def test_done_closes_the_reminded_task(h: Harness, clock: FakeClock) -> None:
    await h.say("liuyang", "瑞金医院的合同已经盖章了，总金额一百二十万，周四安排装机。")
    await h.say("liuyang", "仁济医院让我们下周一前把标书交上去。")
    clock.set(datetime(2026, 11, 26, 9, 1, tzinfo=SH))
    assert await tick(h) == 1
    [reply] = await h.say("liuyang", "完成")
    assert "已完成" in reply and "装机" in reply
    tasks = await rows(h, Task)
    assert [t.status for t in tasks] == ["done", "open"]
    assert tasks[0].done_at == clock.now()
    audit = await rows(h, AuditLog, AuditLog.entity == "task", AuditLog.field == "status")
    assert [(a.old, a.new) for a in audit] == [("open", "done")]
    # by id, from a button
    [reply] = await h.say("liuyang", f"完成 {tasks[1].id}")
    assert "已完成" in reply
    assert [t.status for t in await rows(h, Task)] == ["done", "done"]
    [reply] = await h.say("liuyang", "完成")
    assert "没有找到" in reply


async def test_postpone_to_friday_redates_and_reminds_again(h: Harness, clock: FakeClock) -> None:
    await h.say("yangfan", "湘雅医院心内科主任想看装机案例，周三前把案例视频发过去。")
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=SH))
    assert await tick(h) == 1
    [reply] = await h.say("yangfan", "推迟到周五")
    assert "11月27日" in reply
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 11, 27) and task.reminded_at is None
    assert task.remind_at == datetime(2026, 11, 27, 9, 0, tzinfo=SH).astimezone(timezone.utc)
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=SH))
    assert await tick(h) == 0
    clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=SH))
    assert await tick(h) == 1
    [reply] = await h.say("yangfan", "推迟一天")
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 11, 28) and "11月28日" in reply
    assert len(reminders_to(h, "yangfan")) == 2


async def test_reminder_buttons_work_as_clicks(h: Harness, clock: FakeClock) -> None:
    await h.say("huangli", "东方医院采购办通知我们中标了，周二去签合同。")
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=SH))
    assert await tick(h) == 1
    [task] = await rows(h, Task)
    click = h.message("huangli", kind=Kind.EVENT, event="card_click", event_key=f"推迟 {task.id} 到明天")
    out = await h.send(click)
    assert any("11月25日" in d.text for d in out if d.recipient == "huangli")
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 11, 25) and task.reminded_at is None


async def test_todo_list_marks_overdue(h: Harness, clock: FakeClock) -> None:
    await h.say("zhangwei", "今天去华山医院设备科做了产品演示，周三前把临床报告发给张科长。")
    await h.say("zhangwei", "市一院心内科刘主任约了下周一上午去科室拜访。")
    await h.say("lina", "仁济医院让我们下周一前把标书交上去。")
    clock.set(datetime(2026, 11, 26, 10, 0, tzinfo=SH))  # Thursday: Wednesday's task is overdue
    [reply] = await h.say("zhangwei", "#待办")
    lines = [line for line in reply.splitlines() if "·" in line]
    assert len(lines) == 2  # only my own tasks
    assert "已逾期" in lines[0] and "11月25日" in lines[0] and "复旦大学附属华山医院" in lines[0]
    assert "已逾期" not in lines[1] and "11月30日" in lines[1]
    [task1, task2, _] = await rows(h, Task)
    await h.say("zhangwei", f"完成 {task1.id}")
    [reply] = await h.say("zhangwei", "#待办")
    assert "已逾期" not in reply and "11月30日" in reply
    [reply] = await h.say("sunyy", "#待办")
    assert "没有待办" in reply


async def test_scheduler_runs_the_tick(make_runtime) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(MONDAY)
    runtime = await make_runtime({"notes": {"reminder_tick_seconds": 0.2}}, clock=clock)
    h = Harness(runtime)
    await h.say("chenjing", "明天上午把参数对比表发给华山医院设备科张科长。")
    clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SH))
    scheduler = ReminderScheduler(runtime.app)
    await scheduler.start()
    try:
        for _ in range(60):
            [task] = await rows(h, Task)
            if task.reminded_at is not None:
                break
            await asyncio.sleep(0.1)
        assert task.reminded_at is not None and scheduler.running
    finally:
        await scheduler.stop()
    assert not scheduler.running
    await h.settle()
    assert len(reminders_to(h, "chenjing")) == 1
