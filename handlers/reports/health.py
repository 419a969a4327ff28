"""Health score 0–100 per opportunity and per account, with the reasons (penalties) behind it.

Factors and weights live in ``rules/health.toml``. Each penalty has a code, its points and a
sentence (``STAGE_AGE −12: 在"商务谈判"停留9个工作日 (常见 5 个)``). Days are working days of
the sales calendar. Inputs are loaded in batches (one query per input kind for any number of
deals), so the nightly job scores tens of thousands of deals in a few queries.

An account's score is the amount-weighted mean of its open deals' scores; its penalties are
its deals' largest ones.
"""

from __future__ import annotations

import statistics
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common.format import money
from handlers.escalations.service import installment_due
from storage.db import insert_for
from storage.models import (
    AuditLog,
    Contact,
    HealthSnapshot,
    Installment,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
    Task,
)

RULES = Path(__file__).with_name("rules") / "health.toml"
OPEN = "open"


@dataclass(frozen=True)
class Overdue:
    """An installment of this deal with money outstanding (overdue once ``due`` is past)."""

    due: date
    amount: int


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True)
class Penalty:
    code: str
    points: int
    text: str

    def line(self) -> str:
        return f"{self.code} −{self.points}: {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Penalty:
        return cls(str(data["code"]), int(data["points"]), str(data["text"]))


@dataclass(frozen=True)
class Health:
    score: int
    band: str  # good | watch | risk
    penalties: tuple[Penalty, ...] = ()

    @property
    def top(self) -> tuple[Penalty, ...]:
        return self.penalties[:3]


BAND_LABEL = {"good": "健康", "watch": "关注", "risk": "风险"}


def band_of(score: int, rules: dict[str, Any]) -> str:
    bands = rules["bands"]
    return "good" if score >= bands["good"] else "watch" if score >= bands["watch"] else "risk"


@dataclass
class Inputs:
    """What one deal's score depends on (loaded in batch by :func:`load_inputs`)."""

    opp: Opportunity
    team_id: int | None = None
    open_tasks: list[Task] = field(default_factory=list)
    due_pushes: int = 0
    stakeholder_text: str = ""
    receivables: list[Overdue] = field(default_factory=list)


class Calendar:
    """What the score needs from the sales calendar (``app.calendar`` satisfies it)."""

    def working_days_between(self, start: date, end: date) -> int: ...  # pragma: no cover


@dataclass
class Medians:
    """Working days won deals spent in each stage: per team, and company-wide."""

    by_team: dict[tuple[int | None, str], float]
    overall: dict[str, float]

    def typical(self, team_id: int | None, stage: str, rules: dict[str, Any]) -> int | None:
        value = self.by_team.get((team_id, stage))
        if value is None:
            value = self.overall.get(stage)
        if value is None:
            value = rules["stage_age"].get("typical_days", {}).get(stage)
        return None if value is None else max(1, round(value))


async def won_stage_medians(session: AsyncSession, calendar: Any, tz: Any, rules: dict[str, Any]) -> Medians:
    """Median working days per stage of won deals, from the audit trail of stage changes."""
    rows = (
        await session.execute(
            select(AuditLog.entity_id, AuditLog.old, AuditLog.new, AuditLog.at, Person.team_id)
            .join(Opportunity, Opportunity.id == AuditLog.entity_id)
            .join(Person, Person.id == Opportunity.owner_id)
            .where(AuditLog.entity == "opportunity", AuditLog.field == "stage", Opportunity.status == "won")
            .order_by(AuditLog.entity_id, AuditLog.at, AuditLog.id)
        )
    ).all()
    per_opp: dict[int, list[tuple[str | None, datetime, int | None]]] = defaultdict(list)
    for opp_id, _old, new, at, team_id in rows:
        per_opp[opp_id].append((new, at, team_id))
    team_samples: dict[tuple[int | None, str], list[int]] = defaultdict(list)
    all_samples: dict[str, list[int]] = defaultdict(list)
    for changes in per_opp.values():
        for (stage, start, team_id), (_next, end, _t) in zip(changes, changes[1:]):
            if not stage:
                continue
            days = calendar.working_days_between(start.astimezone(tz).date(), end.astimezone(tz).date())
            team_samples[(team_id, stage)].append(days)
            all_samples[stage].append(days)
    need = int(rules["stage_age"].get("min_samples", 3))
    return Medians(
        by_team={k: statistics.median(v) for k, v in team_samples.items() if len(v) >= need},
        overall={k: statistics.median(v) for k, v in all_samples.items() if len(v) >= need},
    )


async def load_inputs(session: AsyncSession, opps: Sequence[Opportunity], rules: dict[str, Any]) -> list[Inputs]:
    """Every input of every deal in ``opps``, a handful of queries whatever their number."""
    if not opps:
        return []
    ids = [o.id for o in opps]
    inputs = {o.id: Inputs(o) for o in opps}
    owners = {o.owner_id for o in opps}
    team_of = dict((await session.execute(select(Person.id, Person.team_id).where(Person.id.in_(owners)))).all())
    for item in inputs.values():
        item.team_id = team_of.get(item.opp.owner_id)
    for chunk in _chunks(ids):
        for task in (await session.scalars(select(Task).where(Task.opportunity_id.in_(chunk), Task.status == OPEN))).all():
            inputs[task.opportunity_id].open_tasks.append(task)  # type: ignore[index]
        pushes = await session.execute(
            select(Task.opportunity_id, AuditLog.old, AuditLog.new)
            .join(AuditLog, and_(AuditLog.entity == "task", AuditLog.entity_id == Task.id))
            .where(Task.opportunity_id.in_(chunk), AuditLog.field == "due_date")
        )
        for opp_id, old, new in pushes.all():
            if old and new and new > old:  # ISO dates compare as text
                inputs[opp_id].due_pushes += 1
        rows = await session.execute(
            select(Installment, PaymentPlan).join(PaymentPlan, PaymentPlan.id == Installment.plan_id).where(
                PaymentPlan.opportunity_id.in_(chunk), Installment.status.in_(("open", "partial")),
                Installment.due_date.is_not(None)))
        for inst, plan in rows.all():
            due_amount = installment_due(inst, plan)
            outstanding = max(0, (due_amount or 0) - inst.received_amount)
            inputs[plan.opportunity_id].receivables.append(Overdue(inst.due_date, outstanding))
    # stakeholders: the account's contacts (department, name) and what notes on the account say
    accounts = {o.account_id for o in opps if o.account_id is not None}
    said: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(sorted(accounts)):
        for account_id, name, dept in (await session.execute(
                select(Contact.account_id, Contact.name, Contact.department).where(Contact.account_id.in_(chunk)))).all():
            said[account_id].append(f"{name}{dept}")
        notes = await session.execute(
            select(Note.account_id, Note.fields).where(Note.account_id.in_(chunk), Note.deleted_at.is_(None))
        )
        for account_id, fields in notes.all():
            for contact in (fields or {}).get("contacts", []) or []:
                said[account_id].append(str(contact))
    for item in inputs.values():
        if item.opp.account_id is not None:
            item.stakeholder_text = " ".join(said.get(item.opp.account_id, []))
    return [inputs[i] for i in ids]


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def score(
    item: Inputs,
    *,
    today: date,
    calendar: Any,
    tz: Any,
    medians: Medians,
    rules: dict[str, Any],
    stage_label: Any,
    stage_order: Sequence[str],
) -> Health:
    """The score of one deal from its inputs (pure: no I/O)."""
    opp = item.opp
    penalties: list[Penalty] = []

    r = rules["recency"]
    idle = calendar.working_days_between(opp.last_activity_at.astimezone(tz).date(), today)
    if idle > r["grace_days"]:
        points = min(r["max"], (idle - r["grace_days"]) * r["per_day"])
        penalties.append(Penalty(r["code"], points, r["text"].format(days=idle)))

    s = rules["stage_age"]
    if opp.stage:
        typical = medians.typical(item.team_id, opp.stage, rules)
        in_stage = calendar.working_days_between(opp.stage_changed_at.astimezone(tz).date(), today)
        if typical is not None and in_stage > typical:
            points = min(s["max"], (in_stage - typical) * s["per_day"])
            penalties.append(Penalty(s["code"], points, s["text"].format(
                stage=stage_label(opp.stage) or opp.stage, days=in_stage, typical=typical)))

    d = rules["due_pushes"]
    if item.due_pushes:
        penalties.append(Penalty(d["code"], min(d["max"], item.due_pushes * d["per_push"]), d["text"].format(count=item.due_pushes)))

    n = rules["next_step"]
    if not item.open_tasks:
        penalties.append(Penalty(n["missing_code"], n["missing"], n["missing_text"]))
    else:
        due = [t.due_date for t in item.open_tasks if t.due_date is not None]
        if due and min(due) < today:
            late = max(1, calendar.working_days_between(min(due), today))
            points = min(n["overdue_max"], max(n["overdue_min"], late * n["overdue_per_day"]))
            penalties.append(Penalty(n["overdue_code"], points, n["overdue_text"].format(days=late)))

    k = rules["stakeholders"]
    order = list(stage_order)
    if opp.stage in order and k["from_stage"] in order and order.index(opp.stage) >= order.index(k["from_stage"]):
        missing = [role for role, words in k["roles"].items() if not any(w in item.stakeholder_text for w in words)]
        if missing:
            penalties.append(Penalty(k["code"], k["per_missing"] * len(missing), k["text"].format(missing="、".join(missing))))

    v = rules["receivables"]
    if item.receivables:
        worst = 0
        total = 0
        overdue = [r for r in item.receivables if r.due < today]
        for r in overdue:
            worst = max(worst, (today - r.due).days)
            total += r.amount
        points = min(v["max"], v["per_item"] * len(overdue) + v["per_30_days"] * (worst // 30))
        if overdue:
            penalties.append(Penalty(v["code"], points, v["text"].format(days=worst, amount=money(total) or "金额未知")))

    penalties.sort(key=lambda p: -p.points)
    value = max(0, 100 - sum(p.points for p in penalties))
    return Health(value, band_of(value, rules), tuple(penalties))


def account_health(deals: Sequence[tuple[Opportunity, Health]], rules: dict[str, Any]) -> Health | None:
    """Amount-weighted mean of the open deals' scores; the largest penalties among them."""
    open_deals = [(o, h) for o, h in deals if o.status == OPEN]
    if not open_deals:
        return None
    weights = [max(1, o.amount or 0) for o, _ in open_deals]
    value = round(sum(w * h.score for w, (_, h) in zip(weights, open_deals)) / sum(weights))
    penalties = sorted((p for _, h in open_deals for p in h.penalties), key=lambda p: -p.points)
    return Health(value, band_of(value, rules), tuple(penalties))


async def store_snapshot(session: AsyncSession, *, subject_type: str, subject_id: int, day: date, health: Health,
                         opp: Opportunity | None, now: datetime) -> None:
    """Today's snapshot of one subject (replaced if it was already computed today)."""
    insert = insert_for(session.bind.dialect.name)  # type: ignore[union-attr]
    values = dict(subject_type=subject_type, subject_id=subject_id, day=day, score=health.score, band=health.band,
                  penalties=[p.to_dict() for p in health.penalties], computed_at=now,
                  owner_id=opp.owner_id if opp else None, stage=opp.stage if opp else None,
                  status=opp.status if opp else OPEN, amount=opp.amount if opp else None)
    stmt = insert(HealthSnapshot).values(**values)
    update = {k: stmt.excluded[k] for k in ("score", "band", "penalties", "computed_at", "owner_id", "stage", "status", "amount")}
    await session.execute(stmt.on_conflict_do_update(index_elements=["subject_type", "subject_id", "day"], set_=update))


async def previous_scores(session: AsyncSession, subject_type: str, ids: Sequence[int], before: date) -> dict[int, int]:
    """The latest snapshot score on or before ``before`` of each subject (for "change since last week")."""
    found: dict[int, int] = {}
    for chunk in _chunks(list(ids)):
        latest = (
            select(HealthSnapshot.subject_id, func.max(HealthSnapshot.day).label("day"))
            .where(HealthSnapshot.subject_type == subject_type, HealthSnapshot.subject_id.in_(chunk), HealthSnapshot.day <= before)
            .group_by(HealthSnapshot.subject_id)
            .subquery()
        )
        rows = await session.execute(
            select(HealthSnapshot.subject_id, HealthSnapshot.score).join(
                latest, and_(HealthSnapshot.subject_id == latest.c.subject_id, HealthSnapshot.day == latest.c.day))
            .where(HealthSnapshot.subject_type == subject_type)
        )
        found.update(dict(rows.all()))
    return found
