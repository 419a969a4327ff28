"""The application context passed to everything instead of global state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Config
from bot.metrics import Metrics
from storage.lookups import Lookups

if TYPE_CHECKING:
    from bot.channels.base import Channel
    from bot.services import Services
    from reminders.calendar import Calendar
    from reminders.timers import Timers


@dataclass
class AppContext:
    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    ingest_sessions: async_sessionmaker[AsyncSession]  # a connection of its own: acks never wait behind handlers
    clock: Clock
    metrics: Metrics
    services: Services
    calendar: Calendar  # the sales calendar: working hours, holidays, 调休
    timers: Timers  # escalation ladders as database rows
    channels: dict[str, Channel] = field(default_factory=dict)
    inbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    ingest_idle: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))  # cleared while callbacks wait to be stored
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    log: Any = field(default_factory=lambda: structlog.get_logger("genjin"))
    lookups: Lookups = field(init=False)  # people and accounts cached per process (storage.lookups says how staleness is bounded)

    def __post_init__(self) -> None:
        self.lookups = Lookups(self.clock.now)
        self.lookups.watch(self.sessions)

    def channel(self, platform: str) -> Channel:
        try:
            return self.channels[platform]
        except KeyError:
            raise LookupError(f"channel {platform!r} is not enabled") from None


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event
