"""End to end: WeCom (the emulator + the player) ↔ a real Runtime over loopback HTTP.

Every test runs a migrated database (SQLite, and PostgreSQL when configured), the
callback server, inbox and outbox workers, with ``[wecom] api_base`` pointing at the
emulator, and drives it only the way WeCom would: encrypted callbacks in, API calls out.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import build_runtime
from bot.channels.base import MediaError, PermanentFailure, TemporaryFailure
from bot.channels.wecom import WeComChannel
from bot.config import ConfigError
from bot.messages import Outbound, Reply
from bot.pipeline.outbox import enqueue, row_values
from bot.runtime import Runtime
from cards.model import Button, Card, CardField
from storage.models import InboxRow, OutboxRow
from tests.conftest import RuntimeFactory, make_config
from tests.emulators.wecom import VOICE_AMR, WeComEmulator, WeComPlayer
from tests.harness import pipeline_idle

TOKEN = "GenjinCallbackToken"
USERS = {"ZhangWei", "LiNa", "ChenJing", "WangJingli"}
REPLY_TYPES = {"text", "markdown", "template_card"}
SEND = "/cgi-bin/message/send"


def random_aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


def wecom_overrides(emu: WeComEmulator, aes_key: str, **extra: Any) -> dict[str, Any]:
    return {
        "wecom": {
            "enabled": True,
            "corp_id": emu.corp_id,
            "agent_id": emu.agent_id,
            "secret": emu.secret,
            "token": TOKEN,
            "encoding_aes_key": aes_key,
            "api_base": emu.base_url,
            "robot_webhook_key": "robot-key-east",
            **extra,
        }
    }


@dataclass
class Rig:
    runtime: Runtime
    emu: WeComEmulator
    player: WeComPlayer

    @property
    def channel(self) -> WeComChannel:
        channel = self.runtime.app.channels["wecom"]
        assert isinstance(channel, WeComChannel)
        return channel

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.runtime.port}"


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def emu() -> AsyncIterator[WeComEmulator]:
    async with WeComEmulator(users=USERS) as emulator:
        yield emulator


@pytest.fixture
async def make_rig(make_runtime: RuntimeFactory, emu: WeComEmulator) -> AsyncIterator[RigFactory]:
    players: list[WeComPlayer] = []

    async def factory(server: dict[str, Any] | None = None, **wecom: Any) -> Rig:
        aes_key = random_aes_key()
        overrides = wecom_overrides(emu, aes_key, **wecom)
        if server:
            overrides["server"] = server
        runtime = await make_runtime(overrides, http=True, workers=True)
        player = WeComPlayer(
            f"http://127.0.0.1:{runtime.port}/wecom/callback",
            token=TOKEN,
            encoding_aes_key=aes_key,
            corp_id=emu.corp_id,
            agent_id=emu.agent_id,
        )
        await player.__aenter__()
        players.append(player)
        return Rig(runtime, emu, player)

    yield factory
    for player in players:
        await player.__aexit__()


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def inbox_rows(rig: Rig) -> list[InboxRow]:
    async with rig.runtime.app.sessions() as session:
        return list((await session.scalars(select(InboxRow).order_by(InboxRow.id))).all())


async def outbox_rows(rig: Rig, platform: str = "wecom") -> list[OutboxRow]:
    async with rig.runtime.app.sessions() as session:
        rows = await session.scalars(select(OutboxRow).where(OutboxRow.platform == platform).order_by(OutboxRow.id))
        return list(rows.all())


async def push(rig: Rig, reply: Reply, *, recipient: str = "ZhangWei", platform: str = "wecom") -> None:
    app = rig.runtime.app
    async with app.sessions() as session:
        async with session.begin():
            enqueue(session, row_values(platform=platform, recipient=recipient, reply=reply, now=app.clock.now()))
    app.outbox_wakeup.set()


def assert_reply_shape(messages: list[dict[str, Any]]) -> None:
    assert messages, "nothing was sent"
    for m in messages:
        assert m["msgtype"] in REPLY_TYPES
        assert not m.get("_truncated"), "WeCom would have truncated this message"


# ---- receiving ---------------------------------------------------------------------------


async def test_url_verification_echoes_the_plaintext(rig: Rig) -> None:
    status, body, plain = await rig.player.verify()
    assert status == 200 and body == plain
    status, _, _ = await rig.player.verify(forge=True)
    assert status == 403
    async with rig.player.session.get(rig.player.url, params={"echostr": "x"}) as resp:
        assert resp.status == 400


async def test_text_callback_is_acknowledged_and_answered(rig: Rig) -> None:
    started = time.monotonic()
    status, body = await rig.player.post(rig.player.text_xml("ZhangWei", "王主任说下个月招标，价格可以谈"))
    assert (status, body) == (200, "")
    assert time.monotonic() - started < 2.0  # WeCom gives up after 5 s
    await eventually(lambda: rig.emu.sent_to("ZhangWei"))
    assert_reply_shape(rig.emu.sent_to("ZhangWei"))
    assert all(str(m["agentid"]) == rig.emu.agent_id for m in rig.emu.sent)
    rows = await inbox_rows(rig)
    assert [(r.sender, r.kind, r.text) for r in rows] == [("ZhangWei", "text", "王主任说下个月招标，价格可以谈")]
    await eventually(lambda: _all_sent(rig))


async def _all_sent(rig: Rig) -> bool:
    rows = await outbox_rows(rig)
    return bool(rows) and all(r.status == "sent" for r in rows)


async def test_the_same_callback_three_times_is_processed_once(rig: Rig) -> None:
    params, body = rig.player.encrypt(rig.player.text_xml("ZhangWei", "华山医院设备科，下周三复访"))
    results = await asyncio.gather(*(rig.player.post_raw(params, body) for _ in range(3)))
    assert results == [(200, "")] * 3
    await eventually(lambda: rig.emu.sent_to("ZhangWei"))
    await eventually(lambda: _all_sent(rig))
    await pipeline_idle(rig.runtime.app)  # a duplicate would have been processed and sent by now
    assert len(await inbox_rows(rig)) == 1
    replies = await outbox_rows(rig)
    assert len(replies) >= 1 and {r.inbox_id for r in replies} == {(await inbox_rows(rig))[0].id}
    assert len(rig.emu.sent_to("ZhangWei")) == len(replies)
    # a later redelivery (after processing) is still a no-op
    assert await rig.player.post_raw(params, body) == (200, "")
    await pipeline_idle(rig.runtime.app)
    assert len(await inbox_rows(rig)) == 1 and len(await outbox_rows(rig)) == len(replies)


async def test_forged_and_foreign_callbacks_are_refused_before_storage(rig: Rig) -> None:
    xml = rig.player.text_xml("ZhangWei", "伪造的消息")
    assert (await rig.player.post(xml, forge=True))[0] == 403
    assert (await rig.player.post(xml, corp_id="wwSomeOtherCorp000"))[0] == 403
    params, body = rig.player.encrypt(xml)
    params["timestamp"] = str(int(params["timestamp"]) + 1)  # signature no longer matches
    assert (await rig.player.post_raw(params, body))[0] == 403
    assert await inbox_rows(rig) == []  # refused before anything was stored
    assert rig.emu.sent == []
    metrics = rig.runtime.app.metrics.render().decode()
    assert 'reason="bad_signature"' in metrics and 'reason="bad_corp_id"' in metrics


async def test_bad_input_gets_4xx_never_500(make_rig: RigFactory) -> None:
    rig = await make_rig(server={"max_body_bytes": 4096})
    player = rig.player
    params, body = player.encrypt(player.text_xml("ZhangWei", "很长" * 3000))
    assert (await player.post_raw(params, body))[0] == 413
    assert (await player.post_raw(params, b"<xml><Encrypt>unterminated"))[0] == 400
    assert (await player.post_raw(params, b"\x00\xff binary"))[0] == 400
    assert (await player.post_raw({}, body.encode()[:100]))[0] == 400
    # signed correctly, but the ciphertext is not base64
    from wechatpy.crypto import _get_signature

    now = str(int(time.time()))
    sig = _get_signature(TOKEN, now, "42", "!!!not-base64!!!")
    junk = "<xml><Encrypt><![CDATA[!!!not-base64!!!]]></Encrypt></xml>"
    status, _ = await player.post_raw({"msg_signature": sig, "timestamp": now, "nonce": "42"}, junk)
    assert status == 400
    # signed correctly but captured long ago: a replay, refused before decryption
    old = "1700000000"
    sig = _get_signature(TOKEN, old, "42", "!!!not-base64!!!")
    status, _ = await player.post_raw({"msg_signature": sig, "timestamp": old, "nonce": "42"}, junk)
    assert status == 403
    # encrypted correctly, but the plaintext is not a WeCom message
    for plaintext in ("<xml><MsgType>text</MsgType>", "<xml><Content>no sender</Content></xml>"):
        assert (await player.post(plaintext))[0] == 400
    assert await inbox_rows(rig) == []  # refused before anything was stored


async def test_voice_callback_and_media_download(rig: Rig) -> None:
    media_id = rig.emu.add_voice()
    assert (await rig.player.post(rig.player.voice_xml("ZhangWei", media_id)))[0] == 200
    await eventually(lambda: inbox_rows(rig))
    row = (await inbox_rows(rig))[0]
    assert (row.kind, row.media, row.payload["media_format"]) == ("voice", media_id, "amr")
    data = await rig.channel.fetch_media(row.media, row.payload["media_format"])
    assert data == VOICE_AMR.read_bytes()
    with pytest.raises(MediaError, match="40007"):
        await rig.channel.fetch_media("MEDIA_expired", "amr")
    html = rig.emu.add_media(b"<html>not audio</html>", "text/html")
    with pytest.raises(MediaError, match="not AMR"):
        await rig.channel.fetch_media(html, "amr")


async def test_other_event_types_are_stored(rig: Rig) -> None:
    p = rig.player
    for xml in (p.enter_agent_xml("ZhangWei"), p.location_xml("ZhangWei", 31.2, 121.4, "瑞金医院"), p.image_xml("ZhangWei", "MEDIA_img")):
        assert (await p.post(xml)) == (200, "")
    await eventually(lambda: _count(rig, 3))
    rows = await inbox_rows(rig)
    assert [(r.kind, r.payload["event"]) for r in rows] == [("event", "enter_agent"), ("event", "location"), ("image", "")]


async def _count(rig: Rig, n: int) -> bool:
    return len(await inbox_rows(rig)) == n


# ---- cards and clicks -----------------------------------------------------------------------


LEAD_CARD = Card(
    title="新线索：华山医院心内科",
    kind="lead",
    fields=(CardField("医院", "华山医院"), CardField("科室", "心内科")),
    buttons=tuple(Button(label, command=cmd) for label, cmd in [("接单", "接单"), ("转给同事", "转单")])
    + tuple(Button(f"选项{i}", command=f"选项 {i}") for i in range(6)),
)


async def test_button_click_runs_the_command_and_updates_the_card(rig: Rig) -> None:
    await push(rig, Reply(card=LEAD_CARD))
    await eventually(lambda: [m for m in rig.emu.sent if m["msgtype"] == "template_card"])
    card_msg = next(m for m in rig.emu.sent if m["msgtype"] == "template_card")
    card = card_msg["template_card"]
    assert card["card_type"] == "button_interaction" and 1 <= len(card["button_list"]) <= 6
    assert len(card["task_id"].encode()) <= 128
    key = card["button_list"][0]["key"]
    assert key == "接单"
    before = len(rig.emu.sent)

    code = rig.emu.click(card["task_id"], "ZhangWei")
    click = rig.player.card_click_xml("ZhangWei", key, card["task_id"], code)
    assert (await rig.player.post(click)) == (200, "")
    await eventually(lambda: rig.emu.updates)
    update = rig.emu.updates[0]
    assert update["response_code"] == code and update["userids"] == ["ZhangWei"]
    assert update["button"]["replace_name"]
    await eventually(lambda: len(rig.emu.sent) > before)  # the command's own reply
    assert_reply_shape(rig.emu.sent[before:])
    row = (await inbox_rows(rig))[0]
    assert (row.kind, row.payload["event"], row.payload["event_key"]) == ("event", "card_click", "接单")

    # WeCom redelivers the click: nothing happens twice
    assert (await rig.player.post(click)) == (200, "")
    await pipeline_idle(rig.runtime.app)
    assert len(rig.emu.updates) == 1 and len(await inbox_rows(rig)) == 1


async def test_card_retry_reuses_its_task_id(rig: Rig) -> None:
    rig.emu.fail_next(1, status=503, path=SEND)
    await push(rig, Reply(card=LEAD_CARD))
    await eventually(lambda: _all_sent(rig))
    (row,) = await outbox_rows(rig)
    rendered = rig.channel.render(_outbound(row))
    assert [c.errcode for c in rig.emu.calls_to(SEND)] == [-503] + [0] * len(rendered)
    cards = [m["template_card"]["task_id"] for m in rig.emu.sent if m["msgtype"] == "template_card"]
    assert cards == [m["template_card"]["task_id"] for m in rendered if m["msgtype"] == "template_card"]
    assert len(cards) == 1


def _outbound(row: OutboxRow) -> Outbound:
    return Outbound(row.id, row.platform, row.recipient, row.conversation, Reply.from_payload(row.payload))


# ---- failures and limits ----------------------------------------------------------------------


async def test_token_expiry_mid_run_loses_nothing(rig: Rig) -> None:
    await rig.player.post(rig.player.text_xml("ZhangWei", "第一条"))
    await eventually(lambda: rig.emu.sent_to("ZhangWei"))
    first = len(rig.emu.sent)
    rig.emu.expire_tokens()
    await rig.player.post(rig.player.text_xml("LiNa", "第二条"))
    await rig.player.post(rig.player.text_xml("ChenJing", "第三条"))
    await eventually(lambda: rig.emu.sent_to("LiNa") and rig.emu.sent_to("ChenJing"))
    await eventually(lambda: _all_sent(rig))
    assert 42001 in [c.errcode for c in rig.emu.calls_to(SEND)]
    assert rig.emu.gettoken_calls == 2 and len(rig.emu.sent) > first


async def test_rate_limited_twice_is_delivered_once_later(rig: Rig) -> None:
    rig.emu.fail_next(2, errcode=45009, path=SEND)
    await push(rig, Reply(text="明天上午十点提醒您：回访华山医院王主任"))
    await eventually(lambda: rig.emu.sent)
    await eventually(lambda: _all_sent(rig))
    assert [c.errcode for c in rig.emu.calls_to(SEND)] == [45009, 45009, 0]
    (row,) = await outbox_rows(rig)
    assert row.attempts == 3 and row.status == "sent"
    assert [m["text"]["content"] for m in rig.emu.sent] == ["明天上午十点提醒您：回访华山医院王主任"]


async def test_untrusted_ip_fails_once_and_shows_on_healthz(rig: Rig) -> None:
    rig.emu.fail_next(1, errcode=60020, path=SEND)
    await push(rig, Reply(text="测试消息"))
    await eventually(lambda: _status(rig, "failed"))
    (row,) = await outbox_rows(rig)
    assert rig.emu.client_ip in row.last_error and "可信IP" in row.last_error
    await pipeline_idle(rig.runtime.app)
    assert len(rig.emu.calls_to(SEND)) == 1  # not retried
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.base + "/healthz") as resp:
            report = await resp.json()
            assert resp.status == 503
    wecom = report["channels"]["wecom"]
    assert wecom["ok"] is False and rig.emu.client_ip in wecom["detail"] and wecom["errcode"] == 60020
    # once the administrator fixed the allow-list, the next delivery clears it
    await push(rig, Reply(text="第二条"))
    await eventually(lambda: rig.emu.sent)
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.base + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["channels"]["wecom"]["ok"] is True


async def _status(rig: Rig, status: str, platform: str = "wecom") -> bool:
    rows = await outbox_rows(rig, platform)
    return bool(rows) and all(r.status == status for r in rows)


async def test_server_errors_are_retried(rig: Rig) -> None:
    rig.emu.fail_next(2, status=502, path=SEND)
    await push(rig, Reply(text="网关抖动后也要送达"))
    await eventually(lambda: rig.emu.sent)
    assert [c.errcode for c in rig.emu.calls_to(SEND)] == [-502, -502, 0]


async def test_unknown_recipient_fails_permanently(rig: Rig) -> None:
    await push(rig, Reply(text="x"), recipient="NotAMember")
    await eventually(lambda: _status(rig, "failed"))
    (row,) = await outbox_rows(rig)
    assert "81013" in row.last_error


async def test_long_text_is_split_and_a_retry_resends_only_the_rest(rig: Rig) -> None:
    lines = [f"第{i}行：华山医院心内科王主任，下周三复访，带上新品资料和报价单。" for i in range(80)]
    text = "\n".join(lines)
    assert len(text.encode()) > 3 * 2048
    out = Outbound(id=10_001, platform="wecom", recipient="ZhangWei", conversation="ZhangWei", reply=Reply(text=text))
    rig.emu.fail_next(1, status=502, path=SEND, after=1)  # the second part meets a 502
    with pytest.raises(TemporaryFailure):
        await rig.channel.send(out)
    assert len(rig.emu.sent) == 1
    await rig.channel.send(out)
    parts = [m["text"]["content"] for m in rig.emu.sent]
    assert len(parts) >= 4 and all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts) == text  # nothing lost, nothing repeated
    assert_reply_shape(rig.emu.sent)


async def test_local_per_member_limit_backs_off(make_rig: RigFactory) -> None:
    rig = await make_rig(per_member_per_minute=2)
    outs = [Outbound(id=20_000 + i, platform="wecom", recipient="LiNa", conversation="LiNa", reply=Reply(text=f"第{i}条")) for i in range(3)]
    await rig.channel.send(outs[0])
    await rig.channel.send(outs[1])
    with pytest.raises(TemporaryFailure) as info:
        await rig.channel.send(outs[2])
    assert info.value.retry_after is not None and 55 < info.value.retry_after <= 60
    await rig.channel.send(Outbound(id=20_010, platform="wecom", recipient="ZhangWei", conversation="ZhangWei", reply=Reply(text="别人不受影响")))
    assert len(rig.emu.sent) == 3


async def test_bad_secret_is_a_permanent_failure_on_healthz(make_rig: RigFactory) -> None:
    rig = await make_rig(secret="not-the-secret")
    await push(rig, Reply(text="x"))
    await eventually(lambda: _status(rig, "failed"))
    health = rig.channel.health()
    assert not health.ok and "secret" in health.detail and "40001" in health.detail


# ---- group robot ---------------------------------------------------------------------------


async def test_group_robot_pushes(rig: Rig) -> None:
    card = Card(title="华东大区 本周跟进", blocks=("张伟 12 条，李娜 9 条",), buttons=(Button("查看", command="#周报"),))
    await push(rig, Reply(card=card), recipient="default", platform="wecom_robot")
    await push(rig, Reply(text="提醒：周五前更新商机阶段"), recipient="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=robot-key-east", platform="wecom_robot")
    await push(rig, Reply(text="x"), recipient="robot-key-unknown", platform="wecom_robot")
    await eventually(lambda: len(rig.emu.robot_sent) == 2)
    (key1, first), (key2, second) = rig.emu.robot_sent
    assert key1 == key2 == "robot-key-east"
    assert first["msgtype"] == "markdown" and "华东大区" in first["markdown"]["content"]
    assert second == {"msgtype": "text", "text": {"content": "提醒：周五前更新商机阶段"}}
    await eventually(lambda: _robot_done(rig))
    rows = await outbox_rows(rig, "wecom_robot")
    assert [r.status for r in rows] == ["sent", "sent", "failed"] and "93000" in rows[2].last_error


async def _robot_done(rig: Rig) -> bool:
    rows = await outbox_rows(rig, "wecom_robot")
    return len(rows) == 3 and all(r.status in ("sent", "failed") for r in rows)


# ---- configuration -------------------------------------------------------------------------


def test_enabled_without_credentials_names_the_missing_keys(tmp_path: Any) -> None:
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", {"wecom": {"enabled": True, "corp_id": "ww1"}})
    with pytest.raises(ConfigError) as info:
        build_runtime(config)
    text = str(info.value)
    for key in ("agent_id", "secret", "token", "encoding_aes_key"):
        assert f"[wecom] {key}" in text
    assert "corp_id" not in text and "GENJIN_WECOM_SECRET" in text


async def test_card_update_variants(rig: Rig) -> None:
    def update(code: str, reply_text: str = "", card: Card | None = None) -> Outbound:
        reply = Reply(text=reply_text, card=card, update_token=code)
        return Outbound(id=30_000, platform="wecom", recipient="ZhangWei", conversation="ZhangWei", reply=reply)

    code = rig.emu.click("genjin_1_x", "ZhangWei")
    done = Card(title="已接单", blocks=("华山医院心内科线索已分配给您",), buttons=(Button("完成", command="完成 3"),))
    await rig.channel.send(update(code, card=done))
    (first,) = rig.emu.updates
    assert first["template_card"]["card_type"] == "button_interaction" and "button" not in first
    with pytest.raises(PermanentFailure, match="response_code"):  # one-time: a second use is refused
        await rig.channel.send(update(code, "已处理"))
    code2 = rig.emu.click("genjin_1_x", "ZhangWei")
    await rig.channel.send(update(code2, "这是一个远远超过按钮长度限制的结果说明"))
    assert len(rig.emu.updates[-1]["button"]["replace_name"]) <= 10
    assert rig.emu.sent == []  # updates are not new messages


async def test_robot_limit_backs_off(make_rig: RigFactory) -> None:
    rig = await make_rig(robot_per_minute=2)
    robot = rig.runtime.app.channels["wecom_robot"]
    outs = [Outbound(id=40_000 + i, platform="wecom_robot", recipient="default", conversation="", reply=Reply(text=f"汇总{i}")) for i in range(3)]
    await robot.send(outs[0])
    await robot.send(outs[1])
    with pytest.raises(TemporaryFailure) as info:
        await robot.send(outs[2])
    assert info.value.retry_after is not None and info.value.retry_after > 50
    assert len(rig.emu.robot_sent) == 2


# ---- issue 17: hostile XML is refused fast, before and after the signature ----------------


async def test_unsigned_xml_with_80k_siblings_is_refused_fast(rig: Rig) -> None:
    params, body = rig.player.encrypt(rig.player.text_xml("ZhangWei", "你好"))
    params["msg_signature"] = "0" * 40
    flood = body.replace("</xml>", "<A>x</A>" * 80_000 + "</xml>")
    started = time.monotonic()
    status, _ = await rig.player.post_raw(params, flood)
    assert status == 403 and time.monotonic() - started < 0.5


async def test_deeply_nested_xml_is_a_4xx_signed_or_not(rig: Rig) -> None:
    deep = "<A>" * 50_000 + "</A>" * 50_000
    params, body = rig.player.encrypt(rig.player.text_xml("ZhangWei", "你好"))
    status, _ = await rig.player.post_raw(params, body.replace("</xml>", deep + "</xml>"))
    assert 400 <= status < 500
    signed_params, signed_body = rig.player.encrypt("<xml>" + "<A>" * 5_000 + "</A>" * 5_000 + "</xml>")
    status, _ = await rig.player.post_raw(signed_params, signed_body)
    assert status == 400
    async with rig.runtime.app.sessions() as session:
        assert (await session.scalars(select(InboxRow))).all() == []


async def test_link_typed_by_one_rep_is_inert_in_a_text_reply(rig: Rig) -> None:
    """Issue 17: text replies quote what reps typed; WeCom would render <a href> as a link."""
    out = Outbound(1, "wecom", "LiNa", "LiNa", Reply(text='客户 <a href="https://evil.example/x">华山医院</a> 已更新'))
    [body] = rig.channel.render(out)
    content = body["text"]["content"]
    assert "<a" not in content and "href" in content and "华山医院" in content


async def test_card_task_ids_survive_a_database_reset_and_40058_reissues(rig: Rig) -> None:
    """Issue 17: ids built from outbox id + card hash repeat after a reset; WeCom then says 40058 forever."""
    out = Outbound(1, "wecom", "ZhangWei", "ZhangWei", Reply(card=LEAD_CARD))
    await rig.channel.send(out)
    other_database = WeComChannel(rig.runtime.app, rig.runtime.app.channels["wecom"]._ingest)  # noqa: SLF001
    await other_database.client.start()
    try:
        await other_database.send(out)  # same outbox id, same card, fresh process and database
        taken = [m["template_card"]["task_id"] for m in other_database.render(out) if m["msgtype"] == "template_card"]
        rig.emu.task_ids.update(taken)  # now pretend WeCom has seen the ids this row would use
        other_database._task_ids.get(out)  # noqa: SLF001 - kept for retries of the same row
        await other_database.send(Outbound(1, "wecom", "LiNa", "LiNa", Reply(card=LEAD_CARD)))
    finally:
        await other_database.client.close()
    ids = [m["template_card"]["task_id"] for m in rig.emu.sent if m["msgtype"] == "template_card"]
    assert len(ids) == len(set(ids)) == 3
    assert 40058 in [c.errcode for c in rig.emu.calls_to(SEND)]


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def test_a_chart_is_uploaded_and_sent_as_an_image(rig: Rig) -> None:
    from bot.messages import Image

    await push(rig, Reply(text="本周漏斗", image=Image(PNG, name="funnel.png", alt="漏斗：初步接触 3，招标 2")))
    await eventually(lambda: len(rig.emu.sent_to("ZhangWei")) == 2)
    text, image = rig.emu.sent_to("ZhangWei")
    assert text["msgtype"] == "text" and image["msgtype"] == "image"
    assert rig.emu.uploads[image["image"]["media_id"]] == PNG


async def test_a_failed_upload_sends_the_charts_text_instead(rig: Rig) -> None:
    from bot.messages import Image

    rig.emu.fail_next(1, errcode=40009, path="/cgi-bin/media/upload")
    await push(rig, Reply(image=Image(PNG, alt="漏斗：初步接触 3，招标 2")))
    await eventually(lambda: bool(rig.emu.sent_to("ZhangWei")))
    [fallback] = rig.emu.sent_to("ZhangWei")
    assert fallback["msgtype"] == "text" and "漏斗：初步接触 3" in fallback["text"]["content"]
    assert rig.emu.uploads == {}
