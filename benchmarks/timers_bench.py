"""Timer sweep throughput: N timers (half due, half not), swept by one node.

Each due timer is claimed, its ladder math run on the sales calendar, its state changed
by compare-and-set and one card queued through notify, each in its own transaction —
exactly what production does. Prints timers fired per second and the cost of a sweep
that finds nothing due (the every-5-seconds case).

    python benchmarks/timers_bench.py                      # 100,000 timers on SQLite in a temp dir
    python benchmarks/timers_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, insert, select

from harness import bench_config, running  # noqa: I001 - benchmarks/ is on sys.path
from bot.clock import FakeClock
from bot.messages import Reply
from bot.pipeline.notify import notify
from reminders.timers import sweep_timers
from storage.models import OutboxRow, Timer

START = datetime(2026, 3, 16, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai


async def run(db_url: str, n: int, batch: int) -> dict[str, float | int]:
    clock = FakeClock(START)
    config = bench_config(db_url, pipeline={"workers": 0, "outbox_workers": 0}, timers={"batch": batch})
    async with running(config, workers=False) as runtime:
        runtime.app.clock = clock
        app = runtime.app

        async def card(app_, session, fired) -> None:  # type: ignore[no-untyped-def]
            await notify(app_, session, "zhangwei", Reply(text=f"timer {fired.timer.subject_id}"), now=fired.now)

        app.timers.handle("lead_claim", card)
        async with app.sessions() as session:
            async with session.begin():
                await session.execute(delete(Timer))
                await session.execute(delete(OutboxRow))
        math = app.timers.math("lead_claim")
        due_state = math.start(START)
        due_at = math.next_fire_at(due_state)
        later = START + timedelta(days=30)
        rows = [
            {
                "subject_type": "bench", "subject_id": i, "ladder": "lead_claim", "clock": "business", "level": 0,
                "consumed_seconds": 0.0, "anchor_at": START, "due_at": due_at if i % 2 == 0 else later,
                "state": "running", "version": 1, "attributes": {"owner": "zhangwei"},
                "created_at": START, "updated_at": START,
            }
            for i in range(n)
        ]
        started = time.perf_counter()
        async with app.sessions() as session:
            async with session.begin():
                for chunk in range(0, n, 5000):
                    await session.execute(insert(Timer), rows[chunk : chunk + 5000])
        load = time.perf_counter() - started

        clock.set(START + timedelta(minutes=1))  # nothing due yet
        started = time.perf_counter()
        assert await sweep_timers(app) == 0
        idle = time.perf_counter() - started

        clock.set(START + timedelta(minutes=20))
        started = time.perf_counter()
        fired = await sweep_timers(app)
        sweep = time.perf_counter() - started
        async with app.sessions() as session:
            queued = await session.scalar(select(func.count()).select_from(OutboxRow))
    return {
        "timers": n,
        "due": n // 2 + n % 2,
        "fired": fired,
        "cards_queued": int(queued or 0),
        "insert_seconds": load,
        "idle_sweep_ms": idle * 1000,
        "sweep_seconds": sweep,
        "fired_per_s": fired / sweep if sweep else 0.0,
        "rows_scanned_per_s": n / sweep if sweep else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/timers.db"
        result = asyncio.run(run(db, args.n, args.batch))
    print(f"timer sweep benchmark ({db.split(':', 1)[0]}, batch {args.batch})")
    for key, value in result.items():
        print(f"  {key:20s} {value:.2f}" if isinstance(value, float) else f"  {key:20s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
