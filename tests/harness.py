"""Drive a runtime deterministically: say something, process, deliver, read what came out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.channels.local import LocalChannel
from bot.messages import Inbound, Kind, Outbound
from bot.pipeline import inbox
from bot.runtime import Runtime

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=SH)  # a Monday morning, for relative dates


async def rows(h: Harness, model: Any, *where: Any) -> list[Any]:
    """All rows of ``model`` matching ``where``, in primary-key order."""
    async with h.app.sessions() as s:
        return list((await s.scalars(select(model).where(*where).order_by(*model.__mapper__.primary_key))).all())


async def pipeline_idle(app: Any, timeout: float = 20.0) -> None:
    """Wait until running workers have nothing left (see :func:`bot.chat.wait_idle`); fail if they never settle."""
    from bot.chat import wait_idle

    assert await wait_idle(app, timeout), "the pipeline did not settle"


@dataclass(frozen=True)
class Delivered:
    recipient: str
    text: str
    out: Outbound


class Harness:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.app = runtime.app
        self.delivered: list[Delivered] = []
        channel = self.app.channels["local"]
        assert isinstance(channel, LocalChannel)
        channel.add_listener(lambda out, text: self.delivered.append(Delivered(out.recipient, text, out)))

    async def settle(self, rounds: int = 50) -> None:
        """Process the inbox and deliver the outbox until nothing is left that is due."""
        for _ in range(rounds):
            worked = await self.runtime.work_once()
            sent = await self.runtime.deliver_once()
            if not worked and not sent:
                return

    async def send(self, msg: Inbound) -> list[Delivered]:
        before = len(self.delivered)
        await inbox.accept(self.app, msg)
        await self.settle()
        return self.delivered[before:]

    def message(self, user: str, text: str = "", *, kind: Kind = Kind.TEXT, msg_id: str | None = None, **kw: object) -> Inbound:
        return Inbound(
            platform="local",
            message_id=msg_id or uuid.uuid4().hex,
            sender=user,
            kind=kind,
            conversation=user,
            text=text,
            sent_at=datetime.now(timezone.utc),
            **kw,  # type: ignore[arg-type]
        )

    async def say(self, user: str, text: str, *, msg_id: str | None = None) -> list[str]:
        """Send a text as ``user``; returns the texts delivered to ``user`` in response."""
        out = await self.send(self.message(user, text, msg_id=msg_id))
        return [d.text for d in out if d.recipient == user]

    async def voice(self, user: str, path: Path) -> list[str]:
        msg = self.message(user, kind=Kind.VOICE, media=str(path), media_format=path.suffix.lstrip("."))
        out = await self.send(msg)
        return [d.text for d in out if d.recipient == user]

    def pushes(self, recipient: str) -> list[str]:
        return [d.text for d in self.delivered if d.recipient == recipient]
