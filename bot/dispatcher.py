"""Turning one claimed inbox row into handler work and outbox rows, in one transaction.

Slow preparation that needs no database (downloading and transcribing a voice memo)
runs first, outside the transaction, through the registered preprocessors; SQLite holds
its write lock for the whole transaction and new callbacks must not wait behind a
transcription.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.outbox import enqueue
from bot.router import HandlerContext
from storage.models import InboxRow, OutboxRow, Person
from storage.people import find_person, person_by_key, route_to

Preprocessor = Callable[[AppContext, Inbound], Awaitable[Inbound]]

UNREGISTERED_REPLY = (
    "您好，您还没有在跟进助手（Genjin）中登记，暂时无法记录跟进。请联系销售运营同事把您加入组织架构后再试。"
)
UNREGISTERED_QUIET = timedelta(hours=24)


def reply_to_sender(session: AsyncSession, row: InboxRow, reply: Reply, now: datetime) -> None:
    """Answer in the conversation ``row`` came from, with what the channel needs to reply in place."""
    enqueue(
        session,
        platform=row.platform,
        recipient=row.sender,
        conversation=row.conversation,
        reply=reply,
        inbox_id=row.id,
        context=_reply_context(row),
        now=now,
    )


def _reply_context(row: InboxRow) -> dict[str, object]:
    """What a channel needs to answer in place (e.g. DingTalk's sessionWebhook)."""
    extra = (row.payload or {}).get("extra") or {}
    return {k: v for k, v in extra.items() if k.startswith("reply_")}


async def _already_told(session: AsyncSession, row: InboxRow, now: datetime) -> bool:
    recent = await session.scalar(
        select(func.count(OutboxRow.id)).where(
            OutboxRow.platform == row.platform,
            OutboxRow.recipient == row.sender,
            OutboxRow.created_at >= now - UNREGISTERED_QUIET,
        )
    )
    return bool(recent)


async def _route_replies(
    app: AppContext, session: AsyncSession, row: InboxRow, person: Person, replies: list[Reply], now: datetime
) -> None:
    for reply in replies:
        if reply.to is None or reply.to == person.key:
            reply_to_sender(session, row, reply, now)
            continue
        target = await person_by_key(session, reply.to)
        where = route_to(target, app.channels) if target is not None else None
        if where is None:
            app.log.warning("dispatch.unroutable", to=reply.to)
            continue
        enqueue(session, platform=where[0], recipient=where[1], reply=reply, inbox_id=row.id, now=now)


async def prepare(app: AppContext, msg: Inbound) -> Inbound:
    step: Preprocessor
    for step in app.preprocessors:
        msg = await step(app, msg)
    return msg


async def process(app: AppContext, row_id: int, attempt: int) -> str:
    """Process a row this worker owns. Returns the outcome label for metrics."""
    from bot.inbox import row_to_inbound

    async with app.sessions() as session:
        row = await session.get(InboxRow, row_id)
        if row is None or row.status != "processing" or row.attempts != attempt:
            return "lost"
        msg = row_to_inbound(row)
        person = await find_person(session, row.platform, row.sender)
    prepared = await prepare(app, msg) if person is not None else msg

    now = app.clock.now()
    async with app.sessions() as session:
        async with session.begin():
            row = await session.get(InboxRow, row_id, with_for_update=True, populate_existing=True)
            if row is None or row.status != "processing" or row.attempts != attempt:
                return "lost"  # our lease expired and another worker took over
            person = await find_person(session, row.platform, row.sender)
            if person is None:
                outcome = "unregistered"
                if not await _already_told(session, row, now):
                    reply_to_sender(session, row, Reply(text=UNREGISTERED_REPLY), now)
            else:
                outcome = "handled"
                if prepared.extra != msg.extra:
                    # keep what preprocessing found (transcripts, speech errors) with the message
                    row.payload = {**(row.payload or {}), "extra": prepared.extra}
                msg = prepared
                if person.last_platform != row.platform:
                    person.last_platform = row.platform
                hc = HandlerContext(app=app, session=session, person=person, inbox_id=row.id, now=now)
                assert app.router is not None
                replies = await app.router.dispatch(msg, hc)
                await _route_replies(app, session, row, person, replies + hc.pushes, now)
            row.status = "done"
            row.processed_at = now
            row.lease_until = None
            row.error = ""
    app.metrics.handling.observe(max(0.0, (now - row.received_at).total_seconds()))
    return outcome
