"""The durable inbox: store first, acknowledge second, process exactly once.

``accept`` is what a channel calls before acknowledging the platform; the unique key
(platform, message_id) turns redeliveries into no-ops. Workers claim rows with a lease
and process each in one transaction that also writes the handler's records and the
outbox rows and marks the inbox row done, so a crash at any point either leaves
everything undone (and the row is claimed again after its lease) or everything done.
Rows from one sender are processed in order, because a reply may answer the previous
message's question.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from bot.context import AppContext
from bot.dispatcher import process
from bot.messages import Accepted, Inbound, Kind, Reply, bounded_key
from bot.redact import redact
from storage.db import claim_set
from storage.models import InboxRow

UNFINISHED = ("pending", "processing")
FAILURE_REPLY = "抱歉，这条消息处理出错了，已记录并通知管理员，请稍后再试。"


def _insert_for(dialect: str):  # type: ignore[no-untyped-def]
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


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
    insert = _insert_for(app.engine.dialect.name)
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


def _claimable(now: datetime, row: Any = InboxRow):  # type: ignore[no-untyped-def]
    return and_(row.status.in_(UNFINISHED), or_(row.lease_until.is_(None), row.lease_until <= now))


async def claim(app: AppContext, limit: int = 10) -> list[tuple[int, int]]:
    """Claim up to ``limit`` rows; returns (id, attempt) pairs this worker now owns."""
    now = app.clock.now()
    lease = now + timedelta(seconds=app.config.pipeline.lease_seconds)
    # The candidate select uses its own alias: a bare ``inbox`` inside the UPDATE's
    # subquery would be correlated to the UPDATE target, and LIMIT would apply per row.
    cand, earlier = aliased(InboxRow), aliased(InboxRow)
    blocked = exists().where(
        earlier.platform == cand.platform,
        earlier.sender == cand.sender,
        earlier.status.in_(UNFINISHED),
        earlier.id < cand.id,
    )
    candidates = select(cand.id).where(_claimable(now, cand), ~blocked).order_by(cand.id).limit(limit)
    picked = claim_set(candidates, app.engine.dialect.name)
    stmt = (
        update(InboxRow)
        .where(InboxRow.id.in_(select(picked.c.id)), _claimable(now))
        .values(status="processing", lease_until=lease, attempts=InboxRow.attempts + 1)
        .returning(InboxRow.id, InboxRow.attempts)
        .execution_options(synchronize_session=False)
    )
    async with app.sessions() as session:
        async with session.begin():
            owned = [(row_id, attempt) for row_id, attempt in (await session.execute(stmt)).all()]
    owned.sort()
    return owned


async def handle(app: AppContext, row_id: int, attempt: int) -> None:
    """Process one claimed row; on error retry later or give up with a polite reply."""
    log = app.log.bind(inbox_id=row_id, attempt=attempt)
    try:
        outcome = await process(app, row_id, attempt)
        app.metrics.handled.labels(outcome).inc()
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the worker
        log.exception("inbox.handler_error")
        app.metrics.handled.labels("error").inc()
        await _record_failure(app, row_id, attempt, redact(f"{type(exc).__name__}: {exc}"))
    app.outbox_wakeup.set()


async def _record_failure(app: AppContext, row_id: int, attempt: int, error: str) -> None:
    from bot.dispatcher import reply_to_sender

    now = app.clock.now()
    give_up = attempt >= app.config.pipeline.max_attempts
    async with app.sessions() as session:
        async with session.begin():
            row = await session.get(InboxRow, row_id, with_for_update=True)
            if row is None or row.status != "processing" or row.attempts != attempt:
                return
            row.error = error[:4000]
            if give_up:
                row.status = "failed"
                row.processed_at = now
                row.lease_until = None
                reply_to_sender(session, row, Reply(text=FAILURE_REPLY), now)
            else:
                row.status = "pending"
                row.lease_until = now + timedelta(seconds=min(60.0, 2.0**attempt))


async def work_once(app: AppContext) -> int:
    owned = await claim(app)
    for row_id, attempt in owned:
        await handle(app, row_id, attempt)
    return len(owned)


async def run_worker(app: AppContext, stop: asyncio.Event) -> None:
    interval = app.config.pipeline.poll_interval
    while not stop.is_set():
        started = time.monotonic()
        try:
            done = await work_once(app)
        except Exception:  # noqa: BLE001 - survive database hiccups
            app.log.exception("inbox.worker_error")
            done = 0
            await asyncio.sleep(1.0)
        if done:
            continue
        app.inbox_wakeup.clear()
        try:
            await asyncio.wait_for(app.inbox_wakeup.wait(), timeout=max(0.0, interval - (time.monotonic() - started)))
        except TimeoutError:
            pass
