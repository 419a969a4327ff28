"""End-to-end pipeline throughput, printed next to the database's own ceiling on this box.

Local platform (default): messages enter exactly as from a channel (``inbox.accept``, or
HTTP POST with --http), are processed by the real workers and handlers, and are
delivered by the outbox to the local channel. ``--platform wecom``: encrypted, signed
callbacks are posted by a separate client process to the WeCom callback URL, and the
replies go through the real ``WeComChannel`` (rendering, token, ``message/send``) to a
stand-in WeCom API over loopback, so send time is included. The clock stops when the
last reply is delivered. Either way the messages come from ``--reps`` reps taking turns
(``harness.message``); ``--reps 6`` is the demo org's reps.

The ceiling: in the same run, against the same database, plain INSERTs of the shape a
message's processing writes (as many rows per message, into a scratch table, with the
inbox workers' concurrency), one transaction and commit per message. Our end-to-end rate
is printed as a fraction of it.

    python benchmarks/pipeline_bench.py                       # SQLite in a temp dir
    python benchmarks/pipeline_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    python benchmarks/pipeline_bench.py --platform wecom      # WeCom callbacks in, message/send out
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

import aiohttp
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, select

from harness import (  # noqa: I001 - benchmarks/ is on sys.path
    DEMO_REPS, DEMO_TEXTS, Sender, StandInWeCom, bench_config, fresh_postgres, message, running, seed, wecom_bench_config,
)
from wecom_callback_bench import start_client
from bot.messages import Inbound, Kind
from bot.pipeline.inbox import accept
from bot.runtime import Runtime
from storage.db import create_engine, read_session, session_factory
from storage.models import Base, InboxRow, OutboxRow

REPS = DEMO_REPS
TEXTS = DEMO_TEXTS


BENCH_TOKEN = "bench-local-token"


async def run(db_url: str, n: int, workers: int, via_http: bool, reps: int) -> dict[str, Any]:
    config = bench_config(
        db_url,
        pipeline={"workers": workers, "outbox_workers": 1, "poll_interval": 0.05},
        local={"http": via_http, "token": BENCH_TOKEN},
    )
    async with running(config, http=via_http) as runtime:
        return await _measure(runtime, n, via_http, await seed(runtime, reps))


async def _measure(runtime, n: int, via_http: bool, senders: list[Sender]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    app = runtime.app
    # warm up the extractor (lexicon load) so start-up is not counted as throughput
    await accept(app, Inbound(platform="local", message_id="warm", sender="zhangwei", kind=Kind.TEXT, text=TEXTS[0]))
    await warm_senders(runtime, senders)
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
    rows_before = await table_counts(runtime)

    start = time.perf_counter()
    if via_http:
        async with aiohttp.ClientSession() as http:
            sem = asyncio.Semaphore(32)

            async def post(i: int) -> None:
                async with sem:
                    user, text = message(senders, i)
                    body = {"user": user, "text": text, "id": f"b-{i}"}
                    async with http.post(f"http://127.0.0.1:{runtime.port}/local/messages", json=body, headers={"Authorization": f"Bearer {BENCH_TOKEN}"}) as resp:
                        assert resp.status == 200

            await asyncio.gather(*(post(i) for i in range(n)))
    else:
        for i in range(n):
            user, text = message(senders, i)
            await accept(app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender=user, kind=Kind.TEXT, text=text))
    ingest = time.perf_counter() - start
    await _drained(runtime)
    elapsed = time.perf_counter() - start
    async with app.sessions() as session:
        rows = (await session.execute(select(InboxRow.received_at, InboxRow.processed_at).where(~InboxRow.message_id.like("warm%")))).all()
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
        "rows_per_message": await _rows_per_message(runtime, rows_before, n),
    }


async def run_wecom(db_url: str, n: int, workers: int, concurrency: int, reps: int) -> dict[str, Any]:
    """The pipeline with WeCom as the platform: callbacks from a client process, replies to the stand-in API."""
    async with StandInWeCom() as wecom:
        config = wecom_bench_config(db_url, wecom, workers)
        async with running(config, http=True) as runtime:
            senders = await seed(runtime, reps)
            await warm_senders(runtime, senders, "wecom")
            url = f"http://127.0.0.1:{runtime.port}{config.wecom.callback_path}"
            client = await start_client(url, wecom, n, concurrency, senders)
            assert client.stdin is not None and client.stdout is not None
            await _drained(runtime)  # the client's warm-up callbacks (and the extractor load) are not counted
            rows_before = await table_counts(runtime)
            sends_before = wecom.sends
            client.stdin.write(b"go\n")
            await client.stdin.drain()
            assert (await client.stdout.readline()).strip() == b"burst"
            start = time.perf_counter()
            await client.stdout.readline()  # its results: the burst is acknowledged
            ingest = time.perf_counter() - start
            if await client.wait() != 0:
                raise RuntimeError("the callback client failed")
            await _drained(runtime)
            elapsed = time.perf_counter() - start
            return {
                "senders": len(senders),
                "messages": n,
                "wecom_api_sends": wecom.sends - sends_before,
                "ingest_per_s": n / ingest,
                "end_to_end_per_s": n / elapsed,
                "seconds": elapsed,
                "rows_per_message": await _rows_per_message(runtime, rows_before, n),
            }


async def warm_senders(runtime: Runtime, senders: list[Sender], platform: str = "local") -> None:
    """A generated team's reps have each written before (as on any morning): one "收到" each on ``platform``, processed
    before the clock starts.

    The demo senders are left as every earlier run had them (only the extractor warm-up).
    """
    if [s.key for s in senders] == DEMO_REPS:
        return
    for sender in senders:
        user = sender.id_on(platform)
        await accept(runtime.app, Inbound(platform=platform, message_id=f"warm-{user}", sender=user, kind=Kind.TEXT,
                                          conversation=user, text="收到"))
    await _drained(runtime)


async def _drained(runtime: Runtime) -> None:
    """Until no message is waiting or being processed and no reply is waiting to be sent."""
    while True:
        async with read_session(runtime.app.sessions) as session:
            pending_in = await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status.in_(("pending", "processing"))))
            pending_out = await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status.in_(("pending", "sending"))))
        if not pending_in and not pending_out:
            return
        await asyncio.sleep(0.05)


async def table_counts(runtime: Runtime) -> dict[str, int]:
    """Rows in every table of the schema."""
    async with read_session(runtime.app.sessions) as session:
        return {table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0) for table in Base.metadata.sorted_tables}


async def _rows_per_message(runtime: Runtime, before: dict[str, int], n: int) -> dict[str, float]:
    after = await table_counts(runtime)
    return {name: round((after[name] - before.get(name, 0)) / n, 2) for name in after if after[name] != before.get(name, 0)}


async def ceiling(db_url: str, n: int, rows_per_message: int, writers: int, body_chars: int = 400) -> float:
    """Messages/s for plain INSERTs of one message's rows in one transaction each (a scratch table, dropped after)."""
    scratch = Table(
        f"bench_ceiling_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("kind", String(32), nullable=False),
        Column("body", Text, nullable=False),
    )
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    body = "跟进记录" * (body_chars // 4)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(scratch.create)
        queue = iter(range(n))

        async def writer() -> None:
            for _ in queue:
                async with sessions() as session:
                    async with session.begin():
                        for k in range(rows_per_message):
                            await session.execute(scratch.insert().values(kind=f"row{k}", body=body))

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        elapsed = time.perf_counter() - start
        async with engine.begin() as conn:
            assert await conn.scalar(select(func.count()).select_from(scratch)) == n * rows_per_message
            await conn.run_sync(scratch.drop)
    finally:
        await engine.dispose()
    return n / elapsed


async def _bench(args: argparse.Namespace, db: str) -> tuple[dict[str, Any], int, dict[str, float], float]:
    """The pipeline run, then the ceiling on the same database; PostgreSQL runs get a fresh database beside ``--db``
    (rows a previous run left pending would otherwise be processed, and counted, in this one)."""
    if db.startswith("postgresql"):
        async with fresh_postgres(db) as fresh:
            return await _bench_on(args, fresh)
    return await _bench_on(args, db)


async def _bench_on(args: argparse.Namespace, db: str) -> tuple[dict[str, Any], int, dict[str, float], float]:
    if args.platform == "wecom":
        result = await run_wecom(db, args.n, args.workers, args.concurrency, args.reps)
    else:
        result = await run(db, args.n, args.workers, args.http, args.reps)
    shape: dict[str, float] = result.pop("rows_per_message")
    rows = max(1, round(sum(shape.values())))
    return result, rows, shape, await ceiling(db, min(args.n, 2000), rows, args.workers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--http", action="store_true", help="local platform: send through POST /local/messages")
    parser.add_argument("--reps", type=int, default=200,
                        help="reps the messages are spread over (6 = the demo org's, as before)")
    parser.add_argument("--platform", choices=("local", "wecom"), default="local")
    parser.add_argument("--concurrency", type=int, default=32, help="--platform wecom: callbacks in flight at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        result, rows, shape, raw = asyncio.run(_bench(args, db))
    if args.platform == "wecom":
        how = f"WeCom callbacks from a client process (concurrency {args.concurrency}), replies to a stand-in WeCom API, {args.reps} reps"
    else:
        how = f"{'HTTP' if args.http else 'in-process'} ingest, local delivery, {args.reps} reps"
    backend = db.split(":", 1)[0]
    print(f"pipeline benchmark ({backend}, {args.workers} inbox workers, {how})")
    for key, value in result.items():
        print(f"  {key:18s} {value:.3f}" if isinstance(value, float) else f"  {key:18s} {value}")
    print(f"  rows written per message: {rows} ({', '.join(f'{name} {count:g}' for name, count in sorted(shape.items()))})")
    print(f"  ceiling: {raw:.1f} messages/s = plain INSERTs of {rows} rows + COMMIT per message, {args.workers} writers, same database")
    print(f"  end-to-end is {result['end_to_end_per_s'] / raw:.1%} of the ceiling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
