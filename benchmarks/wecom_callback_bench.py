"""WeCom callback acknowledgement latency under a burst of encrypted callbacks.

WeCom waits 5 s for the empty 200 before it retries, so what matters at the edge is
how long verify + decrypt + store takes while the workers are busy with the previous
messages. The callbacks are encrypted and signed beforehand (that is WeCom's cost) and
posted over loopback with bounded concurrency; the replies go to a stand-in WeCom API.

    python benchmarks/wecom_callback_bench.py                      # SQLite in a temp dir
    python benchmarks/wecom_callback_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    python benchmarks/wecom_callback_bench.py -n 1000 --concurrency 64 --workers 0   # ingest only
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time

import aiohttp
from sqlalchemy import func, select

from harness import CallbackSigner, StandInWeCom, bench_config, percentile, running  # noqa: I001 - benchmarks/ is on sys.path
from bot.runtime import Runtime
from storage.models import InboxRow

USERS = ["ZhangWei", "LiNa", "ChenJing", "LiuYang"]
TEXTS = [
    "今天拜访了华山医院设备科张科长，下周三前把报价单发给他",
    "王主任说下个月招标，重点推二代导管，价格可以谈",
    "瑞金医院的合同已经盖章了，总金额一百二十万，下周安排装机",
    "收到",
]


async def _counts(runtime: Runtime) -> tuple[int, int]:
    """Inbox rows stored / processed so far (a reused PostgreSQL database keeps old rows)."""
    async with runtime.app.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(InboxRow))
        processed = await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status == "done"))
    return int(stored or 0), int(processed or 0)


async def run(db_url: str, n: int, concurrency: int, workers: int) -> dict[str, float | int | str]:
    token = "BenchToken"
    aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    async with StandInWeCom() as wecom:
        config = bench_config(
            db_url,
            pipeline={"workers": workers, "outbox_workers": 1 if workers else 0, "poll_interval": 0.05},
            local={"enabled": False},
            wecom={
                "enabled": True,
                "corp_id": wecom.corp_id,
                "agent_id": wecom.agent_id,
                "secret": wecom.secret,
                "token": token,
                "encoding_aes_key": aes_key,
                "api_base": wecom.base_url,
                "per_member_per_minute": 100_000,
            },
        )
        async with running(config, http=True, workers=workers > 0) as runtime:
            url = f"http://127.0.0.1:{runtime.port}{config.wecom.callback_path}"
            signer = CallbackSigner(token, aes_key, wecom.corp_id, wecom.agent_id)
            callbacks = [signer.text(USERS[i % len(USERS)], f"{TEXTS[i % len(TEXTS)]}（{i}）") for i in range(n)]
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as http:

                async def post_raw(params: dict[str, str], body: str) -> int:
                    async with http.post(url, params=params, data=body.encode(), headers={"Content-Type": "text/xml"}) as resp:
                        await resp.read()
                        return resp.status

                # warm-up: connection pool, first-request costs, lexicon loading by a worker
                await post_raw(*signer.text(USERS[0], "预热"))
                await asyncio.sleep(1.0)

                latencies: list[float] = []
                statuses: dict[int, int] = {}
                sem = asyncio.Semaphore(concurrency)

                async def post(params: dict[str, str], body: str) -> None:
                    async with sem:
                        started = time.perf_counter()
                        status = await post_raw(params, body)
                        latencies.append(time.perf_counter() - started)
                        statuses[status] = statuses.get(status, 0) + 1

                stored_before, processed_before = await _counts(runtime)
                start = time.perf_counter()
                await asyncio.gather(*(post(params, body) for params, body in callbacks))
                burst = time.perf_counter() - start
            stored, processed = await _counts(runtime)
    return {
        "callbacks": n,
        "acknowledged_200": statuses.get(200, 0),
        "other_statuses": str({k: v for k, v in statuses.items() if k != 200}),
        "stored_rows": stored - stored_before,
        "processed_during_burst": processed - processed_before,
        "burst_seconds": burst,
        "callbacks_per_s": n / burst,
        "ack_p50_ms": statistics.median(latencies) * 1000,
        "ack_p90_ms": percentile(latencies, 0.90) * 1000,
        "ack_p99_ms": percentile(latencies, 0.99) * 1000,
        "ack_max_ms": max(latencies) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=1000, help="callbacks in the burst")
    parser.add_argument("--concurrency", type=int, default=32, help="callbacks in flight at once")
    parser.add_argument("--workers", type=int, default=2, help="inbox workers processing meanwhile (0 = ingest only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        result = asyncio.run(run(db, args.n, args.concurrency, args.workers))
    backend = db.split(":", 1)[0]
    print(f"WeCom callback benchmark ({backend}, concurrency {args.concurrency}, {args.workers} inbox workers)")
    for key, value in result.items():
        print(f"  {key:24s} {value:.2f}" if isinstance(value, float) else f"  {key:24s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
