"""Turning claimed inbox rows into handler work and outbox rows: each message's in one transaction.

Slow preparation that needs no database (downloading and transcribing a voice memo)
runs first, outside the transaction, through the registered preprocessors; SQLite holds
its write lock for the whole transaction and new callbacks must not wait behind a
transcription. The dispatcher knows the router it was given, not which features exist.

Round trips are what a message costs (on SQLite each also holds the one writer): the
claim returns whole rows, the sender comes from the per-process cache
(:mod:`storage.lookups`), ownership is checked by the done mark itself, the rows of one
claim (one per sender) share a transaction, and their answers are inserted together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.pipeline import inbox, outbox
from bot.pipeline.notify import InPlace, in_place, notify
from bot.redact import redact
from bot.router import HandlerContext, Router
from storage.db import read_session
from storage.lookups import attach, snapshot
from storage.models import InboxRow, OutboxRow, Person
from storage.people import find_person

Preprocessor = Callable[[AppContext, Inbound], Awaitable[Inbound]]
# Reads, in a batch's transaction before its messages run, what each of them would read first
# about its sender (the person ids of the batch; ``now`` is the handlers' now): one statement
# for the batch instead of one per message.
Prefetcher = Callable[[AppContext, AsyncSession, Sequence[int], datetime], Awaitable[None]]

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
    async with read_session(app.sessions) as session:
        person = await find_person(session, platform, sender)
    if person is None:
        return None
    app.lookups.remember_person(None, platform, sender, person)
    return snapshot(person)


@dataclass(frozen=True)
class _Job:
    """A claimed row made ready for its transaction."""

    row: InboxRow
    attempt: int
    msg: Inbound
    prepared: Inbound
    known: dict[str, Any] | None  # the sender's cached person, None = look in the transaction


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

    def __init__(self, router: Router, preprocessors: Sequence[Preprocessor] = (), prefetchers: Sequence[Prefetcher] = ()) -> None:
        self.router = router
        self.preprocessors: list[Preprocessor] = list(preprocessors)
        self.prefetchers: list[Prefetcher] = list(prefetchers)
        self._backlog = False  # the last claim came back full: the next one skips its probe

    async def prepare(self, app: AppContext, msg: Inbound) -> Inbound:
        for step in self.preprocessors:
            msg = await step(app, msg)
        return msg

    async def _deliver_replies(
        self, app: AppContext, session: AsyncSession, row: InboxRow, person: Person, replies: list[Reply], now: datetime,
        answers: list[dict[str, object]],
    ) -> None:
        """Answers to the sender are collected in ``answers`` (inserted together before the commit); others go through notify."""
        for reply in replies:
            if reply.to is None or reply.to == person.key:
                answers.append(in_place(sender_of(row), reply, now=now, inbox_id=row.id))
            else:
                await notify(app, session, reply.to, reply, now=now, inbox_id=row.id)

    async def _job(self, app: AppContext, row_id: int, attempt: int, claimed: InboxRow | None) -> _Job | None:
        """Everything done before the transaction: the row (unless the claim returned it), the sender, preprocessing.

        None if the row is no longer ours.
        """
        row = claimed
        if row is None:
            async with read_session(app.sessions) as session:
                row = await session.get(InboxRow, row_id)
            if not inbox.owned(row, attempt):
                return None
            assert row is not None
        msg = inbox.row_to_inbound(row)
        known = await _sender(app, row.platform, row.sender)
        prepared = await self.prepare(app, msg) if known is not None else msg
        return _Job(row, attempt, msg, prepared, known)

    async def _apply(
        self, app: AppContext, session: AsyncSession, job: _Job, now: datetime, answers: list[dict[str, object]],
        deferred: list[tuple[int, int]] | None = None,
    ) -> str:
        """The message's handler writes, its outbox rows and its done mark, in the caller's transaction.

        The answers to the sender are appended to ``answers``: the caller inserts them with
        :func:`outbox.enqueue_many` before it commits. With ``deferred`` the done mark is
        left to the caller (appended as ``(id, attempt)``, see :func:`inbox.finish_all`),
        unless preprocessing changed the payload, which is written with the mark here.
        """
        row, msg, prepared, known = job.row, job.msg, job.prepared, job.known
        # keep what preprocessing found (transcripts, speech errors) with the message
        payload = {**(row.payload or {}), "extra": prepared.extra} if prepared.extra != msg.extra else None
        if deferred is not None and payload is None:
            deferred.append((row.id, job.attempt))
        elif not await inbox.finish_owned(session, row.id, job.attempt, now, payload=payload):
            return "lost"  # our lease expired and another worker took over
        person = attach(session, Person, known) if known is not None else await find_person(session, row.platform, row.sender)
        if person is None:
            if not await _already_told(session, row, now):
                await notify(app, session, sender_of(row), Reply(text=UNREGISTERED_REPLY), now=now, inbox_id=row.id)
            return "unregistered"
        if known is None:
            app.lookups.remember_person(session, row.platform, row.sender, person)
        if person.last_platform != row.platform:
            person.last_platform = row.platform
        hc = HandlerContext(app=app, session=session, person=person, inbox_id=row.id, now=now, router=self.router)
        replies = await self.router.dispatch(prepared, hc)
        await self._deliver_replies(app, session, row, person, replies + hc.pushes, now, answers)
        return "handled"

    async def process(self, app: AppContext, row_id: int, attempt: int, claimed: InboxRow | None = None) -> str:
        """Process a row this worker owns, in a transaction of its own. Returns the outcome label for metrics.

        ``claimed`` is the row as the claim returned it (the worker loop passes it, saving a
        read); without it the row is read first.
        """
        job = await self._job(app, row_id, attempt, claimed)
        return "lost" if job is None else await self._process_job(app, job)

    async def _process_job(self, app: AppContext, job: _Job) -> str:
        await app.ingest_idle.wait()  # acknowledgements first (see bot.pipeline.inbox.Ingestor)
        now = app.clock.now()
        async with app.sessions() as session:
            async with session.begin():
                answers: list[dict[str, object]] = []
                outcome = await self._apply(app, session, job, now, answers)
                await outbox.enqueue_many(session, answers)
        if outcome != "lost":
            app.metrics.handling.observe(max(0.0, (now - job.row.received_at).total_seconds()))
        return outcome

    async def handle(self, app: AppContext, row_id: int, attempt: int, claimed: InboxRow | None = None) -> None:
        """Process one claimed row; on error retry later or give up with a polite reply."""
        await self._guarded(app, row_id, attempt, lambda: self.process(app, row_id, attempt, claimed))

    async def _guarded(self, app: AppContext, row_id: int, attempt: int, run: Callable[[], Awaitable[str]]) -> None:
        try:
            outcome = await run()
            app.metrics.handled.labels(outcome).inc()
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the worker
            app.log.exception("inbox.handler_error", inbox_id=row_id, attempt=attempt)
            app.metrics.handled.labels("error").inc()
            app.lookups.invalidate()  # the error may come from a stale cached row (e.g. a hospital deleted elsewhere)
            await self._record_failure(app, row_id, attempt, redact(f"{type(exc).__name__}: {exc}"))
        app.outbox_wakeup.set()

    async def handle_batch(self, app: AppContext, rows: Sequence[InboxRow]) -> None:
        """Process claimed rows (one per sender, see :func:`inbox.claim_batch`) sharing one transaction.

        One commit for several messages instead of one each (on PostgreSQL a commit waits for
        the WAL flush). Each message still commits together with its outbox rows and done
        mark, or not at all: if anything in the shared transaction fails, it is rolled back
        whole and every message is processed again on its own (:meth:`handle`), so a failing
        message gets exactly the retries and apology it would get alone and the others are
        unaffected. When an acknowledgement is waiting (``ingest_idle`` cleared) the
        transaction is committed early and the rest goes into the next one.
        """
        jobs: list[_Job] = []
        for row in rows:
            try:
                job = await self._job(app, row.id, row.attempts, row)
            except Exception:  # noqa: BLE001 - preparation failed: this row goes the single way (and is retried there)
                await self.handle(app, row.id, row.attempts, row)
                continue
            if job is None:
                app.metrics.handled.labels("lost").inc()
            else:
                jobs.append(job)
        while jobs:
            await app.ingest_idle.wait()
            now = app.clock.now()
            done: list[tuple[_Job, str]] = []
            try:
                async with app.sessions() as session:
                    async with session.begin():
                        answers: list[dict[str, object]] = []
                        marks: list[tuple[int, int]] = []
                        senders = [job.known["id"] for job in jobs if job.known is not None]
                        for read in self.prefetchers if len(senders) > 1 else ():
                            await read(app, session, senders, now)
                        for job in jobs:
                            if done and not app.ingest_idle.is_set():
                                break  # let the waiting acknowledgement have the database
                            done.append((job, await self._apply(app, session, job, now, answers, marks)))
                        # one done mark for the batch; a row whose lease was taken over meanwhile rolls it all back
                        if len(await inbox.finish_all(session, marks, now)) != len(marks):
                            raise inbox.LeaseLost("a row of the batch was taken over")
                        await outbox.enqueue_many(session, answers)
            except Exception:  # noqa: BLE001 - rolled back whole: each message again, alone
                app.log.info("inbox.batch_rolled_back", rows=len(done))
                for job in jobs[: max(1, len(done))]:
                    await self._guarded(app, job.row.id, job.attempt, lambda job=job: self._process_job(app, job))  # type: ignore[misc]
                jobs = jobs[max(1, len(done)) :]
                continue
            for job, outcome in done:
                app.metrics.handled.labels(outcome).inc()
                if outcome != "lost":
                    app.metrics.handling.observe(max(0.0, (now - job.row.received_at).total_seconds()))
            jobs = jobs[len(done) :]
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
        owned = await inbox.claim_batch(app, probe=not self._backlog)
        self._backlog = len(owned) >= app.config.pipeline.claim_batch
        if len(owned) == 1:
            await self.handle(app, owned[0].id, owned[0].attempts, owned[0])
        elif owned:
            await self.handle_batch(app, owned)
        return len(owned)
