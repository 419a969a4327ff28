"""The durable outbox: replies are rows first, deliveries second.

Rows are written in the handler's transaction; workers claim due rows with a lease,
hand them to the platform's channel and record the outcome. Temporary failures back
off exponentially; permanent ones are marked failed with the reason. Rows to one
recipient go out in order: a row is not claimed while an earlier one to the same
recipient is still undelivered.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.channels.base import PermanentFailure, TemporaryFailure
from bot.context import AppContext
from bot.messages import Outbound, Reply
from bot.redact import redact
from storage.db import claim_set
from storage.models import OutboxRow

UNFINISHED = ("pending", "sending")
#: Outbox context key set by ``genjin outbox retry``: the age limit counts from here.
REQUEUED_AT = "requeued_at"


def enqueue(
    session: AsyncSession,
    *,
    platform: str,
    recipient: str,
    reply: Reply,
    conversation: str = "",
    inbox_id: int | None = None,
    context: dict[str, object] | None = None,
    now: datetime,
) -> OutboxRow:
    row = OutboxRow(
        platform=platform,
        recipient=recipient,
        conversation=conversation,
        payload=reply.to_payload(),
        context=dict(context or {}),
        inbox_id=inbox_id,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def backoff(app: AppContext, attempts: int) -> float:
    p = app.config.pipeline
    return float(min(p.outbox_backoff_max, p.outbox_backoff_base * (2 ** max(0, attempts - 1))))


async def _claim(app: AppContext, limit: int = 20) -> list[OutboxRow]:
    now = app.clock.now()
    lease = now + timedelta(seconds=app.config.pipeline.lease_seconds)

    def claimable(row: Any) -> Any:
        return and_(
            row.status.in_(UNFINISHED),
            row.next_attempt_at <= now,
            or_(row.lease_until.is_(None), row.lease_until <= now),
        )

    # Aliased candidate select: a bare ``outbox`` in the UPDATE's subquery would be
    # correlated to the UPDATE target and LIMIT would apply per row.
    cand, earlier = aliased(OutboxRow), aliased(OutboxRow)
    blocked = exists().where(
        earlier.platform == cand.platform,
        earlier.recipient == cand.recipient,
        earlier.status.in_(UNFINISHED),
        earlier.id < cand.id,
    )
    platforms = list(app.channels)
    candidates = (
        select(cand.id)
        .where(claimable(cand), ~blocked, cand.platform.in_(platforms))
        .order_by(cand.id)
        .limit(limit)
    )
    picked = claim_set(candidates, app.engine.dialect.name)
    stmt = (
        update(OutboxRow)
        .where(OutboxRow.id.in_(select(picked.c.id)), claimable(OutboxRow))
        .values(status="sending", lease_until=lease, attempts=OutboxRow.attempts + 1)
        .returning(OutboxRow)
        .execution_options(synchronize_session=False)
    )
    async with app.sessions() as session:
        async with session.begin():
            claimed = list((await session.scalars(stmt)).all())
    claimed.sort(key=lambda row: row.id)
    return claimed


async def _finish(app: AppContext, row_id: int, **values: object) -> None:
    async with app.sessions() as session:
        async with session.begin():
            await session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))


def queued_since(row: OutboxRow) -> datetime:
    """When the row's current delivery effort began: its creation, or its last manual re-queue."""
    requeued = (row.context or {}).get(REQUEUED_AT)
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
    if isinstance(requeued, str):
        try:
            return max(created, datetime.fromisoformat(requeued))
        except ValueError:
            pass
    return created


def _give_up(app: AppContext, row: OutboxRow, temporary: bool) -> str:
    """Why to stop retrying ("" = retry again).

    A temporary failure (platform down, rate limit, network) is retried until the reply
    is ``outbox_max_age_hours`` old, however many attempts that takes: counting attempts
    lost every reply queued during a long outage. An unexpected exception (a bug) still
    stops after ``outbox_max_attempts``, so it does not loop for a day.
    """
    p = app.config.pipeline
    if not temporary:
        return f"after {row.attempts} attempts" if row.attempts >= p.outbox_max_attempts else ""
    age = app.clock.now() - queued_since(row)
    if age >= timedelta(hours=p.outbox_max_age_hours):
        return f"after {age.total_seconds() / 3600:.1f} hours and {row.attempts} attempts"
    return ""


async def deliver(app: AppContext, row: OutboxRow) -> None:
    out = Outbound(
        id=row.id,
        platform=row.platform,
        recipient=row.recipient,
        conversation=row.conversation,
        reply=Reply.from_payload(row.payload),
        attempts=row.attempts,
        context=dict(row.context or {}),
    )
    log = app.log.bind(outbox_id=row.id, platform=row.platform, attempt=row.attempts)
    try:
        await app.channel(row.platform).send(out)
    except PermanentFailure as exc:
        reason = redact(exc.reason)
        app.metrics.outbound.labels(row.platform, "failed").inc()
        log.warning("outbox.failed", reason=reason)
        await _finish(app, row.id, status="failed", last_error=reason[:2000], lease_until=None)
    except Exception as exc:  # noqa: BLE001 - anything else is worth another try
        temporary = isinstance(exc, TemporaryFailure)
        reason = redact(exc.reason if isinstance(exc, TemporaryFailure) else f"{type(exc).__name__}: {exc}")
        retry_after = exc.retry_after if isinstance(exc, TemporaryFailure) else None
        give_up = _give_up(app, row, temporary)
        if give_up:
            app.metrics.outbound.labels(row.platform, "failed").inc()
            log.warning("outbox.gave_up", reason=reason)
            await _finish(app, row.id, status="failed", last_error=f"gave up {give_up}: {reason}"[:2000], lease_until=None)
            return
        delay = retry_after if retry_after is not None else backoff(app, row.attempts)
        app.metrics.outbound.labels(row.platform, "retry").inc()
        log.info("outbox.retry", reason=reason, delay=delay)
        await _finish(
            app,
            row.id,
            status="pending",
            last_error=reason[:2000],
            lease_until=None,
            next_attempt_at=app.clock.now() + timedelta(seconds=delay),
        )
    else:
        now = app.clock.now()
        app.metrics.outbound.labels(row.platform, "sent").inc()
        app.metrics.outbox_lag.observe(max(0.0, (now - row.created_at).total_seconds()))
        await _finish(app, row.id, status="sent", sent_at=now, lease_until=None, last_error="")


async def drain_once(app: AppContext) -> int:
    """Deliver every row that is due now; returns how many were attempted."""
    rows = await _claim(app)
    for row in rows:
        await deliver(app, row)
    return len(rows)


async def run_worker(app: AppContext, stop: asyncio.Event) -> None:
    interval = app.config.pipeline.poll_interval
    while not stop.is_set():
        started = time.monotonic()
        try:
            done = await drain_once(app)
        except Exception:  # noqa: BLE001 - a worker must survive a database hiccup
            app.log.exception("outbox.worker_error")
            done = 0
            await asyncio.sleep(1.0)
        if done:
            continue
        app.outbox_wakeup.clear()
        try:
            await asyncio.wait_for(app.outbox_wakeup.wait(), timeout=max(0.0, interval - (time.monotonic() - started)))
        except TimeoutError:
            pass
