"""Kill -9 the server between acknowledgement and processing (and mid-processing);
after a restart every acknowledged message has exactly one result."""

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
import pytest
from sqlalchemy import select

from storage.db import create_engine, session_factory
from storage.models import InboxRow, Note, OutboxRow
from tests.conftest import DEMO_ORG

pytestmark = pytest.mark.slow

GENJIN = [sys.executable, "-m", "bot.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOCAL_TOKEN = "restart-test-token"
AUTH = {"Authorization": f"Bearer {LOCAL_TOKEN}"}


def _write_config(path: Path, db_url: str, port: int, transcript: Path) -> None:
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
    def __init__(self, config: Path, port: int, workers: int) -> None:
        env = {**os.environ, "GENJIN_PIPELINE_WORKERS": str(workers), "GENJIN_LOCAL_TOKEN": LOCAL_TOKEN}
        self.proc = subprocess.Popen(
            [*GENJIN, "--config", str(config), "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.base = f"http://127.0.0.1:{port}"

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                async with http.get(f"{self.base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("server did not become ready")

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


async def _post(http: aiohttp.ClientSession, base: str, i: int) -> None:
    body = {"user": "zhangwei", "id": f"m-{i}", "text": f"今天拜访了第{i}人民医院的王主任，下周三前把报价单发给他"}
    async with http.post(f"{base}/local/messages", json=body, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()


async def test_sigkill_between_ack_and_processing_then_restart(db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "genjin.toml"
    transcript = tmp_path / "delivered.jsonl"
    _write_config(config, db_url, port, transcript)
    imported = subprocess.run([*GENJIN, "--config", str(config), "org", "import", str(DEMO_ORG)], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr

    async with aiohttp.ClientSession() as http:
        # 1. an ingest-only node acknowledges 5 messages and is killed before any processing
        server = Server(config, port, workers=0)
        try:
            await server.ready(http)
            for i in range(5):
                await _post(http, server.base, i)
        finally:
            server.kill()

        # 2. a full node is killed at an arbitrary point while processing a burst
        server = Server(config, port, workers=2)
        try:
            await server.ready(http)
            await asyncio.gather(*(_post(http, server.base, i) for i in range(5, 35)))
        finally:
            server.kill()

        # 3. restart: everything acknowledged is processed exactly once
        server = Server(config, port, workers=2)
        engine = create_engine(db_url)
        sessions = session_factory(engine)
        try:
            await server.ready(http)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while loop.time() < deadline:
                async with sessions() as session:
                    states = Counter((await session.scalars(select(InboxRow.status))).all())
                    unsent = len((await session.scalars(select(OutboxRow.id).where(OutboxRow.status != "sent"))).all())
                if states == Counter({"done": 35}) and unsent == 0:
                    break
                await asyncio.sleep(0.2)
            async with sessions() as session:
                inbox_rows = (await session.scalars(select(InboxRow))).all()
                outbox_rows = (await session.scalars(select(OutboxRow))).all()
                notes = (await session.scalars(select(Note))).all()
        finally:
            server.stop()
            await engine.dispose()

    assert sorted(r.message_id for r in inbox_rows) == sorted(f"m-{i}" for i in range(35))
    assert all(r.status == "done" for r in inbox_rows), Counter(r.status for r in inbox_rows)
    per_message = Counter(r.inbox_id for r in outbox_rows)
    assert set(per_message) == {r.id for r in inbox_rows}, "every message got a reply"
    for inbox_id in per_message:
        payloads = [repr(sorted(r.payload.items())) for r in outbox_rows if r.inbox_id == inbox_id]
        assert len(payloads) == len(set(payloads)), f"message {inbox_id} was answered twice"
    assert all(r.status == "sent" for r in outbox_rows)
    assert len({n.inbox_id for n in notes}) == len(notes) <= 35
    delivered = transcript.read_text(encoding="utf-8").splitlines()
    assert len(delivered) >= len(outbox_rows)  # at-least-once to the wire; once in the database
