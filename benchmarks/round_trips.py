"""SQL round trips per typical note, by pipeline phase (steady state: caches warm).

A "typical note" names a known hospital, a contact and a due date, so it creates a note,
a contact, an opportunity, a task, audit rows, an outbox reply and the inbox done mark.
Every statement the database sees (including BEGIN/COMMIT on SQLite, where the engine
issues BEGIN IMMEDIATE itself) is counted with a ``before_cursor_execute`` listener.

    python benchmarks/round_trips.py                # SQLite in a temp dir
    python benchmarks/round_trips.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/x -v
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections import Counter
from typing import Any

from harness import DEMO_REPS as REPS_6, bench_config, running  # noqa: I001 - benchmarks/ is on sys.path
from sqlalchemy import event

from bot.messages import Inbound, Kind
from bot.pipeline.inbox import accept

TYPICAL = [
    "今天拜访了华山医院设备科张科长，下周三前把报价单发给他",
    "瑞金医院的李主任说下个月招标，周五前把参数发给她",
]


class StatementLog:
    """Statements seen by an engine (the sync engine under the async one), with their SQL."""

    def __init__(self, engine: Any) -> None:
        self.statements: list[str] = []
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._seen)
        event.listen(self._engine, "commit", self._commit)
        event.listen(self._engine, "rollback", self._rollback)

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        self.statements.append(statement)

    def _commit(self, conn: Any) -> None:
        self.statements.append("COMMIT")

    def _rollback(self, conn: Any) -> None:
        self.statements.append("ROLLBACK")

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)
        event.remove(self._engine, "commit", self._commit)
        event.remove(self._engine, "rollback", self._rollback)


async def measure(db_url: str, notes: int, verbose: bool) -> dict[str, float]:
    config = bench_config(db_url, pipeline={"workers": 0, "outbox_workers": 0})
    async with running(config, workers=False) as runtime:
        app = runtime.app

        async def one(text: str, sender: str) -> tuple[list[str], list[str]]:
            await accept(app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=sender, kind=Kind.TEXT,
                                      conversation=sender, text=text))
            log = StatementLog(app.engine)
            try:
                await runtime.work_once()
                handled = list(log.statements)
                log.statements.clear()
                await runtime.deliver_once()
                delivered = list(log.statements)
            finally:
                log.close()
            return handled, delivered

        for text in TYPICAL:  # warm: lexicon, caches, the accounts themselves
            await one(text, "zhangwei")
        handled_total = delivered_total = 0
        last: tuple[list[str], list[str]] = ([], [])
        for i in range(notes):
            last = await one(TYPICAL[i % len(TYPICAL)], "zhangwei")
            handled_total += len(last[0])
            delivered_total += len(last[1])
        # a batch: one typical note from each of six reps, claimed and committed together
        from pipeline_bench import REPS

        for _ in range(2):  # warm every rep (the first message also records where they write from)
            for rep in REPS:
                await accept(app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=rep, kind=Kind.TEXT,
                                          conversation=rep, text=TYPICAL[0]))
            while await runtime.work_once():
                pass
            while await runtime.deliver_once():
                pass
        for rep in REPS:
            await accept(app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=rep, kind=Kind.TEXT,
                                      conversation=rep, text=TYPICAL[0]))
        log = StatementLog(app.engine)
        try:
            while await runtime.work_once():
                pass
            batch_handled = len(log.statements)
            while await runtime.deliver_once():
                pass
            batch_total = len(log.statements)
        finally:
            log.close()
        if verbose:
            for title, stmts in (("handle", last[0]), ("deliver", last[1])):
                print(f"--- {title}: {len(stmts)} statements")
                for s in stmts:
                    print("   ", " ".join(s.split())[:160])
            kinds = Counter(" ".join(s.split()[:2]) for s in last[0] + last[1])
            print("by kind:", dict(kinds))
    return {
        "handle_per_note": handled_total / notes,
        "deliver_per_note": delivered_total / notes,
        "batch6_handle_per_note": batch_handled / len(REPS),
        "batch6_total_per_note": batch_total / len(REPS),
    }


async def drain(db_url: str, n: int, workers: int, reps: int = 200) -> dict[str, float]:
    """Processing throughput without ingest contention: ``n`` mixed messages from ``reps`` reps stored first, then timed to delivered."""
    import time

    from harness import message, seed
    from pipeline_bench import TEXTS
    from sqlalchemy import func, select

    from storage.db import read_session
    from storage.models import InboxRow, OutboxRow

    config = bench_config(db_url, pipeline={"workers": workers, "outbox_workers": 1, "poll_interval": 0.05})
    async with running(config, workers=False) as runtime:
        app = runtime.app
        senders = await seed(runtime, reps)
        await accept(app, Inbound(platform="local", message_id="warm", sender="zhangwei", kind=Kind.TEXT, text=TEXTS[0]))
        await runtime.work_once()
        await runtime.deliver_once()
        if [s.key for s in senders] != REPS_6:
            for sender in senders:
                await accept(app, Inbound(platform="local", message_id=f"warm-{sender.key}", sender=sender.key, kind=Kind.TEXT,
                                          conversation=sender.key, text="收到"))
            while await runtime.work_once():
                pass
            while await runtime.deliver_once():
                pass
        for i in range(n):
            user, text = message(senders, i)
            await accept(app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=user, kind=Kind.TEXT,
                                      conversation=user, text=text))
        log = StatementLog(app.engine)
        start, cpu = time.perf_counter(), time.process_time()
        stop = asyncio.Event()
        from bot.pipeline.workers import poll

        tasks = [asyncio.create_task(poll(f"inbox-{k}", runtime.work_once, wakeup=app.inbox_wakeup, stop=stop, interval=0.05,
                                          log=app.log)) for k in range(workers)]
        tasks.append(asyncio.create_task(poll("outbox", runtime.deliver_once, wakeup=app.outbox_wakeup, stop=stop,
                                              interval=0.05, log=app.log)))
        while True:
            async with read_session(app.sessions) as session:
                left = await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status.in_(("pending", "processing"))))
                left_out = await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status.in_(("pending", "sending"))))
            if not left and not left_out:
                break
            await asyncio.sleep(0.02)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        stop.set()
        app.inbox_wakeup.set()
        app.outbox_wakeup.set()
        await asyncio.gather(*tasks)
        log.close()
    return {"drain_per_s": n / elapsed, "seconds": elapsed, "cpu_ms_per_message": 1000 * cpu / n, "statements_per_message": len(log.statements) / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=20, help="notes to measure after warm-up")
    parser.add_argument("-v", action="store_true", help="print the statements of the last note")
    parser.add_argument("--drain", type=int, default=0, help="also time processing N stored mixed messages (no ingest contention)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=200, help="--drain: reps the messages are spread over (6 = the demo org's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/rt.db"
        result = asyncio.run(measure(db, args.n, args.v))
        if args.drain:
            result.update(asyncio.run(drain(db, args.drain, args.workers, args.reps)))
    print(f"statements per typical note ({db.split(':', 1)[0]}; one note per batch, then a batch of six reps' notes"
          + (f"; drain: {args.reps} reps)" if args.drain else ")"))
    for key, value in result.items():
        print(f"  {key:18s} {value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
