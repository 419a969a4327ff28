"""The rep's to-dos: "完成" / "完成 12", "推迟到周五" / "推迟一天", and ``#待办``.

Why "the latest reminded task" as the default target: the rep answers a reminder card in
a chat, usually right after it arrived, with one word. Button commands carry the task id
("完成 12", "推迟 12 到明天") so an old card still acts on the right task.
"""

from __future__ import annotations

import re
from datetime import date

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import HandlerContext, HandlerResult, Router, hashtag, matches
from cards.model import Button, Card
from handlers.common.dates import local_now, parse_answer_date
from handlers.common.format import day_text
from handlers.tasks.service import (
    DONE,
    OPEN,
    is_overdue,
    latest_reminded_task,
    open_tasks,
    policy,
    redate_task,
    set_task_status,
)
from storage.models import Account, Opportunity, Task

DONE_RX = r"^(?:完成|已完成|搞定|做完了?|办完了?|已办)(?:了)?\s*(\d+)?\s*[。!！✅]*$"
POSTPONE_RX = r"^(?:推迟|延期|延后|推到|顺延|往后推|改期)\s*(\d+)?\s*(.*)$"
TODO_RX = r"^[#＃]\s*(?:待办|待办事项|todo|TODO)\s*$"

NO_TASK = "没有找到需要处理的待办。发 #待办 可以看全部。"


async def _target(hc: HandlerContext, task_id: str | None) -> Task | None | str:
    """The task a command means: by id, else the latest reminded one, else the only open one."""
    if task_id:
        number = int(task_id) if task_id.isascii() and task_id.isdigit() and len(task_id) <= 18 else None  # a bigint, never an overflow
        task = await hc.session.get(Task, number) if number is not None else None
        if task is None or task.owner_id != hc.person.id:
            return f"没有找到你的待办 {task_id}。"
        return task
    task = await latest_reminded_task(hc.session, hc.person.id)
    if task is not None:
        return task
    tasks = await open_tasks(hc.session, hc.person.id, limit=2)
    if len(tasks) == 1:
        return tasks[0]
    if tasks:
        return "你有多条待办，请带上编号，例如“完成 12”。发 #待办 查看编号。"
    return None


def _line(task: Task, today: date, app: AppContext, account: str = "", *, late: bool = False) -> str:
    mark = "⚠️已逾期 " if late else ""
    when = day_text(task.due_date, task.due_at, app=app, today=today) if task.due_date else "未定日期"
    where = f" · {account}" if account else ""
    return f"{task.id}. {mark}{when} · {task.text}{where}"


async def todo_card(app: AppContext, hc: HandlerContext) -> Card | str:
    tasks = await open_tasks(hc.session, hc.person.id)
    if not tasks:
        return "目前没有待办 👍"
    today = local_now(app, hc.now).date()
    lines = []
    for task in tasks:
        account = ""
        if task.opportunity_id is not None:
            opp = await hc.session.get(Opportunity, task.opportunity_id)
            if opp is not None and opp.account_id is not None:
                acc = await hc.session.get(Account, opp.account_id)
                account = acc.name if acc else ""
        lines.append(_line(task, today, app, account, late=is_overdue(task, hc.now, app.config.tz)))
    overdue = sum(1 for t in tasks if is_overdue(t, hc.now, app.config.tz))
    subtitle = f"共 {len(tasks)} 条" + (f"，{overdue} 条已逾期" if overdue else "")
    buttons = tuple(Button(f"完成 {t.id}", command=f"完成 {t.id}") for t in tasks[:3])
    return Card(title="我的待办", kind="tasks", subtitle=subtitle, blocks=tuple(lines), buttons=buttons)


def router(app: AppContext) -> Router:
    r = Router("tasks")

    @r.on(matches(DONE_RX))
    async def done(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        target = await _target(hc, match.group(1))
        if target is None:
            return Reply(text=NO_TASK)
        if isinstance(target, str):
            return Reply(text=target)
        if target.status == DONE:
            return Reply(text=f"“{target.text}”已经是完成状态。")
        if target.status != OPEN:
            return Reply(text=f"“{target.text}”已取消，无需完成。")
        await set_task_status(hc.session, target, DONE, actor_id=hc.person.id, now=hc.now)
        return Reply(text=f"✅ 已完成：{target.text}", tag="task.done")

    @r.on(matches(POSTPONE_RX))
    async def postpone(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        text = match.string
        task_id, rest = match.group(1), match.group(2).strip()
        verb = text[: match.start(1)].strip() if task_id else text[: len(text) - len(rest)].strip()
        if task_id and (not rest or re.match(r"^(?:个)?(?:天|日|周|星期|礼拜|月)", rest)):
            # "推迟3天": the digits are the amount, not a task id
            task_id, rest = None, text[len(verb):].strip()
        target = await _target(hc, task_id)
        if target is None:
            return Reply(text=NO_TASK)
        if isinstance(target, str):
            return Reply(text=target)
        if target.status != OPEN:
            return Reply(text=f"“{target.text}”已经不是待办状态，无需推迟。")
        today = local_now(app, hc.now).date()
        base = target.due_date if target.due_date is not None and target.due_date >= today else today
        parsed = parse_answer_date(app, f"{verb}{rest}", hc.now, base=base)
        if parsed is None and rest:
            parsed = parse_answer_date(app, rest, hc.now, base=base)
        if parsed is None:
            return Reply(text="推迟到哪天？例如“推迟到周五”或“推迟两天”。")
        if parsed.due < today:
            return Reply(text=f"{parsed.due.month}月{parsed.due.day}日 已经过了，请给一个今天以后的日期。")
        await redate_task(hc.session, target, parsed.due, parsed.due_at, actor_id=hc.person.id,
                          policy=policy(app), now=hc.now)
        when = day_text(target.due_date, target.due_at, app=app, today=today)
        return Reply(text=f"⏰ 已推迟：{target.text}\n新的截止：{when}", tag="task.postpone")

    @r.on(hashtag(), matches(TODO_RX))
    async def todo(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        card = await todo_card(app, hc)
        return Reply(text=card) if isinstance(card, str) else Reply(card=card, tag="task.list")

    return r

