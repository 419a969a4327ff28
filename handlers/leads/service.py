"""The lead service: intake, routing and offers (the commands on a routed lead are :mod:`handlers.leads.commands`).

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

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import Recipient, ToRole, ToTeam, notify
from handlers.accounts.service import find_account
from handlers.leads import cards
from handlers.leads.dedupe import OpenLead, find_duplicate
from handlers.leads.intake import LeadInput, quality_problems
from handlers.leads.routing import OFFERED as ROUTED_OFFER
from handlers.leads.routing import Decision, RepState, RoutingState, route
from handlers.leads.rules import DEFAULT_RULES, Rules, load_rules
from storage import deferred
from storage.db import insert_unique
from storage.models import Lead, LeadOffer, Opportunity, Person, Team

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
    await deferred.write_now(session)  # deals touched by notes earlier in this batch: their activity as it is now
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
    await deferred.write_now(session)  # "untouched" compares the deals' activity, which notes in this batch may have touched
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
