"""The inbox → dispatcher → outbox pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bot.channels.base import PermanentFailure, TemporaryFailure
from bot.channels.local import LocalChannel
from bot.clock import FakeClock
from bot.messages import Inbound, Outbound, Reply
from bot.pipeline import inbox, outbox
from bot.pipeline.dispatcher import Dispatcher
from bot.router import HandlerContext, Router, text
from storage.models import InboxRow, OutboxRow
from tests.conftest import RuntimeFactory
from tests.harness import MONDAY, Harness


async def _count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with app.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_same_message_three_times_gives_one_result(harness: Harness) -> None:
    app = harness.app
    msg = harness.message("zhangwei", "华山医院张科长说下周三前要报价", msg_id="wx-msg-42")
    results = [await inbox.accept(app, msg) for _ in range(3)]
    assert [r.duplicate for r in results] == [False, True, True]
    await harness.settle()
    # a redelivery after processing is still recognised
    assert (await inbox.accept(app, msg)).duplicate
    await harness.settle()
    assert await _count(app, InboxRow) == 1
    assert await _count(app, OutboxRow) == 1
    assert len(harness.pushes("zhangwei")) == 1


async def test_concurrent_redeliveries_store_once(harness: Harness) -> None:
    app = harness.app
    msg = harness.message("lina", "嗯", msg_id="same-id")
    results = await asyncio.gather(*(inbox.accept(app, msg) for _ in range(8)))
    assert sum(not r.duplicate for r in results) == 1
    assert await _count(app, InboxRow) == 1


class FlakyChannel(LocalChannel):
    """Fails the first ``failures`` sends temporarily, then delivers."""

    def __init__(self, app, failures: int, permanent: bool = False) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app, lambda msg: inbox.accept(app, msg))
        self.failures = failures
        self.permanent = permanent
        self.attempts: list[int] = []

    async def send(self, out: Outbound) -> None:
        self.attempts.append(out.id)
        if self.permanent:
            raise PermanentFailure("recipient does not exist")
        if self.failures > 0:
            self.failures -= 1
            raise TemporaryFailure("HTTP 502 from platform")
        await super().send(out)


async def test_outbox_retries_then_delivers_once(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(MONDAY)
    runtime = await make_runtime({"pipeline": {"outbox_backoff_base": 10, "outbox_backoff_max": 100}}, clock=clock)
    app = runtime.app
    flaky = FlakyChannel(app, failures=2)
    app.channels["local"] = flaky
    delivered: list[str] = []
    flaky.add_listener(lambda out, text: delivered.append(text))
    await inbox.accept(app, Harness(runtime).message("zhangwei", "你好"))
    await runtime.work_once()
    assert await runtime.deliver_once() == 1 and delivered == []  # first try fails
    assert await runtime.deliver_once() == 0  # backing off: not due yet
    clock.advance(timedelta(seconds=10))
    assert await runtime.deliver_once() == 1 and delivered == []  # second try fails
    clock.advance(timedelta(seconds=10))
    assert await runtime.deliver_once() == 0  # the backoff doubled to 20 s
    clock.advance(timedelta(seconds=10))
    assert await runtime.deliver_once() == 1
    assert len(delivered) == 1
    assert len(flaky.attempts) == 3
    async with app.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert row.status == "sent" and row.attempts == 3
    # nothing left to send, however much later
    clock.advance(timedelta(hours=1))
    assert await runtime.deliver_once() == 0
    assert len(delivered) == 1


async def test_outbox_backoff_grows_and_permanent_failure_is_recorded(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"pipeline": {"outbox_backoff_base": 10, "outbox_backoff_max": 100}})
    app = runtime.app
    assert [outbox.backoff(app, n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]

    app.channels["local"] = FlakyChannel(app, failures=0, permanent=True)
    await inbox.accept(app, Harness(runtime).message("zhangwei", "你好"))
    await runtime.work_once()
    await runtime.deliver_once()
    async with app.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert row.status == "failed"
    assert "recipient does not exist" in row.last_error


class BuggyChannel(LocalChannel):
    """Raises an unexpected exception (a bug, not a platform failure) on every send."""

    async def send(self, out: Outbound) -> None:
        raise RuntimeError("bug in the renderer")


async def test_outbox_gives_up_after_max_attempts_on_unexpected_errors(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(MONDAY)
    runtime = await make_runtime({"pipeline": {"outbox_max_attempts": 2, "outbox_backoff_base": 1}}, clock=clock)
    app = runtime.app
    app.channels["local"] = BuggyChannel(app, functools.partial(inbox.accept, app))
    await inbox.accept(app, Harness(runtime).message("zhangwei", "你好"))
    await runtime.work_once()
    for _ in range(5):
        await runtime.deliver_once()
        clock.advance(timedelta(minutes=5))
    async with app.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert row.status == "failed" and row.attempts == 2
    assert "gave up" in row.last_error


async def test_temporary_failures_outlive_max_attempts_until_max_age_then_retry_command(
    make_runtime: RuntimeFactory,
) -> None:
    """Issue 17: a long outage used to burn outbox_max_attempts and lose the replies."""
    from bot.pipeline.outbox import backlog, requeue_failed

    clock = FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc))
    runtime = await make_runtime(
        {"pipeline": {"outbox_max_attempts": 2, "outbox_max_age_hours": 24, "outbox_backoff_max": 600}}, clock=clock
    )
    app = runtime.app
    flaky = FlakyChannel(app, failures=10_000)
    app.channels["local"] = flaky
    await inbox.accept(app, Harness(runtime).message("zhangwei", "你好"))
    await runtime.work_once()
    for _ in range(30):  # 30 attempts, 10 minutes apart: far past outbox_max_attempts
        await runtime.deliver_once()
        clock.advance(timedelta(minutes=10))
    async with app.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert row.status == "pending" and row.attempts == 30
    assert (await backlog(app)).pending == 1 and (await backlog(app)).oldest_pending_seconds >= 5 * 3600
    clock.advance(timedelta(hours=20))
    await runtime.deliver_once()
    async with app.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert row.status == "failed" and "gave up after 25" in row.last_error

    flaky.failures = 0  # the platform is back: the operator re-queues, the reply goes out
    assert await requeue_failed(app, since=datetime(2026, 11, 23, tzinfo=timezone.utc)) == 1
    await runtime.deliver_once()
    async with app.sessions() as session:
        row = (await session.scalars(select(OutboxRow))).one()
    assert row.status == "sent"


async def test_unknown_sender_gets_one_polite_reply(harness: Harness) -> None:
    first = await harness.say("stranger", "你好，我是新来的")
    second = await harness.say("stranger", "王主任说下个月招标")
    assert len(first) == 1 and "登记" in first[0]
    assert second == []  # never nag twice
    from storage.models import Account, Note

    assert await _count(harness.app, Note) == 0
    assert await _count(harness.app, Account) == 0


async def test_handler_error_retries_then_apologises(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"pipeline": {"max_attempts": 2}})
    app = runtime.app
    calls: list[str] = []
    broken = Router("broken")

    @broken.on(text())
    async def boom(msg: Inbound, hc: HandlerContext) -> Reply:
        calls.append(msg.text)
        hc.session.add(OutboxRow(platform="local", recipient="nobody", payload={"text": "half"}))
        raise RuntimeError("database said no")

    runtime.dispatcher = Dispatcher(broken)
    h = Harness(runtime)
    await inbox.accept(app, h.message("zhangwei", "会失败的消息"))
    await runtime.work_once()
    async with app.sessions() as session:
        row = (await session.scalars(select(InboxRow))).one()
        assert row.status == "pending" and "database said no" in row.error
        row.lease_until = None
        await session.commit()
    await runtime.work_once()
    await runtime.deliver_once()
    assert len(calls) == 2
    async with app.sessions() as session:
        row = (await session.scalars(select(InboxRow))).one()
        rows = (await session.scalars(select(OutboxRow))).all()
    assert row.status == "failed"
    # the handler's half-written row was rolled back; only the apology exists
    assert [r.recipient for r in rows] == ["zhangwei"]
    assert "出错" in h.pushes("zhangwei")[0]


async def test_messages_from_one_sender_are_processed_in_order(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime()
    app = runtime.app
    seen: list[str] = []
    r = Router("order")

    @r.on(text())
    async def record(msg: Inbound, hc: HandlerContext) -> None:
        await asyncio.sleep(0.01)
        seen.append(msg.text)
        return None

    runtime.dispatcher = Dispatcher(r)
    h = Harness(runtime)
    for i in range(6):
        await inbox.accept(app, h.message("zhangwei", f"m{i}"))
    await asyncio.gather(*(runtime.work_once() for _ in range(3)))
    await h.settle()
    assert seen == [f"m{i}" for i in range(6)]


async def test_expired_lease_is_reclaimed_and_stale_worker_cannot_finish(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"pipeline": {"lease_seconds": 1}})
    app = runtime.app
    h = Harness(runtime)
    await inbox.accept(app, h.message("zhangwei", "你好"))
    claimed = await inbox.claim(app)
    assert len(claimed) == 1
    assert await inbox.claim(app) == []  # leased
    # the first worker "dies"; after the lease another worker takes over
    async with app.sessions() as session:
        row = (await session.scalars(select(InboxRow))).one()
        row.lease_until = app.clock.now() - timedelta(seconds=1)
        await session.commit()
    reclaimed = await inbox.claim(app)
    assert len(reclaimed) == 1 and reclaimed[0][1] == 2
    assert await runtime.dispatcher.process(app, *claimed[0]) == "lost"  # stale attempt number
    assert await runtime.dispatcher.process(app, *reclaimed[0]) == "handled"
    assert await _count(app, OutboxRow) == 1


async def test_concurrent_notes_about_a_new_hospital_create_it_once(make_runtime: RuntimeFactory) -> None:
    """Several workers on PostgreSQL may all miss a hospital and race to create it."""
    from storage.models import Account, Note

    runtime = await make_runtime()
    app = runtime.app
    h = Harness(runtime)
    reps = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
    for rep in reps:
        await inbox.accept(app, h.message(rep, "今天去华山医院设备科拜访了赵科长，下周二前把报价单发过去"))
    owned = [(await inbox.claim(app, limit=1))[0] for _ in reps]
    await asyncio.gather(*(runtime.dispatcher.handle(app, row_id, attempt) for row_id, attempt in owned))
    await h.settle()
    async with app.sessions() as session:
        rows = (await session.scalars(select(InboxRow))).all()
    assert [(r.status, r.attempts) for r in rows] == [("done", 1)] * len(reps)
    assert await _count(app, Account) == 1
    assert await _count(app, Note) == len(reps)


async def test_claims_honour_their_limit(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime()
    app = runtime.app
    h = Harness(runtime)
    for rep in ["zhangwei", "lina", "chenjing", "liuyang", "yangfan"]:
        await inbox.accept(app, h.message(rep, "你好"))
    first = await inbox.claim(app, limit=2)
    second = await inbox.claim(app, limit=2)
    assert len(first) == 2 and len(second) == 2 and not set(first) & set(second)
    for row_id, attempt in first + second + await inbox.claim(app, limit=2):
        await runtime.dispatcher.handle(app, row_id, attempt)
    assert len(await outbox.claim(app, app.channels, limit=3)) == 3
    assert len(await outbox.claim(app, app.channels, limit=3)) == 2


async def test_genjin_outbox_retry_requeues_failed_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What `genjin outbox retry` runs after a long outage: it builds the whole runtime from config.

    (Called below the argument parsing, which also configures process-wide logging.)
    """
    from bot.cli.outbox import _retry
    from storage.db import create_engine as engine_for
    from storage.db import session_factory, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    await upgrade(url)
    engine = engine_for(url)
    async with session_factory(engine)() as session:
        async with session.begin():
            outbox.enqueue(session, outbox.row_values(platform="local", recipient="zhangwei", reply=Reply(text="你好"), now=MONDAY, status="failed"))
    await engine.dispose()
    from tests.conftest import make_config

    assert await _retry(make_config(url), None) == 1
