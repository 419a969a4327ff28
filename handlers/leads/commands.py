"""Commands on a routed lead: claim, transfer, return, manager assignment, the claim ladder, lists, leave.

Each runs in the caller's transaction and changes the lead by compare-and-set (see
:mod:`handlers.leads.service` for the concurrency rules): the first to commit wins and the
other is told who holds the lead. Authorization is checked here, on the server, for every call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import ToRole, notify
from handlers.accounts.service import resolve_account
from handlers.leads import cards
from handlers.leads.routing import OFFERED as ROUTED_OFFER
from handlers.leads.service import (
    ALERT_CLASS,
    ASSIGNABLE,
    CLAIMED,
    EXCLUDING,
    EXPIRED,
    FIRST_STAGE,
    LADDER,
    LOST_RACE,
    MANAGER_QUEUE,
    MERGED,
    NEW,
    OFFER_CLASS,
    OFFER_SUBJECT,
    OFFERED,
    OPS_ROLES,
    QUARANTINED,
    REASSIGNED,
    RETURNED,
    Outcome,
    make_offer,
    route_lead,
)
from handlers.opportunities.service import open_opportunity, set_stage
from reminders.timers import Fired
from storage import deferred
from storage.audit import audit
from storage.models import Lead, LeadOffer, Opportunity, Person, Team, Timer

# ------------------------------------------------------------------ helpers for the commands

async def live_offer(session: AsyncSession, lead_id: int) -> LeadOffer | None:
    return await session.scalar(select(LeadOffer).where(LeadOffer.lead_id == lead_id, LeadOffer.status == OFFERED)
                                .execution_options(populate_existing=True))


async def _close_offer(session: AsyncSession, offer_id: int, status: str, now: datetime, reason: str = "") -> bool:
    done = await session.execute(
        update(LeadOffer).where(LeadOffer.id == offer_id, LeadOffer.status == OFFERED)
        .values(status=status, closed_at=now, reason=reason[:500]).execution_options(synchronize_session=False))
    return done.rowcount == 1  # type: ignore[attr-defined]


async def _cancel_timer(app: AppContext, session: AsyncSession, offer_id: int) -> None:
    timer = await app.timers.find(session, OFFER_SUBJECT, offer_id, LADDER)
    if timer is not None and timer.state in ("running", "paused"):
        await app.timers.cancel(session, timer)


async def _cas(session: AsyncSession, lead_id: int, *, statuses: tuple[str, ...], holder: int | None = None,
               **values: Any) -> bool:
    """Compare-and-set on the lead: change it only if it still has one of ``statuses`` (and ``holder`` as assignee)."""
    stmt = update(Lead).where(Lead.id == lead_id, Lead.status.in_(statuses))
    if holder is not None:
        stmt = stmt.where(Lead.assignee_id == holder)
    done = await session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return done.rowcount == 1  # type: ignore[attr-defined]


async def reload(session: AsyncSession, lead_id: int) -> Lead | None:
    return await session.get(Lead, lead_id, populate_existing=True)


async def name_of(session: AsyncSession, person_id: int | None) -> str:
    person = await session.get(Person, person_id) if person_id is not None else None
    return person.name if person is not None else "他人"


async def holder_text(session: AsyncSession, lead: Lead, person: Person) -> str:
    """What someone who lost the lead is told: who has it now."""
    if lead.status == CLAIMED:
        if lead.assignee_id == person.id:
            return f"线索 {lead.id} 你已认领。"
        return f"线索 {lead.id} 已被{await name_of(session, lead.assignee_id)}认领。"
    if lead.status == OFFERED and lead.assignee_id != person.id:
        return f"线索 {lead.id} 已转派给{await name_of(session, lead.assignee_id)}。"
    if lead.status == MANAGER_QUEUE:
        return f"线索 {lead.id} 已转给经理分配。"
    if lead.status == MERGED:
        return f"线索 {lead.id} 已合并到线索 {lead.merged_into_id}。"
    return f"线索 {lead.id} 当前无法操作（{lead.status}）。"


async def refuse(app: AppContext, session: AsyncSession, lead: Lead, person: Person, action: str, now: datetime) -> Outcome:
    """A command on a lead this person has no right to: logged and audited, politely refused."""
    app.log.warning("leads.forbidden", lead_id=lead.id, person=person.key, role=person.role, action=action)
    await audit(session, actor_id=person.id, entity="lead", entity_id=lead.id, field_name="forbidden",
                old=None, new=action, note_id=None, now=now)
    return Outcome(lead, "refused", f"你无权对线索 {lead.id} 执行“{action}”。")


async def _had_offer(session: AsyncSession, lead_id: int, person_id: int) -> bool:
    return await session.scalar(select(LeadOffer.id).where(LeadOffer.lead_id == lead_id, LeadOffer.rep_id == person_id)
                                .limit(1)) is not None


async def _not_yours(app: AppContext, session: AsyncSession, lead: Lead, person: Person, action: str, now: datetime) -> Outcome:
    if lead.assignee_id == person.id or await _had_offer(session, lead.id, person.id):
        return Outcome(lead, "lost", await holder_text(session, lead, person))
    return await refuse(app, session, lead, person, action, now)


async def open_deal(app: AppContext, session: AsyncSession, lead: Lead, rep: Person, now: datetime) -> None:
    """A claimed lead becomes the rep's account and an opportunity at the first stage."""
    lexicon = app.services.lexicon
    account, _ = await resolve_account(session, lead.hospital, lexicon.canonical_account, actor_id=rep.id, now=now)
    opp = await open_opportunity(session, rep.id, account.id, actor_id=rep.id, note_id=None, now=now)
    if opp.stage is None and FIRST_STAGE in lexicon.stage_order:
        await set_stage(session, opp, FIRST_STAGE, actor_id=rep.id, note_id=None, now=now, stages=lexicon.stage_order)
    lead.account_id, lead.opportunity_id = account.id, opp.id


# ------------------------------------------------------------------ the rep's commands

async def claim(app: AppContext, session: AsyncSession, lead_id: int, person: Person, *, now: datetime) -> Outcome:
    """认领: the offered rep takes the lead; the first to commit wins, the other is told who has it."""
    lead = await reload(session, lead_id)
    if lead is None:
        return Outcome(None, "refused", f"没有找到线索 {lead_id}。")
    offer = await live_offer(session, lead.id)
    if offer is None or offer.rep_id != person.id:
        return await _not_yours(app, session, lead, person, "认领", now)
    if not await _cas(session, lead.id, statuses=(OFFERED,), holder=person.id,
                      status=CLAIMED, claimed_at=now, updated_at=now):
        await _close_offer(session, offer.id, LOST_RACE, now, "认领时线索已被处理")
        lead = await reload(session, lead_id)
        assert lead is not None
        return Outcome(lead, "lost", await holder_text(session, lead, person))
    await _close_offer(session, offer.id, CLAIMED, now)
    await _cancel_timer(app, session, offer.id)
    lead = await reload(session, lead_id)
    assert lead is not None
    await open_deal(app, session, lead, person, now)
    await audit(session, actor_id=person.id, entity="lead", entity_id=lead.id, field_name="status",
                old=OFFERED, new=CLAIMED, note_id=None, now=now)
    return Outcome(lead, CLAIMED, card=cards.claimed_card(lead))


async def find_colleague(session: AsyncSession, text: str) -> Person | None:
    """A person by org key or by name (exact)."""
    text = text.strip().removeprefix("给").strip()
    if not text:
        return None
    return await session.scalar(select(Person).where((Person.key == text) | (Person.name == text), Person.active.is_(True))
                                .order_by(Person.id).limit(1))


async def transfer(app: AppContext, session: AsyncSession, lead_id: int, person: Person, target_text: str, *,
                   now: datetime) -> Outcome:
    """转派: the offered rep hands the offer to a named colleague (who gets a fresh offer and SLA)."""
    lead = await reload(session, lead_id)
    if lead is None:
        return Outcome(None, "refused", f"没有找到线索 {lead_id}。")
    offer = await live_offer(session, lead.id)
    if offer is None or offer.rep_id != person.id:
        return await _not_yours(app, session, lead, person, "转派", now)
    target = await find_colleague(session, target_text)
    if target is None or target.role != "rep":
        return Outcome(lead, "refused", f"没有找到销售“{target_text}”。请写同事的姓名，例如“转派 {lead.id} 给 李娜”。")
    if target.id == person.id:
        return Outcome(lead, "refused", "不能转派给自己。")
    if await session.scalar(select(LeadOffer.id).where(LeadOffer.lead_id == lead.id, LeadOffer.rep_id == target.id,
                                                       LeadOffer.status.in_(EXCLUDING)).limit(1)) is not None:
        return Outcome(lead, "refused", f"{target.name} 已放弃或超时未接过这条线索，请换一位同事。")
    if not await _cas(session, lead.id, statuses=(OFFERED,), holder=person.id, updated_at=now):
        lead = await reload(session, lead_id)
        assert lead is not None
        return Outcome(lead, "lost", await holder_text(session, lead, person))
    await _close_offer(session, offer.id, REASSIGNED, now, f"转派给{target.name}")
    await _cancel_timer(app, session, offer.id)
    await make_offer(app, session, lead, target, now=now, why=f"{person.name} 转派给你")
    return Outcome(lead, OFFERED, f"已把线索 {lead.id} 转派给{target.name}。")


async def return_lead(app: AppContext, session: AsyncSession, lead_id: int, person: Person, reason: str, *,
                      now: datetime) -> Outcome:
    """退回 with a reason: 重复 → ops review the merge; 信息错误 → quarantine; otherwise re-routed without this rep."""
    lead = await reload(session, lead_id)
    if lead is None:
        return Outcome(None, "refused", f"没有找到线索 {lead_id}。")
    reason = reason.strip()
    offer = await live_offer(session, lead.id)
    if offer is None or offer.rep_id != person.id:
        return await _not_yours(app, session, lead, person, "退回", now)
    if not reason:
        return Outcome(lead, "ask", card=cards.return_reasons_card(lead))
    if not await _cas(session, lead.id, statuses=(OFFERED,), holder=person.id, status=RETURNED,
                      assignee_id=None, updated_at=now):
        lead = await reload(session, lead_id)
        assert lead is not None
        return Outcome(lead, "lost", await holder_text(session, lead, person))
    await _close_offer(session, offer.id, "returned", now, reason)
    await _cancel_timer(app, session, offer.id)
    lead = await reload(session, lead_id)
    assert lead is not None
    await audit(session, actor_id=person.id, entity="lead", entity_id=lead.id, field_name="returned",
                old=person.key, new=reason[:200], note_id=None, now=now)
    if reason.startswith("重复"):
        lead.status = RETURNED
        await notify(app, session, ToRole("sales_ops"), Reply(card=cards.review_card(lead, person, reason), tag="lead.review"),
                     now=now)
        return Outcome(lead, RETURNED, f"已退回线索 {lead.id}（重复），销售运营会核对合并。")
    if reason.startswith(("信息错误", "信息有误", "错误")):
        lead.status = QUARANTINED
        lead.problems = [*lead.problems, f"{person.name} 退回：{reason}"]
        await notify(app, session, ToRole("sales_ops"), Reply(card=cards.quarantine_card(lead), tag="lead.quarantine"),
                     now=now, klass="lead_quality", dedupe_key=f"lead-quarantine:{lead.id}:{offer.id}")
        return Outcome(lead, QUARANTINED, f"已退回线索 {lead.id}（信息错误），已转销售运营补全。")
    await route_lead(app, session, lead, now=now)
    return Outcome(lead, lead.status, f"已退回线索 {lead.id}（{reason}），已重新分配。")


# ------------------------------------------------------------------ managers

async def can_manage(session: AsyncSession, person: Person, lead: Lead) -> bool:
    """Ops and the director manage every lead; a manager only their own team's."""
    if person.role in OPS_ROLES:
        return True
    return person.role == "manager" and person.team_id is not None and lead.team_id == person.team_id


async def can_see(session: AsyncSession, person: Person, lead: Lead) -> bool:
    if await can_manage(session, person, lead):
        return True
    if lead.assignee_id == person.id or (lead.created_by_id == person.id and lead.created_by_id is not None):
        return True
    return await _had_offer(session, lead.id, person.id)


async def assign(app: AppContext, session: AsyncSession, lead_id: int, manager: Person, target_text: str, *,
                 now: datetime) -> Outcome:
    """指派: the team's manager (or ops) gives the lead to a rep directly; it counts as claimed."""
    lead = await reload(session, lead_id)
    if lead is None:
        return Outcome(None, "refused", f"没有找到线索 {lead_id}。")
    if not await can_manage(session, manager, lead):
        return await refuse(app, session, lead, manager, "指派", now)
    target = await find_colleague(session, target_text)
    if target is None or target.role != "rep":
        return Outcome(lead, "refused", f"没有找到销售“{target_text}”。例如“指派 {lead.id} 给 李娜”。")
    if manager.role == "manager" and target.team_id != manager.team_id:
        return Outcome(lead, "refused", f"{target.name} 不在你的团队，不能指派。")
    if lead.status not in ASSIGNABLE:
        return Outcome(lead, "lost", await holder_text(session, lead, manager))
    offer = await live_offer(session, lead.id)
    if not await _cas(session, lead.id, statuses=ASSIGNABLE, status=CLAIMED, assignee_id=target.id, claimed_at=now,
                      team_id=target.team_id if target.team_id is not None else lead.team_id, updated_at=now):
        lead = await reload(session, lead_id)
        assert lead is not None
        return Outcome(lead, "lost", await holder_text(session, lead, manager))
    if offer is not None:
        await _close_offer(session, offer.id, REASSIGNED, now, f"{manager.name} 指派给{target.name}")
        await _cancel_timer(app, session, offer.id)
        if offer.rep_id != target.id:
            previous = await session.get(Person, offer.rep_id)
            if previous is not None:
                await notify(app, session, previous, Reply(text=f"线索 {lead.id} 已由{manager.name}指派给{target.name}，无需再认领。",
                                                           tag="lead.reassigned"), now=now)
    session.add(LeadOffer(lead_id=lead.id, rep_id=target.id, offered_at=now, status=CLAIMED, closed_at=now,
                          reason=f"{manager.name} 指派"))
    lead = await reload(session, lead_id)
    assert lead is not None
    await open_deal(app, session, lead, target, now)
    await audit(session, actor_id=manager.id, entity="lead", entity_id=lead.id, field_name="assignee",
                old=None, new=target.key, note_id=None, now=now)
    await notify(app, session, target, Reply(card=cards.assigned_card(lead, manager), tag="lead.assigned"), now=now)
    return Outcome(lead, CLAIMED, f"已把线索 {lead.id} 指派给{target.name}。")


# ------------------------------------------------------------------ the claim ladder

async def on_lead_claim_level(app: AppContext, session: AsyncSession, fired: Fired) -> None:
    """Level 1: remind the rep. Level 2 (reassign): the offer expires, the rep is excluded from
    this lead, the lead is routed again (or queued for the manager), and the manager gets one card."""
    timer: Timer = fired.timer
    offer = await session.get(LeadOffer, timer.subject_id, populate_existing=True)
    if offer is None or offer.status != OFFERED:
        return
    lead = await reload(session, offer.lead_id)
    rep = await session.get(Person, offer.rep_id)
    if lead is None or rep is None:
        return
    now = fired.now
    if fired.level.action != "reassign":
        await notify(app, session, rep, Reply(card=cards.reminder_card(lead), tag="lead.remind"), now=now,
                     klass=OFFER_CLASS, dedupe_key=fired.key)
        return
    if not await _cas(session, lead.id, statuses=(OFFERED,), holder=rep.id, status=NEW, updated_at=now):
        return  # claimed or moved in the same instant: nothing expires
    await _close_offer(session, offer.id, EXPIRED, now, "超时未认领")
    lead = await reload(session, lead.id)
    assert lead is not None
    await notify(app, session, rep, Reply(text=f"线索 {lead.id}（{lead.hospital}）超时未认领，已转派。", tag="lead.expired"),
                 now=now, klass=OFFER_CLASS, dedupe_key=f"{fired.key}:expired")
    decision = await route_lead(app, session, lead, now=now)
    if decision.status == ROUTED_OFFER:
        manager = await _manager_of(session, rep)
        if manager is not None:
            card = cards.expired_notice_card(lead, rep, await name_of(session, lead.assignee_id))
            await notify(app, session, manager, Reply(card=card, tag="lead.expired_notice"), now=now,
                         klass=ALERT_CLASS, dedupe_key=fired.key)


async def _manager_of(session: AsyncSession, rep: Person) -> Person | None:
    if rep.manager_id is not None:
        return await session.get(Person, rep.manager_id)
    team = await session.get(Team, rep.team_id) if rep.team_id is not None else None
    if team is None or not team.manager_key:
        return None
    return await session.scalar(select(Person).where(Person.key == team.manager_key))


# ------------------------------------------------------------------ lists and away

async def offers_of(session: AsyncSession, person: Person) -> list[Lead]:
    return list((await session.scalars(
        select(Lead).join(LeadOffer, LeadOffer.lead_id == Lead.id)
        .where(LeadOffer.rep_id == person.id, LeadOffer.status == OFFERED).order_by(Lead.id))).all())


async def untouched_of(session: AsyncSession, person: Person) -> list[Lead]:
    """Claimed leads whose opportunity has had no note since the claim."""
    await deferred.write_now(session)  # deals touched by notes earlier in this batch
    return list((await session.scalars(
        select(Lead).join(Opportunity, Opportunity.id == Lead.opportunity_id)
        .where(Lead.assignee_id == person.id, Lead.status == CLAIMED, Opportunity.last_activity_at <= Lead.claimed_at)
        .order_by(Lead.id))).all())


async def team_open_leads(session: AsyncSession, team_id: int | None, *, limit: int = 20) -> list[Lead]:
    """Open leads of a team (``None``: every team, for ops): offered, queued, returned."""
    stmt = select(Lead).where(Lead.status.in_((OFFERED, MANAGER_QUEUE, RETURNED, QUARANTINED)))
    if team_id is not None:
        stmt = stmt.where(Lead.team_id == team_id, Lead.status != QUARANTINED)
    return list((await session.scalars(stmt.order_by(Lead.id.desc()).limit(limit))).all())


async def set_away(session: AsyncSession, person: Person, until: datetime | None, *, now: datetime) -> None:
    await audit(session, actor_id=person.id, entity="person", entity_id=person.id, field_name="away_until",
                old=person.away_until.isoformat() if person.away_until else None,
                new=until.isoformat() if until else None, note_id=None, now=now)
    person.away_until = until
