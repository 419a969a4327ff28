"""Escalations: which timers watch deals and installments, the episodes they open, and what people do about them.

Why a service apart from the chat handlers: notes (counting activity), corrections (amount,
stage), the finance import, ``#回款`` and the card buttons all change what is watched, and
the same rules must hold for each. Nothing here commits: the caller's transaction carries
the timer change, the escalation row, the audit rows and the cards together.

* A deal is watched by the stalled-deal ladder its stage maps to (``rules/escalations.toml``);
  a counting activity (a new note about it, a stage change from a note) restarts the clock,
  a correction only refreshes the level conditions (owner, amount); closing it cancels.
* An installment with a due date is watched by the receivable ladder from that date; the
  timer stops when the received sum reaches the amount.
* A level firing opens (or raises) one escalation episode per subject; buttons act on it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common.waiting import escalations_changed
from handlers.escalations.rules import EscalationRules, load_rules
from reminders.timers import OPEN_STATES, state_of
from storage.audit import audit
from storage.models import (
    Escalation,
    Installment,
    Opportunity,
    PaymentPlan,
    PaymentReceipt,
    Person,
    Task,
    Team,
    Timer,
)

if TYPE_CHECKING:
    from bot.context import AppContext

DEAL = "opportunity"
INSTALLMENT = "installment"
STALLED = "stalled_deal"
OVERDUE = "overdue_payment"

ACTIONS = {"follow": "跟进中", "snooze": "稍后提醒", "reassign": "改派", "pause": "暂停"}
CLOSED_REASONS = {"activity": "有新跟进", "closed": "商机已关闭", "paid": "款项已到账", "reassign": "已改派"}

# "等招标结果，12月20号开标": the deal waits for a dated external event
WAITING = re.compile(r"等(?:待)?[^，。；,;]{0,10}(?:结果|开标|评标|批复|审批|论证|上会|预算|回复|通知)")


def rules(app: AppContext) -> EscalationRules:
    return load_rules(app.config.escalations.rules_dir)


def local_day_start(app: AppContext, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=app.config.tz)


# ---- deals ---------------------------------------------------------------------------------


async def _person(session: AsyncSession, person_id: int | None) -> Person | None:
    return await session.get(Person, person_id) if person_id is not None else None


async def deal_attributes(session: AsyncSession, opp: Opportunity) -> dict[str, Any]:
    owner = await _person(session, opp.owner_id)
    return {"owner": owner.key if owner else "", "amount": int(opp.amount or 0), "stage": opp.stage or ""}


async def open_timers(session: AsyncSession, subject_type: str, subject_id: int) -> list[Timer]:
    """The subject's running or paused timers, as this transaction left them.

    Filtered here, not in SQL: a timer's changes are written at commit (:func:`reminders.timers._set`),
    so the stored state of one cancelled or restarted earlier in the transaction is out of date.
    """
    rows = await session.scalars(_SUBJECT_TIMERS, {"subject_type": subject_type, "subject_id": subject_id})
    return [timer for timer in rows if timer.state in OPEN_STATES]


_SUBJECT_TIMERS = select(Timer).where(Timer.subject_type == bindparam("subject_type"),
                                      Timer.subject_id == bindparam("subject_id"))


async def open_escalation(session: AsyncSession, kind: str, subject_type: str, subject_id: int) -> Escalation | None:
    return await session.scalar(
        select(Escalation).where(Escalation.kind == kind, Escalation.subject_type == subject_type,
                                 Escalation.subject_id == subject_id, Escalation.closed_at.is_(None))
    )


# A deal's timers (open or finished) and its open stalled-deal episode (at most one: a partial
# unique index), in one statement: every note about a deal asks both. Anchored on the deal's
# own row, so the episode comes back when no timer does.
_DEAL_WATCH = (
    select(Timer, Escalation)
    .select_from(Opportunity)
    .outerjoin(Timer, and_(Timer.subject_type == DEAL, Timer.subject_id == Opportunity.id))
    .outerjoin(Escalation, and_(Escalation.kind == STALLED, Escalation.subject_type == DEAL,
                                Escalation.subject_id == Opportunity.id, Escalation.closed_at.is_(None)))
    .where(Opportunity.id == bindparam("opp_id"))
)


async def _deal_watch(session: AsyncSession, opp_id: int) -> tuple[list[Timer], Escalation | None]:
    """Every timer of a deal (open or not: a finished one is what a restart reuses) and its open episode, one round trip."""
    timers: list[Timer] = []
    esc: Escalation | None = None
    for timer, episode in (await session.execute(_DEAL_WATCH, {"opp_id": opp_id})).all():
        if timer is not None:
            timers.append(timer)
        esc = esc or episode
    return timers, esc


async def close_escalation(session: AsyncSession, esc: Escalation, *, reason: str, actor_id: int | None, now: datetime) -> None:
    await audit(session, actor_id=actor_id, entity="escalation", entity_id=esc.id, field_name="closed",
                old=esc.status, new=reason, note_id=None, now=now)
    esc.status = "reassigned" if reason == "reassign" else "resolved"
    esc.closed_at, esc.closed_by_id = now, actor_id
    esc.detail = {**(esc.detail or {}), "closed_reason": reason}
    esc.awaiting_person_id = esc.awaiting_action = esc.awaiting_until = None
    escalations_changed(session)
    esc.snooze_until = None
    esc.version += 1


async def watch_deal(
    app: AppContext, session: AsyncSession, opp: Opportunity, *, now: datetime, activity: bool, actor_id: int | None = None
) -> Timer | None:
    """Make the deal's timers match the deal: restart on activity, refresh facts, cancel when closed."""
    ladder = rules(app).stalled_ladder(opp.stage) if opp.status == "open" else None
    attributes = await deal_attributes(session, opp)
    current: Timer | None = None  # the deal's row for this ladder, open or finished
    timers, esc = await _deal_watch(session, opp.id)
    for timer in timers:
        if timer.ladder == ladder:
            current = timer
        elif timer.state in OPEN_STATES:
            await app.timers.cancel(session, timer)
    if ladder is None:
        if esc is not None:
            await close_escalation(session, esc, reason="closed", actor_id=actor_id, now=now)
        return None
    if activity or current is None or current.state not in OPEN_STATES:
        if esc is not None and activity:
            await close_escalation(session, esc, reason="activity", actor_id=actor_id, now=now)
        start = now if activity else (opp.last_activity_at or now)
        if current is not None:  # the usual note: the timer restarts in place (it is the row start() would find)
            return app.timers.restart(current, at=min(start, now), attributes=attributes)
        return await app.timers.start(session, subject_type=DEAL, subject_id=opp.id, ladder=ladder,
                                      at=min(start, now), attributes=attributes, absent=True)
    if current.attributes != attributes:
        await app.timers.set_attributes(session, current, attributes)
    if esc is not None and esc.amount != opp.amount:
        esc.amount = opp.amount
    return current


def waiting_until(app: AppContext, text: str, now: datetime) -> date | None:
    """The date a note says the deal waits for ("等招标结果，12月20号开标" → 12-20), if it says so."""
    if not WAITING.search(text):
        return None
    from handlers.common.dates import parse_answer_date

    parsed = parse_answer_date(app, text, now)
    if parsed is None or parsed.due <= now.astimezone(app.config.tz).date():
        return None
    return parsed.due


# ---- installments --------------------------------------------------------------------------


def installment_due(inst: Installment, plan: PaymentPlan) -> int | None:
    """The amount an installment is for (its own, else its percentage of the plan)."""
    if inst.amount is not None:
        return int(inst.amount)
    if inst.percent is not None and plan.total_amount:
        return int(round(plan.total_amount * inst.percent / 100))
    return None


async def watch_installment(app: AppContext, session: AsyncSession, inst: Installment, *, now: datetime,
                            actor_id: int | None = None) -> Timer | None:
    """Run the receivable ladder from the due date while money is outstanding; stop it otherwise."""
    plan = await session.get(PaymentPlan, inst.plan_id)
    assert plan is not None
    ladder = rules(app).receivable
    due = installment_due(inst, plan)
    paid = due is not None and inst.received_amount >= due
    timers = await open_timers(session, INSTALLMENT, inst.id)
    if paid or inst.due_date is None or inst.status == "cancelled":
        for timer in timers:
            await app.timers.cancel(session, timer)
        esc = await open_escalation(session, OVERDUE, INSTALLMENT, inst.id)
        if esc is not None and paid:
            await close_escalation(session, esc, reason="paid", actor_id=actor_id, now=now)
        return None
    owner = await _person(session, plan.owner_id)
    attributes = {"owner": owner.key if owner else "", "amount": int((due or 0) - inst.received_amount)}
    anchor = local_day_start(app, inst.due_date)
    current = next((t for t in timers if t.ladder == ladder), None)
    if current is None or current.attributes.get("due") != inst.due_date.isoformat():
        attributes["due"] = inst.due_date.isoformat()
        return await app.timers.start(session, subject_type=INSTALLMENT, subject_id=inst.id, ladder=ladder,
                                      at=anchor, attributes=attributes)
    attributes["due"] = inst.due_date.isoformat()
    if current.attributes != attributes:
        await app.timers.set_attributes(session, current, attributes)
    return current


async def receive(app: AppContext, session: AsyncSession, inst: Installment, amount: int, *, source: str,
                  actor_id: int | None, reference: str | None, now: datetime) -> None:
    """Money arrived for ``inst`` (partial payments add up); the ladder stops when the sum reaches the amount."""
    plan = await session.get(PaymentPlan, inst.plan_id)
    assert plan is not None
    session.add(PaymentReceipt(installment_id=inst.id, amount=amount, source=source, reference=reference,
                               actor_id=actor_id, received_at=now))
    old = inst.received_amount
    inst.received_amount = old + amount
    due = installment_due(inst, plan)
    inst.status = "paid" if due is not None and inst.received_amount >= due else "partial"
    inst.updated_at = now
    await audit(session, actor_id=actor_id, entity="installment", entity_id=inst.id, field_name="received_amount",
                old=old, new=inst.received_amount, note_id=None, now=now)
    await watch_installment(app, session, inst, now=now, actor_id=actor_id)


# ---- acting on an escalation --------------------------------------------------------------


async def managed_team_ids(session: AsyncSession, person: Person) -> set[int]:
    """The teams a manager acts on: the ones they manage (by key) and their own."""
    ids = set((await session.scalars(select(Team.id).where(Team.manager_key == person.key))).all())
    if person.team_id is not None and person.role == "manager":
        ids.add(person.team_id)
    return ids


async def refusal(session: AsyncSession, person: Person, esc: Escalation, action: str) -> str | None:
    """Why ``person`` may not do ``action`` on ``esc`` (None: allowed). Checked on the server for every click."""
    if person.role in ("director", "admin"):
        return None
    if person.role == "manager":
        if esc.team_id is not None and esc.team_id in await managed_team_ids(session, person):
            return None
        return "这条预警不属于你的团队，无法操作。"
    if action == "reassign":
        return "只有经理可以改派。"
    if person.role == "rep":
        return None if esc.owner_id == person.id else "这条预警不是你的，无法操作。"
    if person.role == "finance" and esc.kind == OVERDUE and action in ("follow", "snooze"):
        return None
    return "你的角色不能处理这条预警。"


async def refuse(app: AppContext, session: AsyncSession, person: Person, esc: Escalation, action: str, why: str,
                 now: datetime) -> None:
    app.log.warning("escalations.refused", person=person.key, escalation_id=esc.id, action=action, reason=why)
    await audit(session, actor_id=person.id, entity="escalation", entity_id=esc.id, field_name="refused",
                old=None, new=f"{action}: {why}", note_id=None, now=now)


async def handled_label(session: AsyncSession, esc: Escalation) -> str:
    """"已由X处理（…）" for a card whose episode is already taken care of."""
    if esc.closed_at is not None:
        who = await _person(session, esc.closed_by_id)
        reason = CLOSED_REASONS.get(str((esc.detail or {}).get("closed_reason")), "已关闭")
        return f"已由{who.name if who else '系统'}处理（{reason}）"
    who = await _person(session, esc.handled_by_id)
    return f"已由{who.name if who else '系统'}处理（{ACTIONS.get(esc.handled_action or '', esc.handled_action or '')}）"


async def mark_handled(session: AsyncSession, esc: Escalation, person: Person, action: str, detail: str, now: datetime) -> None:
    await audit(session, actor_id=person.id, entity="escalation", entity_id=esc.id, field_name=action,
                old=esc.status, new=detail, note_id=None, now=now)
    esc.handled_by_id, esc.handled_action, esc.handled_level, esc.handled_at = person.id, action, esc.level, now
    esc.awaiting_person_id = esc.awaiting_action = esc.awaiting_until = None
    escalations_changed(session)
    esc.version += 1


async def subject_timer(app: AppContext, session: AsyncSession, esc: Escalation) -> Timer | None:
    timers = await open_timers(session, esc.subject_type, esc.subject_id)
    return next((t for t in timers if t.id == esc.timer_id), timers[0] if timers else None)


async def hold(app: AppContext, session: AsyncSession, timer: Timer, until: datetime, *, now: datetime) -> None:
    """跟进中: nothing fires before ``until``; the next level fires then unless a counting activity restarts the clock."""
    state = state_of(timer)
    ladder = app.timers.ladders.get(timer.ladder)
    upcoming = [lv for lv in ladder.levels if lv.number > state.fired and lv.applies(timer.attributes)]
    await app.timers.pause(session, timer, at=max(now, timer.anchor_at), until=until)
    if upcoming:
        timer.consumed_seconds = max(timer.consumed_seconds, upcoming[0].at.total_seconds())
        await app.timers.set_attributes(session, timer, timer.attributes)


async def reassign(app: AppContext, session: AsyncSession, esc: Escalation, manager: Person, target: Person,
                   *, now: datetime) -> Person | None:
    """Move the subject (the deal with its open tasks and timers, or the payment plan) to ``target``; returns the old owner."""
    old = await _person(session, esc.owner_id)
    if esc.subject_type == DEAL:
        opp = await session.get(Opportunity, esc.subject_id)
        if opp is None:
            return None
        await audit(session, actor_id=manager.id, entity="opportunity", entity_id=opp.id, field_name="owner_id",
                    old=opp.owner_id, new=target.id, note_id=None, now=now)
        opp.owner_id = target.id
        for task in (await session.scalars(select(Task).where(Task.opportunity_id == opp.id, Task.status == "open"))).all():
            await audit(session, actor_id=manager.id, entity="task", entity_id=task.id, field_name="owner_id",
                        old=task.owner_id, new=target.id, note_id=None, now=now)
            task.owner_id = target.id
        await mark_handled(session, esc, manager, "reassign", target.key, now)
        await close_escalation(session, esc, reason="reassign", actor_id=manager.id, now=now)
        # the new owner gets a full budget from now
        await watch_deal(app, session, opp, now=now, activity=True, actor_id=manager.id)
    else:
        inst = await session.get(Installment, esc.subject_id)
        plan = await session.get(PaymentPlan, inst.plan_id) if inst else None
        if inst is None or plan is None:
            return None
        await audit(session, actor_id=manager.id, entity="payment_plan", entity_id=plan.id, field_name="owner_id",
                    old=plan.owner_id, new=target.id, note_id=None, now=now)
        plan.owner_id = target.id
        await mark_handled(session, esc, manager, "reassign", target.key, now)
        esc.owner_id = target.id
        for other in (await session.scalars(select(Installment).where(Installment.plan_id == plan.id))).all():
            for timer in await open_timers(session, INSTALLMENT, other.id):
                await app.timers.set_attributes(session, timer, {**timer.attributes, "owner": target.key})
    return old
