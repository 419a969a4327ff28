"""Assembling and running one Genjin node: database, channels, workers, HTTP, schedulers.

``serve``, ``demo``, ``chat`` and the tests all build a :class:`Runtime`; what differs is
which parts they start. Several nodes may run against one PostgreSQL database: the
inbox/outbox claims and the reminder claims are atomic, so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Protocol

from aiohttp import web

from bot import inbox, outbox
from bot.channels.base import Channel
from bot.clock import Clock
from bot.config import Config
from bot.context import AppContext
from bot.metrics import Metrics
from bot.services import Services
from bot.web import create_web_app
from storage.db import create_engine, session_factory, upgrade


class Background(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_channels(app: AppContext) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    ingest = functools.partial(inbox.accept, app)
    if app.config.local.enabled:
        from bot.channels.local import LocalChannel

        channels["local"] = LocalChannel(app, ingest)
    if app.config.wecom.enabled:
        from bot.channels.wecom import WeComChannel
        from bot.channels.wecom_robot import ROBOT_PLATFORM, WeComRobotChannel

        channels["wecom"] = WeComChannel(app, ingest)
        channels[ROBOT_PLATFORM] = WeComRobotChannel(app, ingest)
    if app.config.dingtalk.enabled:
        from bot.channels.dingtalk import ROBOT_PLATFORM as DINGTALK_ROBOT
        from bot.channels.dingtalk import DingTalkChannel, DingTalkRobotChannel

        channels["dingtalk"] = DingTalkChannel(app, ingest)
        channels[DINGTALK_ROBOT] = DingTalkRobotChannel(app, ingest)
    return channels


class Runtime:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        engine = create_engine(config.database.url, echo=config.database.echo, pool_size=config.database.pool_size)
        self.app = AppContext(
            config=config,
            engine=engine,
            sessions=session_factory(engine),
            clock=clock or Clock(),
            metrics=Metrics(),
            services=Services(config),
        )
        self.app.channels = build_channels(self.app)
        from handlers import build_background, build_preprocessors, build_router

        self.app.router = build_router(self.app)
        self.app.preprocessors = build_preprocessors(self.app)
        self._background: list[Background] = build_background(self.app)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, *, http: bool = True, migrate: bool = True, workers: bool = True) -> None:
        cfg = self.app.config
        if migrate:
            await upgrade(cfg.database.url)
        for channel in self.app.channels.values():
            await channel.start()
        if workers:
            for _ in range(cfg.pipeline.workers):
                self._tasks.append(asyncio.create_task(inbox.run_worker(self.app, self._stop)))
            for _ in range(cfg.pipeline.outbox_workers):
                self._tasks.append(asyncio.create_task(outbox.run_worker(self.app, self._stop)))
            for service in self._background:
                await service.start()
        if http:
            self._runner = web.AppRunner(create_web_app(self.app), access_log=None, handle_signals=False, shutdown_timeout=5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, cfg.server.host, cfg.server.port)
            await site.start()
            server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else cfg.server.port
        self.app.log.info("genjin.started", http=http, port=self.port, channels=list(self.app.channels))

    async def stop(self) -> None:
        self._stop.set()
        self.app.inbox_wakeup.set()
        self.app.outbox_wakeup.set()
        for service in self._background:
            await service.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
            for task in self._tasks:
                task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        for channel in self.app.channels.values():
            await channel.stop()
        self.app.services.close()
        await self.app.engine.dispose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
