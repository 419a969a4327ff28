"""End-to-end pipeline throughput for local-chat text messages.

Messages enter exactly as from a channel (``inbox.accept``, or HTTP POST with --http),
are processed by the real workers and handlers, and are delivered by the outbox to the
local channel. The clock stops when the last reply is delivered.

    python benchmarks/pipeline_bench.py                       # SQLite in a temp dir
    python benchmarks/pipeline_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid

import aiohttp
from sqlalchemy import func, select

from harness import bench_config, running  # noqa: I001 - benchmarks/ is on sys.path
from bot.messages import Inbound, Kind
from bot.pipeline.inbox import accept
from storage.models import InboxRow, OutboxRow

REPS = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
TEXTS = [
    "今天拜访了华山医院设备科张科长，下周三前把报价单发给他",
    "王主任说下个月招标，重点推二代导管，价格可以谈",
    "瑞金医院的合同已经盖章了，总金额一百二十万，下周安排装机",
    "收到",
]


BENCH_TOKEN = "bench-local-token"


async def run(db_url: str, n: int, workers: int, via_http: bool) -> dict[str, float]:
    config = bench_config(
        db_url,
        pipeline={"workers": workers, "outbox_workers": 1, "poll_interval": 0.05},
        local={"http": via_http, "token": BENCH_TOKEN},
    )
    async with running(config, http=via_http) as runtime:
        return await _measure(runtime, n, via_http)


async def _measure(runtime, n: int, via_http: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    app = runtime.app
    # warm up the extractor (lexicon load) so start-up is not counted as throughput
    await accept(app, Inbound(platform="local", message_id="warm", sender="zhangwei", kind=Kind.TEXT, text=TEXTS[0]))
    done = asyncio.Event()
    delivered: list[float] = []

    def on_delivery(out, text) -> None:  # type: ignore[no-untyped-def]
        delivered.append(time.perf_counter())
        if len(delivered) >= expected[0]:
            done.set()

    expected = [10**9]
    app.channels["local"].add_listener(on_delivery)  # type: ignore[attr-defined]
    await asyncio.sleep(1.0)
    warm = len(delivered)

    start = time.perf_counter()
    if via_http:
        async with aiohttp.ClientSession() as http:
            sem = asyncio.Semaphore(32)

            async def post(i: int) -> None:
                async with sem:
                    body = {"user": REPS[i % len(REPS)], "text": TEXTS[i % len(TEXTS)], "id": f"b-{i}"}
                    async with http.post(f"http://127.0.0.1:{runtime.port}/local/messages", json=body, headers={"Authorization": f"Bearer {BENCH_TOKEN}"}) as resp:
                        assert resp.status == 200

            await asyncio.gather(*(post(i) for i in range(n)))
    else:
        for i in range(n):
            await accept(
                app,
                Inbound(
                    platform="local",
                    message_id=uuid.uuid4().hex,
                    sender=REPS[i % len(REPS)],
                    kind=Kind.TEXT,
                    text=TEXTS[i % len(TEXTS)],
                ),
            )
    ingest = time.perf_counter() - start
    # every message yields at least one reply; wait until the outbox is drained
    while True:
        async with app.sessions() as session:
            pending_in = await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status.in_(("pending", "processing"))))
            pending_out = await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status.in_(("pending", "sending"))))
        if not pending_in and not pending_out:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    async with app.sessions() as session:
        rows = (await session.execute(select(InboxRow.received_at, InboxRow.processed_at).where(InboxRow.message_id != "warm"))).all()
    latencies = [(p - r).total_seconds() for r, p in rows if p and r]
    replies = len(delivered) - warm
    return {
        "messages": n,
        "replies": replies,
        "ingest_per_s": n / ingest,
        "end_to_end_per_s": n / elapsed,
        "seconds": elapsed,
        "p50_processing_s": statistics.median(latencies) if latencies else float("nan"),
        "p95_processing_s": statistics.quantiles(latencies, n=20)[18] if len(latencies) > 20 else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--http", action="store_true", help="send through POST /local/messages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        result = asyncio.run(run(db, args.n, args.workers, args.http))
    backend = db.split(":", 1)[0]
    print(f"pipeline benchmark ({backend}, {args.workers} inbox workers, {'HTTP' if args.http else 'in-process'} ingest)")
    for key, value in result.items():
        print(f"  {key:18s} {value:.3f}" if isinstance(value, float) else f"  {key:18s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
