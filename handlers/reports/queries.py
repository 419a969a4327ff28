"""The figures behind every view (chat cards, digests, dashboard pages), all filtered by a Scope.

Each function takes the open session, the asker's :class:`storage.scope.Scope` and the time
window; none of them renders anything, so the chat, the digest and the web pages show the
same numbers. Figures from the lead-routing and escalation features read the placeholder
``leads`` and ``escalations`` tables through the small functions named after them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from handlers.common.format import stage_label
from handlers.escalations.service import installment_due
from handlers.reports import health as hp
from storage.models import (
    Account,
    AuditLog,
    Escalation,
    Installment,
    LeadOffer,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
    Task,
)
from storage.scope import Scope

OPEN = "open"
CLAIM_SLA_MINUTES = 15


# ---- time windows -----------------------------------------------------------------


def week_start(app: AppContext, now: datetime) -> datetime:
    """Monday 00:00 local of the ISO week ``now`` falls in, as UTC."""
    local = now.astimezone(app.config.tz)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time(0), tzinfo=app.config.tz)


def iso_week(app: AppContext, now: datetime) -> str:
    year, week, _ = now.astimezone(app.config.tz).isocalendar()
    return f"{year}-W{week:02d}"


def stage_codes(app: AppContext) -> list[str]:
    """Funnel stages in order (stages.toml), without the terminal "lost"."""
    return [s for s in app.services.lexicon.stage_order if s != "lost"]


# ---- funnel -----------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelRow:
    stage: str
    label: str
    count: int
    amount: int
    count_last_week: int
    conversion: float | None  # share of deals that reached this stage and went on to the next

    @property
    def change(self) -> int:
        return self.count - self.count_last_week


async def funnel(app: AppContext, session: AsyncSession, scope: Scope, now: datetime) -> list[FunnelRow]:
    """Open deals per stage (count, amount), the count a week earlier, stage-to-stage conversion.

    A week ago is replayed from the audit trail: a deal's stage (and status) at that moment is
    the ``old`` value of its first change after it, or its current value if it has not changed.
    """
    stages = stage_codes(app)
    current = {
        stage: (int(n), int(amount or 0))
        for stage, n, amount in (
            await session.execute(
                select(Opportunity.stage, func.count(Opportunity.id), func.sum(Opportunity.amount))
                .where(Opportunity.status == OPEN, scope.opportunities())
                .group_by(Opportunity.stage)
            )
        ).all()
    }
    then = now - timedelta(days=7)
    base = Counter(
        {
            stage: int(n)
            for stage, n in (
                await session.execute(
                    select(Opportunity.stage, func.count(Opportunity.id))
                    .where(Opportunity.status == OPEN, Opportunity.created_at <= then, scope.opportunities())
                    .group_by(Opportunity.stage)
                )
            ).all()
        }
    )
    changes = (
        await session.execute(
            select(AuditLog.entity_id, AuditLog.field, AuditLog.old, Opportunity.stage, Opportunity.status)
            .join(Opportunity, Opportunity.id == AuditLog.entity_id)
            .where(AuditLog.entity == "opportunity", AuditLog.field.in_(("stage", "status")), AuditLog.at > then,
                   Opportunity.created_at <= then, scope.opportunities())
            .order_by(AuditLog.at, AuditLog.id)
        )
    ).all()
    first_old: dict[tuple[int, str], str | None] = {}
    now_state: dict[int, tuple[str | None, str]] = {}
    for opp_id, fld, old, stage, status in changes:
        first_old.setdefault((opp_id, fld), old)
        now_state[opp_id] = (stage, status)
    for opp_id, (stage, status) in now_state.items():
        if status == OPEN:
            base[stage] -= 1  # counted above by its current stage; replace with its stage then
        stage_then = first_old.get((opp_id, "stage"), stage)
        status_then = first_old.get((opp_id, "status"), status)
        if status_then == OPEN:
            base[stage_then] += 1
    # conversion: of the deals (open or won) that reached a stage, how many reached the next
    reached_at = {
        (stage, status): int(n)
        for stage, status, n in (
            await session.execute(
                select(Opportunity.stage, Opportunity.status, func.count(Opportunity.id))
                .where(Opportunity.status.in_((OPEN, "won")), scope.opportunities())
                .group_by(Opportunity.stage, Opportunity.status)
            )
        ).all()
    }
    index = {s: i for i, s in enumerate(stages)}
    reached = [0] * len(stages)
    for (stage, _status), n in reached_at.items():
        if stage in index:
            for i in range(index[stage] + 1):
                reached[i] += n
    rows = []
    for i, stage in enumerate(stages):
        n, amount = current.get(stage, (0, 0))
        conv = reached[i + 1] / reached[i] if i + 1 < len(stages) and reached[i] else None
        rows.append(FunnelRow(stage, stage_label(app, stage), n, amount, max(0, base.get(stage, 0)), conv))
    return rows


# ---- notes, leads, escalations, receivables ----------------------------------------


async def notes_per_person(session: AsyncSession, scope: Scope, since: datetime, until: datetime) -> dict[int, int]:
    rows = await session.execute(
        select(Note.author_id, func.count(Note.id))
        .where(Note.created_at >= since, Note.created_at < until, Note.deleted_at.is_(None), scope.notes())
        .group_by(Note.author_id)
    )
    return {pid: int(n) for pid, n in rows.all()}


@dataclass(frozen=True)
class LeadSpeed:
    offered: int
    claimed: int
    median_minutes: float | None
    within_sla: float | None  # share of claimed leads claimed within 15 minutes
    breaches: int  # offered leads not claimed within 15 minutes (claimed late or not at all)
    per_person: dict[int, tuple[int, int]] = field(default_factory=dict)  # person → (offered, claimed)


async def lead_speed(session: AsyncSession, scope: Scope, since: datetime, until: datetime, now: datetime) -> LeadSpeed:
    """Speed-to-lead: each offer made in the window, and when (if) it was claimed. Reads ``lead_offers``:
    ``rep_id``, ``offered_at``, ``status`` (``claimed``) and ``closed_at`` (the claim)."""
    rows = [
        (rep, offered, closed if status == "claimed" else None)
        for rep, offered, status, closed in (
            await session.execute(
                select(LeadOffer.rep_id, LeadOffer.offered_at, LeadOffer.status, LeadOffer.closed_at)
                .where(LeadOffer.offered_at >= since, LeadOffer.offered_at < until, scope.lead_offers())
            )
        ).all()
    ]
    minutes = [(claimed - created).total_seconds() / 60 for _p, created, claimed in rows if claimed is not None]
    sla = timedelta(minutes=CLAIM_SLA_MINUTES)
    breaches = sum(
        1 for _p, created, claimed in rows if (claimed is None and now - created > sla) or (claimed is not None and claimed - created > sla)
    )
    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for person, _created, claimed in rows:
        per[person][0] += 1
        per[person][1] += claimed is not None
    return LeadSpeed(
        offered=len(rows),
        claimed=len(minutes),
        median_minutes=statistics.median(minutes) if minutes else None,
        within_sla=sum(m <= CLAIM_SLA_MINUTES for m in minutes) / len(minutes) if minutes else None,
        breaches=breaches,
        per_person={k: (v[0], v[1]) for k, v in per.items()},
    )


async def open_escalations(session: AsyncSession, scope: Scope) -> dict[str, int]:
    """Open escalation episodes by kind. Reads table ``escalations``: ``kind``, ``closed_at``, ``owner_id``."""
    rows = await session.execute(
        select(Escalation.kind, func.count(Escalation.id))
        .where(Escalation.closed_at.is_(None), scope.escalations())
        .group_by(Escalation.kind)
    )
    return {kind: int(n) for kind, n in rows.all()}


async def sla_breaches(session: AsyncSession, scope: Scope, since: datetime, until: datetime) -> int:
    """Escalations raised in the window. Reads table ``escalations``: ``kind``, ``created_at``, ``owner_id``."""
    return int(
        await session.scalar(
            select(func.count(Escalation.id)).where(Escalation.created_at >= since, Escalation.created_at < until,
                                                    scope.escalations())
        )
        or 0
    )


@dataclass(frozen=True)
class Receivable:
    opportunity_id: int
    amount: int
    due: date
    days_overdue: int


BUCKETS = ((1, 15, "1–15天"), (16, 30, "16–30天"), (31, 45, "31–45天"), (46, 10**6, "45天以上"))


async def overdue_receivables(session: AsyncSession, scope: Scope, today: date, tz: Any) -> list[Receivable]:
    """Installments past their due date with money outstanding. Reads ``installments`` joined to ``payment_plans``."""
    rows = (
        await session.execute(
            select(Installment, PaymentPlan)
            .join(PaymentPlan, PaymentPlan.id == Installment.plan_id)
            .where(Installment.status.in_(("open", "partial")), Installment.due_date.is_not(None),
                   Installment.due_date < today, scope.receivables())
        )
    ).all()
    found = []
    for inst, plan in rows:
        due_amount = installment_due(inst, plan)
        outstanding = max(0, (due_amount or 0) - inst.received_amount)
        if due_amount is not None and outstanding == 0:
            continue
        found.append(Receivable(plan.opportunity_id or 0, outstanding, inst.due_date, (today - inst.due_date).days))
    return sorted(found, key=lambda r: -r.days_overdue)


def bucketed(receivables: Sequence[Receivable]) -> list[tuple[str, int, int]]:
    """(label, count, amount) per 15/30/45-day bucket."""
    out = []
    for low, high, label in BUCKETS:
        items = [r for r in receivables if low <= r.days_overdue <= high]
        out.append((label, len(items), sum(r.amount for r in items)))
    return out


# ---- deals --------------------------------------------------------------------------


@dataclass(frozen=True)
class DealLine:
    opp: Opportunity
    account: str
    owner: str
    stage: str


async def deals(
    app: AppContext,
    session: AsyncSession,
    scope: Scope,
    *,
    status: str | None = OPEN,
    stage: str | None = None,
    owner_id: int | None = None,
    order: str = "amount",
    limit: int = 50,
    offset: int = 0,
) -> list[DealLine]:
    stmt = (
        select(Opportunity, Account.name, Person.name)
        .outerjoin(Account, Account.id == Opportunity.account_id)
        .join(Person, Person.id == Opportunity.owner_id)
        .where(scope.opportunities())
    )
    if status:
        stmt = stmt.where(Opportunity.status == status)
    if stage:
        stmt = stmt.where(Opportunity.stage == stage)
    if owner_id is not None:
        stmt = stmt.where(Opportunity.owner_id == owner_id)
    ordering = {
        "amount": (Opportunity.amount.desc().nulls_last(), Opportunity.id),
        "idle": (Opportunity.last_activity_at, Opportunity.id),
        "recent": (Opportunity.last_activity_at.desc(), Opportunity.id),
    }[order if order in ("amount", "idle", "recent") else "amount"]
    rows = (await session.execute(stmt.order_by(*ordering).limit(limit).offset(offset))).all()
    return [DealLine(opp, account or "（未定医院）", owner, stage_label(app, opp.stage) or "未定阶段") for opp, account, owner in rows]


async def visible_opportunity(session: AsyncSession, scope: Scope, opp_id: int) -> Opportunity | None:
    """The deal, if the scope may see it (ids from URLs and card callbacks go through here)."""
    return await session.scalar(select(Opportunity).where(Opportunity.id == opp_id, scope.opportunities()))


async def deal_health(app: AppContext, session: AsyncSession, opps: Sequence[Opportunity], now: datetime) -> dict[int, hp.Health]:
    rules = hp.load_rules()
    tz = app.config.tz
    medians = await hp.won_stage_medians(session, app.calendar, tz, rules)
    today = now.astimezone(tz).date()
    order = app.services.lexicon.stage_order
    return {
        item.opp.id: hp.score(item, today=today, calendar=app.calendar, tz=tz, medians=medians, rules=rules,
                              stage_label=lambda c: stage_label(app, c), stage_order=order)
        for item in await hp.load_inputs(session, opps, rules)
    }


async def stalled_deals(app: AppContext, session: AsyncSession, scope: Scope, now: datetime, n: int = 5
                        ) -> list[tuple[DealLine, hp.Health]]:
    """The ``n`` open deals with the lowest health among the longest-idle ones, with why."""
    candidates = await deals(app, session, scope, order="idle", limit=max(40, n * 8))
    scored = await deal_health(app, session, [d.opp for d in candidates], now)
    ranked = sorted(candidates, key=lambda d: (scored[d.opp.id].score, d.opp.last_activity_at))
    return [(d, scored[d.opp.id]) for d in ranked[:n] if scored[d.opp.id].penalties]


async def health_drops(app: AppContext, session: AsyncSession, scope: Scope, now: datetime, n: int = 5
                       ) -> list[tuple[DealLine, int, int]]:
    """Deals whose stored score fell most since a week earlier: (deal, score then, score now)."""
    from storage.models import HealthSnapshot

    today = now.astimezone(app.config.tz).date()
    latest = (
        await session.execute(
            select(HealthSnapshot.subject_id, HealthSnapshot.score)
            .join(Opportunity, Opportunity.id == HealthSnapshot.subject_id)
            .where(HealthSnapshot.subject_type == "opportunity", HealthSnapshot.day == today,
                   Opportunity.status == OPEN, scope.opportunities())
        )
    ).all()
    if not latest:
        return []
    before = await hp.previous_scores(session, "opportunity", [i for i, _ in latest], today - timedelta(days=7))
    drops = sorted(((before[i] - s, i, before[i], s) for i, s in latest if i in before and before[i] > s), reverse=True)[:n]
    lines = {d.opp.id: d for d in await deals(app, session, scope, status=None, limit=n * 4)}
    out = []
    for _drop, opp_id, then, now_score in drops:
        line = lines.get(opp_id)
        if line is None:
            opp = await visible_opportunity(session, scope, opp_id)
            if opp is None:
                continue
            account = await session.get(Account, opp.account_id) if opp.account_id else None
            owner = await session.get(Person, opp.owner_id)
            line = DealLine(opp, account.name if account else "（未定医院）", owner.name if owner else "", stage_label(app, opp.stage))
        out.append((line, then, now_score))
    return out


# ---- people -------------------------------------------------------------------------


async def people_in(session: AsyncSession, scope: Scope) -> list[Person]:
    """The reps (and managers) whose records the scope covers, by name."""
    stmt = select(Person).where(Person.active.is_(True), Person.role.in_(("rep", "manager")))
    if scope.finance:
        return []
    if scope.people is not None:
        stmt = stmt.where(Person.id.in_(sorted(scope.people)))
    return list((await session.scalars(stmt.order_by(Person.team_id, Person.id))).all())


@dataclass(frozen=True)
class RepRow:
    person: Person
    notes: int
    open_deals: int
    pipeline: int
    leads_offered: int
    leads_claimed: int
    overdue_tasks: int


async def rep_table(app: AppContext, session: AsyncSession, scope: Scope, since: datetime, now: datetime) -> list[RepRow]:
    people = [p for p in await people_in(session, scope) if p.role == "rep"]
    notes = await notes_per_person(session, scope, since, now)
    pipe = {
        pid: (int(n), int(a or 0))
        for pid, n, a in (
            await session.execute(
                select(Opportunity.owner_id, func.count(Opportunity.id), func.sum(Opportunity.amount))
                .where(Opportunity.status == OPEN, scope.opportunities())
                .group_by(Opportunity.owner_id)
            )
        ).all()
    }
    today = now.astimezone(app.config.tz).date()
    overdue = dict(
        (
            await session.execute(
                select(Task.owner_id, func.count(Task.id))
                .where(Task.status == OPEN, Task.due_date < today, scope.tasks())
                .group_by(Task.owner_id)
            )
        ).all()
    )
    leads = await lead_speed(session, scope, since, now, now)
    return [
        RepRow(p, notes.get(p.id, 0), pipe.get(p.id, (0, 0))[0], pipe.get(p.id, (0, 0))[1],
               leads.per_person.get(p.id, (0, 0))[0], leads.per_person.get(p.id, (0, 0))[1], int(overdue.get(p.id, 0)))
        for p in people
    ]


# ---- audit --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    entity: str
    entity_id: int
    field: str
    old: str | None
    new: str | None


async def audit_trail(session: AsyncSession, scope: Scope, *, opportunity_ids: Sequence[int], limit: int = 30) -> list[AuditLine]:
    """Changes to these deals and their tasks, newest first, only what the scope may see."""
    if not opportunity_ids:
        return []
    visible = list((await session.scalars(select(Opportunity.id).where(Opportunity.id.in_(list(opportunity_ids)), scope.opportunities()))).all())
    if not visible:
        return []
    task_ids = select(Task.id).where(Task.opportunity_id.in_(visible))
    rows = (
        await session.execute(
            select(AuditLog, Person.name)
            .outerjoin(Person, Person.id == AuditLog.actor_id)
            .where(
                ((AuditLog.entity == "opportunity") & AuditLog.entity_id.in_(visible))
                | ((AuditLog.entity == "task") & AuditLog.entity_id.in_(task_ids)),
                scope.audit(),
            )
            .order_by(AuditLog.at.desc(), AuditLog.id.desc())
            .limit(limit)
        )
    ).all()
    return [AuditLine(a.at, name or "系统", a.entity, a.entity_id, a.field, a.old, a.new) for a, name in rows]


async def deal_notes(session: AsyncSession, scope: Scope, opp: Opportunity, limit: int = 20) -> list[tuple[Note, str]]:
    rows = await session.execute(
        select(Note, Person.name).join(Person, Person.id == Note.author_id)
        .where(Note.deleted_at.is_(None), scope.notes(),
               (Note.opportunity_id == opp.id) | ((Note.account_id == opp.account_id) & (Note.author_id == opp.owner_id)))
        .order_by(Note.id.desc()).limit(limit)
    )
    return [(n, name) for n, name in rows.all()]


async def deal_tasks(session: AsyncSession, scope: Scope, opp: Opportunity) -> list[Task]:
    return list((await session.scalars(select(Task).where(Task.opportunity_id == opp.id, scope.tasks()).order_by(Task.status, Task.due_date, Task.id))).all())
