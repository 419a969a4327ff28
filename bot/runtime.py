"""Running one Genjin node: database, channels, pipeline workers, job queue, HTTP.

``serve``, ``demo``, ``chat`` and the tests all build a :class:`Runtime` through the
composition root (:func:`bot.app.build_runtime`); what differs is which parts they
start. The runtime is given its features and never imports one. Several nodes may run
against one PostgreSQL database: inbox, outbox and job claims are atomic, so nothing is
done twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from bot.channels.base import Channel
from bot.clock import Clock
from bot.config import Config
from bot.context import AppContext
from bot.features import Background, Feature
from bot.metrics import Metrics
from bot.pipeline import delivery, inbox
from bot.pipeline.dispatcher import Dispatcher
from bot.pipeline.workers import poll
from bot.router import Router
from bot.services import Services
from bot.web import create_web_app
from reminders.calendar import load_calendar
from reminders.jobs import JobQueue
from reminders.ladders import load_ladders
from reminders.timers import Timers, sweep_timers
from storage.db import create_engine, is_sqlite, session_factory, upgrade

TIMERS_JOB = "timers.sweep"


def build_channels(app: AppContext) -> dict[str, Channel]:
    """The enabled channels; each is given the inbox's ``accept`` to ingest with (channels never import the inbox)."""

    ingest = inbox.Ingestor(app).accept
    channels: dict[str, Channel] = {}
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


def build_router(app: AppContext, features: Sequence[Feature]) -> Router:
    """The root router: each feature's router in the order the features are listed (first match wins)."""
    root = Router("root")
    for feature in features:
        if feature.router is not None:
            root.include(feature.router(app))
    return root


class Runtime:
    def __init__(self, config: Config, features: Sequence[Feature], *, clock: Clock | None = None) -> None:
        engine = create_engine(config.database.url, echo=config.database.echo, pool_size=config.database.pool_size)
        # Connections reserved for acknowledgements, so storing a callback never queues behind handler
        # work. On SQLite (one writer) the ingest connection does not use the busy handler, which sleeps
        # in growing steps: the inbox retries a locked database itself in millisecond steps.
        self._ingest_engine = create_engine(
            config.database.url, echo=config.database.echo, pool_size=config.database.ingest_pool_size,
            busy_timeout_ms=0 if is_sqlite(config.database.url) else 30_000,
        )
        calendar = load_calendar(config.calendar.dir or None)
        self.app = AppContext(
            config=config,
            engine=engine,
            sessions=session_factory(engine),
            ingest_sessions=session_factory(self._ingest_engine),
            clock=clock or Clock(),
            metrics=Metrics(),
            services=Services(config),
            calendar=calendar,
            timers=Timers(calendar, load_ladders(config.timers.ladders_dir or None)),
        )
        self.features = list(features)
        for feature in self.features:
            for ladder_id, handler in feature.ladders.items():
                self.app.timers.handle(ladder_id, handler)
        self.app.channels.update(build_channels(self.app))
        self.dispatcher = Dispatcher(
            build_router(self.app, self.features),
            [step for feature in self.features for step in feature.preprocessors],
            [read for feature in self.features for read in feature.prefetchers],
        )
        self.jobs = JobQueue(self.app)
        self.jobs.run_repeating(TIMERS_JOB, sweep_timers, seconds=config.timers.sweep_seconds)
        for feature in self.features:
            if feature.jobs is not None:
                feature.jobs(self.jobs, self.app)
        self._background: list[Background] = [
            service for feature in self.features if feature.services is not None for service in feature.services(self.app)
        ]
        self._routes: list[web.RouteDef] = [
            route for feature in self.features if feature.routes is not None for route in feature.routes(self.app)
        ]
        self._stop = asyncio.Event()
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def work_once(self) -> int:
        """Process one batch of the inbox (tests and the local chat drive the pipeline with this)."""
        return await self.dispatcher.work_once(self.app)

    async def deliver_once(self) -> int:
        """Deliver one batch of the outbox."""
        return await delivery.drain_once(self.app)

    async def start(self, *, http: bool = True, migrate: bool = True, workers: bool = True) -> None:
        cfg = self.app.config
        if migrate:
            await upgrade(cfg.database.url)
        for channel in self.app.channels.values():
            await channel.start()
        if workers:
            app, stop = self.app, self._stop
            interval, most = cfg.pipeline.poll_interval, cfg.pipeline.poll_interval_max
            for n in range(cfg.pipeline.workers):
                self._tasks.append(asyncio.create_task(poll(
                    f"inbox-{n}", self.work_once, wakeup=app.inbox_wakeup, stop=stop, interval=interval, max_interval=most,
                    log=app.log)))
            for n in range(cfg.pipeline.outbox_workers):
                self._tasks.append(asyncio.create_task(poll(
                    f"outbox-{n}", self.deliver_once, wakeup=app.outbox_wakeup, stop=stop, interval=interval, max_interval=most,
                    log=app.log)))
            for service in self._background:
                await service.start()
            await self.jobs.start()
        if http:
            self._runner = web.AppRunner(create_web_app(self.app, self._routes), access_log=None, handle_signals=False, shutdown_timeout=5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, cfg.server.host, cfg.server.port)
            await site.start()
            server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else cfg.server.port
        self.app.log.info("genjin.started", http=http, port=self.port, channels=list(self.app.channels))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self.app.inbox_wakeup.set()
        self.app.outbox_wakeup.set()
        await self.jobs.stop()
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
        await self._ingest_engine.dispose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
