"""The platform-neutral message model.

Adapters convert WeCom/DingTalk/local payloads into :class:`Inbound` at the edge and
render :class:`Reply` objects back into platform payloads. Handlers only ever see these
types, so a feature written once works on every channel.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cards.model import Card


class Platform(StrEnum):
    LOCAL = "local"
    WECOM = "wecom"
    DINGTALK = "dingtalk"


class Kind(StrEnum):
    TEXT = "text"
    VOICE = "voice"
    IMAGE = "image"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message or event as received from a platform.

    ``message_id`` is the platform's own id (or a key the adapter derives for events
    that have none); together with ``platform`` it is the deduplication key.
    ``media`` is an opaque reference the channel can resolve (WeCom MediaId,
    DingTalk downloadCode, a local path). For events, ``event`` names the event and
    ``event_key`` carries the button's command.
    """

    platform: str
    message_id: str
    sender: str
    kind: Kind
    conversation: str = ""
    text: str = ""
    media: str = ""
    media_format: str = ""
    event: str = ""
    event_key: str = ""
    sent_at: datetime | None = None
    is_group: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


MAX_IMAGE_BYTES = 1_500_000  # WeCom takes images up to 2 MB; the bytes travel base64-encoded in the outbox payload


@dataclass(frozen=True, slots=True)
class Image:
    """An image attachment (a PNG chart). ``alt`` is the text sent instead when the image cannot be."""

    data: bytes
    name: str = "chart.png"
    alt: str = ""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("an image needs bytes")
        if len(self.data) > MAX_IMAGE_BYTES:
            raise ValueError(f"image larger than {MAX_IMAGE_BYTES} bytes")

    def to_payload(self) -> dict[str, str]:
        return {"b64": base64.b64encode(self.data).decode("ascii"), "name": self.name, "alt": self.alt}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Image:
        return cls(base64.b64decode(payload["b64"]), name=payload.get("name", "chart.png"), alt=payload.get("alt", ""))


@dataclass(frozen=True, slots=True)
class Reply:
    """Something to send: plain text or a card, optionally to someone else than the sender.

    ``to`` is a person key (from the org) for pushes; ``None`` answers the sender in
    the conversation the message came from. ``update_token`` asks the channel to
    update an earlier interactive card (WeCom response_code) instead of sending anew.
    """

    text: str = ""
    card: Card | None = None
    to: str | None = None
    update_token: str = ""
    tag: str = ""
    image: Image | None = None  # sent after the text/card (a chart); ``image.alt`` is the fallback text

    def __post_init__(self) -> None:
        if not self.text and self.card is None and self.image is None:
            raise ValueError("a reply needs text, a card or an image")

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": self.text}
        if self.card is not None:
            payload["card"] = self.card.to_dict()
        if self.update_token:
            payload["update_token"] = self.update_token
        if self.tag:
            payload["tag"] = self.tag
        if self.image is not None:
            payload["image"] = self.image.to_payload()
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Reply:
        card = Card.from_dict(payload["card"]) if payload.get("card") else None
        return cls(
            text=payload.get("text", ""),
            card=card,
            update_token=payload.get("update_token", ""),
            tag=payload.get("tag", ""),
            image=Image.from_payload(payload["image"]) if payload.get("image") else None,
        )


@dataclass(frozen=True, slots=True)
class Outbound:
    """A reply bound to one platform recipient, as stored in the outbox and given to a sender."""

    id: int
    platform: str
    recipient: str
    conversation: str
    reply: Reply
    attempts: int = 0
    context: dict[str, Any] = field(default_factory=dict)



MAX_KEY = 191  # inbox.message_id / conversation column width


def bounded_key(key: str, limit: int = MAX_KEY) -> str:
    """A dedup key that fits the column: long keys keep a prefix plus a SHA-256 of the whole.

    Truncating instead would make two long ids that share a prefix one message.
    """
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key[: limit - len(digest) - 1] + "#" + digest


@dataclass(frozen=True)
class Accepted:
    """What storing an inbound message did: its inbox row, or that it was a redelivery."""

    inbox_id: int | None
    duplicate: bool


#: How a channel hands a parsed message to the pipeline. Channels get this injected
#: instead of importing the inbox, so they stay below it in the layering.
Ingest = Callable[[Inbound], Awaitable[Accepted]]


class MediaError(Exception):
    """Media (a voice memo) could not be fetched; ``reason`` is shown in logs, the rep gets a polite reply.

    Defined with the message model because channels raise it and handlers catch it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A local conversation held by one process (a running ``genjin chat``) is "<user>#held:<session>":
# any node may process its messages, but only the node whose local channel holds that session
# delivers the replies (bot.pipeline.outbox.claim), so a ``genjin serve`` on the same database
# never swallows what the terminal is waiting for.
HELD = "#held:"


def held_conversation(user: str, session: str) -> str:
    return f"{user}{HELD}{session}" if session else user
