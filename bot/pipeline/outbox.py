"""The durable outbox store: replies are rows first, deliveries second.

Rows are written in the handler's transaction (through :mod:`bot.notify`); delivery
workers claim due rows with a lease and record the outcome here. Rows to one recipient
go out in order: a row is not claimed while an earlier one to the same recipient is
still undelivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from storage.claims import claim_rows
from storage.models import OutboxRow

UNFINISHED = ("pending", "sending")


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
    status: str = "pending",
    last_error: str = "",
) -> OutboxRow:
    """Add one outbox row to the caller's transaction (use :func:`bot.pipeline.notify.notify` to address people)."""
    row = OutboxRow(
        platform=platform,
        recipient=recipient,
        conversation=conversation,
        payload=reply.to_payload(),
        context=dict(context or {}),
        inbox_id=inbox_id,
        next_attempt_at=now,
        created_at=now,
        status=status,
        last_error=last_error,
    )
    session.add(row)
    return row


def backoff(app: AppContext, attempts: int) -> float:
    p = app.config.pipeline
    return float(min(p.outbox_backoff_max, p.outbox_backoff_base * (2 ** max(0, attempts - 1))))


async def claim(app: AppContext, platforms: Iterable[str], limit: int = 20) -> list[OutboxRow]:
    """Claim up to ``limit`` due rows for the given platforms, in id order."""
    now = app.clock.now()
    enabled = list(platforms)

    def claimable(row: type[OutboxRow]) -> object:
        return and_(
            row.status.in_(UNFINISHED),
            row.next_attempt_at <= now,
            or_(row.lease_until.is_(None), row.lease_until <= now),
        )

    async with app.sessions() as session:
        async with session.begin():
            claimed = await claim_rows(
                session,
                OutboxRow,
                claimable=claimable,  # type: ignore[arg-type]
                values={
                    "status": "sending",
                    "lease_until": now + timedelta(seconds=app.config.pipeline.lease_seconds),
                    "attempts": OutboxRow.attempts + 1,
                },
                returning=(OutboxRow,),
                limit=limit,
                in_order_by=("platform", "recipient"),
                unfinished=lambda row: row.status.in_(UNFINISHED),
                where=lambda row: row.platform.in_(enabled),
            )
    return sorted(claimed, key=lambda row: row.id)


async def finish(app: AppContext, row_id: int, **values: object) -> None:
    """Record a delivery outcome (sent, failed, or pending again with the next attempt time)."""
    async with app.sessions() as session:
        async with session.begin():
            await session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))
