"""Seeded deals, notes, leads and escalations for the reports tests and the benchmark."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from storage.db import transaction
from storage.models import (
    Account,
    AuditLog,
    Contact,
    Escalation,
    Installment,
    Lead,
    LeadOffer,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
    Task,
)

STAGES = ["first_contact", "needs", "demo", "trial", "tender", "negotiation", "contract", "delivery", "payment"]


async def seed(app: Any, now: datetime, *, per_rep: int = 6, notes_per_rep: int = 5, seed_value: int = 7) -> dict[str, Any]:
    """Deals for every rep of the demo org: stages, amounts, notes, tasks, a stage change last
    week, a lead each, and an overdue receivable on one east deal. Returns ids by owner key."""
    rng = random.Random(seed_value)
    out: dict[str, Any] = {"opps": {}, "accounts": {}}
    async with transaction(app.sessions) as s:
        reps = list((await s.scalars(select(Person).where(Person.role == "rep").order_by(Person.id))).all())
        for rep in reps:
            account = Account(name=f"{rep.name}的医院", created_at=now - timedelta(days=90))
            s.add(account)
            await s.flush()
            s.add(Contact(account_id=account.id, name="王主任", department="心内科", created_at=now))
            out["accounts"][rep.key] = account.id
            ids = []
            for i in range(per_rep):
                stage = STAGES[(i + rep.id) % len(STAGES)]
                opp = Opportunity(account_id=account.id, owner_id=rep.id, stage=stage, amount=rng.randrange(10, 300) * 10_000,
                                  status="open", stage_changed_at=now - timedelta(days=20 + i),
                                  last_activity_at=now - timedelta(days=i * 3), created_at=now - timedelta(days=60))
                s.add(opp)
                await s.flush()
                ids.append(opp.id)
                if i == 0:  # moved into its stage three days ago: last week it was one stage earlier
                    prev = STAGES[max(0, STAGES.index(stage) - 1)]
                    s.add(AuditLog(actor_id=rep.id, entity="opportunity", entity_id=opp.id, field="stage", old=prev, new=stage,
                                   at=now - timedelta(days=3)))
                if i == 1:
                    task = Task(owner_id=rep.id, opportunity_id=opp.id, text="发方案", due_date=(now - timedelta(days=4)).date(),
                                status="open", created_at=now - timedelta(days=10))
                    s.add(task)
                    await s.flush()
                    s.add(AuditLog(actor_id=rep.id, entity="task", entity_id=task.id, field="due_date",
                                   old=str(now.date() - timedelta(days=8)), new=str(now.date() - timedelta(days=4)), at=now - timedelta(days=6)))
            out["opps"][rep.key] = ids
            for j in range(notes_per_rep):
                s.add(Note(author_id=rep.id, account_id=account.id, opportunity_id=ids[j % len(ids)],
                           raw_text=f"{rep.name}的跟进记录{j}：拜访{account.name}", created_at=now - timedelta(hours=j * 5)))
            lead = Lead(hospital=f"{rep.name}的线索医院", assignee_id=rep.id, team_id=rep.team_id, status="claimed",
                        created_at=now - timedelta(hours=2), claimed_at=now - timedelta(hours=2) + timedelta(minutes=5 + rep.id))
            s.add(lead)
            await s.flush()
            s.add(LeadOffer(lead_id=lead.id, rep_id=rep.id, offered_at=lead.created_at, status="claimed", closed_at=lead.claimed_at))
        east = next(r for r in reps if r.key == "zhangwei")
        plan = PaymentPlan(opportunity_id=out["opps"]["zhangwei"][0], owner_id=east.id, total_amount=300000, source="import",
                           created_at=now - timedelta(days=40))
        s.add(plan)
        await s.flush()
        s.add(Installment(plan_id=plan.id, seq=1, amount=300000, due_date=now.date() - timedelta(days=20), status="open",
                          invoice_no="INV-SEED-1", created_at=now - timedelta(days=40), updated_at=now - timedelta(days=40)))
        liuyang = next(r for r in reps if r.key == "liuyang")
        s.add(Escalation(kind="stalled_deal", subject_type="opportunity", subject_id=out["opps"]["liuyang"][2],
                         owner_id=liuyang.id, team_id=liuyang.team_id, manager_id=liuyang.manager_id,
                         status="open", created_at=now - timedelta(days=1)))
    return out


def today(now: datetime, tz: Any) -> date:
    return now.astimezone(tz).date()
