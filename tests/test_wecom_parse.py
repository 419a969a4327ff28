"""WeCom plaintext XML → Inbound, for every message type Genjin handles (no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.channels.wecom_parse import MAX_MESSAGE_ID, ParseError, envelope, parse_xml, to_inbound
from bot.messages import Kind
from tests.emulators.wecom import WeComPlayer

AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
PLAYER = WeComPlayer("http://unused", token="t", encoding_aes_key=AES_KEY, corp_id="ww1", agent_id="1000002")


def parsed(xml: str):  # type: ignore[no-untyped-def]
    return to_inbound(parse_xml(xml))


def test_text_keeps_non_numeric_msgid_and_big_agentid_as_text() -> None:
    xml = PLAYER.text_xml("ZhangWei", "王主任说下个月招标", msg_id="CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=", create_time=1700000000)
    xml = xml.replace("<AgentID>1000002</AgentID>", "<AgentID>5000000000123</AgentID>")
    msg = parsed(xml)
    assert msg.kind == Kind.TEXT and msg.platform == "wecom"
    assert msg.message_id == "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="
    assert msg.sender == msg.conversation == "ZhangWei"
    assert msg.text == "王主任说下个月招标"
    assert msg.extra["agent_id"] == "5000000000123"
    assert msg.sent_at == datetime.fromtimestamp(1700000000, tz=timezone.utc)


def test_text_content_with_markup_and_cdata_terminator_survives() -> None:
    content = "价格 <b>可以</b> 谈 ]]> & 下周三"
    assert parsed(PLAYER.text_xml("LiNa", content)).text == content


def test_voice_image_location() -> None:
    voice = parsed(PLAYER.voice_xml("ZhangWei", "MEDIA_abc", msg_id="123"))
    assert (voice.kind, voice.media, voice.media_format, voice.message_id) == (Kind.VOICE, "MEDIA_abc", "amr", "123")
    image = parsed(PLAYER.image_xml("ZhangWei", "MEDIA_img", pic_url="https://p/1"))
    assert (image.kind, image.media, image.extra["pic_url"]) == (Kind.IMAGE, "MEDIA_img", "https://p/1")
    loc = parsed(PLAYER.location_xml("ZhangWei", 31.2304, 121.4737, "上海市瑞金医院"))
    assert (loc.kind, loc.event) == (Kind.EVENT, "location")
    assert loc.extra["label"] == "上海市瑞金医院" and loc.extra["latitude"] == "31.2304"


def test_enter_agent_and_card_click_events() -> None:
    enter = parsed(PLAYER.enter_agent_xml("ZhangWei", create_time=1700000001))
    assert (enter.kind, enter.event, enter.event_key) == (Kind.EVENT, "enter_agent", "")
    click = parsed(PLAYER.card_click_xml("ZhangWei", "完成 12", "genjin_7_ab", "RC_xyz", create_time=1700000002))
    assert (click.kind, click.event, click.event_key) == (Kind.EVENT, "card_click", "完成 12")
    assert click.extra["reply_response_code"] == "RC_xyz"
    assert click.extra["task_id"] == "genjin_7_ab" and click.extra["card_type"] == "button_interaction"


def test_event_ids_are_stable_and_distinguish_what_differs() -> None:
    a = parsed(PLAYER.card_click_xml("ZhangWei", "接单", "t1", "RC_1", create_time=1700000002))
    again = parsed(PLAYER.card_click_xml("ZhangWei", "接单", "t1", "RC_other", create_time=1700000002))
    other_task = parsed(PLAYER.card_click_xml("ZhangWei", "接单", "t2", "RC_1", create_time=1700000002))
    other_time = parsed(PLAYER.card_click_xml("ZhangWei", "接单", "t1", "RC_1", create_time=1700000003))
    assert a.message_id == again.message_id  # a redelivery of the same click
    assert len({a.message_id, other_task.message_id, other_time.message_id}) == 3


def test_long_ids_are_bounded_deterministically() -> None:
    key = "完成 " + "9" * 400
    one = parsed(PLAYER.card_click_xml("ZhangWei", key, "t1", "RC", create_time=1))
    two = parsed(PLAYER.card_click_xml("ZhangWei", key, "t1", "RC", create_time=1))
    assert len(one.message_id) <= MAX_MESSAGE_ID and one.message_id == two.message_id
    long_msgid = parsed(PLAYER.text_xml("ZhangWei", "x", msg_id="M" * 500))
    assert len(long_msgid.message_id) <= MAX_MESSAGE_ID


def test_unsupported_types_are_kept_as_events() -> None:
    xml = PLAYER._xml("ZhangWei", "video", "<MediaId>v</MediaId><MsgId>77</MsgId>")  # noqa: SLF001
    msg = parsed(xml)
    assert (msg.kind, msg.event, msg.extra["msg_type"], msg.message_id) == (Kind.EVENT, "unsupported_message", "video", "77")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<xml><Encrypt>abc</Encrypt>",
        b"not xml at all",
        b"<root><Encrypt>abc</Encrypt></root>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>',
        b"<xml><ToUserName>ww1</ToUserName></xml>",
    ],
)
def test_bad_envelopes_are_parse_errors(body: bytes) -> None:
    with pytest.raises(ParseError):
        envelope(body)


@pytest.mark.parametrize(
    "xml",
    [
        "<xml><MsgType>text</MsgType><Content>hi</Content></xml>",
        "<xml><FromUserName>ZhangWei</FromUserName></xml>",
        "<xml><FromUserName>ZhangWei</FromUserName><MsgType>voice</MsgType></xml>",
    ],
)
def test_incomplete_messages_are_parse_errors(xml: str) -> None:
    with pytest.raises(ParseError):
        parsed(xml)
