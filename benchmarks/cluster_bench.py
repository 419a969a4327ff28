"""The same workload through one ``genjin serve`` node and through two, on one PostgreSQL database.

Each run gets a fresh database (migrated, demo org imported) and real ``genjin serve``
subprocesses on their own ports. Local-channel messages are posted over HTTP, spread
round-robin over the nodes as a load balancer would, with bounded concurrency; the clock
stops when every message is done and every reply is sent. Replies are written to one
transcript per node (the receiving end), so lost and duplicate replies are counted on
the wire as well as in the database. ``--kill`` SIGKILLs one node halfway through the
two-node run (its posts go to the survivor, its leases are taken over after
``--lease`` seconds).

    python benchmarks/cluster_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    python benchmarks/cluster_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench -n 600 --kill
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select, text

from harness import DEMO_ORG, DEMO_REPS as DEMO_SENDERS, ROOT, Sender, fresh_postgres, free_port, message, seed_senders  # noqa: I001 - benchmarks/ is on sys.path
from storage.db import create_engine, session_factory, transaction, upgrade
from storage.models import InboxRow, Note, OutboxRow
from storage.org import import_org, parse_org_file

TOKEN = "cluster-bench-token"


class Node:
    """One ``genjin serve`` subprocess configured through the environment."""

    def __init__(self, db_url: str, workdir: Path, name: str, workers: int, lease: float) -> None:
        self.port = free_port()
        self.transcript = workdir / f"delivered-{name}.jsonl"
        self.log = workdir / f"serve-{name}.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "GENJIN_DATABASE_URL": db_url,
            "GENJIN_SERVER_HOST": "127.0.0.1",
            "GENJIN_SERVER_PORT": str(self.port),
            "GENJIN_PIPELINE_WORKERS": str(workers),
            "GENJIN_PIPELINE_POLL_INTERVAL": "0.05",
            "GENJIN_PIPELINE_LEASE_SECONDS": str(lease),
            "GENJIN_LOGGING_LEVEL": "WARNING",
            "GENJIN_PLAYBOOK_WATCH": "false",
            "GENJIN_LOCAL_HTTP": "true",
            "GENJIN_LOCAL_TOKEN": TOKEN,
            "GENJIN_LOCAL_TRANSCRIPT": str(self.transcript),
        }
        config = workdir / "none.toml"  # every key comes from the environment
        config.write_text("", encoding="utf-8")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "--config", str(config), "serve"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
            )
        self.base = f"http://127.0.0.1:{self.port}"
        self.alive = True

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                async with http.get(f"{self.base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("node did not become ready")

    def kill(self) -> None:
        self.alive = False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU seconds the node's process has used so far (Linux /proc).

        System time is mostly loopback networking: on a send the kernel delivers the packet
        to PostgreSQL in the sender's context, so each round trip costs the node system CPU.
        """
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, 0.0
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def delivered(self) -> list[int]:
        if not self.transcript.exists():
            return []
        return [json.loads(line)["id"] for line in self.transcript.read_text(encoding="utf-8").splitlines() if line.strip()]


async def _prepare(db_url: str, reps: int) -> list[Sender]:
    """Migrate and import the org (and ``reps`` reps, see :func:`harness.seed_senders`) once, before any node starts
    (nodes must not migrate side by side); returns who sends the messages."""
    from nlp.lexicon import load_lexicon

    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await import_org(session, parse_org_file(DEMO_ORG))
            return await seed_senders(session, reps, load_lexicon(None))
    finally:
        await engine.dispose()


async def run(
    base_url: str, nodes: int, n: int, concurrency: int, workers: int, lease: float, kill: bool, reps: int
) -> dict[str, Any]:
    async with fresh_postgres(base_url) as db_url:
        senders = await _prepare(db_url, reps)
        with tempfile.TemporaryDirectory() as tmp:
            started = [Node(db_url, Path(tmp), f"n{k}", workers, lease) for k in range(nodes)]
            engine = create_engine(db_url)
            sessions = session_factory(engine)
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
                    await asyncio.gather(*(node.ready(http) for node in started))
                    # warm-up: each node loads its extractor on a first message
                    await asyncio.gather(*(_post(http, node, senders, -1 - k) for k, node in enumerate(started)))
                    await _wait_done(sessions, nodes, timeout=120)
                    warm = nodes
                    if len(senders) != len(DEMO_SENDERS) or any(s.key != k for s, k in zip(senders, DEMO_SENDERS)):
                        # a generated team's reps have each written before, as on any morning (one "收到" each)
                        await asyncio.gather(*(_post(http, started[k % nodes], senders, k, warm=True) for k in range(len(senders))))
                        warm += len(senders)
                        await _wait_done(sessions, warm, timeout=300)
                    sem = asyncio.Semaphore(concurrency)
                    posted = [0]

                    async def send(i: int) -> None:
                        async with sem:
                            node = started[i % nodes]
                            if not node.alive:
                                node = next(other for other in started if other.alive)
                            try:
                                await _post(http, node, senders, i)
                            except aiohttp.ClientError:
                                if node.alive:
                                    raise
                                await _post(http, next(other for other in started if other.alive), senders, i)  # the platform retries
                            posted[0] += 1
                            if kill and nodes > 1 and posted[0] == n // 2 and started[0].alive:
                                started[0].kill()

                    sampler = DatabaseSampler(sessions)
                    cpu_before = [node.cpu_seconds() for node in started]
                    box_before = _box_cpu()
                    start = time.perf_counter()
                    sampler.start()
                    await asyncio.gather(*(send(i) for i in range(n)))
                    acked = time.perf_counter() - start
                    await _wait_done(sessions, n + warm, timeout=600)
                    elapsed = time.perf_counter() - start
                    box_after = _box_cpu()
                    spent = [(node.cpu_seconds(), before) for node, before in zip(started, cpu_before) if node.alive]
                    node_user = sum(after[0] - before[0] for after, before in spent)
                    node_sys = sum(after[1] - before[1] for after, before in spent)
                    database = await sampler.stop()
                async with sessions() as session:
                    inbox = (await session.execute(select(InboxRow.id, InboxRow.message_id, InboxRow.status, InboxRow.attempts))).all()
                    outbox = (await session.execute(select(OutboxRow.id, OutboxRow.status))).all()
                    notes = Counter((await session.scalars(select(Note.inbox_id))).all())
            finally:
                for node in started:
                    node.stop()
                await engine.dispose()
            wire = Counter(row_id for node in started for row_id in node.delivered())
    expected = {f"b-{i}" for i in range(n)}
    done = {message_id for _, message_id, status, _ in inbox if status == "done"}
    return {
        "nodes": nodes,
        "messages": n,
        "ack_seconds": round(acked, 2),
        "seconds": round(elapsed, 2),
        "messages_per_s": round(n / elapsed, 1),
        "lost_messages": len(expected - done),
        "processed_twice": sum(1 for count in notes.values() if count > 1),
        "taken_over_leases": sum(1 for _, _, _, attempts in inbox if attempts >= 2),
        "replies_unsent": sum(1 for _, status in outbox if status != "sent"),
        "replies_lost_on_wire": sum(1 for row_id, _ in outbox if wire[row_id] == 0),
        "replies_twice_on_wire": sum(1 for count in wire.values() if count > 1),
        "node_user_ms_per_msg": round(1000 * node_user / n, 2),
        "node_sys_ms_per_msg": round(1000 * node_sys / n, 2),
        "box_cpu_busy": f"{(box_after[0] - box_before[0]) / max(1e-9, box_after[1] - box_before[1]):.0%}",
        **database,
    }


def _box_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole box so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


class DatabaseSampler:
    """Samples what the run's PostgreSQL backends are doing (pg_stat_activity) every ``every`` seconds.

    Where a second node loses shows here: backends waiting on a lock (rows both nodes
    write), idle in a transaction (the node's Python holds a transaction open while it
    computes), or simply active (the database is the bottleneck).
    """

    def __init__(self, sessions, every: float = 0.05) -> None:  # type: ignore[no-untyped-def]
        self._sessions, self._every = sessions, every
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        query = text(
            "SELECT CASE WHEN wait_event_type = 'Lock' THEN 'lock_wait' WHEN state = 'idle in transaction' THEN 'idle_in_tx'"
            " WHEN state = 'active' THEN 'active' ELSE 'idle' END, count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' GROUP BY 1"
        )
        while True:
            async with self._sessions() as session:
                for what, count in (await session.execute(query)).all():
                    self.counts[what] += count
            self.samples += 1
            await asyncio.sleep(self._every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        per = max(1, self.samples)
        return {f"backends_{what}": round(self.counts[what] / per, 2) for what in ("active", "idle_in_tx", "lock_wait")}


async def _post(http: aiohttp.ClientSession, node: Node, senders: list[Sender], i: int, *, warm: bool = False) -> None:
    """Message ``i`` of the run (negative: a node's extractor warm-up; ``warm``: sender ``i``'s "收到" before the clock)."""
    if warm:
        body = {"user": senders[i].key, "text": "收到", "id": f"warm-{senders[i].key}"}
    else:
        user, text = message(senders, abs(i))
        body = {"user": user, "text": text, "id": f"b-{i}" if i >= 0 else f"warm{i}"}
    async with http.post(f"{node.base}/local/messages", json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"POST /local/messages: {resp.status} {await resp.text()}")


async def _wait_done(sessions, total: int, timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Until ``total`` inbox rows are done and no reply is waiting to be sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with sessions() as session:
            done = await session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status == "done"))
            unsent = await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status.in_(("pending", "sending"))))
        if done >= total and not unsent:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"not done after {timeout} s ({done}/{total} processed, {unsent} replies unsent)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="PostgreSQL URL; each run uses a fresh database beside it")
    parser.add_argument("-n", type=int, default=600, help="messages per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="inbox workers per node")
    parser.add_argument("--lease", type=float, default=5.0, help="lease seconds (how soon a killed node's rows are taken over)")
    parser.add_argument("--kill", action="store_true", help="SIGKILL one node halfway through the two-node run")
    parser.add_argument("--reps", type=int, default=200, help="reps the messages are spread over (6 = the demo org's, as before)")
    args = parser.parse_args()
    if not args.db.startswith("postgresql"):
        parser.error("several nodes need PostgreSQL")
    results = [
        asyncio.run(run(args.db, nodes, args.n, args.concurrency, args.workers, args.lease, args.kill and nodes > 1, args.reps))
        for nodes in (1, 2)
    ]
    print(f"cluster benchmark (PostgreSQL, {args.reps} reps, {args.workers} inbox workers per node, concurrency {args.concurrency}"
          f"{', one node SIGKILLed halfway through the 2-node run' if args.kill else ''}; {os.cpu_count()} CPUs on this box)")
    for key in results[0]:
        print(f"  {key:22s} " + "".join(f"{str(r[key]):>12s}" for r in results))
    print(f"  {'speed-up':22s} {'':>12s}{results[1]['messages_per_s'] / results[0]['messages_per_s']:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
