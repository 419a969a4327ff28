"""The HTTP surface: bad input gets a clear 4xx and stores nothing; health and metrics."""

from __future__ import annotations

import json

import aiohttp
from sqlalchemy import func, select

from storage.models import InboxRow
from tests.conftest import RuntimeFactory

TOKEN = "local-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL_HTTP = {"http": True, "token": TOKEN}


async def _inbox_count(app) -> int:  # type: ignore[no-untyped-def]
    async with app.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxRow)) or 0)


async def test_garbage_and_oversized_bodies_get_4xx(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"server": {"max_body_bytes": 4096}, "local": LOCAL_HTTP}, http=True)
    url = f"http://127.0.0.1:{runtime.port}/local/messages"
    cases: list[tuple[bytes, int]] = [
        (b"", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b"not json at all", 400),
        (b"[1, 2, 3]", 400),
        (json.dumps({"user": "zhangwei"}).encode(), 400),
        (json.dumps({"user": "zhangwei", "text": ""}).encode(), 400),
        (json.dumps({"user": "zhang wei; drop table", "text": "hi"}).encode(), 400),
        (json.dumps({"user": 5, "text": "hi"}).encode(), 400),
        (json.dumps({"user": "zhangwei", "text": "x" * 4001}).encode(), 400),
        (json.dumps({"user": "zhangwei", "text": "中" * 5000}).encode(), 413),
        (b"{" * 100_000, 413),
    ]
    async with aiohttp.ClientSession() as http:
        for body, status in cases:
            async with http.post(url, data=body, headers={"Content-Type": "application/json", **AUTH}) as resp:
                assert resp.status == status, (body[:40], await resp.text())
        async with http.get(f"http://127.0.0.1:{runtime.port}/no/such/path") as resp:
            assert resp.status == 404
        async with http.put(url, data=b"{}", headers=AUTH) as resp:
            assert resp.status == 405
    assert await _inbox_count(runtime.app) == 0


async def test_valid_post_is_stored_and_duplicate_recognised(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"local": LOCAL_HTTP}, http=True)
    url = f"http://127.0.0.1:{runtime.port}/local/messages"
    async with aiohttp.ClientSession() as http:
        bodies = []
        for _ in range(2):
            async with http.post(url, json={"user": "zhangwei", "text": "你好", "id": "m-1"}, headers=AUTH) as resp:
                assert resp.status == 200
                bodies.append(await resp.json())
    assert bodies[0]["duplicate"] is False and bodies[1]["duplicate"] is True
    assert await _inbox_count(runtime.app) == 1


async def test_healthz_and_metrics(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"local": LOCAL_HTTP}, http=True, workers=True)
    base = f"http://127.0.0.1:{runtime.port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/local/messages", json={"user": "zhangwei", "text": "你好"}, headers=AUTH) as resp:
            assert resp.status == 200
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 200
            report = await resp.json()
        assert report["ok"] is True and report["database"]["ok"] is True
        assert report["channels"]["local"]["ok"] is True
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert 'genjin_inbound_total{kind="text",platform="local"} 1.0' in text
    assert "genjin_handling_seconds_bucket" in text
    assert "genjin_outbound_total" in text
