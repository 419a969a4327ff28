"""Jobs: the weekly digest, the nightly health recomputation, and re-scoring deals whose inputs changed.

Snapshots are idempotent (one row per subject and day, upserted), so several nodes running
the same job only repeat work, never duplicate rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select

from bot.context import AppContext
from handlers.reports import health as hp
from handlers.reports import queries as q
from handlers.reports.digest import send_weekly_digests
from storage.models import AuditLog, HealthSnapshot, Opportunity, Task

if TYPE_CHECKING:
    from reminders.jobs import JobQueue

DIGEST_JOB = "reports.digest"
NIGHTLY_JOB = "reports.health_nightly"
REFRESH_JOB = "reports.health_refresh"
BATCH = 2000


async def score_and_store(app: AppContext, opp_ids: list[int], now: datetime) -> int:
    """Score these deals and their accounts, store today's snapshots; returns deals scored."""
    if not opp_ids:
        return 0
    today = now.astimezone(app.config.tz).date()
    rules = hp.load_rules()
    async with app.sessions() as session:
        async with session.begin():
            opps = list((await session.scalars(select(Opportunity).where(Opportunity.id.in_(opp_ids)))).all())
            scored = await q.deal_health(app, session, opps, now)
            per_account: dict[int, list[tuple[Opportunity, hp.Health]]] = defaultdict(list)
            for opp in opps:
                await hp.store_snapshot(session, subject_type="opportunity", subject_id=opp.id, day=today,
                                        health=scored[opp.id], opp=opp, now=now)
                if opp.account_id is not None:
                    per_account[opp.account_id].append((opp, scored[opp.id]))
            for account_id in per_account:
                siblings = list((await session.scalars(select(Opportunity).where(
                    Opportunity.account_id == account_id, Opportunity.status == q.OPEN))).all())
                missing = [o for o in siblings if o.id not in scored]
                if missing:
                    scored.update(await q.deal_health(app, session, missing, now))
                acc = hp.account_health([(o, scored[o.id]) for o in siblings], rules)
                if acc is not None:
                    await hp.store_snapshot(session, subject_type="account", subject_id=account_id, day=today,
                                            health=acc, opp=None, now=now)
    return len(opps)


async def recompute_all(app: AppContext) -> int:
    """Nightly: every open deal (and its account) gets today's snapshot."""
    now = app.clock.now()
    done, last = 0, 0
    while True:
        async with app.sessions() as session:
            ids = list((await session.scalars(select(Opportunity.id).where(Opportunity.status == q.OPEN, Opportunity.id > last)
                                              .order_by(Opportunity.id).limit(BATCH))).all())
        if not ids:
            return done
        done += await score_and_store(app, ids, now)
        last = ids[-1]


async def changed_since_snapshot(app: AppContext, now: datetime, limit: int = 500) -> list[int]:
    """Open deals whose inputs changed after their latest snapshot (activity, stage, audit of the deal or its tasks)."""
    async with app.sessions() as session:
        latest = (select(HealthSnapshot.subject_id, func.max(HealthSnapshot.computed_at).label("at"))
                  .where(HealthSnapshot.subject_type == "opportunity").group_by(HealthSnapshot.subject_id).subquery())
        audit_after = select(AuditLog.id).where(
            or_(and_(AuditLog.entity == "opportunity", AuditLog.entity_id == Opportunity.id),
                and_(AuditLog.entity == "task", AuditLog.entity_id.in_(select(Task.id).where(Task.opportunity_id == Opportunity.id)))),
            AuditLog.at > latest.c.at).exists()
        rows = await session.scalars(
            select(Opportunity.id).join(latest, latest.c.subject_id == Opportunity.id)
            .where(Opportunity.status == q.OPEN,
                   or_(Opportunity.last_activity_at > latest.c.at, Opportunity.stage_changed_at > latest.c.at, audit_after))
            .order_by(Opportunity.id).limit(limit)
        )
        return list(rows.all())


async def refresh_changed(app: AppContext) -> int:
    now = app.clock.now()
    return await score_and_store(app, await changed_since_snapshot(app, now), now)


def _at(text: str) -> time:
    hour, minute = (int(x) for x in text.split(":"))
    return time(hour, minute)


def register_jobs(jobs: JobQueue, app: AppContext) -> None:
    cfg = app.config.reports
    jobs.run_daily(DIGEST_JOB, send_weekly_digests, at=_at(cfg.digest_at))
    jobs.run_daily(NIGHTLY_JOB, recompute_all, at=_at(cfg.health_at))
    jobs.run_repeating(REFRESH_JOB, refresh_changed, seconds=cfg.refresh_seconds)
