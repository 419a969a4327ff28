"""The durable inbox store: store first, acknowledge second, process exactly once.

``accept`` is what a channel's ingest calls before acknowledging the platform; the unique
key (platform, message_id) turns redeliveries into no-ops. Rows are claimed with a lease
and processed by the dispatcher in one transaction that also writes the handler's
records and the outbox rows and marks the row done, so a crash at any point either
leaves everything undone (the row is claimed again after its lease) or everything done.
Rows from one sender are claimed in order, because a reply may answer the previous
message's question.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_

from bot.context import AppContext
from bot.messages import Accepted, Inbound, Kind, bounded_key
from storage.claims import claim_rows
from storage.db import insert_for
from storage.models import InboxRow

UNFINISHED = ("pending", "processing")


async def accept(app: AppContext, msg: Inbound) -> Accepted:
    """Persist ``msg`` unless it was seen before. Safe to call from many nodes at once."""
    now = app.clock.now()
    values = {
        "platform": msg.platform,
        "message_id": bounded_key(msg.message_id),
        "sender": msg.sender[:128],
        "conversation": msg.conversation[:191],
        "kind": msg.kind.value,
        "text": msg.text,
        "media": msg.media,
        "sent_at": msg.sent_at.astimezone(timezone.utc) if msg.sent_at else None,
        "payload": {
            "media_format": msg.media_format,
            "event": msg.event,
            "event_key": msg.event_key,
            "is_group": msg.is_group,
            "extra": msg.extra,
            "raw": msg.raw,
            "message_id": msg.message_id,  # the full id, when the column holds its hash
        },
        "status": "pending",
        "attempts": 0,
        "error": "",
        "received_at": now,
    }
    insert = insert_for(app.engine.dialect.name)
    stmt = insert(InboxRow).values(**values).on_conflict_do_nothing(index_elements=["platform", "message_id"])
    async with app.sessions() as session:
        async with session.begin():
            inbox_id = await session.scalar(stmt.returning(InboxRow.id))
    if inbox_id is None:
        app.metrics.duplicates.labels(msg.platform).inc()
        return Accepted(None, duplicate=True)
    app.metrics.inbound.labels(msg.platform, msg.kind.value).inc()
    app.inbox_wakeup.set()
    return Accepted(inbox_id, duplicate=False)


def row_to_inbound(row: InboxRow) -> Inbound:
    p = row.payload or {}
    return Inbound(
        platform=row.platform,
        message_id=row.message_id,
        sender=row.sender,
        kind=Kind(row.kind),
        conversation=row.conversation,
        text=row.text,
        media=row.media,
        media_format=p.get("media_format", ""),
        event=p.get("event", ""),
        event_key=p.get("event_key", ""),
        sent_at=row.sent_at,
        is_group=bool(p.get("is_group", False)),
        extra=dict(p.get("extra") or {}),
        raw=dict(p.get("raw") or {}),
    )


def _claimable(now: datetime) -> Any:
    return lambda row: and_(row.status.in_(UNFINISHED), or_(row.lease_until.is_(None), row.lease_until <= now))


async def claim(app: AppContext, limit: int = 10) -> list[tuple[int, int]]:
    """Claim up to ``limit`` rows; returns (id, attempt) pairs this worker now owns."""
    now = app.clock.now()
    async with app.sessions() as session:
        async with session.begin():
            owned = await claim_rows(
                session,
                InboxRow,
                claimable=_claimable(now),
                values={
                    "status": "processing",
                    "lease_until": now + timedelta(seconds=app.config.pipeline.lease_seconds),
                    "attempts": InboxRow.attempts + 1,
                },
                returning=(InboxRow.id, InboxRow.attempts),
                limit=limit,
                in_order_by=("platform", "sender"),
                unfinished=lambda row: row.status.in_(UNFINISHED),
            )
    return sorted((row_id, attempt) for row_id, attempt in owned)


def owned(row: InboxRow | None, attempt: int) -> bool:
    """Whether the worker that claimed ``attempt`` still holds the row (its lease was not taken over)."""
    return row is not None and row.status == "processing" and row.attempts == attempt


def mark_done(row: InboxRow, now: datetime) -> None:
    row.status = "done"
    row.processed_at = now
    row.lease_until = None
    row.error = ""


def mark_retry(row: InboxRow, error: str, now: datetime) -> None:
    row.error = error[:4000]
    row.status = "pending"
    row.lease_until = now + timedelta(seconds=min(60.0, 2.0**row.attempts))


def mark_failed(row: InboxRow, error: str, now: datetime) -> None:
    row.error = error[:4000]
    row.status = "failed"
    row.processed_at = now
    row.lease_until = None
