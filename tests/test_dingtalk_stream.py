"""DingTalk Stream mode end to end: the real SDK frame path against the loopback emulator.

Each test starts a real Runtime (workers on where replies matter) whose DingTalk channel
dials the emulator's Stream gateway; the emulator pushes frames exactly as DingTalk
does and records acks, replies and reconnects.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import requests
from sqlalchemy import func, select

from bot.channels.base import MediaError
from bot.channels.dingtalk import DingTalkChannel
from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import HandlerContext, Router, text
from bot.runtime import Runtime
from cards.model import Button, Card, CardField
from storage.models import InboxRow, Note
from tests.conftest import RuntimeFactory
from tests.emulators.dingtalk import VOICE_AMR, DingTalkEmulator
from tests.harness import pipeline_idle


@pytest.fixture
async def emu() -> AsyncIterator[DingTalkEmulator]:
    emulator = await DingTalkEmulator(ack_timeout=0.5).start()
    yield emulator
    await emulator.stop()


@pytest.fixture(autouse=True)
def no_blocking_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's blocking ``requests`` calls must never run (they would stall the loop)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("blocking requests call on the event loop")

    monkeypatch.setattr(requests, "post", refuse)
    monkeypatch.setattr(requests, "get", refuse)


async def start(make_runtime: RuntimeFactory, emu: DingTalkEmulator, *, workers: bool = True) -> AppContext:
    return (await start_runtime(make_runtime, emu, workers=workers)).app


async def start_runtime(make_runtime: RuntimeFactory, emu: DingTalkEmulator, *, workers: bool = True) -> Runtime:
    runtime = await make_runtime({"dingtalk": emu.config()}, workers=workers)
    await emu.wait_connected()
    return runtime


async def inbox_rows(app: AppContext, message_id: str) -> list[InboxRow]:
    async with app.sessions() as session:
        return list((await session.scalars(select(InboxRow).where(InboxRow.message_id == message_id))).all())


def session_key(url: str) -> str:
    return url.split("session=", 1)[1]


async def test_text_message_is_acked_stored_and_answered_through_its_session_webhook(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory
) -> None:
    app = await start(make_runtime, emu)
    subscriptions = emu.open_requests[0]["subscriptions"]
    assert {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"} in subscriptions

    data = emu.bot_message("rep-001", text="今天拜访华山医院心内科王主任，下周三送样")
    frame = await emu.push(data)
    await emu.wait_for(lambda: bool(emu.session_messages()))
    await pipeline_idle(app)  # anything else would have been sent by now

    assert frame.acked and frame.acks[0][1]["code"] == 200
    assert frame.acks[0][1]["headers"]["messageId"] == frame.message_id
    replies = emu.accepted("/robot/sendBySession")
    assert len(replies) == 1, "exactly one reply per message"
    assert replies[0].query["session"] == session_key(data["sessionWebhook"])
    payload = replies[0].body
    assert payload["msgtype"] in {"markdown", "actionCard"}, "the note card"
    assert "华山医院" in payload[payload["msgtype"]]["text"]
    assert not emu.calls("/v1.0/robot/oToMessages/batchSend"), "a valid sessionWebhook needs no OpenAPI call"
    rows = await inbox_rows(app, data["msgId"])
    assert [(r.sender, r.kind, r.status) for r in rows] == [("rep-001", "text", "done")]
    assert rows[0].text == data["text"]["content"]


async def test_card_reply_goes_out_as_action_card_with_tappable_commands(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory
) -> None:
    runtime = await start_runtime(make_runtime, emu)
    cards = Router("test-cards")

    @cards.on(text())
    async def note_card(msg: Inbound, hc: HandlerContext) -> Reply:
        card = Card(
            title="已记录：华山医院",
            kind="note",
            fields=(CardField("联系人", "王主任"),),
            buttons=(Button("完成", command="完成 12", primary=True), Button("查看话术", command="#价格")),
        )
        return Reply(text="记好了。", card=card)

    root = Router("root-with-cards")
    root.include(cards)
    root.include(runtime.dispatcher.router)
    runtime.dispatcher.router = root

    await emu.push(emu.bot_message("rep-001", text="华山医院王主任同意试用"))
    await emu.wait_for(lambda: bool(emu.session_messages()))
    payload = emu.session_messages()[0]
    assert payload["msgtype"] == "actionCard"
    card = payload["actionCard"]
    assert card["title"] == "已记录：华山医院"
    assert "记好了。" in card["text"] and "王主任" in card["text"]
    urls = [b["actionURL"] for b in card["btns"]]
    assert urls == [
        "dtmd://dingtalkclient/sendMessage?content=%E5%AE%8C%E6%88%90%2012",
        "dtmd://dingtalkclient/sendMessage?content=%23%E4%BB%B7%E6%A0%BC",
    ]


async def test_audio_with_platform_recognition_is_stored_as_voice(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory
) -> None:
    app = await start(make_runtime, emu, workers=False)
    data = emu.audio_message("rep-001", "今天去瑞金医院见了李主任，下周二再约")
    frame = await emu.push(data)
    await emu.wait_for(lambda: frame.acked)
    [row] = await inbox_rows(app, data["msgId"])
    assert (row.kind, row.sender) == (Kind.VOICE.value, "rep-001")
    assert row.media == data["content"]["downloadCode"]
    extra = row.payload["extra"]
    assert extra["recognition"] == "今天去瑞金医院见了李主任，下周二再约"
    assert extra["duration_ms"] == 2760
    assert extra["reply_session_webhook"] == data["sessionWebhook"]

    # The voice preprocessor can fetch the real audio when dingtalk.voice is local/both.
    channel = app.channels["dingtalk"]
    assert isinstance(channel, DingTalkChannel)
    assert await channel.fetch_media(row.media, "amr") == VOICE_AMR.read_bytes()


async def test_audio_with_platform_recognition_becomes_a_note(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    app = await start(make_runtime, emu)
    recognition = "今天去瑞金医院见了李主任，下周二再约"
    data = emu.audio_message("rep-001", recognition)
    await emu.push(data)
    await emu.wait_for(lambda: bool(emu.session_messages()), timeout=20)
    [row] = await inbox_rows(app, data["msgId"])
    async with app.sessions() as session:
        note = await session.scalar(select(Note).where(Note.inbox_id == row.id))
    assert note is not None and note.source == "voice"
    assert recognition in (note.transcript or note.raw_text)


async def test_redelivered_audio_is_stored_once(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    app = await start(make_runtime, emu)
    data = emu.audio_message("rep-002", "江苏省人民医院设备科说预算批了")
    emu.drop_acks = 1  # the first ack is lost on the way: DingTalk redelivers the frame
    frame = await emu.push(data)
    await emu.wait_for(lambda: frame.acked)
    # redelivered at least once (a third delivery when the box is too busy to ack within the emulator's 0.5 s)
    assert len(frame.sent_at) >= 2 and frame.lost_acks == 1
    again = await emu.push(data)  # and once more as a new frame, as after a reconnect
    await emu.wait_for(lambda: again.acked)

    rows = await inbox_rows(app, data["msgId"])
    assert len(rows) == 1
    assert app.metrics.duplicates.labels("dingtalk")._value.get() == 2  # noqa: SLF001
    # exactly one note
    await emu.wait_for(lambda: bool(emu.session_messages()), timeout=20)
    async with app.sessions() as session:
        notes = (await session.scalars(select(Note))).all()
        assert [n.inbox_id for n in notes] == [rows[0].id]


async def test_message_that_could_not_be_stored_is_nacked_and_stored_on_redelivery(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await start(make_runtime, emu, workers=False)
    channel = app.channels["dingtalk"]
    assert isinstance(channel, DingTalkChannel)
    real_accept = channel._ingest  # noqa: SLF001 - the injected inbox.accept
    failures = [RuntimeError("database is restarting")]

    async def flaky_accept(msg: Inbound) -> object:
        if failures:
            raise failures.pop()
        return await real_accept(msg)

    monkeypatch.setattr(channel, "_ingest", flaky_accept)
    data = emu.bot_message("rep-001", text="下午去仁济医院")
    frame = await emu.push(data)
    await emu.wait_for(lambda: frame.acked)
    assert [ack["code"] for _, ack in frame.acks] == [500, 200]
    assert len(frame.sent_at) == 2
    assert len(await inbox_rows(app, data["msgId"])) == 1


async def test_ack_is_sent_before_slow_processing_finishes(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime(make_runtime, emu)
    processed: list[float] = []

    async def slow_preprocessor(app_: AppContext, msg: Inbound) -> Inbound:
        await asyncio.sleep(1.5)  # e.g. local speech recognition
        processed.append(time.monotonic())
        return msg

    runtime.dispatcher.preprocessors.append(slow_preprocessor)
    frame = await emu.push(emu.bot_message("rep-001", text="明天上午去中山医院"))
    await emu.wait_for(lambda: bool(emu.session_messages()), timeout=15)

    assert processed, "the message went through the slow preprocessor"
    ack_at = frame.acks[0][0]
    assert ack_at - frame.sent_at[0] < 0.5, "acked right after storing"
    assert ack_at < processed[0]
    assert len(frame.sent_at) == 1, "no redelivery: the ack beat the emulator's 0.5 s ack timeout"


async def test_stream_reconnects_with_backoff_after_drops_and_disconnects(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory
) -> None:
    app = await start(make_runtime, emu)
    channel = app.channels["dingtalk"]
    assert channel.health().ok

    ping = await emu.ping()
    await emu.wait_for(lambda: emu.frames[ping].acked)
    [ack] = [ack for _, ack in emu.frames[ping].acks]
    assert ack["code"] == 200 and json.loads(ack["data"]) == json.loads(emu.frames[ping].payload["data"])

    emu.fail_opens = 2  # the gateway refuses the next two opens
    await emu.drop()
    await emu.wait_for(lambda: not channel.health().ok, timeout=5)
    await emu.wait_connected(count=2, timeout=10)
    assert len(emu.open_requests) == 4  # first connect, two refused, one accepted
    opens = [r.at for r in emu.calls("/v1.0/gateway/connections/open")]
    assert opens[3] - opens[2] >= 0.05 * 0.5, "waited before retrying"

    await emu.disconnect()  # DingTalk's "please reconnect" system frame
    await emu.wait_connected(count=3, timeout=10)
    await emu.wait_for(lambda: channel.health().ok)

    data = emu.bot_message("rep-003", text="北京协和医院采购办约下周一")
    frame = await emu.push(data)
    await emu.wait_for(lambda: frame.acked)
    assert len(await inbox_rows(app, data["msgId"])) == 1


async def test_fetch_media_failures_are_media_errors(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    app = await start(make_runtime, emu, workers=False)
    channel = app.channels["dingtalk"]
    with pytest.raises(MediaError, match="downloadCode"):
        await channel.fetch_media("no-such-code", "amr")
    with pytest.raises(MediaError, match="not a known audio"):
        await channel.fetch_media(emu.add_file(b"<?xml version='1.0'?><Error/>"), "amr")
    emu.inject("/v1.0/robot/messageFiles/download", 200, {"downloadUrl": f"{emu.base_url}/files/expired"})
    with pytest.raises(MediaError, match="HTTP 403"):
        await channel.fetch_media(emu.add_file(VOICE_AMR.read_bytes()), "amr")
    with pytest.raises(MediaError):
        await channel.fetch_media("", "amr")


async def test_group_message_not_for_the_bot_is_acked_but_not_stored(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory
) -> None:
    app = await start(make_runtime, emu, workers=False)
    data = emu.bot_message("rep-001", text="大家好", group=True, at_bot=False)
    frame = await emu.push(data)
    await emu.wait_for(lambda: frame.acked)
    assert await inbox_rows(app, data["msgId"]) == []
    malformed = await emu.push({"msgtype": "text"})  # no msgId: acked (redelivery cannot fix it), not stored
    await emu.wait_for(lambda: malformed.acked)
    async with app.sessions() as session:
        assert await session.scalar(select(func.count(InboxRow.id))) == 0
