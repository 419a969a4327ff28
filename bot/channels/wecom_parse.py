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
#: Limits far above what WeCom sends (≈15 elements, depth 3 for vote-card selections).
MAX_ELEMENTS = 500
MAX_DEPTH = 8
MAX_ENVELOPE_TAGS = 40  # <xml>, ToUserName, AgentID, Encrypt (+ CDATA) — WeCom sends ≈ 12
_CHUNK = 16 * 1024
_OPEN, _CLOSE = b"<Encrypt>", b"</Encrypt>"
_CDATA_OPEN, _CDATA_CLOSE = b"<![CDATA[", b"]]>"
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")

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


def parse_xml(body: bytes | str, *, max_elements: int = MAX_ELEMENTS, max_depth: int = MAX_DEPTH) -> Fields:
    """Parse a WeCom ``<xml>…</xml>`` document into a dict of its elements.

    Elements with children become nested dicts (``SelectedItems`` of vote cards);
    repeated elements become lists. DOCTYPE and entity declarations are refused:
    WeCom never sends them, and they are how XML bombs get in. Parsing is incremental
    and stops at the first element beyond ``max_elements`` or ``max_depth``, so a hostile
    document costs linear time in what was read and cannot recurse us into a 500.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if not raw.strip():
        raise ParseError("empty body")
    if _FORBIDDEN.search(raw):
        raise ParseError("DOCTYPE/ENTITY declarations are not accepted")
    root = _bounded_tree(raw, max_elements, max_depth)
    if root.tag != "xml":
        raise ParseError(f"root element must be <xml>, got <{root.tag}>")
    value = _element(root)
    return value if isinstance(value, dict) else {}


def _bounded_tree(raw: bytes, max_elements: int, max_depth: int) -> ET.Element:
    parser = ET.XMLPullParser(events=("start", "end"))
    depth = count = 0
    root: ET.Element | None = None
    try:
        for offset in range(0, len(raw), _CHUNK):
            parser.feed(raw[offset : offset + _CHUNK])
            for event, node in parser.read_events():
                if event == "end":
                    depth -= 1
                    continue
                depth, count = depth + 1, count + 1
                root = node if root is None else root
                if depth > max_depth:
                    raise ParseError(f"XML nested deeper than {max_depth} levels")
                if count > max_elements:
                    raise ParseError(f"XML with more than {max_elements} elements")
        parser.close()
    except ET.ParseError as exc:
        raise ParseError(f"malformed XML: {exc}") from None
    if root is None:
        raise ParseError("malformed XML: no element")
    return root


def _element(node: ET.Element) -> Any:
    """Recursive, but only ever over a tree :func:`_bounded_tree` kept within MAX_DEPTH."""
    children = list(node)
    if not children:
        return node.text or ""
    out: Fields = {}
    for child in children:
        value = _element(child)
        if child.tag in out:
            existing = out[child.tag]
            if isinstance(existing, _Repeated):
                existing.append(value)
            else:
                out[child.tag] = _Repeated([existing, value])
        else:
            out[child.tag] = value
    return out


class _Repeated(list):  # type: ignore[type-arg]
    """A list built from repeated elements (appended to in place: linear, not quadratic)."""


def envelope(body: bytes) -> Fields:
    """The outer (still encrypted) callback's ``Encrypt`` value, found without parsing XML.

    This runs before the signature is checked, i.e. on anyone's input: a bounded linear
    scan for exactly one ``<Encrypt>`` element holding base64, nothing more. The rest of
    the envelope (ToUserName, AgentID) is not needed: the decrypted message repeats it.
    """
    if _FORBIDDEN.search(body):
        raise ParseError("DOCTYPE/ENTITY declarations are not accepted")
    doc = body.strip()
    if doc.startswith(b"<?xml"):
        declared = doc.find(b"?>")
        doc = doc[declared + 2 :].lstrip() if declared >= 0 else b""
    if not (doc.startswith(b"<xml>") and doc.endswith(b"</xml>")):
        raise ParseError("the body must be one <xml>…</xml> element")
    start = body.find(_OPEN)
    if start < 0:
        raise ParseError("no <Encrypt> element")
    end = body.find(_CLOSE, start)
    if end < 0 or body.find(_OPEN, start + 1) >= 0:
        raise ParseError("need exactly one <Encrypt> element")
    value = body[start + len(_OPEN) : end].strip()
    if value.startswith(_CDATA_OPEN) and value.endswith(_CDATA_CLOSE):
        value = value[len(_CDATA_OPEN) : -len(_CDATA_CLOSE)].strip()
    if not value or not _BASE64.fullmatch(value):
        raise ParseError("<Encrypt> must hold base64")
    return {"Encrypt": value.decode("ascii")}


def check_envelope_size(body: bytes) -> None:
    """After the signature: the envelope has a handful of elements; junk around ``Encrypt`` is refused.

    The signature covers only ``Encrypt``, so this is what stops a captured callback from
    being replayed wrapped in a flood of elements. ``bytes.count`` is linear and in C.
    """
    if body.count(b"<") > MAX_ENVELOPE_TAGS:
        raise ParseError(f"envelope with more than {MAX_ENVELOPE_TAGS // 2} elements")


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
