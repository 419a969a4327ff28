"""The contract every channel adapter fulfils.

Adapters hold no business logic: they verify and parse callbacks into
:class:`~bot.messages.Inbound`, hand them to the inbox, and deliver
:class:`~bot.messages.Outbound` rows by rendering the platform-neutral reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bot.messages import MediaError, Outbound
from bot.redact import redact

__all__ = ["Channel", "ChannelHealth", "DeliveryError", "MediaError", "PermanentFailure", "TemporaryFailure"]


class DeliveryError(Exception):
    """Base for send failures; the outbox decides what happens next.

    ``reason`` is stored in ``outbox.last_error`` and logged, so it is redacted here.
    """

    def __init__(self, reason: str) -> None:
        reason = redact(reason)
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryError):
    """Try again later (network, 5xx, rate limit). ``retry_after`` overrides the backoff."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(DeliveryError):
    """Retrying will not help (bad recipient, configuration problem); mark failed."""




@dataclass
class ChannelHealth:
    ok: bool = True
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    platform: str

    def setup_routes(self, app: web.Application) -> None:
        """Add the channel's HTTP callback routes (may add none)."""

    async def start(self) -> None:
        """Open connections (DingTalk Stream), start rate limiters…"""

    async def stop(self) -> None: ...

    async def send(self, out: Outbound) -> None:
        """Deliver one outbox row or raise a :class:`DeliveryError`."""

    async def fetch_media(self, ref: str, fmt: str) -> bytes:
        """Download a voice/image reference from an inbound message or raise MediaError."""

    def health(self) -> ChannelHealth: ...
