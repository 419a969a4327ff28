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
from bot.redact import redact
from storage.models import OutboxRow


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
    age = app.clock.now() - outbox.queued_since(row)
    if age >= timedelta(hours=p.outbox_max_age_hours):
        return f"after {age.total_seconds() / 3600:.1f} hours and {row.attempts} attempts"
    return ""


Outcome = dict[str, object]

#: Outcomes are written in batches; one is never left unrecorded longer than this while
#: later rows are still being sent (a crash before it is written sends that row again).
RECORD_WITHIN = timedelta(seconds=0.5)


async def deliver(app: AppContext, row: OutboxRow) -> Outcome:
    """Send one row; returns the columns that record the outcome (the caller writes them)."""
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
        return {"status": "failed", "last_error": reason[:2000], "lease_until": None}
    except Exception as exc:  # noqa: BLE001 - anything else is worth another try
        temporary = isinstance(exc, TemporaryFailure)
        reason = redact(exc.reason if isinstance(exc, TemporaryFailure) else f"{type(exc).__name__}: {exc}")
        retry_after = exc.retry_after if isinstance(exc, TemporaryFailure) else None
        give_up = _give_up(app, row, temporary)
        if give_up:
            app.metrics.outbound.labels(row.platform, "failed").inc()
            log.warning("outbox.gave_up", reason=reason)
            return {"status": "failed", "last_error": f"gave up {give_up}: {reason}"[:2000], "lease_until": None}
        delay = retry_after if retry_after is not None else outbox.backoff(app, row.attempts)
        app.metrics.outbound.labels(row.platform, "retry").inc()
        log.info("outbox.retry", reason=reason, delay=delay)
        return {
            "status": "pending",
            "last_error": reason[:2000],
            "lease_until": None,
            "next_attempt_at": app.clock.now() + timedelta(seconds=delay),
        }
    now = app.clock.now()
    app.metrics.outbound.labels(row.platform, "sent").inc()
    app.metrics.outbox_lag.observe(max(0.0, (now - row.created_at).total_seconds()))
    return {"status": "sent", "sent_at": now, "lease_until": None, "last_error": ""}


async def drain_once(app: AppContext) -> int:
    """Deliver every row that is due now on this node's channels; returns how many were attempted.

    Outcomes are recorded together at the end of the batch (or sooner, see ``RECORD_WITHIN``).
    """
    rows = await outbox.claim(app, app.channels)
    outcomes: list[tuple[int, Outcome]] = []
    first_unrecorded = app.clock.now()
    for row in rows:
        if outcomes and app.clock.now() - first_unrecorded >= RECORD_WITHIN:
            await outbox.finish(app, outcomes)
            outcomes = []
        if not outcomes:
            first_unrecorded = app.clock.now()
        outcomes.append((row.id, await deliver(app, row)))
    await outbox.finish(app, outcomes)
    return len(rows)
