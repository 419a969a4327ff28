"""What the escalation ladders' levels do: open/raise the episode and send one card per recipient (once, by ``fired.key``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import notify
from handlers.common.format import stage_label
from handlers.escalations.cards import receivable_card, stalled_card
from handlers.escalations.service import (
    OVERDUE,
    STALLED,
    installment_due,
    local_day_start,
    open_escalation,
)
from reminders.timers import Fired, audience_of
from storage.models import (
    Account,
    Escalation,
    Installment,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
)

WHO = {"owner": "负责人", "manager": "经理", "director": "总监", "finance": "财务"}


def _next_who(fired: Fired) -> str:
    later = [lv for lv in fired.ladder.levels if lv.number > fired.level.number and lv.applies(fired.timer.attributes)]
    return "→ " + "、".join(WHO.get(a, a) for a in later[0].audience) if later else ""


async def _last_note(session: AsyncSession, *, opportunity_id: int | None, author_id: int | None) -> str:
    stmt = select(Note).where(Note.deleted_at.is_(None))
    if opportunity_id is not None:
        stmt = stmt.where(Note.opportunity_id == opportunity_id)
    elif author_id is not None:
        stmt = stmt.where(Note.author_id == author_id)
    note = await session.scalar(stmt.order_by(Note.id.desc()).limit(1))
    return (note.raw_text or note.transcript) if note is not None else ""


async def _episode(session: AsyncSession, fired: Fired, kind: str, *, owner: Person | None, amount: int | None,
                   since: datetime | None, now: datetime) -> Escalation:
    timer = fired.timer
    esc = await open_escalation(session, kind, timer.subject_type, timer.subject_id)
    if esc is None:
        esc = Escalation(kind=kind, subject_type=timer.subject_type, subject_id=timer.subject_id, status="open",
                         detail={}, created_at=now, level=0, handled_level=0, snoozes=0, version=1)
        session.add(esc)
    esc.owner_id = owner.id if owner else None
    esc.team_id = owner.team_id if owner else None
    esc.manager_id = owner.manager_id if owner else None
    esc.timer_id, esc.level, esc.amount, esc.since_at = timer.id, fired.level.number, amount, since
    esc.status, esc.hold_until, esc.sent_at = "open", None, now
    esc.snooze_until = None  # the new level's card replaces a snoozed one
    esc.version = (esc.version or 0) + 1
    await session.flush()
    return esc


async def _send(app: AppContext, session: AsyncSession, fired: Fired, owner_key: str | None, reply: Reply) -> None:
    klass = fired.level.card_class or ("deal" if fired.ladder.id != "receivable" else "receivable")
    for recipient in await audience_of(session, fired.level, owner_key):
        await notify(app, session, recipient, reply, now=fired.now, klass=klass, dedupe_key=fired.key)


async def on_stalled(app: AppContext, session: AsyncSession, fired: Fired) -> None:
    opp = await session.get(Opportunity, fired.timer.subject_id)
    if opp is None or opp.status != "open":
        await app.timers.cancel(session, fired.timer)
        return
    owner = await session.get(Person, opp.owner_id)
    account = await session.get(Account, opp.account_id) if opp.account_id else None
    esc = await _episode(session, fired, STALLED, owner=owner, amount=opp.amount, since=opp.last_activity_at, now=fired.now)
    since_day = opp.last_activity_at.astimezone(app.config.tz).date()
    workdays = app.calendar.working_days_between(since_day, fired.now.astimezone(app.config.tz).date())
    card = stalled_card(
        app, esc_id=esc.id, level=fired.level.number, account=account.name if account else "",
        stage=stage_label(app, opp.stage), amount=opp.amount, owner=owner.name if owner else "", since=opp.last_activity_at,
        workdays=workdays, last_note=await _last_note(session, opportunity_id=opp.id, author_id=None),
        next_at=fired.next_fire_at, next_who=_next_who(fired),
    )
    esc.detail = {**(esc.detail or {}), "card": card.to_dict()}
    await _send(app, session, fired, owner.key if owner else None, Reply(card=card, tag="escalation.stalled"))
    app.log.info("escalations.stalled", escalation_id=esc.id, opportunity_id=opp.id, level=fired.level.number)


async def on_receivable(app: AppContext, session: AsyncSession, fired: Fired) -> None:
    inst = await session.get(Installment, fired.timer.subject_id)
    plan = await session.get(PaymentPlan, inst.plan_id) if inst is not None else None
    due = installment_due(inst, plan) if inst is not None and plan is not None else None
    if inst is None or plan is None or inst.status in ("paid", "cancelled") or (due is not None and inst.received_amount >= due):
        await app.timers.cancel(session, fired.timer)
        return
    owner = await session.get(Person, plan.owner_id) if plan.owner_id else None
    account = await session.get(Account, plan.account_id) if plan.account_id else None
    due_at = local_day_start(app, inst.due_date) if inst.due_date else fired.timer.anchor_at
    esc = await _episode(session, fired, OVERDUE, owner=owner, amount=due, since=due_at, now=fired.now)
    days = (fired.now.astimezone(app.config.tz).date() - inst.due_date).days if inst.due_date else 0
    card = receivable_card(
        app, esc_id=esc.id, level=fired.level.number, account=account.name if account else "",
        label=inst.label or (f"发票{inst.invoice_no}" if inst.invoice_no else ""), amount=due, received=inst.received_amount,
        owner=owner.name if owner else "", due=due_at, days=days,
        last_note=await _last_note(session, opportunity_id=plan.opportunity_id, author_id=plan.owner_id),
        next_at=fired.next_fire_at, next_who=_next_who(fired),
    )
    esc.detail = {**(esc.detail or {}), "card": card.to_dict()}
    await _send(app, session, fired, owner.key if owner else None, Reply(card=card, tag="escalation.receivable"))

