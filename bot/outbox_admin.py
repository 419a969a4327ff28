"""Outbox maintenance outside the delivery path: the backlog, and re-queuing failed rows.

Kept out of :mod:`bot.outbox` (the hot path) so operations tooling can grow without
touching delivery. Used by ``/healthz``, ``/metrics`` and ``genjin outbox retry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from bot.context import AppContext
from bot.outbox import REQUEUED_AT, UNFINISHED
from storage.models import OutboxRow


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_pending_seconds: float


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


async def backlog(app: AppContext) -> Backlog:
    """Undelivered rows and the age of the oldest: a long outage shows here before anyone complains."""
    stmt = select(func.count(OutboxRow.id), func.min(OutboxRow.created_at)).where(OutboxRow.status.in_(UNFINISHED))
    async with app.sessions() as session:
        count, oldest = (await session.execute(stmt)).one()
    age = (app.clock.now() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
    return Backlog(int(count or 0), max(0.0, age))


async def requeue_failed(app: AppContext, since: datetime | None = None) -> int:
    """Give failed rows (created at or after ``since``) a fresh delivery effort; returns how many.

    The age limit then counts from now (``context.requeued_at``), not from creation.
    Rows are updated one by one: this is a maintenance command, and the JSON context is
    merged in Python so it works the same on SQLite and PostgreSQL.
    """
    now = app.clock.now()
    stmt = select(OutboxRow).where(OutboxRow.status == "failed").order_by(OutboxRow.id)
    if since is not None:
        stmt = stmt.where(OutboxRow.created_at >= since)
    async with app.sessions() as session:
        async with session.begin():
            rows = list((await session.scalars(stmt.with_for_update())).all())
            for row in rows:
                row.status = "pending"
                row.attempts = 0
                row.lease_until = None
                row.next_attempt_at = now
                row.context = {**(row.context or {}), REQUEUED_AT: now.isoformat()}
    app.outbox_wakeup.set()
    return len(rows)
