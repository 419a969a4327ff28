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

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Accepted, Inbound, Kind, bounded_key
from storage.claims import claim_rows
from storage.db import insert_for, is_locked
from storage.models import InboxRow

UNFINISHED = ("pending", "processing")


def _values(msg: Inbound, now: datetime) -> dict[str, Any]:
    return {
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


async def store(app: AppContext, messages: Sequence[Inbound]) -> list[Accepted]:
    """Persist ``messages`` in ONE transaction; redeliveries (also within the batch) are recognised.

    Safe to call from many nodes at once: the unique key (platform, message id) and
    ``ON CONFLICT DO NOTHING`` decide which copy is the first.
    """
    now = app.clock.now()
    rows = [_values(msg, now) for msg in messages]
    insert = insert_for(app.engine.dialect.name)
    stmt = (
        insert(InboxRow)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["platform", "message_id"])
        .returning(InboxRow.id, InboxRow.platform, InboxRow.message_id)
    )
    stored = await _insert(app, stmt)
    results: list[Accepted] = []
    for msg, values in zip(messages, rows):
        inbox_id = stored.pop((values["platform"], values["message_id"]), None)  # the first copy takes the row
        if inbox_id is None:
            app.metrics.duplicates.labels(msg.platform).inc()
            results.append(Accepted(None, duplicate=True))
        else:
            app.metrics.inbound.labels(msg.platform, msg.kind.value).inc()
            results.append(Accepted(inbox_id, duplicate=False))
    if any(not r.duplicate for r in results):
        app.inbox_wakeup.set()
    return results


LOCK_RETRY_SECONDS = 0.002
LOCK_GIVE_UP_SECONDS = 30.0


async def _insert(app: AppContext, stmt: Any) -> dict[tuple[str, str], int]:
    """Run the batch insert; a locked SQLite database is retried in short steps (see :func:`storage.db.create_engine`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_GIVE_UP_SECONDS
    while True:
        try:
            async with app.ingest_sessions() as session:
                async with session.begin():
                    return {(platform, key): row_id for row_id, platform, key in (await session.execute(stmt)).all()}
        except OperationalError as exc:
            if not is_locked(exc) or loop.time() > deadline:
                raise
            await asyncio.sleep(LOCK_RETRY_SECONDS)


async def accept(app: AppContext, msg: Inbound) -> Accepted:
    """Persist one message unless it was seen before (the local chat, tests; channels use :class:`Ingestor`)."""
    return (await store(app, [msg]))[0]


class Ingestor:
    """Group commit for the acknowledgement path: callbacks arriving together are stored in one transaction.

    Each caller still gets its answer only after its row is committed (store first, then
    acknowledge), but a burst of callbacks shares one write instead of queueing one
    transaction each behind the single SQLite writer. It uses its own connection
    (``app.ingest_sessions``), and while callbacks wait, ``app.ingest_idle`` is cleared so
    this node's handlers do not start new write transactions: on SQLite the acknowledgement
    gets the write lock next instead of starving behind back-to-back handler work.
    """

    def __init__(self, app: AppContext, max_batch: int = 200) -> None:
        self._app = app
        self._max_batch = max_batch
        self._waiting: list[tuple[Inbound, asyncio.Future[Accepted]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def accept(self, msg: Inbound) -> Accepted:
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._waiting.append((msg, future))
        self._app.ingest_idle.clear()  # handlers hold back new write transactions until this is stored
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            await self._drain_all()
        finally:
            if not self._waiting:
                self._app.ingest_idle.set()

    async def _drain_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            try:
                results = await store(self._app, [msg for msg, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every caller of the batch hears it (and WeCom retries)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)


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


async def claim_batch(app: AppContext, limit: int = 10) -> list[InboxRow]:
    """Claim up to ``limit`` rows in one statement; returns them whole (detached), in id order.

    Returning the rows saves the dispatcher a read per message: it has the text, sender and
    attempt number it needs before its transaction, and checks ownership inside it with
    the done mark itself (:func:`finish_owned`).
    """
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
                returning=(InboxRow,),
                limit=limit,
                in_order_by=("platform", "sender"),
                unfinished=lambda row: row.status.in_(UNFINISHED),
            )
    return sorted(owned, key=lambda row: row.id)


async def claim(app: AppContext, limit: int = 10) -> list[tuple[int, int]]:
    """Claim up to ``limit`` rows; returns (id, attempt) pairs this worker now owns."""
    return [(row.id, row.attempts) for row in await claim_batch(app, limit)]


async def finish_owned(session: AsyncSession, row_id: int, attempt: int, now: datetime, *, payload: dict[str, Any] | None = None) -> bool:
    """Mark the row done in the caller's transaction if this worker still owns it; False if it lost it.

    One conditional ``UPDATE`` does both the ownership check and the done mark: it locks the
    row for the rest of the transaction (as ``SELECT … FOR UPDATE`` did), so a worker whose
    lease was taken over changes nothing, and if the handler fails the mark rolls back with
    everything else.
    """
    values: dict[str, Any] = {"status": "done", "processed_at": now, "lease_until": None, "error": ""}
    if payload is not None:
        values["payload"] = payload
    stmt = (
        update(InboxRow)
        .where(InboxRow.id == row_id, InboxRow.status == "processing", InboxRow.attempts == attempt)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
