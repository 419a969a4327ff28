"""WeCom callback acknowledgement latency under a burst of encrypted callbacks.

WeCom waits 5 s for the empty 200 before it retries, so what matters at the edge is
how long verify + decrypt + store takes while the workers are busy with the previous
messages. The callbacks are encrypted and signed beforehand (that is WeCom's cost) and
posted over loopback with bounded concurrency by a *separate process* (``--client``), so
the client's own work never stalls the server's event loop and shows up as server
latency. On a shared box the latency also shows CPU the server did not get: the server's
CPU time per callback during the burst is printed as the figure that does not depend on
the neighbours. Before the burst a backlog of messages is stored, so the inbox workers are busy
with handler work for the whole burst; the replies go to a stand-in WeCom API. The
server also samples its own event loop: the longest stall is printed next to the tail,
because a stall is a delay every callback in flight pays.

The callbacks (and the backlog) come from ``--reps`` reps taking turns (``harness.message``):
a batch holds one message per sender, so the demo org's six reps (``--reps 6``; runs before
``--reps`` existed used four of them) keep batches small; the default is a 200-rep team.

    python benchmarks/wecom_callback_bench.py                      # SQLite in a temp dir
    python benchmarks/wecom_callback_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    python benchmarks/wecom_callback_bench.py -n 1000 --concurrency 64 --workers 0   # ingest only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid

import aiohttp
from sqlalchemy import func, select

from harness import (  # noqa: I001 - benchmarks/ is on sys.path
    CallbackSigner, Sender, StandInWeCom, fresh_postgres, message, percentile, running, seed, senders_from_json, senders_to_json,
    wecom_bench_config,
)
from bot.messages import Inbound, Kind
from bot.pipeline.inbox import store
from bot.runtime import Runtime
from storage.models import InboxRow


async def _counts(runtime: Runtime) -> tuple[int, int]:
    """Inbox rows stored / processed so far."""
    async with runtime.app.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(InboxRow))
        processed = await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status == "done"))
    return int(stored or 0), int(processed or 0)


class LoopLag:
    """Samples the event loop every millisecond; the overshoot of each sleep is a stall every request pays."""

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            self.stalls.append(loop.time() - before - 0.001)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def _backlog(runtime: Runtime, count: int, senders: list[Sender]) -> None:
    """Messages already stored when the burst starts, so the workers are busy handling them meanwhile.

    The same senders and texts as the burst (:func:`harness.message`), as the channel would have stored them.
    """
    messages = []
    for i in range(count):
        user, text = message(senders, i, "wecom")
        messages.append(Inbound(platform="wecom", message_id=f"backlog-{uuid.uuid4().hex}", sender=user, conversation=user,
                                kind=Kind.TEXT, text=f"{text}（积压{i}）"))
    for start in range(0, count, 200):
        await store(runtime.app, messages[start : start + 200])


async def client(url: str, token: str, aes_key: str, corp_id: str, agent_id: str, n: int, concurrency: int, senders: list[Sender]) -> None:
    """The platform's side, run in its own process: sign everything, warm up, then post the burst."""
    signer = CallbackSigner(token, aes_key, corp_id, agent_id)
    callbacks = []
    for i in range(n):
        user, text = message(senders, i, "wecom")
        callbacks.append(signer.text(user, f"{text}（{i}）"))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def post_raw(params: dict[str, str], body: str) -> int:
            async with http.post(url, params=params, data=body.encode(), headers={"Content-Type": "text/xml"}) as resp:
                await resp.read()
                return resp.status

        # warm-up: the connection pool and first-request costs
        await asyncio.gather(*(post_raw(*signer.text(message(senders, i, "wecom")[0], "预热")) for i in range(concurrency)))
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        sem = asyncio.Semaphore(concurrency)

        async def post(params: dict[str, str], body: str) -> None:
            async with sem:
                started = time.perf_counter()
                status = await post_raw(params, body)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        print("warm", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the server says go
        print("burst", flush=True)  # the server starts watching its event loop now
        start = time.perf_counter()
        await asyncio.gather(*(post(params, body) for params, body in callbacks))
        burst = time.perf_counter() - start
        print(json.dumps({"latencies": latencies, "statuses": statuses, "burst_seconds": burst}), flush=True)


async def start_client(url: str, wecom: StandInWeCom, n: int, concurrency: int, senders: list[Sender]) -> asyncio.subprocess.Process:
    """The callback client in its own process, posting ``n`` callbacks from ``senders`` (sent as the first line of its
    stdin); it signs, warms up, prints ``warm`` and waits for the next line."""
    args = [url, wecom.token, wecom.aes_key, wecom.corp_id, wecom.agent_id, str(n), str(concurrency)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--client", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(senders_to_json(senders).encode() + b"\n")
    await proc.stdin.drain()
    if (await proc.stdout.readline()).strip() != b"warm":
        raise RuntimeError("the callback client failed before its warm-up was done")
    return proc


async def _client_process(runtime: Runtime, proc: asyncio.subprocess.Process) -> tuple[dict[str, object], LoopLag, int, float]:
    """Run the warmed-up client; the event loop is sampled (and processed rows and CPU counted) from the moment its burst starts."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    assert (await proc.stdout.readline()).strip() == b"burst", "the client failed before its burst"
    cpu = time.process_time()
    with LoopLag() as lag:
        _, processed_before = await _counts(runtime)
        out = await proc.stdout.readline()  # its results, printed the moment the burst is over
    cpu = time.process_time() - cpu
    if await proc.wait() != 0:
        raise RuntimeError(f"callback client exited with {proc.returncode}")
    return json.loads(out), lag, processed_before, cpu


async def run(db_url: str, n: int, concurrency: int, workers: int, backlog: int, reps: int) -> dict[str, float | int | str]:
    async with StandInWeCom() as wecom:
        config = wecom_bench_config(db_url, wecom, workers)
        async with running(config, http=True, workers=workers > 0) as runtime:
            senders = await seed(runtime, reps)
            url = f"http://127.0.0.1:{runtime.port}{config.wecom.callback_path}"
            if workers:
                await _backlog(runtime, backlog, senders)
                await asyncio.sleep(1.0)  # the extractor is loaded and the workers are mid-backlog
            stored_before, _ = await _counts(runtime)
            result, lag, processed_before, cpu = await _client_process(runtime, await start_client(url, wecom, n, concurrency, senders))
            stored, processed = await _counts(runtime)  # (a few more may be processed while this counts)
    latencies = [float(x) for x in result["latencies"]]  # type: ignore[attr-defined]
    statuses = {int(k): v for k, v in result["statuses"].items()}  # type: ignore[attr-defined]
    burst = float(result["burst_seconds"])  # type: ignore[arg-type]
    return {
        "senders": len(senders),
        "callbacks": n,
        "acknowledged_200": statuses.get(200, 0),
        "other_statuses": str({k: v for k, v in statuses.items() if k != 200}),
        "stored_rows": stored - stored_before - concurrency,  # minus the client's warm-up callbacks
        "backlog_before_burst": backlog if workers else 0,
        "processed_during_burst": processed - processed_before,
        "burst_seconds": burst,
        "callbacks_per_s": n / burst,
        "ack_p50_ms": statistics.median(latencies) * 1000,
        "ack_p90_ms": percentile(latencies, 0.90) * 1000,
        "ack_p99_ms": percentile(latencies, 0.99) * 1000,
        "ack_max_ms": max(latencies) * 1000,
        "server_cpu_ms_per_callback": cpu / n * 1000,  # all of the server process's threads, handlers included
        "loop_stall_p99_ms": percentile(lag.stalls, 0.99) * 1000 if lag.stalls else float("nan"),
        "loop_stall_max_ms": max(lag.stalls) * 1000 if lag.stalls else float("nan"),
    }


async def _fresh(db_url: str, n: int, concurrency: int, workers: int, backlog: int, reps: int) -> dict[str, float | int | str]:
    """PostgreSQL runs get a fresh database beside the given one: a reused one keeps every earlier run's backlog."""
    if not db_url.startswith("postgresql"):
        return await run(db_url, n, concurrency, workers, backlog, reps)
    async with fresh_postgres(db_url) as fresh:
        return await run(fresh, n, concurrency, workers, backlog, reps)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, token, aes_key, corp_id, agent_id, n, concurrency = sys.argv[2:9]
        senders = senders_from_json(sys.stdin.readline())
        asyncio.run(client(url, token, aes_key, corp_id, agent_id, int(n), int(concurrency), senders))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=1000, help="callbacks in the burst")
    parser.add_argument("--concurrency", type=int, default=32, help="callbacks in flight at once")
    parser.add_argument("--workers", type=int, default=2, help="inbox workers processing meanwhile (0 = ingest only)")
    parser.add_argument("--backlog", type=int, default=300, help="messages stored before the burst so the workers are busy")
    parser.add_argument("--reps", type=int, default=200, help="reps the callbacks come from (6 = the demo org's; before this flag, four of them)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        result = asyncio.run(_fresh(db, args.n, args.concurrency, args.workers, args.backlog, args.reps))
    backend = db.split(":", 1)[0]
    print(f"WeCom callback benchmark ({backend}, concurrency {args.concurrency}, {args.workers} inbox workers, client in its own process)")
    for key, value in result.items():
        print(f"  {key:24s} {value:.2f}" if isinstance(value, float) else f"  {key:24s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
