"""DingTalk payload parsing and signatures: pure functions, checked against DingTalk's vector."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from bot.channels.dingtalk_parse import (
    REPLY_CONVERSATION_TYPE,
    REPLY_OPEN_CONVERSATION,
    REPLY_WEBHOOK,
    REPLY_WEBHOOK_EXPIRES,
    ParseError,
    parse_message,
    sign,
    signed_webhook_url,
    sniff_format,
    strip_mention,
    verify_callback,
)
from bot.channels.dingtalk_stream import backoff_delay
from bot.messages import Kind
from tests.emulators.dingtalk import VOICE_AMR

VECTOR_TS = "1577262236757"
VECTOR_SECRET = "this is a secret"
VECTOR_SIGN = "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="


def body(**kw: object) -> dict[str, object]:
    data: dict[str, object] = {
        "msgId": "msgA1",
        "msgtype": "text",
        "text": {"content": "今天拜访华山医院王主任"},
        "senderStaffId": "rep-001",
        "senderId": "$:LWCP_v1:$abc",
        "senderNick": "张伟",
        "conversationId": "cidP2P1",
        "conversationType": "1",
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s1",
        "sessionWebhookExpiredTime": 1_900_000_000_000,
        "createAt": 1_700_000_000_000,
        "robotCode": "dingbot",
    }
    data.update(kw)
    return data


def test_signature_matches_dingtalk_vector() -> None:
    assert sign(VECTOR_TS, VECTOR_SECRET) == VECTOR_SIGN
    now = int(VECTOR_TS) + 10_000
    assert verify_callback(VECTOR_TS, VECTOR_SIGN, VECTOR_SECRET, now, 3600) is None


@pytest.mark.parametrize(
    ("timestamp", "signature", "secret", "now_offset_ms", "problem"),
    [
        (VECTOR_TS, VECTOR_SIGN, "another secret", 0, "bad signature"),
        (VECTOR_TS, "X" + VECTOR_SIGN[1:], VECTOR_SECRET, 0, "bad signature"),
        (VECTOR_TS, VECTOR_SIGN, VECTOR_SECRET, 3600_001, "timestamp too far from now"),
        (VECTOR_TS, VECTOR_SIGN, VECTOR_SECRET, -3600_001, "timestamp too far from now"),
        ("", VECTOR_SIGN, VECTOR_SECRET, 0, "missing timestamp or sign header"),
        (VECTOR_TS, "", VECTOR_SECRET, 0, "missing timestamp or sign header"),
        ("12ab", VECTOR_SIGN, VECTOR_SECRET, 0, "timestamp is not milliseconds"),
        (VECTOR_TS, VECTOR_SIGN, "", 0, "bad signature"),
    ],
)
def test_bad_callbacks_are_named(timestamp: str, signature: str, secret: str, now_offset_ms: int, problem: str) -> None:
    assert verify_callback(timestamp, signature, secret, int(VECTOR_TS) + now_offset_ms, 3600) == problem


def test_signed_robot_url_carries_urlencoded_sign() -> None:
    url = signed_webhook_url("https://oapi.dingtalk.com/robot/send?access_token=abc", VECTOR_SECRET, int(VECTOR_TS))
    query = parse_qs(urlsplit(url).query)  # parse_qs undoes the URL encoding
    assert query == {"access_token": ["abc"], "timestamp": [VECTOR_TS], "sign": [VECTOR_SIGN]}
    assert "+" not in urlsplit(url).query.split("sign=")[1]  # '+' and '/' must be escaped
    assert signed_webhook_url("https://x/robot/send?access_token=abc", "", 1) == "https://x/robot/send?access_token=abc"


def test_text_message_maps_identity_and_reply_context() -> None:
    msg = parse_message(body())
    assert msg is not None
    assert (msg.platform, msg.message_id, msg.sender, msg.kind) == ("dingtalk", "msgA1", "rep-001", Kind.TEXT)
    assert msg.text == "今天拜访华山医院王主任"
    assert msg.conversation == "cidP2P1" and not msg.is_group
    assert msg.extra[REPLY_WEBHOOK].endswith("session=s1")
    assert msg.extra[REPLY_WEBHOOK_EXPIRES] == 1_900_000_000_000
    assert msg.extra[REPLY_CONVERSATION_TYPE] == "1"
    assert msg.sent_at is not None and int(msg.sent_at.timestamp() * 1000) == 1_700_000_000_000


def test_group_message_strips_the_bot_mention_and_ignores_messages_not_for_the_bot() -> None:
    msg = parse_message(body(conversationType="2", isInAtList=True, conversationId="cidG1", text={"content": " @跟进助手  #价格 "}))
    assert msg is not None and msg.is_group and msg.text == "#价格"
    assert msg.extra[REPLY_OPEN_CONVERSATION] == "cidG1" and msg.extra[REPLY_CONVERSATION_TYPE] == "2"
    assert parse_message(body(conversationType="2", isInAtList=False)) is None
    assert strip_mention("  完成 12 ") == "完成 12"
    assert strip_mention("@机器人 接单") == "接单"


def test_rich_text_joins_text_and_notes_pictures() -> None:
    rich = {"richText": [{"text": "王主任说预算"}, {"type": "picture", "downloadCode": "pic1"}, {"text": "下周批"}]}
    msg = parse_message(body(msgtype="richText", content=rich))
    assert msg is not None and msg.kind == Kind.TEXT
    assert msg.text == "王主任说预算\n下周批"
    assert msg.extra["pictures"] == ["pic1"]
    only_picture = parse_message(body(msgtype="richText", content={"richText": [{"downloadCode": "pic2"}]}))
    assert only_picture is not None and only_picture.kind == Kind.IMAGE and only_picture.media == "pic2"


def test_audio_carries_download_code_recognition_and_duration() -> None:
    msg = parse_message(body(msgtype="audio", content={"duration": 4000, "downloadCode": "dl1", "recognition": " 明天去瑞金 "}))
    assert msg is not None and msg.kind == Kind.VOICE
    assert msg.media == "dl1"
    assert msg.extra["recognition"] == "明天去瑞金" and msg.extra["duration_ms"] == 4000
    no_asr = parse_message(body(msgtype="audio", content={"downloadCode": "dl2"}))
    assert no_asr is not None and no_asr.extra["recognition"] == "" and no_asr.extra["duration_ms"] is None


def test_picture_file_and_unknown_types() -> None:
    pic = parse_message(body(msgtype="picture", content={"downloadCode": "p1", "pictureDownloadCode": "pp"}))
    assert pic is not None and pic.kind == Kind.IMAGE and pic.media == "p1"
    file = parse_message(body(msgtype="file", content={"downloadCode": "f1", "fileName": "报价单.pdf"}))
    assert file is not None and file.kind == Kind.EVENT and file.event == "file_received"
    assert file.extra["file_name"] == "报价单.pdf" and file.media == "f1"
    other = parse_message(body(msgtype="interactiveCard", content={}))
    assert other is not None and other.kind == Kind.EVENT and other.event == "unsupported_message"


@pytest.mark.parametrize(
    "data",
    [
        [],
        "text",
        body(msgId=""),
        body(msgtype=None),
        body(senderStaffId=None, senderId=None),
        body(text="not an object"),
        body(text={"content": 5}),
        body(msgtype="audio"),
        body(msgtype="audio", content={"duration": 1}),
        body(msgtype="picture", content={}),
        body(msgtype="richText", content={"richText": "x"}),
        body(msgId={"nested": 1}),
        body(text={"content": "长" * 9000}),
    ],
)
def test_malformed_bodies_raise_parse_error(data: object) -> None:
    with pytest.raises(ParseError):
        parse_message(data)


def test_people_outside_the_org_keep_a_distinct_sender() -> None:
    msg = parse_message(body(senderStaffId=None, senderId="$:LWCP_v1:$ext"))
    assert msg is not None and msg.sender == "external:$:LWCP_v1:$ext"


def test_sniff_audio_formats() -> None:
    assert sniff_format(VOICE_AMR.read_bytes()[:64]) == "amr"
    assert sniff_format(b"#!AMR-WB\n") == "amr-wb"
    assert sniff_format(b"OggS\x00\x02") == "ogg"
    assert sniff_format(b"ID3\x04\x00") == "mp3"
    assert sniff_format(b"\xff\xfb\x90\x00") == "mp3"
    assert sniff_format(b"\xff\xf1\x50\x80") == "aac"
    assert sniff_format(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_format(b"\x00\x00\x00\x20ftypM4A ") == "m4a"
    assert sniff_format(b"<?xml version") == ""
    assert sniff_format(b"") == ""


def test_reconnect_backoff_is_bounded_exponential_with_jitter() -> None:
    low, high = 1.0, 60.0
    assert [backoff_delay(n, low, high, rng=lambda: 1.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [backoff_delay(n, low, high, rng=lambda: 0.0) for n in range(3)] == [0.5, 1, 2]
    assert backoff_delay(10_000, low, high) <= high
