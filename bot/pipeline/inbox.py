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
import functools
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, bindparam, or_, tuple_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Accepted, Inbound, Kind, bounded_key
from storage.claims import LIMIT, PreparedClaim, prepare_claim
from storage.db import insert_for, is_locked, read_session
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
    stored = await _insert(app, rows)
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


@functools.cache
def _insert_statement(dialect: str) -> Any:
    """One INSERT … ON CONFLICT DO NOTHING … RETURNING per dialect, executed with the batch as its parameters.

    A statement built with ``.values(rows)`` is a new statement for every batch size and is
    compiled again each time (measured: ~4 ms of event-loop CPU per batch, on the
    acknowledgement path, against ~1 ms); this one is compiled once, and SQLAlchemy's
    "insertmanyvalues" still sends a batch as one multi-row INSERT.
    """
    table = InboxRow.__table__
    return (
        insert_for(dialect)(table)
        .on_conflict_do_nothing(index_elements=["platform", "message_id"])
        .returning(table.c.id, table.c.platform, table.c.message_id)
    )


async def _insert(app: AppContext, rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Run the batch insert; a locked SQLite database is retried in short steps (see :func:`storage.db.create_engine`)."""
    stmt = _insert_statement(app.engine.dialect.name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_GIVE_UP_SECONDS
    while True:
        try:
            async with app.ingest_sessions() as session:
                async with session.begin():
                    result = await session.execute(stmt, rows)
                    return {(platform, key): row_id for row_id, platform, key in result.all()}
        except OperationalError as exc:
            if not is_locked(exc) or loop.time() > deadline:
                raise
            await asyncio.sleep(LOCK_RETRY_SECONDS)


async def accept(app: AppContext, msg: Inbound) -> Accepted:
    """Persist one message unless it was seen before (the local chat, tests; channels use :class:`Ingestor`)."""
    return (await store(app, [msg]))[0]


#: Handlers start new write transactions only once the acknowledgement path has been quiet this long.
ACK_QUIET_SECONDS = 0.02
#: ... but never wait longer than this for a quiet moment, so sustained traffic cannot starve them.
ACK_MAX_HOLD_SECONDS = 2.0


class Ingestor:
    """Group commit for the acknowledgement path: callbacks arriving together are stored in one transaction.

    Each caller still gets its answer only after its row is committed (store first, then
    acknowledge), but a burst of callbacks shares one write instead of queueing one
    transaction each behind the single SQLite writer. It uses its own connection
    (``app.ingest_sessions``).

    While callbacks arrive, ``app.ingest_idle`` is cleared so this node's handlers do not
    start new write transactions: on SQLite the acknowledgement gets the write lock next
    instead of waiting behind handler work, and on both databases the handlers' CPU work
    does not share the event loop with a burst. Releasing the moment the last batch is
    committed is too early: the platform sends its next callbacks a few milliseconds
    after our 200, and a handler transaction that slipped in between holds them up for
    its whole length (measured: the tail of a 32-wide burst). So handlers are let in once
    nothing has arrived or been acknowledged for ``quiet`` seconds, or, under sustained
    traffic, as soon as nothing is waiting after ``max_hold`` seconds of holding them.
    """

    def __init__(
        self, app: AppContext, max_batch: int = 200, *, quiet: float = ACK_QUIET_SECONDS, max_hold: float = ACK_MAX_HOLD_SECONDS
    ) -> None:
        self._app = app
        self._max_batch = max_batch
        self._quiet = quiet
        self._max_hold = max_hold
        self._waiting: list[tuple[Inbound, asyncio.Future[Accepted]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._held_since: float | None = None  # loop time handlers were first held back, None = not held
        self._last = 0.0  # loop time of the last arrival or acknowledgement
        self._timer: asyncio.TimerHandle | None = None

    async def accept(self, msg: Inbound) -> Accepted:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._waiting.append((msg, future))
        self._last = loop.time()
        if self._held_since is None:
            self._held_since = self._last
        self._app.ingest_idle.clear()  # handlers hold back new write transactions (see the class docstring)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            await self._drain_all()
        finally:
            # no await in here: a caller arriving now must either be drained above or start a new drainer
            self._last = asyncio.get_running_loop().time()
            self._release_when_quiet()

    def _release_when_quiet(self) -> None:
        """Let handlers in if the acknowledgement path is quiet (or has held them long enough); else check again later."""
        if self._timer is not None:
            self._timer.cancel()  # harmless when it is the timer that called us
            self._timer = None
        if self._waiting or self._held_since is None:
            return  # the running drainer calls this again when it is done
        if self._drainer is not None and not self._drainer.done() and self._drainer is not asyncio.current_task():
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = self._last + self._quiet
        if now >= due or now - self._held_since >= self._max_hold:
            self._held_since = None
            self._app.ingest_idle.set()
        else:
            self._timer = loop.call_at(due, self._release_when_quiet)

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


@functools.cache
def _claim_statements(dialect: str) -> PreparedClaim:
    """The inbox claim and its probe, built once per dialect (parameters: ``now``, ``lease_until``, the limit)."""
    return prepare_claim(
        InboxRow,
        dialect,
        claimable=_claimable(bindparam("now", type_=InboxRow.lease_until.type)),
        values={"status": "processing", "lease_until": bindparam("lease_until", type_=InboxRow.lease_until.type),
                "attempts": InboxRow.attempts + 1},
        returning=(InboxRow,),
        in_order_by=("platform", "sender"),
        unfinished=lambda row: row.status.in_(UNFINISHED),
    )


def batch_size(ready: int, workers: int, most: int) -> int:
    """How many of ``ready`` claimable rows one claim takes: an even share per worker, at most ``most``.

    Each ready row is the next message of a different sender (per-sender order), so with
    six senders a claim can never take more than six, and with two hundred it takes up
    to ``most``: one transaction and one commit for all of them. Sharing them out leaves
    the node's other workers a batch too, instead of an empty claim (on PostgreSQL, where
    they run side by side; see :func:`claim_batch` for SQLite).
    """
    return max(1, min(most, -(-ready // max(1, workers))))


async def claim_batch(app: AppContext, limit: int | None = None, *, probe: bool = True) -> list[InboxRow]:
    """Claim a batch in one statement; returns the rows whole (detached), in id order.

    Returning the rows saves the dispatcher a read per message: it has the text, sender and
    attempt number it needs before its transaction, and checks ownership inside it with
    the done mark itself (:func:`finish_owned`). A read-only probe runs first: it sizes
    the batch (:func:`batch_size`, at most ``limit`` or ``[pipeline] claim_batch``) and,
    when nothing is claimable (an idle poll, or every row blocked behind its sender's
    earlier one), returns without a write transaction. ``probe=False`` skips it when the
    caller's last claim came back full (a backlog: the probe would only say "a full batch",
    at the cost of a read transaction). The claim itself is a write, so it waits for the
    acknowledgement path like the handlers do (see :class:`Ingestor`).
    """
    await app.ingest_idle.wait()
    p = app.config.pipeline
    dialect = app.engine.dialect.name
    most = limit if limit is not None else p.claim_batch
    # On SQLite a process's transactions run one after another on its one connection:
    # splitting the ready rows between workers would only double the commits (measured:
    # 21 statements a message instead of 16 with six senders), so one claim takes them all.
    workers = p.workers if limit is None and dialect == "postgresql" else 1
    statements = _claim_statements(dialect)
    now = app.clock.now()
    ready = most * max(1, workers)
    if probe:
        async with read_session(app.sessions) as session:
            ready = len((await session.execute(statements.probe, {"now": now, LIMIT: ready})).all())
        if not ready:
            return []
    params = {"now": now, "lease_until": now + timedelta(seconds=p.lease_seconds), LIMIT: batch_size(ready, workers, most)}
    async with app.sessions() as session:
        async with session.begin():
            owned = list((await session.execute(statements.claim, params)).scalars().all())
    return sorted(owned, key=lambda row: row.id)


async def claim(app: AppContext, limit: int | None = None) -> list[tuple[int, int]]:
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


class LeaseLost(Exception):
    """A row this worker processed was taken over by another (its lease expired): the transaction must not commit."""


@functools.cache
def _finish_all_statement() -> Any:
    table = InboxRow.__table__
    return (
        update(table)
        .where(tuple_(table.c.id, table.c.attempts).in_(bindparam("owned", expanding=True)), table.c.status == "processing")
        .values(status="done", processed_at=bindparam("now", type_=table.c.processed_at.type), lease_until=None, error="")
        .returning(table.c.id)
    )


async def finish_all(session: AsyncSession, owned: Sequence[tuple[int, int]], now: datetime) -> set[int]:
    """Mark the ``(id, attempt)`` rows done in one statement, in the caller's transaction; returns the ids marked.

    The batch form of :func:`finish_owned`, run after the messages' handler work: an id
    missing from the result was taken over by another worker, and the caller must roll
    its transaction back (the rows are then processed one by one, each checking first).
    """
    if not owned:
        return set()
    result = await session.execute(_finish_all_statement(), {"owned": [tuple(pair) for pair in owned], "now": now})
    return {row_id for (row_id,) in result.all()}


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
