"""Turning one claimed inbox row into handler work and outbox rows, in one transaction.

Slow preparation that needs no database (downloading and transcribing a voice memo)
runs first, outside the transaction, through the registered preprocessors; SQLite holds
its write lock for the whole transaction and new callbacks must not wait behind a
transcription. The dispatcher knows the router it was given, not which features exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.pipeline import inbox
from bot.pipeline.notify import InPlace, notify
from bot.redact import redact
from bot.router import HandlerContext, Router
from storage.lookups import attach, snapshot
from storage.models import InboxRow, OutboxRow, Person
from storage.people import find_person

Preprocessor = Callable[[AppContext, Inbound], Awaitable[Inbound]]

UNREGISTERED_REPLY = (
    "您好，您还没有在跟进助手（Genjin）中登记，暂时无法记录跟进。请联系销售运营同事把您加入组织架构后再试。"
)
UNREGISTERED_QUIET = timedelta(hours=24)
FAILURE_REPLY = "抱歉，这条消息处理出错了，已记录并通知管理员，请稍后再试。"


async def _sender(app: AppContext, platform: str, sender: str) -> dict[str, Any] | None:
    """The sender's person as a snapshot: from the per-process cache, else read (committed data) and cached.

    None means "not found now": the transaction looks again, so someone just imported is
    never turned away by a cache.
    """
    cached = app.lookups.person(platform, sender)
    if cached is not None:
        return cached
    async with app.sessions() as session:
        person = await find_person(session, platform, sender)
    if person is None:
        return None
    app.lookups.remember_person(None, platform, sender, person)
    return snapshot(person)


def sender_of(row: InboxRow) -> InPlace:
    """The conversation ``row`` came from, with what the channel needs to reply in place (e.g. DingTalk's sessionWebhook)."""
    extra = (row.payload or {}).get("extra") or {}
    context = {k: v for k, v in extra.items() if k.startswith("reply_")}
    return InPlace(platform=row.platform, recipient=row.sender, conversation=row.conversation, context=context)


async def _already_told(session: AsyncSession, row: InboxRow, now: datetime) -> bool:
    recent = await session.scalar(
        select(func.count(OutboxRow.id)).where(
            OutboxRow.platform == row.platform,
            OutboxRow.recipient == row.sender,
            OutboxRow.created_at >= now - UNREGISTERED_QUIET,
        )
    )
    return bool(recent)


class Dispatcher:
    """The router and preprocessors of one runtime, applied to claimed inbox rows."""

    def __init__(self, router: Router, preprocessors: Sequence[Preprocessor] = ()) -> None:
        self.router = router
        self.preprocessors: list[Preprocessor] = list(preprocessors)

    async def prepare(self, app: AppContext, msg: Inbound) -> Inbound:
        for step in self.preprocessors:
            msg = await step(app, msg)
        return msg

    async def _deliver_replies(
        self, app: AppContext, session: AsyncSession, row: InboxRow, person: Person, replies: list[Reply], now: datetime
    ) -> None:
        for reply in replies:
            to = sender_of(row) if reply.to is None or reply.to == person.key else reply.to
            await notify(app, session, to, reply, now=now, inbox_id=row.id)

    async def process(self, app: AppContext, row_id: int, attempt: int, claimed: InboxRow | None = None) -> str:
        """Process a row this worker owns. Returns the outcome label for metrics.

        ``claimed`` is the row as the claim returned it (the worker loop passes it, saving a
        read); without it the row is read first.
        """
        row = claimed
        if row is None:
            async with app.sessions() as session:
                row = await session.get(InboxRow, row_id)
            if not inbox.owned(row, attempt):
                return "lost"
            assert row is not None
        msg = inbox.row_to_inbound(row)
        known = await _sender(app, row.platform, row.sender)
        prepared = await self.prepare(app, msg) if known is not None else msg

        await app.ingest_idle.wait()  # acknowledgements first (see bot.pipeline.inbox.Ingestor)
        now = app.clock.now()
        async with app.sessions() as session:
            async with session.begin():
                # keep what preprocessing found (transcripts, speech errors) with the message
                payload = {**(row.payload or {}), "extra": prepared.extra} if prepared.extra != msg.extra else None
                if not await inbox.finish_owned(session, row_id, attempt, now, payload=payload):
                    return "lost"  # our lease expired and another worker took over
                person = attach(session, Person, known) if known is not None else await find_person(session, row.platform, row.sender)
                if person is None:
                    outcome = "unregistered"
                    if not await _already_told(session, row, now):
                        await notify(app, session, sender_of(row), Reply(text=UNREGISTERED_REPLY), now=now, inbox_id=row.id)
                else:
                    outcome = "handled"
                    if known is None:
                        app.lookups.remember_person(session, row.platform, row.sender, person)
                    if person.last_platform != row.platform:
                        person.last_platform = row.platform
                    hc = HandlerContext(app=app, session=session, person=person, inbox_id=row.id, now=now, router=self.router)
                    replies = await self.router.dispatch(prepared, hc)
                    await self._deliver_replies(app, session, row, person, replies + hc.pushes, now)
        app.metrics.handling.observe(max(0.0, (now - row.received_at).total_seconds()))
        return outcome

    async def handle(self, app: AppContext, row_id: int, attempt: int, claimed: InboxRow | None = None) -> None:
        """Process one claimed row; on error retry later or give up with a polite reply."""
        try:
            outcome = await self.process(app, row_id, attempt, claimed)
            app.metrics.handled.labels(outcome).inc()
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the worker
            app.log.exception("inbox.handler_error", inbox_id=row_id, attempt=attempt)
            app.metrics.handled.labels("error").inc()
            app.lookups.invalidate()  # the error may come from a stale cached row (e.g. a hospital deleted elsewhere)
            await self._record_failure(app, row_id, attempt, redact(f"{type(exc).__name__}: {exc}"))
        app.outbox_wakeup.set()

    async def _record_failure(self, app: AppContext, row_id: int, attempt: int, error: str) -> None:
        now = app.clock.now()
        async with app.sessions() as session:
            async with session.begin():
                row = await session.get(InboxRow, row_id, with_for_update=True)
                if not inbox.owned(row, attempt):
                    return
                assert row is not None
                if attempt >= app.config.pipeline.max_attempts:
                    inbox.mark_failed(row, error, now)
                    await notify(app, session, sender_of(row), Reply(text=FAILURE_REPLY), now=now, inbox_id=row.id)
                else:
                    inbox.mark_retry(row, error, now)

    async def work_once(self, app: AppContext) -> int:
        """Claim a batch and process it; returns how many rows were claimed."""
        owned = await inbox.claim_batch(app)
        for row in owned:
            await self.handle(app, row.id, row.attempts, row)
        return len(owned)
