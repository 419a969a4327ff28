"""DingTalk robot payloads → :class:`~bot.messages.Inbound`, plus the signatures DingTalk uses.

Stream frames and HTTP callbacks carry the same robot message body, so one parser serves
both. Pure functions only: no I/O, no configuration, so every branch is testable with a
dict. The SDK's ``ChatbotMessage`` is not used because it drops audio (``msgtype
"audio"``) into ``extensions`` and raises ``KeyError`` on half-formed bodies; a bad body
must become a :class:`ParseError` (a 400 or a logged, acknowledged frame), never a crash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus

from bot.messages import Inbound, Kind, Platform

CONVERSATION_SINGLE = "1"
CONVERSATION_GROUP = "2"

# Keys copied into the outbox context of replies (see bot.dispatcher._reply_context).
REPLY_WEBHOOK = "reply_session_webhook"
REPLY_WEBHOOK_EXPIRES = "reply_session_webhook_expires"  # ms since the epoch
REPLY_CONVERSATION_TYPE = "reply_conversation_type"
REPLY_OPEN_CONVERSATION = "reply_open_conversation_id"
REPLY_ROBOT_CODE = "reply_robot_code"

_LEADING_MENTION = re.compile(r"^\s*@\S+\s*")
MAX_TEXT = 8000


class ParseError(ValueError):
    """The body is not a robot message we can store; ``reason`` says what is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(timestamp: str | int, secret: str) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(secret, "{timestamp}\\n{secret}"))."""
    message = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_webhook_url(url: str, secret: str, timestamp_ms: int) -> str:
    """A custom robot webhook URL with ``&timestamp=…&sign=…`` appended (the 加签 option)."""
    if not secret:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={quote_plus(sign(timestamp_ms, secret))}"


def verify_callback(timestamp: str, signature: str, secret: str, now_ms: int, max_skew_seconds: int) -> str | None:
    """Check an HTTP callback's ``timestamp``/``sign`` headers; returns the problem or None."""
    if not timestamp or not signature:
        return "missing timestamp or sign header"
    if not timestamp.isdigit() or len(timestamp) > 16:
        return "timestamp is not milliseconds"
    if abs(now_ms - int(timestamp)) > max_skew_seconds * 1000:
        return "timestamp too far from now"
    if not secret or not hmac.compare_digest(sign(timestamp, secret), signature):
        return "bad signature"
    return None


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ParseError(f"{key} must be a string")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _content(data: dict[str, Any]) -> dict[str, Any]:
    content = data.get("content")
    if not isinstance(content, dict):
        raise ParseError(f"{data.get('msgtype')} message without a content object")
    return content


def strip_mention(text: str) -> str:
    """Drop the leading "@机器人" DingTalk leaves in group messages, and the spaces around it."""
    text = text.strip()
    if text.startswith("@"):
        text = _LEADING_MENTION.sub("", text, count=1)
    return text.strip()


def _rich_text(content: dict[str, Any]) -> tuple[str, list[str]]:
    items = content.get("richText")
    if not isinstance(items, list):
        raise ParseError("richText message without a richText list")
    texts: list[str] = []
    pictures: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("text"), str) and item["text"].strip():
            texts.append(item["text"].strip())
        code = item.get("downloadCode") or item.get("pictureDownloadCode")
        if isinstance(code, str) and code:
            pictures.append(code)
    return "\n".join(texts), pictures


def parse_message(data: Any) -> Inbound | None:
    """Map one robot message body to an :class:`Inbound`.

    Returns None for messages the bot should not act on (a group message that does not
    @ the bot). Raises :class:`ParseError` when required fields are missing or mistyped.
    """
    if not isinstance(data, dict):
        raise ParseError("body must be a JSON object")
    msg_id = _str(data, "msgId")
    if not msg_id:
        raise ParseError("msgId missing")
    msgtype = _str(data, "msgtype")
    if not msgtype:
        raise ParseError("msgtype missing")
    conversation_type = _str(data, "conversationType") or CONVERSATION_SINGLE
    is_group = conversation_type == CONVERSATION_GROUP
    if is_group and data.get("isInAtList") is False:
        return None
    # senderStaffId is the org's userid; people outside the org have only senderId.
    staff_id = _str(data, "senderStaffId")
    sender = staff_id or (f"external:{_str(data, 'senderId')}" if data.get("senderId") else "")
    if not sender:
        raise ParseError("senderStaffId missing")
    conversation_id = _str(data, "conversationId")

    extra: dict[str, Any] = {
        "msgtype": msgtype,
        "sender_nick": _str(data, "senderNick"),
        REPLY_CONVERSATION_TYPE: conversation_type,
    }
    if conversation_id:
        extra[REPLY_OPEN_CONVERSATION] = conversation_id
    robot_code = _str(data, "robotCode")
    if robot_code:
        extra[REPLY_ROBOT_CODE] = robot_code
    webhook = _str(data, "sessionWebhook")
    expires = _int(data.get("sessionWebhookExpiredTime"))
    if webhook.startswith(("https://", "http://")) and expires:
        extra[REPLY_WEBHOOK] = webhook
        extra[REPLY_WEBHOOK_EXPIRES] = expires

    kind = Kind.TEXT
    text = media = event = ""
    if msgtype == "text":
        body = data.get("text")
        if not isinstance(body, dict) or not isinstance(body.get("content"), str):
            raise ParseError("text message without text.content")
        text = strip_mention(body["content"])
    elif msgtype == "richText":
        text, pictures = _rich_text(_content(data))
        if pictures:
            extra["pictures"] = pictures
        if not text and pictures:
            kind, media = Kind.IMAGE, pictures[0]
    elif msgtype == "audio":
        content = _content(data)
        media = _str(content, "downloadCode")
        recognition = content.get("recognition")
        extra["recognition"] = recognition.strip() if isinstance(recognition, str) else ""
        extra["duration_ms"] = _int(content.get("duration"))
        kind = Kind.VOICE
        if not media and not extra["recognition"]:
            raise ParseError("audio message without downloadCode or recognition")
    elif msgtype == "picture":
        content = _content(data)
        media = _str(content, "downloadCode") or _str(content, "pictureDownloadCode")
        if not media:
            raise ParseError("picture message without downloadCode")
        kind = Kind.IMAGE
    elif msgtype in ("file", "video"):
        # Not something a rep's note can use; handlers decide what to answer.
        content = _content(data)
        media = _str(content, "downloadCode")
        extra["file_name"] = _str(content, "fileName")
        kind, event = Kind.EVENT, f"{msgtype}_received"
    else:
        kind, event = Kind.EVENT, "unsupported_message"
    if len(text) > MAX_TEXT:
        raise ParseError(f"text longer than {MAX_TEXT} characters")

    created = _int(data.get("createAt"))
    sent_at = datetime.fromtimestamp(created / 1000, tz=timezone.utc) if created else None
    return Inbound(
        platform=Platform.DINGTALK.value,
        message_id=msg_id,
        sender=sender,
        kind=kind,
        conversation=conversation_id or sender,
        text=text,
        media=media,
        event=event,
        sent_at=sent_at,
        is_group=is_group,
        extra=extra,
        raw=data,
    )


def sniff_format(head: bytes) -> str:
    """Name the audio/image container from its first bytes ("" when unknown).

    The temporary download URL carries no reliable type, and DingTalk has changed voice
    formats before, so the bytes decide.
    """
    if head.startswith(b"#!AMR-WB"):
        return "amr-wb"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "aac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head.startswith(b"#!SILK") or head.startswith(b"\x02#!SILK"):
        return "silk"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG"):
        return "png"
    return ""
