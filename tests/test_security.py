"""Issue 17: each fix has a regression test here that fails on the code before it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.channels.dingtalk import ReplayCache, webhook_allowed
from bot.config import ConfigError, load_config, parse_config
from bot.messages import Reply
from bot.pipeline.delivery import drain_once
from bot.pipeline.outbox import enqueue, row_values
from bot.redact import redact
from storage.db import transaction
from storage.models import OutboxRow
from tests.conftest import RuntimeFactory, make_config
from tests.emulators.dingtalk import DingTalkEmulator
from tests.test_dingtalk_http import (
    VECTOR_SECRET,
    VECTOR_SIGN,
    VECTOR_TS,
    encode,
    post,
    vector_clock,
)

SECRET = "Sup3rS3cretAppSecret-value"


# ---- 1. /local/messages -----------------------------------------------------------------


async def test_local_http_is_off_by_default_and_needs_a_token(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime(http=True)
    url = f"http://127.0.0.1:{runtime.port}/local/messages"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"user": "zhangwei", "text": "hi"}) as resp:
            assert resp.status in (404, 405)
    from bot.channels.local import check_config

    with pytest.raises(ConfigError, match="GENJIN_LOCAL_TOKEN"):
        check_config(make_config("sqlite+aiosqlite:///x.db", {"local": {"http": True}}).local)


async def test_local_http_rejects_missing_or_wrong_token(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"local": {"http": True, "token": "t0k"}}, http=True)
    url = f"http://127.0.0.1:{runtime.port}/local/messages"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "t0k"}):
            async with http.post(url, json={"user": "zhangwei", "text": "hi"}, headers=headers) as resp:
                assert resp.status == 401
        async with http.post(url, json={"user": "zhangwei", "text": "hi"}, headers={"Authorization": "Bearer t0k"}) as resp:
            assert resp.status == 200


def test_local_token_comes_from_the_environment() -> None:
    config = load_config(None, env={"GENJIN_LOCAL_HTTP": "true", "GENJIN_LOCAL_TOKEN": "from-env"})
    assert config.local.http and config.local.token == "from-env"


# ---- 3. nesting on the local endpoint ---------------------------------------------------


async def test_deeply_nested_local_json_is_a_400(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"local": {"http": True, "token": "t"}}, http=True)
    url = f"http://127.0.0.1:{runtime.port}/local/messages"
    async with aiohttp.ClientSession() as http:
        for body in (b"[" * 50_000 + b"]" * 50_000, b'{"user": "zhangwei", "text": "x", "e": ' + b"[" * 500 + b"]" * 500 + b"}"):
            async with http.post(url, data=body, headers={"Authorization": "Bearer t"}) as resp:
                assert resp.status == 400, await resp.text()


# ---- 4. outbox backlog on /healthz and /metrics ------------------------------------------


async def test_healthz_and_metrics_show_the_outbox_backlog(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime(http=True)
    app = runtime.app
    async with transaction(app.sessions) as session:
        enqueue(session, row_values(platform="nowhere", recipient="x", reply=Reply(text="hi"), now=app.clock.now()))
    base = f"http://127.0.0.1:{runtime.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as resp:
            report = await resp.json()
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
    assert report["outbox"]["pending"] == 1 and report["outbox"]["oldest_pending_seconds"] >= 0
    assert "genjin_outbox_pending 1.0" in text and "genjin_outbox_oldest_pending_seconds" in text


# ---- 6. DingTalk replay and sessionWebhook allow-list -----------------------------------


@pytest.fixture
async def dt_emu() -> AsyncIterator[DingTalkEmulator]:
    emulator = await DingTalkEmulator(app_secret=VECTOR_SECRET).start()
    yield emulator
    await emulator.stop()


async def test_dingtalk_signature_is_good_for_one_message_only(dt_emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    overrides = {"dingtalk": dt_emu.config(mode="http"), "server": {"host": "127.0.0.1", "port": 0}}
    runtime = await make_runtime(overrides, clock=vector_clock(), http=True)
    first = dt_emu.bot_message("rep-001", text="第一条")
    assert (await post(runtime, encode(first)))[0] == 200
    assert (await post(runtime, encode(first)))[0] == 200  # DingTalk's retry of the same msgId
    forged = dt_emu.bot_message("rep-002", text="冒充的消息")
    status, _ = await post(runtime, encode(forged), timestamp=VECTOR_TS, signature=VECTOR_SIGN)
    assert status == 403


def test_replay_cache_forgets_pairs_older_than_the_window() -> None:
    cache = ReplayCache(max_skew_ms=1000)
    assert cache.admit("1000", "s", "a", now_ms=1000) and not cache.admit("1000", "s", "b", now_ms=1500)
    assert cache.admit("1000", "s", "b", now_ms=5000)  # (the timestamp check rejects it anyway)


def test_session_webhook_allow_list() -> None:
    allowed = ["https://oapi.dingtalk.com", "https://api.dingtalk.com", "http://127.0.0.1:8123"]
    assert webhook_allowed("https://oapi.dingtalk.com/robot/sendBySession?session=x", allowed)
    assert webhook_allowed("https://oapi.dingtalk.com:443/robot/sendBySession", allowed)
    assert webhook_allowed("http://127.0.0.1:8123/robot/sendBySession", allowed)
    for url in (
        "https://evil.example/robot",
        "http://oapi.dingtalk.com/robot",  # scheme differs
        "https://oapi.dingtalk.com:8443/robot",  # port differs
        "https://oapi.dingtalk.com.evil.example/robot",
        "https://oapi.dingtalk.com@evil.example/robot",
        "http://127.0.0.1:8124/robot",
        "ftp://oapi.dingtalk.com/x",
        "https://[::1/",
    ):
        assert not webhook_allowed(url, allowed), url


async def test_reply_never_goes_to_a_foreign_session_webhook(dt_emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    overrides = {"dingtalk": dt_emu.config(mode="http"), "server": {"host": "127.0.0.1", "port": 0}}
    runtime = await make_runtime(overrides, clock=vector_clock(), http=True, workers=True)
    data = dt_emu.bot_message("rep-001", text="你好")
    data["sessionWebhook"] = "http://127.0.0.2:9/steal?session=x"
    assert (await post(runtime, encode(data)))[0] == 200
    await dt_emu.wait_for(lambda: bool(dt_emu.accepted("/v1.0/robot/oToMessages/batchSend")))
    assert not dt_emu.accepted("/robot/sendBySession")


# ---- 7. secrets in errors -----------------------------------------------------------------


async def _malformed_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nonsense\r\n\r\n{}")
    await writer.drain()
    writer.close()


async def test_app_secret_never_reaches_last_error_or_the_log(make_runtime: RuntimeFactory) -> None:
    from structlog.testing import capture_logs

    server = await asyncio.start_server(_malformed_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    wecom = {
        "enabled": True,
        "corp_id": "ww0123456789abcdef",
        "agent_id": "1000002",
        "secret": SECRET,
        "token": "tok",
        "encoding_aes_key": "a" * 43,
        "api_base": f"http://127.0.0.1:{port}",
    }
    try:
        runtime = await make_runtime({"wecom": wecom, "logging": {"level": "INFO"}})
        app = runtime.app
        async with transaction(app.sessions) as session:
            enqueue(session, row_values(platform="wecom", recipient="ZhangWei", reply=Reply(text="hi"), now=app.clock.now()))
        with capture_logs() as events:
            await drain_once(app)
        async with app.sessions() as session:
            row = (await session.scalars(select(OutboxRow))).one()
    finally:
        server.close()
    assert row.last_error and "gettoken" in row.last_error
    assert SECRET not in row.last_error
    assert events and SECRET not in repr(events)


def test_log_processor_redacts_tracebacks() -> None:
    from bot.redact import redact_event

    event = redact_event(None, "info", {"event": "x", "exception": f"ClientError url=http://q/?corpsecret={SECRET}"})
    assert SECRET not in repr(event)


def test_redact_masks_known_secret_shapes() -> None:
    text = redact(
        "url='https://q/cgi-bin/gettoken?corpid=ww1&corpsecret=S1' access_token=T1 "
        '{"appSecret": "S2", "client_secret": "S3"} timestamp=1&sign=S4 postgresql://u:S5@h/db key=S6'
    )
    for secret in ("S1", "T1", "S2", "S3", "S4", "S5", "S6"):
        assert secret not in text
    assert "corpsecret=***" in text


# ---- 8. configuration errors ------------------------------------------------------------


def test_config_errors_do_not_echo_secrets() -> None:
    aes = "K" * 42
    with pytest.raises(ConfigError) as err:
        parse_config(
            {"wecom": {"encoding_aes_key": aes}, "database": {"url": "mysql://genjin:hunter2@db/genjin"}}, "t", env={}
        )
    text = "\n".join(err.value.problems)
    assert aes not in text and "hunter2" not in text
    assert "wecom.encoding_aes_key" in text and "database.url" in text


def _json(data: Any) -> str:
    return json.dumps(data)


# ---- 3. a huge task number is a polite reply, not three failed attempts ---------------------


async def test_huge_task_number_gets_a_polite_answer(harness: Any) -> None:
    from storage.models import InboxRow

    for text in ("完成 99999999999999999999", "推迟 99999999999999999999 到明天"):
        [reply] = await harness.say("liuyang", text)
        assert "没有找到" in reply, reply
    async with harness.app.sessions() as session:
        statuses = {row.status for row in (await session.scalars(select(InboxRow))).all()}
    assert statuses == {"done"}


async def test_deeply_nested_dingtalk_json_is_a_400(dt_emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    overrides = {"dingtalk": dt_emu.config(mode="http"), "server": {"host": "127.0.0.1", "port": 0}}
    runtime = await make_runtime(overrides, clock=vector_clock(), http=True)
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"msgId": "m", "x": ' + b"[" * 900 + b"]" * 900 + b"}"):
        status, _ = await post(runtime, body)
        assert status == 400


# ---- 10. long message ids ----------------------------------------------------------------


async def test_long_message_ids_sharing_a_prefix_are_two_messages(harness: Any) -> None:
    from bot.pipeline import inbox

    prefix = "dt" + "x" * 300
    first = await inbox.accept(harness.app, harness.message("zhangwei", "一", msg_id=prefix + "A"))
    second = await inbox.accept(harness.app, harness.message("zhangwei", "二", msg_id=prefix + "B"))
    again = await inbox.accept(harness.app, harness.message("zhangwei", "一", msg_id=prefix + "A"))
    assert not first.duplicate and not second.duplicate and again.duplicate
