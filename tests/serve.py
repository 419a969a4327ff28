"""Real ``genjin serve`` subprocesses for the crash and multi-node tests (SIGKILL, restart, two nodes).

One place for starting a node on a config file, waiting for ``/healthz``, posting local
messages and killing it, so the restart test and the two-node test share one way to do it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import InboxRow, Note, OutboxRow

GENJIN = [sys.executable, "-m", "bot.cli"]
LOCAL_TOKEN = "restart-test-token"
AUTH = {"Authorization": f"Bearer {LOCAL_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, db_url: str, port: int, transcript: Path) -> None:
    """A node config with a short lease (2 s), so rows of a killed node are taken over quickly."""
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
[database]
url = "{db_url}"
[pipeline]
workers = 2
poll_interval = 0.05
lease_seconds = 2
outbox_batch = 20
[logging]
level = "WARNING"
[playbook]
watch = false
[local]
transcript = "{transcript}"
http = true
""",
        encoding="utf-8",
    )


class Server:
    """One ``genjin serve`` process; ``env`` overrides config keys (``GENJIN_SERVER_PORT`` …) for this node only."""

    def __init__(self, config: Path, port: int, workers: int, env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            "GENJIN_PIPELINE_WORKERS": str(workers),
            "GENJIN_LOCAL_TOKEN": LOCAL_TOKEN,
            "GENJIN_SERVER_PORT": str(port),
            **(env or {}),
        }
        # stderr goes to a file: a pipe nobody reads fills up and blocks a node that logs a lot
        self.log = config.with_name(f"serve-{port}.log")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*GENJIN, "--config", str(config), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=log
            )
        self.base = f"http://127.0.0.1:{port}"

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                async with http.get(f"{self.base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("server did not become ready")

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): what it has claimed stays claimed, nothing more happens."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def import_org(config: Path, org: Path) -> None:
    """Migrate the database and import the org through the CLI, before any node starts (nodes must not migrate side by side)."""
    imported = subprocess.run([*GENJIN, "--config", str(config), "org", "import", str(org)], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr


async def post(http: aiohttp.ClientSession, base: str, i: int, user: str = "zhangwei") -> None:
    body = {"user": user, "id": f"m-{i}", "text": f"今天拜访了第{i}人民医院的王主任，下周三前把报价单发给他"}
    async with http.post(f"{base}/local/messages", json=body, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()


async def settled_rows(
    sessions: async_sessionmaker[AsyncSession], messages: int, *, timeout: float
) -> tuple[list[InboxRow], list[OutboxRow], list[Note]]:
    """Wait (up to ``timeout``) until all ``messages`` inbox rows are done and every reply is sent; then every row.

    The caller asserts on what it gets back, so a run that never settles fails there, with the rows to look at.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with sessions() as session:
            states = Counter((await session.scalars(select(InboxRow.status))).all())
            unsent = int(await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status != "sent")) or 0)
        if states == Counter({"done": messages}) and unsent == 0:
            break
        await asyncio.sleep(0.2)
    async with sessions() as session:
        return (
            list((await session.scalars(select(InboxRow))).all()),
            list((await session.scalars(select(OutboxRow))).all()),
            list((await session.scalars(select(Note))).all()),
        )


def assert_each_message_once(inbox_rows: list[InboxRow], outbox_rows: list[OutboxRow], notes: list[Note], messages: int) -> None:
    """Messages ``m-0`` … ``m-{messages-1}`` each stored once and done, answered, never answered twice in the
    database, and at most one note each."""
    assert sorted(r.message_id for r in inbox_rows) == sorted(f"m-{i}" for i in range(messages))
    assert all(r.status == "done" for r in inbox_rows), Counter(r.status for r in inbox_rows)
    per_message = Counter(r.inbox_id for r in outbox_rows)
    assert set(per_message) == {r.id for r in inbox_rows}, "every message got a reply"
    for inbox_id in per_message:
        payloads = [repr(sorted(r.payload.items())) for r in outbox_rows if r.inbox_id == inbox_id]
        assert len(payloads) == len(set(payloads)), f"message {inbox_id} was answered twice"
    assert len({n.inbox_id for n in notes}) == len(notes) <= messages
