"""WeCom callback payloads → :class:`~bot.messages.Inbound`, with no I/O and no crypto.

Kept apart from the adapter so the mapping can be tested on plain XML. We parse the
XML ourselves instead of using wechatpy's message classes because those coerce
``MsgId`` and ``AgentID`` to ``int`` (WeCom sends ids that are not numeric, and agent
ids beyond 32 bits) and know nothing of ``template_card_event``.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any

from bot.messages import Inbound, Kind, Platform

MAX_MESSAGE_ID = 191  # inbox.message_id column width
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)

#: WeCom event names (the ``Event`` element) mapped to our neutral event names.
EVENT_NAMES = {
    "enter_agent": "enter_agent",
    "template_card_event": "card_click",
    "template_card_menu_event": "card_menu_click",
    "location": "location_report",
    "click": "menu_click",
    "view": "menu_view",
}


class ParseError(ValueError):
    """The payload is not something WeCom sends; the caller answers 400."""


Fields = dict[str, Any]


def parse_xml(body: bytes | str) -> Fields:
    """Parse a WeCom ``<xml>…</xml>`` document into a dict of its elements.

    Elements with children become nested dicts (``SelectedItems`` of vote cards);
    repeated elements become lists. DOCTYPE and entity declarations are refused:
    WeCom never sends them, and they are how XML bombs get in.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if not raw.strip():
        raise ParseError("empty body")
    if _FORBIDDEN.search(raw):
        raise ParseError("DOCTYPE/ENTITY declarations are not accepted")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ParseError(f"malformed XML: {exc}") from None
    if root.tag != "xml":
        raise ParseError(f"root element must be <xml>, got <{root.tag}>")
    value = _element(root)
    return value if isinstance(value, dict) else {}


def _element(node: ET.Element) -> Any:
    children = list(node)
    if not children:
        return node.text or ""
    out: Fields = {}
    for child in children:
        value = _element(child)
        if child.tag in out:
            existing = out[child.tag]
            out[child.tag] = existing + [value] if isinstance(existing, list) else [existing, value]
        else:
            out[child.tag] = value
    return out


def envelope(body: bytes) -> Fields:
    """The outer (still encrypted) callback: needs an ``Encrypt`` element."""
    fields = parse_xml(body)
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise ParseError("no <Encrypt> element")
    fields["Encrypt"] = encrypt.strip()
    return fields


def _text(fields: Fields, name: str) -> str:
    value = fields.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _sent_at(create_time: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(create_time), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _bounded(key: str) -> str:
    """Keep dedup keys within the column; long ones are hashed (still deterministic)."""
    if len(key) <= MAX_MESSAGE_ID:
        return key
    return key[:100] + "#" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def event_message_id(fields: Fields) -> str:
    """Events carry no MsgId; WeCom's own advice is FromUserName + CreateTime (+ key)."""
    parts = [
        "evt",
        _text(fields, "FromUserName"),
        _text(fields, "CreateTime"),
        _text(fields, "Event") or _text(fields, "MsgType"),
        _text(fields, "EventKey"),
        _text(fields, "TaskId"),
    ]
    return _bounded(":".join(parts))


def to_inbound(fields: Fields) -> Inbound:
    """Map a decrypted WeCom message or event to the platform-neutral model."""
    sender = _text(fields, "FromUserName")
    msg_type = _text(fields, "MsgType").lower()
    if not sender:
        raise ParseError("no FromUserName")
    if not msg_type:
        raise ParseError("no MsgType")
    msg_id = _text(fields, "MsgId")
    extra: dict[str, Any] = {"agent_id": _text(fields, "AgentID"), "msg_type": msg_type}
    common: dict[str, Any] = {
        "platform": Platform.WECOM.value,
        "sender": sender,
        "conversation": sender,
        "sent_at": _sent_at(_text(fields, "CreateTime")),
        "raw": fields,
    }
    message_id = _bounded(msg_id) if msg_id else event_message_id(fields)

    if msg_type == "text":
        content = fields.get("Content", "")
        return Inbound(message_id=message_id, kind=Kind.TEXT, text=content if isinstance(content, str) else "", extra=extra, **common)
    if msg_type == "voice":
        media = _text(fields, "MediaId")
        if not media:
            raise ParseError("voice message without MediaId")
        fmt = (_text(fields, "Format") or "amr").lower()
        return Inbound(message_id=message_id, kind=Kind.VOICE, media=media, media_format=fmt, extra=extra, **common)
    if msg_type == "image":
        extra["pic_url"] = _text(fields, "PicUrl")
        return Inbound(message_id=message_id, kind=Kind.IMAGE, media=_text(fields, "MediaId"), extra=extra, **common)
    if msg_type == "location":
        extra.update(
            latitude=_text(fields, "Location_X"),
            longitude=_text(fields, "Location_Y"),
            scale=_text(fields, "Scale"),
            label=_text(fields, "Label"),
        )
        return Inbound(message_id=message_id, kind=Kind.EVENT, event="location", extra=extra, **common)
    if msg_type == "event":
        wecom_event = _text(fields, "Event")
        name = EVENT_NAMES.get(wecom_event.lower(), wecom_event.lower() or "unknown")
        key = _text(fields, "EventKey")
        if wecom_event.lower() == "template_card_event":
            extra["task_id"] = _text(fields, "TaskId")
            extra["card_type"] = _text(fields, "CardType")
            code = _text(fields, "ResponseCode")
            if code:
                extra["reply_response_code"] = code
        elif wecom_event.lower() == "location":
            extra.update(latitude=_text(fields, "Latitude"), longitude=_text(fields, "Longitude"))
        return Inbound(message_id=message_id, kind=Kind.EVENT, event=name, event_key=key, extra=extra, **common)
    # video, file, link, … : stored and answered politely, never dropped silently.
    return Inbound(message_id=message_id, kind=Kind.EVENT, event="unsupported_message", extra=extra, **common)
