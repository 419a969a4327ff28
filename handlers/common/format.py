"""Formatting shared by every card and reply: money in 万, dates with weekday, stage and concern labels."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.context import AppContext
    from bot.messages import Reply

DONE_LABEL = "已处理"
LABEL_MAX = 10
_CLAUSE_END = re.compile(r"[：:，,。.！!？?\n（(]")

WEEKDAYS = "一二三四五六日"


def stage_label(app: AppContext, code: str | None) -> str:
    if not code:
        return ""
    for group in app.services.lexicon.stages:
        if group.code == code:
            return group.label
    return code


def concern_labels(app: AppContext, codes: list[str]) -> list[str]:
    labels = {g.code: g.label for g in app.services.lexicon.concerns}
    return [labels.get(c, c) for c in codes]


def money(amount: int | None) -> str:
    """800000 → "80万", 865000 → "86.5万", 1200000 → "120万"; small sums in 元."""
    if amount is None:
        return ""
    if amount >= 10_000:
        wan = amount / 10_000
        text = f"{wan:.2f}".rstrip("0").rstrip(".")
        return f"{text}万"
    return f"{amount}元"


def day_text(day: date | None, at: datetime | None = None, *, app: AppContext | None = None, today: date | None = None) -> str:
    """"11月25日 周三" (+ " 14:00" when a time was given)."""
    if day is None:
        return ""
    text = f"{day.month}月{day.day}日 周{WEEKDAYS[day.weekday()]}"
    if today is not None and day.year != today.year:
        text = f"{day.year}年{text}"
    if at is not None:
        local = at.astimezone(app.config.tz) if app is not None else at
        text += f" {local:%H:%M}"
    return text


def outcome_label(replies: list[Reply]) -> str:
    """A button-sized summary of what happened: the first clause of the first reply, if short."""
    for reply in replies:
        if reply.to is not None:
            continue
        text = reply.text.strip() or (reply.card.title.strip() if reply.card is not None else "")
        head = _CLAUSE_END.split(text, maxsplit=1)[0].strip()
        if 0 < len(head) <= LABEL_MAX:
            return head
        break
    return DONE_LABEL


# Inbound.extra key: the text left after a #tag was redispatched (a talk-track request, maybe a note)
AFTER_TAG = "after_tag"
