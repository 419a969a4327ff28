"""What a feature contributes to a runtime: a router, preprocessors, prefetchers, named jobs, ladder handlers, services, HTTP routes.

Each package under ``handlers/`` exposes one :class:`Feature`; the composition root
(:mod:`bot.app`) lists them in routing order. The runtime only sees this shape, so it
never imports a feature, and a feature never reaches into the runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from bot.context import AppContext
    from bot.pipeline.dispatcher import Prefetcher, Preprocessor
    from bot.router import Router
    from reminders.jobs import JobQueue
    from reminders.timers import LevelHandler


class Background(Protocol):
    """A long-running service started and stopped with the node (e.g. the playbook's file watcher)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Feature:
    name: str
    router: Callable[[AppContext], Router] | None = None
    preprocessors: Sequence[Preprocessor] = ()
    prefetchers: Sequence[Prefetcher] = ()  # what every message of a batch asks first, read for all its senders at once
    jobs: Callable[[JobQueue, AppContext], None] | None = None
    services: Callable[[AppContext], Sequence[Background]] | None = None
    ladders: Mapping[str, LevelHandler] = field(default_factory=dict)  # ladder id → what its levels do
    # HTTP endpoints (e.g. POST /api/leads); the adapter lives in bot.api and is attached by the composition root
    routes: Callable[[AppContext], Sequence[web.RouteDef]] | None = None
