"""Escalation cards: what, since when, amount, last activity, the rep's last note, the next level; buttons carry the id."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cards.model import Button, Card, CardField
from handlers.common.format import day_text, money

if TYPE_CHECKING:
    from bot.context import AppContext

NOTE_MAX = 60


def when(app: AppContext, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(app.config.tz)
    return f"{day_text(local.date())} {local:%H:%M}"


def action_buttons(esc_id: int) -> tuple[Button, ...]:
    ref = f"E{esc_id}"
    return (
        Button("跟进中", command=f"跟进中 {ref}", primary=True),
        Button("稍后提醒", command=f"稍后提醒 {ref}"),
        Button("改派", command=f"改派 {ref}"),
        Button("暂停", command=f"暂停 {ref}"),
    )


def stalled_card(app: AppContext, *, esc_id: int, level: int, account: str, stage: str, amount: int | None, owner: str,
                 since: datetime | None, workdays: int, last_note: str, next_at: datetime | None, next_who: str) -> Card:
    note = last_note if len(last_note) <= NOTE_MAX else last_note[: NOTE_MAX - 1] + "…"
    return Card(
        title=f"商机停滞：{account or '未知医院'}",
        kind="escalation",
        subtitle=f"第{level}级 · {workdays}个工作日没有新跟进",
        fields=(
            CardField("阶段", stage or "未定"),
            CardField("金额", money(amount) or "未填"),
            CardField("负责人", owner),
            CardField("最后跟进", when(app, since)),
            CardField("最近记录", note or "（无）"),
            CardField("下一级", f"{when(app, next_at)} {next_who}".strip() if next_at else "无"),
        ),
        buttons=action_buttons(esc_id),
        meta={"escalation": str(esc_id), "level": str(level)},
    )


def receivable_card(app: AppContext, *, esc_id: int, level: int, account: str, label: str, amount: int | None,
                    received: int, owner: str, due: datetime | None, days: int, last_note: str,
                    next_at: datetime | None, next_who: str) -> Card:
    outstanding = (amount or 0) - received
    return Card(
        title=f"回款逾期：{account or '未知医院'} {label}".strip(),
        kind="escalation",
        subtitle=f"第{level}级 · 已逾期{days}天",
        fields=(
            CardField("应收", money(amount) or "未填"),
            CardField("未收", money(outstanding) if amount else "—"),
            CardField("负责人", owner),
            CardField("到期日", when(app, due)),
            CardField("最近记录", last_note[:NOTE_MAX] or "（无）"),
            CardField("下一级", f"{when(app, next_at)} {next_who}".strip() if next_at else "无"),
        ),
        buttons=action_buttons(esc_id),
        meta={"escalation": str(esc_id), "level": str(level)},
    )


def proposal_card(note_id: int, account: str, lines: list[str]) -> Card:
    return Card(
        title=f"回款计划待确认：{account}" if account else "回款计划待确认",
        kind="question",
        subtitle="确认后按到期日跟踪回款；不对请点修改",
        blocks=tuple(f"• {line}" for line in lines),
        buttons=(Button("确认", command=f"确认回款计划 N{note_id}", primary=True),
                 Button("修改", command=f"修改回款计划 N{note_id}")),
    )


def list_card(title: str, lines: list[str], empty: str) -> Card:
    return Card(title=title, kind="escalations", subtitle=f"共 {len(lines)} 条" if lines else empty,
                blocks=tuple(lines[:30]))
