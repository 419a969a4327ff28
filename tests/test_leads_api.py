"""POST /api/leads: bearer token, 422 field errors, idempotent on the caller's id, never 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import Lead
from tests.conftest import RuntimeFactory
from tests.harness import MONDAY
from tests.test_leads_flow import rules_file

TOKEN = "t0ken-for-tests"


async def _post(port: int, body: Any, token: str | None = TOKEN, raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        kw: dict[str, Any] = {"data": raw, "headers": {**headers, "Content-Type": "application/json"}} if raw is not None \
            else {"json": body, "headers": headers}
        async with http.post(f"http://127.0.0.1:{port}/api/leads", **kw) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text.startswith(("{", "[")) else text)


async def _count(runtime: Any) -> int:
    async with runtime.app.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Lead)) or 0)


LEAD = {"id": "CRM-1", "hospital": "瑞金医院", "department": "心内科", "contact": "王主任", "phone": "13812345678",
        "region": "上海", "product_line": "心血管", "grade": "三级甲等", "source": "官网"}


async def test_token_validation_idempotency_and_batches(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await make_runtime({"leads": {"api_token": TOKEN, "rules": rules_file(tmp_path)}}, http=True,
                                 clock=FakeClock(MONDAY))
    port = runtime.port
    assert port is not None
    status, body = await _post(port, LEAD, token=None)
    assert status == 401 and body["ok"] is False
    status, _ = await _post(port, LEAD, token="wrong")
    assert status == 401
    assert await _count(runtime) == 0

    status, body = await _post(port, [LEAD, {**LEAD, "id": "CRM-2", "phone": 12345, "colour": "red"}])
    assert status == 422
    assert {"loc": ["body", 1, "colour"], "msg": "未知字段", "type": "extra_forbidden"} in body["detail"]
    status, body = await _post(port, None, raw=b"{not json")
    assert status == 422 and body["detail"][0]["type"] == "json_invalid"
    assert await _count(runtime) == 0  # all or nothing

    status, body = await _post(port, LEAD)
    assert status == 200 and body["leads"][0]["status"] == "offered" and body["leads"][0]["created"] is True
    status, again = await _post(port, LEAD)
    assert status == 200 and again["leads"][0]["lead_id"] == body["leads"][0]["lead_id"] and again["leads"][0]["created"] is False
    status, batch = await _post(port, [{**LEAD, "id": "CRM-3", "phone": "", "hospital": "华山医院"},
                                       {**LEAD, "id": "CRM-4", "hospital": "中山医院", "phone": "13900001111"}])
    assert status == 200 and [x["status"] for x in batch["leads"]] == ["quarantined", "offered"]
    assert await _count(runtime) == 3


async def test_a_database_failure_is_a_503_not_a_500(make_runtime: RuntimeFactory, tmp_path: Path, monkeypatch: Any) -> None:
    from handlers.leads import service

    runtime = await make_runtime({"leads": {"api_token": TOKEN, "rules": rules_file(tmp_path)}}, http=True)

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "intake", broken)
    status, body = await _post(runtime.port, LEAD)  # type: ignore[arg-type]
    assert status == 503 and body["ok"] is False


async def test_without_a_token_the_endpoint_is_not_there(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime(http=True)
    status, _ = await _post(runtime.port, LEAD)  # type: ignore[arg-type]
    assert status == 404
