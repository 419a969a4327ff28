"""The lead service: intake, offers, claims, transfers, returns, expiry and manager assignment.

Everything runs in the caller's transaction and never commits: a chat command's writes,
its outbox rows and its inbox "done" mark commit together; the CLI, the HTTP API and the
timer sweep open one transaction per lead.

Concurrency, the two things that must never happen:

* **two reps offered one lead at once** — a partial unique index allows one ``offered``
  row per lead in ``lead_offers``; routing runs under a lock on the pool's people rows
  (``SELECT … FOR UPDATE`` in id order on PostgreSQL; SQLite serialises writers with
  ``BEGIN IMMEDIATE``), so the counters it reads (offers in 7 days, today, open leads)
  include every offer committed before, and concurrent intakes take turns per pool;
* **two winners of one lead** — claim, transfer, return, expiry and assignment change the
  lead with a compare-and-set (``UPDATE leads … WHERE status = … AND assignee_id = …``):
  the first to commit wins, the other sees zero rows and is told who holds the lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import Recipient, ToRole, ToTeam, notify
from handlers.accounts.service import find_account, resolve_account
from handlers.leads import cards
from handlers.leads.dedupe import OpenLead, find_duplicate
from handlers.leads.intake import LeadInput, quality_problems
from handlers.leads.routing import OFFERED as ROUTED_OFFER
from handlers.leads.routing import Decision, RepState, RoutingState, route
from handlers.leads.rules import DEFAULT_RULES, Rules, load_rules
from handlers.opportunities.service import open_opportunity, set_stage
from reminders.timers import Fired
from storage.audit import audit
from storage.db import insert_unique
from storage.models import Lead, LeadOffer, Opportunity, Person, Team, Timer

# lead statuses
NEW = "new"  # only inside the intake transaction
QUARANTINED = "quarantined"
OFFERED = "offered"
CLAIMED = "claimed"
MERGED = "merged"
MANAGER_QUEUE = "manager_queue"
RETURNED = "returned"
OPEN_STATUSES = (OFFERED, CLAIMED, MANAGER_QUEUE, RETURNED)  # duplicate candidates
ASSIGNABLE = (OFFERED, MANAGER_QUEUE, RETURNED)

# offer statuses
EXPIRED = "expired"
REASSIGNED = "reassigned"
LOST_RACE = "lost_race"
EXCLUDING = (EXPIRED, "returned", REASSIGNED)  # this rep is never offered this lead again

OFFER_SUBJECT = "lead_offer"
LADDER = "lead_claim"
OFFER_CLASS = "lead_offer"  # urgent: sent at once, never merged
ALERT_CLASS = "lead"  # manager notices: merged and held like other alerts
FIRST_STAGE = "first_contact"
OPS_ROLES = ("sales_ops", "director", "admin")
INTAKE_ROLES = ("marketing", "sales_ops", "manager", "director", "admin")

_rules_cache: dict[str, tuple[float, Rules]] = {}


def lead_rules(app: AppContext) -> Rules:
    """The routing rules of ``[leads] rules`` (or the packaged default), reloaded when the file changes."""
    path = app.config.leads.rules or str(DEFAULT_RULES)
    mtime = Path(path).stat().st_mtime
    cached = _rules_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    rules = load_rules(path)
    _rules_cache[path] = (mtime, rules)
    return rules


@dataclass
class Outcome:
    """What a call did: ``status`` is the lead's status, or ``existing``/``refused``/``lost``."""

    lead: Lead | None
    status: str
    message: str = ""
    created: bool = False
    card: Any = None


def to_input(lead: Lead) -> LeadInput:
    return LeadInput(external_id=lead.external_id or "", hospital=lead.hospital, department=lead.department,
                     contact=lead.contact, phone=lead.phone, region=lead.region, product_line=lead.product_line,
                     grade=lead.grade, source=lead.source, note=lead.note)


# ------------------------------------------------------------------ intake

async def intake(app: AppContext, session: AsyncSession, raw: LeadInput, *, now: datetime,
                 actor: Person | None = None) -> Outcome:
    """Store a lead and act on it: quarantine, merge, or route (offer / manager queue).

    Idempotent on the caller's id (``external_id``): a second intake returns the first lead.
    """
    lead_in = raw.normalized()
    if lead_in.external_id:
        existing = await _by_external_id(session, lead_in.external_id)
        if existing is not None:
            return Outcome(existing, "existing")
    rules = lead_rules(app)
    row = Lead(
        external_id=lead_in.external_id or None, source=lead_in.source, hospital=lead_in.hospital,
        department=lead_in.department, contact=lead_in.contact, phone=lead_in.phone, region=lead_in.region,
        product_line=lead_in.product_line, grade=lead_in.grade, note=lead_in.note, status=NEW,
        created_by_id=actor.id if actor is not None else None, decision={}, problems=[], created_at=now, updated_at=now,
    )
    if lead_in.external_id:
        row, created = await insert_unique(session, row, lambda: _by_external_id(session, lead_in.external_id))
        if not created:
            return Outcome(row, "existing")
    else:
        session.add(row)
        await session.flush()

    problems = quality_problems(lead_in, rules.settings.required)
    if problems:
        row.status, row.problems = QUARANTINED, problems
        row.decision = {"reason": "质量不合格，隔离待补全：" + "；".join(problems), "skipped": []}
        await notify(app, session, ToRole("sales_ops"), Reply(card=cards.quarantine_card(row), tag="lead.quarantine"),
                     now=now, klass="lead_quality", dedupe_key=f"lead-quarantine:{row.id}")
        return Outcome(row, QUARANTINED, created=True)

    duplicate = await _find_duplicate(session, row, lead_in, rules, now)
    if duplicate is not None:
        into, reason = duplicate
        row.status, row.merged_into_id = MERGED, into.id
        row.assignee_id, row.team_id = into.assignee_id, into.team_id
        row.decision = {"reason": reason, "skipped": []}
        if into.assignee_id is not None:
            owner = await session.get(Person, into.assignee_id)
            if owner is not None:
                await notify(app, session, owner, Reply(card=cards.duplicate_card(into, row), tag="lead.duplicate"),
                             now=now, klass=ALERT_CLASS, dedupe_key=f"lead-dup:{into.id}")
        return Outcome(row, MERGED, created=True)

    await route_lead(app, session, row, now=now, rules=rules)
    return Outcome(row, row.status, created=True)


async def _by_external_id(session: AsyncSession, external_id: str) -> Lead | None:
    return await session.scalar(select(Lead).where(Lead.external_id == external_id))


async def _find_duplicate(session: AsyncSession, row: Lead, lead_in: LeadInput, rules: Rules,
                          now: datetime) -> tuple[Lead, str] | None:
    """The earliest open lead within the window sharing a duplicate key with this one.

    Candidates are every open lead in the window with the same phone or the same contact
    (indexed columns); :func:`dedupe.find_duplicate` applies the keys, folding and max-hits.
    """
    settings = rules.settings
    wanted = []
    if lead_in.phone:
        wanted.append(Lead.phone == lead_in.phone)
    if lead_in.contact:
        wanted.append(Lead.contact == lead_in.contact)
    if not wanted:
        return None
    since = now - timedelta(days=settings.duplicate_window_days)
    found = (await session.execute(
        select(Lead, Person.key).outerjoin(Person, Person.id == Lead.assignee_id)
        .where(or_(*wanted), Lead.status.in_(OPEN_STATUSES), Lead.created_at >= since, Lead.id != row.id)
    )).all()
    if not found:
        return None
    by_id = {lead.id: lead for lead, _ in found}
    candidates = [OpenLead(lead.id, to_input(lead), lead.created_at, key) for lead, key in found]
    match = find_duplicate(lead_in, candidates, settings.duplicate_keys, settings.duplicate_window_days,
                           settings.max_hits, now)
    if match is None:
        return None
    return by_id[int(match.into.id)], match.reason  # type: ignore[call-overload]


# ------------------------------------------------------------------ routing

def _pool_chain_members(rules: Rules, lead_in: LeadInput) -> set[str]:
    rule = rules.first_match(lead_in)
    keys: set[str] = set()
    seen: set[str] = set()
    pool_id = rule.pool if rule is not None else None
    while pool_id is not None and pool_id not in seen and pool_id in rules.pools:
        seen.add(pool_id)
        pool = rules.pools[pool_id]
        keys.update(m.rep for m in pool.members)
        pool_id = pool.fallback
    return keys


async def lock_people(session: AsyncSession, keys: set[str]) -> dict[str, Person]:
    """The people rows of ``keys``, locked in id order (PostgreSQL; SQLite already has the write lock)."""
    if not keys:
        return {}
    stmt = select(Person).where(Person.key.in_(sorted(keys))).order_by(Person.id).with_for_update()
    people = (await session.scalars(stmt.execution_options(populate_existing=True))).all()
    return {p.key: p for p in people}


async def hospital_owner(app: AppContext, session: AsyncSession, hospital: str) -> str | None:
    """The rep with the most recently active open opportunity at this hospital, if any."""
    if not hospital:
        return None
    account = await find_account(session, hospital, app.services.lexicon.canonical_account)
    if account is None:
        return None
    return await session.scalar(
        select(Person.key).join(Opportunity, Opportunity.owner_id == Person.id)
        .where(Opportunity.account_id == account.id, Opportunity.status == "open", Person.active.is_(True))
        .order_by(Opportunity.last_activity_at.desc(), Opportunity.id.desc()).limit(1)
    )


async def routing_state(app: AppContext, session: AsyncSession, people: dict[str, Person], now: datetime) -> dict[str, RepState]:
    """Each rep's counters, read after the lock: live offers + untouched claimed leads, offers today / 7 days."""
    ids = {p.id: p for p in people.values()}
    if not ids:
        return {}
    live = dict((await session.execute(
        select(LeadOffer.rep_id, func.count()).where(LeadOffer.rep_id.in_(ids), LeadOffer.status == OFFERED)
        .group_by(LeadOffer.rep_id))).all())
    untouched = dict((await session.execute(
        select(Lead.assignee_id, func.count()).join(Opportunity, Opportunity.id == Lead.opportunity_id)
        .where(Lead.assignee_id.in_(ids), Lead.status == CLAIMED, Opportunity.last_activity_at <= Lead.claimed_at)
        .group_by(Lead.assignee_id))).all())
    local = now.astimezone(app.config.tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = now - timedelta(days=7)
    stats = {rep_id: (today, week_count, last) for rep_id, today, week_count, last in (await session.execute(
        select(LeadOffer.rep_id, func.sum(case((LeadOffer.offered_at >= midnight, 1), else_=0)), func.count(),
               func.max(LeadOffer.offered_at))
        .where(LeadOffer.rep_id.in_(ids), LeadOffer.offered_at >= week).group_by(LeadOffer.rep_id))).all()}
    reps: dict[str, RepState] = {}
    for rep_id, person in ids.items():
        today, week_count, last = stats.get(rep_id, (0, 0, None))
        if isinstance(last, str):  # SQLite returns max() of a timestamp as text
            last = datetime.fromisoformat(last)
        reps[person.key] = RepState(
            active=person.active, away_until=person.away_until,
            open_leads=int(live.get(rep_id, 0)) + int(untouched.get(rep_id, 0)),
            offers_today=int(today or 0), offers_7d=int(week_count or 0), last_offer_at=last, capacity=person.capacity,
        )
    return reps


async def route_lead(app: AppContext, session: AsyncSession, lead: Lead, *, now: datetime,
                     rules: Rules | None = None) -> Decision:
    """Offer the lead to the rep the rules pick (under the pool lock), or put it in the manager queue."""
    rules = rules or lead_rules(app)
    lead_in = to_input(lead)
    owner = await hospital_owner(app, session, lead.hospital)
    people = await lock_people(session, _pool_chain_members(rules, lead_in) | ({owner} if owner else set()))
    history = (await session.execute(
        select(Person.key, LeadOffer.status).join(Person, Person.id == LeadOffer.rep_id)
        .where(LeadOffer.lead_id == lead.id))).all()
    excluded = frozenset(key for key, status in history if status in EXCLUDING)
    state = RoutingState(await routing_state(app, session, people, now), excluded, owner, len(history))
    decision = route(lead_in, rules, state, now)
    lead.rule, lead.pool = decision.rule, decision.pool
    lead.decision = {"reason": decision.reason, "skipped": [list(s) for s in decision.skipped],
                     "pools_tried": list(decision.pools_tried)}
    if decision.status == ROUTED_OFFER and decision.assignee is not None:
        await make_offer(app, session, lead, people[decision.assignee], now=now, why=decision.reason)
    else:
        lead.status, lead.assignee_id = MANAGER_QUEUE, None
        if lead.team_id is None:
            teams = sorted({p.team_id for p in people.values() if p.team_id is not None})
            lead.team_id = teams[0] if teams else None
        await _queue_card(app, session, lead, now)
    return decision


async def make_offer(app: AppContext, session: AsyncSession, lead: Lead, rep: Person, *, now: datetime, why: str) -> LeadOffer:
    """A live offer row, the claim ladder and the offer card (urgent: sent at once)."""
    offer = LeadOffer(lead_id=lead.id, rep_id=rep.id, offered_at=now, status=OFFERED, reason=why[:500])
    session.add(offer)
    await session.flush()  # the partial unique index refuses a second live offer here
    lead.status, lead.assignee_id, lead.updated_at = OFFERED, rep.id, now
    lead.team_id = rep.team_id if rep.team_id is not None else lead.team_id
    await app.timers.start(session, subject_type=OFFER_SUBJECT, subject_id=offer.id, ladder=LADDER, at=now,
                           attributes={"owner": rep.key, "lead_id": lead.id})
    await notify(app, session, rep, Reply(card=cards.offer_card(lead, why), tag="lead.offer"), now=now,
                 klass=OFFER_CLASS, dedupe_key=f"lead-offer:{offer.id}")
    return offer


async def _queue_card(app: AppContext, session: AsyncSession, lead: Lead, now: datetime) -> None:
    team = await session.get(Team, lead.team_id) if lead.team_id is not None else None
    reps: list[Person] = []
    to: Recipient = ToRole("sales_ops")
    if team is not None:
        reps = list((await session.scalars(select(Person).where(
            Person.team_id == team.id, Person.role == "rep", Person.active.is_(True)).order_by(Person.id))).all())
        to = ToTeam(team.key, role="manager")
    await notify(app, session, to, Reply(card=cards.queue_card(lead, reps), tag="lead.queue"), now=now)


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
