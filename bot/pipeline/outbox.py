"""The durable outbox store: replies are rows first, deliveries second.

Rows are written in the handler's transaction (through :mod:`bot.notify`); delivery
workers claim due rows with a lease and record the outcome here. Rows to one recipient
go out in order: a row is not claimed while an earlier one to the same recipient is
still undelivered.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import HELD, Platform, Reply
from storage.claims import LIMIT, PreparedClaim, prepare_claim
from storage.db import read_session
from storage.models import OutboxRow

UNFINISHED = ("pending", "sending")
LOCAL = Platform.LOCAL.value
#: Outbox context key set by ``genjin outbox retry``: the age limit counts from here.
REQUEUED_AT = "requeued_at"


def row_values(
    *,
    platform: str,
    recipient: str,
    reply: Reply,
    conversation: str = "",
    inbox_id: int | None = None,
    context: dict[str, object] | None = None,
    now: datetime,
    status: str = "pending",
    last_error: str = "",
) -> dict[str, object]:
    """The columns of one new outbox row (for :func:`enqueue` and :func:`enqueue_many`)."""
    return {
        "platform": platform,
        "recipient": recipient,
        "conversation": conversation,
        "payload": reply.to_payload(),
        "context": dict(context or {}),
        "inbox_id": inbox_id,
        "next_attempt_at": now,
        "created_at": now,
        "status": status,
        "last_error": last_error,
    }


def enqueue(session: AsyncSession, values: dict[str, object]) -> OutboxRow:
    """Add the outbox row with ``values`` (from :func:`row_values`) to the caller's transaction.

    To address people use :func:`bot.pipeline.notify.notify`.
    """
    row = OutboxRow(**values)
    session.add(row)
    return row


async def enqueue_many(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Insert several outbox rows (from :func:`row_values`) in one statement, in the caller's transaction."""
    if rows:
        await session.execute(insert(OutboxRow), list(rows))


def backoff(app: AppContext, attempts: int) -> float:
    p = app.config.pipeline
    return float(min(p.outbox_backoff_max, p.outbox_backoff_base * (2 ** max(0, attempts - 1))))


def _held_here(row: type[OutboxRow]) -> ColumnElement[bool]:
    """Local rows of a conversation held by a chat process go to that process only; others to any node.

    ``held_mine`` is the pattern of this process's own held conversations ("" when it holds
    none: ``LIKE ''`` matches only an empty conversation, which is never held).
    """
    return or_(row.platform != LOCAL, ~row.conversation.like(f"%{HELD}%"), row.conversation.like(bindparam("held_mine")))


@functools.cache
def _claim_statements(dialect: str) -> PreparedClaim:
    """The outbox claim and its probe, built once per dialect.

    Parameters: ``now``, ``lease_until``, ``platforms`` (this node's channels), ``held_mine``
    and the limit.
    """
    now = bindparam("now", type_=OutboxRow.next_attempt_at.type)

    def claimable(row: type[OutboxRow]) -> ColumnElement[bool]:
        return and_(
            row.status.in_(UNFINISHED),
            row.next_attempt_at <= now,
            or_(row.lease_until.is_(None), row.lease_until <= now),
        )

    return prepare_claim(
        OutboxRow,
        dialect,
        claimable=claimable,
        values={
            "status": "sending",
            "lease_until": bindparam("lease_until", type_=OutboxRow.lease_until.type),
            "attempts": OutboxRow.attempts + 1,
        },
        returning=(OutboxRow,),
        in_order_by=("platform", "recipient"),
        # an alert held for its merge window or quiet hours does not hold back later replies
        unfinished=lambda row: and_(row.status.in_(UNFINISHED), or_(row.merge_key.is_(None), row.next_attempt_at <= now)),
        where=lambda row: and_(row.platform.in_(bindparam("platforms", expanding=True)), _held_here(row)),
    )


async def claim(app: AppContext, platforms: Iterable[str], limit: int | None = None) -> list[OutboxRow]:
    """Claim up to ``limit`` (default ``[pipeline] outbox_batch``) due rows for the given platforms, in id order.

    A read-only probe runs first, so a poll that finds nothing due costs no write transaction.
    """
    now = app.clock.now()
    enabled = list(platforms)
    holder = str(getattr(app.channels.get(LOCAL), "holder", "") or "") if LOCAL in enabled else ""
    params: dict[str, object] = {
        "now": now,
        "platforms": enabled,
        "held_mine": f"%{HELD}{holder}" if holder else "",
        LIMIT: limit if limit is not None else app.config.pipeline.outbox_batch,
    }
    statements = _claim_statements(app.engine.dialect.name)
    async with read_session(app.sessions) as session:
        if not (await session.execute(statements.probe, {**params, LIMIT: 1})).first():
            return []
    params["lease_until"] = now + timedelta(seconds=app.config.pipeline.lease_seconds)
    async with app.sessions() as session:
        async with session.begin():
            claimed = list((await session.execute(statements.claim, params)).scalars().all())
    return sorted(claimed, key=lambda row: row.id)


async def finish(app: AppContext, outcomes: Sequence[tuple[int, dict[str, object]]]) -> None:
    """Record delivery outcomes (sent, failed, or pending again with the next attempt time) in one transaction.

    Outcomes with the same columns go in one executemany ``UPDATE`` by primary key, so a
    batch of replies costs one write transaction instead of one each.
    """
    if not outcomes:
        return
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row_id, values in outcomes:
        groups.setdefault(tuple(sorted(values)), []).append({"id": row_id, **values})
    async with app.sessions() as session:
        async with session.begin():
            for params in groups.values():
                await session.execute(update(OutboxRow), params)


def queued_since(row: OutboxRow) -> datetime:
    """When the row's current delivery effort began: its creation, or its last manual re-queue."""
    requeued = (row.context or {}).get(REQUEUED_AT)
    created = _aware(row.created_at)
    if isinstance(requeued, str):
        try:
            return max(created, datetime.fromisoformat(requeued))
        except ValueError:
            pass
    return created


# ---- maintenance: the backlog (/healthz, /metrics) and re-queuing failed rows (genjin outbox retry) ----


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
