"""Sending to DingTalk: sessionWebhook first, OpenAPI fallback, tokens, errors, group robot.

The pipeline tests run a real Runtime with workers against the emulator (both
databases); the error-classification tests call the channel directly, since they touch
no storage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import build_runtime
from bot.channels.base import PermanentFailure, TemporaryFailure
from bot.channels.dingtalk import DingTalkRobotChannel
from bot.channels.dingtalk_client import WebhookRejected
from bot.config import ConfigError
from bot.context import AppContext
from bot.messages import Outbound, Reply
from bot.pipeline.outbox import enqueue, row_values
from bot.runtime import Runtime
from cards.model import Button, Card, CardField
from storage.models import OutboxRow
from tests.conftest import RuntimeFactory, make_config
from tests.emulators.dingtalk import DingTalkEmulator
from tests.harness import pipeline_idle

BATCH = "/v1.0/robot/oToMessages/batchSend"
GROUP = "/v1.0/robot/groupMessages/send"
TOKEN = "/v1.0/oauth2/accessToken"
SESSION = "/robot/sendBySession"
ROBOT = "/robot/send"


@pytest.fixture
async def emu() -> AsyncIterator[DingTalkEmulator]:
    emulator = await DingTalkEmulator(known_staff={"rep-001", "rep-002", "manager-001"}).start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def app_for(tmp_path: Path) -> AsyncIterator[Any]:
    """Channels built from config, not started (HTTP mode: no Stream connection)."""
    built: list[Runtime] = []

    def factory(dingtalk: dict[str, Any]) -> AppContext:
        runtime = build_runtime(make_config(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", {"dingtalk": dingtalk}))
        built.append(runtime)
        return runtime.app

    yield factory
    for runtime in built:
        for channel in runtime.app.channels.values():
            await channel.stop()
        await runtime.app.engine.dispose()


def out(recipient: str = "rep-001", reply: Reply | None = None, **context: Any) -> Outbound:
    return Outbound(id=1, platform="dingtalk", recipient=recipient, conversation="", reply=reply or Reply(text="收到。"), context=context)


def param(request: Any) -> dict[str, Any]:
    assert isinstance(request.body["msgParam"], str), "msgParam is a JSON string"
    return json.loads(request.body["msgParam"])


# -- through the pipeline ----------------------------------------------------------------


async def test_expired_session_webhook_falls_back_to_batch_send(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"dingtalk": emu.config()}, workers=True)
    await emu.wait_connected()
    await emu.push(emu.bot_message("rep-001", text="今天拜访华山医院心内科王主任，下周三送样", webhook_expires_in=-5))
    await emu.wait_for(lambda: bool(emu.accepted(BATCH)))
    await pipeline_idle(runtime.app)
    [sent] = emu.accepted(BATCH)
    assert sent.body["userIds"] == ["rep-001"] and sent.body["robotCode"] == emu.robot_code
    assert sent.body["msgKey"] in {"sampleMarkdown", "sampleActionCard"} or sent.body["msgKey"].startswith("sampleActionCard")
    assert "华山医院" in param(sent)["text"]
    assert not emu.calls(SESSION), "an expired sessionWebhook is not even tried"
    assert len(emu.accepted(TOKEN)) == 1


async def test_group_reply_after_expiry_goes_to_the_group(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    await make_runtime({"dingtalk": emu.config()}, workers=True)
    await emu.wait_connected()
    data = emu.bot_message("rep-002", text="#价格", group=True, webhook_expires_in=-5)
    await emu.push(data)
    await emu.wait_for(lambda: bool(emu.accepted(GROUP)))
    [sent] = emu.accepted(GROUP)
    assert sent.body["openConversationId"] == data["conversationId"]
    assert param(sent)["title"]
    assert not emu.calls(BATCH) and not emu.calls(SESSION)


async def test_robot_throttling_backs_off_and_delivers_once(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime({"dingtalk": emu.config(mode="http", robot_throttle_seconds=0.4)}, workers=True)
    app = runtime.app
    emu.throttle_robot = 1  # DingTalk answers 130101 once
    card = Card(title="本周团队跟进", fields=(CardField("新增记录", "12"),), buttons=(Button("查看", command="#周报"),))
    async with app.sessions() as session:
        async with session.begin():
            row = enqueue(session, row_values(platform="dingtalk_robot", recipient="default", reply=Reply(card=card), now=app.clock.now()))
    app.outbox_wakeup.set()
    await emu.wait_for(lambda: bool(emu.accepted(ROBOT)), timeout=10)
    calls = emu.calls(ROBOT)
    assert [c.response["errcode"] for c in calls] == [130101, 0]
    assert calls[1].at - calls[0].at >= 0.4, "waited for the throttle to pass"
    assert calls[1].body["msgtype"] == "actionCard"

    async def delivered() -> tuple[str, int]:
        async with app.sessions() as session:
            stored = await session.scalar(select(OutboxRow).where(OutboxRow.id == row.id))
        assert stored is not None
        return stored.status, stored.attempts

    deadline = time.monotonic() + 5
    while (await delivered())[0] == "sending" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert await delivered() == ("sent", 2)


# -- direct channel calls -------------------------------------------------------------


async def test_valid_session_webhook_is_used_and_rejection_falls_back(emu: DingTalkEmulator, app_for: Any) -> None:
    channel = app_for(emu.config(mode="http")).channels["dingtalk"]
    url, expires = emu.new_session_webhook()
    await channel.send(out(reply_session_webhook=url, reply_session_webhook_expires=expires, reply_conversation_type="1"))
    assert [r.body for r in emu.accepted(SESSION)] == [{"msgtype": "text", "text": {"content": "收到。"}}]
    assert not emu.calls(TOKEN)

    emu.expire_sessions()  # DingTalk says the session is gone although its expiry is ahead
    await channel.send(out(reply_session_webhook=url, reply_session_webhook_expires=expires, reply_conversation_type="1"))
    assert emu.calls(SESSION)[-1].response["errcode"] != 0
    [fallback] = emu.accepted(BATCH)
    assert (fallback.body["msgKey"], param(fallback)) == ("sampleText", {"content": "收到。"})


async def test_webhook_close_to_expiry_is_not_used(emu: DingTalkEmulator, app_for: Any) -> None:
    channel = app_for(emu.config(mode="http", session_webhook_margin_seconds=60)).channels["dingtalk"]
    url, expires = emu.new_session_webhook(expires_in=30)
    await channel.send(out(reply_session_webhook=url, reply_session_webhook_expires=expires))
    assert not emu.calls(SESSION) and len(emu.accepted(BATCH)) == 1


async def test_token_is_cached_refreshed_early_and_after_auth_failure(emu: DingTalkEmulator, app_for: Any) -> None:
    emu.token_ttl = 2.0
    channel = app_for(emu.config(mode="http", token_refresh_margin_seconds=300)).channels["dingtalk"]
    await channel.send(out())
    await channel.send(out())
    assert len(emu.calls(TOKEN)) == 1, "cached"

    await asyncio.sleep(1.1)  # the token has 0.9 s left: past the refresh margin (half its 2 s life)
    await channel.send(out())
    assert len(emu.calls(TOKEN)) == 2, "refreshed before it expired"
    assert all(r.status == 200 for r in emu.calls(BATCH))

    emu.revoke_tokens()  # e.g. the secret was rotated in the admin console
    await channel.send(out())
    assert len(emu.calls(TOKEN)) == 3
    assert [r.status for r in emu.calls(BATCH)][-2:] == [401, 200], "refreshed and retried once"
    assert len(emu.accepted(BATCH)) == 4


async def test_auth_failure_after_refresh_is_permanent(emu: DingTalkEmulator, app_for: Any) -> None:
    channel = app_for(emu.config(mode="http")).channels["dingtalk"]
    emu.inject(BATCH, 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}, times=2)
    with pytest.raises(PermanentFailure, match="InvalidAuthentication"):
        await channel.send(out())
    assert len(emu.calls(BATCH)) == 2 and len(emu.calls(TOKEN)) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, {"code": "Throttling", "message": "请求过于频繁"}, TemporaryFailure),
        (403, {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "qps limit"}, TemporaryFailure),
        (500, {"code": "ServiceUnavailable", "message": "系统繁忙"}, TemporaryFailure),
        (503, {}, TemporaryFailure),
        (400, {"code": "invalidParameter.userIds", "message": "userIds 不合法"}, PermanentFailure),
        (403, {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "message": "没有调用该接口的权限"}, PermanentFailure),
    ],
)
async def test_openapi_errors_are_classified(
    emu: DingTalkEmulator, app_for: Any, status: int, body: dict[str, str], expected: type[Exception]
) -> None:
    channel = app_for(emu.config(mode="http")).channels["dingtalk"]
    emu.inject(BATCH, status, body)
    with pytest.raises(expected) as caught:
        await channel.send(out())
    assert type(caught.value) is expected
    assert str(status) in str(caught.value) and body.get("message", "") in str(caught.value)
    await channel.send(out())  # the next attempt goes through
    assert len(emu.accepted(BATCH)) == 1


async def test_network_failure_and_unknown_recipient(emu: DingTalkEmulator, app_for: Any) -> None:
    dead = app_for(emu.config(mode="http", api_base="http://127.0.0.1:9", http_timeout_seconds=2)).channels["dingtalk"]
    with pytest.raises(TemporaryFailure, match="network error"):
        await dead.send(out())
    channel = app_for(emu.config(mode="http")).channels["dingtalk"]
    with pytest.raises(PermanentFailure, match="staff id"):
        await channel.send(out(recipient="rep-999"))
    with pytest.raises(PermanentFailure, match="no DingTalk staff id"):
        await channel.send(out(recipient="external:$:LWCP_v1:$x"))
    wrong = app_for(emu.config(mode="http", client_secret="wrong")).channels["dingtalk"]
    with pytest.raises(PermanentFailure, match="client_secret"):
        await wrong.send(out())


async def test_card_through_openapi_uses_action_card_keys(emu: DingTalkEmulator, app_for: Any) -> None:
    channel = app_for(emu.config(mode="http")).channels["dingtalk"]
    card = Card(title="待办提醒", fields=(CardField("任务", "给王主任送样"),), buttons=(Button("完成", command="完成 3"), Button("推迟", command="推迟 3")))
    await channel.send(out(reply=Reply(text="早上好", card=card)))
    [sent] = emu.accepted(BATCH)
    assert sent.body["msgKey"] == "sampleActionCard2"
    p = param(sent)
    assert (p["actionTitle1"], p["actionTitle2"]) == ("完成", "推迟")
    assert p["actionURL1"] == "dtmd://dingtalkclient/sendMessage?content=%E5%AE%8C%E6%88%90%203"
    assert "早上好" in p["text"] and "给王主任送样" in p["text"]


async def test_robot_webhook_is_signed_and_rate_limited_locally(emu: DingTalkEmulator, app_for: Any) -> None:
    robot = app_for(emu.config(mode="http", robot_per_minute=2)).channels["dingtalk_robot"]
    assert isinstance(robot, DingTalkRobotChannel)
    push = Outbound(id=9, platform="dingtalk_robot", recipient="default", conversation="", reply=Reply(text="本周新增 12 条跟进"))
    await robot.send(push)
    await robot.send(push)
    assert [c.response["errcode"] for c in emu.calls(ROBOT)] == [0, 0]
    assert {"timestamp", "sign", "access_token"} <= set(emu.calls(ROBOT)[0].query)
    started = time.monotonic()
    with pytest.raises(TemporaryFailure) as caught:
        await robot.send(push)
    assert len(emu.calls(ROBOT)) == 2, "the third message in a minute is held back locally"
    assert caught.value.retry_after is not None and 58 < caught.value.retry_after <= 60.01 + (time.monotonic() - started)


async def test_robot_with_wrong_secret_is_rejected_permanently(emu: DingTalkEmulator, app_for: Any) -> None:
    robot = app_for(emu.config(mode="http", robot_secret="SECwrong")).channels["dingtalk_robot"]
    push = Outbound(id=9, platform="dingtalk_robot", recipient="default", conversation="", reply=Reply(text="x"))
    with pytest.raises(WebhookRejected, match="310000"):
        await robot.send(push)
    unset = app_for(emu.config(mode="http", robot_webhook="")).channels["dingtalk_robot"]
    with pytest.raises(PermanentFailure, match="robot_webhook"):
        await unset.send(push)


def test_missing_credentials_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_runtime(make_config(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", {"dingtalk": {"enabled": True, "client_id": "k"}}))
    assert "dingtalk.client_secret" in str(caught.value) and "GENJIN_DINGTALK_CLIENT_SECRET" in str(caught.value)
    assert "dingtalk.client_id" not in str(caught.value)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def test_a_chart_is_uploaded_and_sent_as_an_image(emu: DingTalkEmulator, app_for: Any) -> None:
    from bot.messages import Image

    channel = app_for({**emu.config(), "mode": "http"}).channels["dingtalk"]
    await channel.send(out(reply=Reply(text="本周漏斗", image=Image(PNG, alt="漏斗：招标 2"))))
    text, image = emu.accepted(BATCH)
    assert text.body["msgKey"] == "sampleText" and image.body["msgKey"] == "sampleImageMsg"
    assert emu.uploads[param(image)["photoURL"]] == PNG


async def test_a_failed_upload_sends_the_charts_text_instead(emu: DingTalkEmulator, app_for: Any) -> None:
    from bot.messages import Image

    emu.fail_uploads = 1
    channel = app_for({**emu.config(), "mode": "http"}).channels["dingtalk"]
    await channel.send(out(reply=Reply(image=Image(PNG, alt="漏斗：招标 2"))))
    [fallback] = emu.accepted(BATCH)
    assert fallback.body["msgKey"] == "sampleText" and "漏斗：招标 2" in param(fallback)["content"]
    assert emu.uploads == {}
