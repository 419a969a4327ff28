"""Handing claimed outbox rows to their channels and recording the outcome.

Temporary failures back off exponentially; permanent ones are marked failed with the
reason, so an operator can see why a reply never arrived.
"""

from __future__ import annotations

from datetime import timedelta

from bot.channels.base import PermanentFailure, TemporaryFailure
from bot.context import AppContext
from bot.messages import Outbound, Reply
from bot.pipeline import outbox
from storage.models import OutboxRow


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
    max_attempts = app.config.pipeline.outbox_max_attempts
    log = app.log.bind(outbox_id=row.id, platform=row.platform, attempt=row.attempts)
    try:
        await app.channel(row.platform).send(out)
    except PermanentFailure as exc:
        app.metrics.outbound.labels(row.platform, "failed").inc()
        log.warning("outbox.failed", reason=exc.reason)
        await outbox.finish(app, row.id, status="failed", last_error=exc.reason[:2000], lease_until=None)
    except Exception as exc:  # noqa: BLE001 - anything else is worth another try
        reason = exc.reason if isinstance(exc, TemporaryFailure) else f"{type(exc).__name__}: {exc}"
        retry_after = exc.retry_after if isinstance(exc, TemporaryFailure) else None
        if row.attempts >= max_attempts:
            app.metrics.outbound.labels(row.platform, "failed").inc()
            log.warning("outbox.gave_up", reason=reason)
            await outbox.finish(app, row.id, status="failed", last_error=f"gave up after {row.attempts} attempts: {reason}"[:2000], lease_until=None)
            return
        delay = retry_after if retry_after is not None else outbox.backoff(app, row.attempts)
        app.metrics.outbound.labels(row.platform, "retry").inc()
        log.info("outbox.retry", reason=reason, delay=delay)
        await outbox.finish(
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
        await outbox.finish(app, row.id, status="sent", sent_at=now, lease_until=None, last_error="")


async def drain_once(app: AppContext) -> int:
    """Deliver every row that is due now on this node's channels; returns how many were attempted."""
    rows = await outbox.claim(app, app.channels)
    for row in rows:
        await deliver(app, row)
    return len(rows)
