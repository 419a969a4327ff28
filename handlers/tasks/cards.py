"""The reminder card: what is due, for which hospital, and one-tap answers."""

from __future__ import annotations

from datetime import date

from bot.context import AppContext
from cards.model import Button, Card, CardField
from storage.models import Account, Task

WEEKDAYS = "一二三四五六日"


def reminder_card(app: AppContext, task: Task, account: Account | None, today: date, *, late: bool = False) -> Card:
    fields = [CardField("事项", task.text)]
    if account is not None:
        fields.append(CardField("医院", account.name))
    if task.due_date is not None:
        when = f"{task.due_date.month}月{task.due_date.day}日 周{WEEKDAYS[task.due_date.weekday()]}"
        if task.due_at is not None:
            when += f" {task.due_at.astimezone(app.config.tz):%H:%M}"
        if late or task.due_date < today:
            when += "（已逾期）"
        elif task.due_date == today:
            when += "（今天）"
        fields.append(CardField("截止", when))
    return Card(
        title="⏰ 跟进提醒（已逾期）" if late else "⏰ 跟进提醒",
        kind="reminder",
        fields=tuple(fields),
        blocks=("做完回复“完成”，要改期回复“推迟到周五”这样即可。",),
        buttons=(
            Button("完成", command=f"完成 {task.id}", primary=True),
            Button("推迟到明天", command=f"推迟 {task.id} 到明天"),
            Button("推迟一周", command=f"推迟 {task.id} 一周"),
        ),
        meta={"task_id": str(task.id)},
    )
