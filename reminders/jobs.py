"""One job queue per runtime: named repeating and daily jobs over APScheduler.

In the spirit of python-telegram-bot's JobQueue: features register named jobs, the
runtime starts and stops the queue, and every run goes through one wrapper that logs
errors and records metrics, so a failing job never kills the schedule and never
crashes the node. The schedule holds no state worth keeping: due work (reminders,
timers, digests) lives as database rows that any node may claim, so every node runs the
same queue and a restart loses nothing. APScheduler runs on wall time; jobs read the
injected clock (``app.clock``), which is how tests and the demo's ``/clock`` move time.

Why APScheduler: interval jobs with ``coalesce`` and ``max_instances=1`` give "never two
runs of one job at once, skip missed runs after a pause" for free.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from datetime import time as clock_time

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.context import AppContext

JobCallback = Callable[[AppContext], Awaitable[object]]


@dataclass(frozen=True)
class Job:
    name: str
    callback: JobCallback
    interval: float | None = None  # seconds, for repeating jobs
    at: clock_time | None = None  # local time of day, for daily jobs


class JobQueue:
    def __init__(self, app: AppContext) -> None:
        self._app = app
        self._jobs: dict[str, Job] = {}
        self._scheduler: AsyncIOScheduler | None = None

    def run_repeating(self, name: str, callback: JobCallback, *, seconds: float) -> Job:
        """Run ``callback(app)`` every ``seconds`` (first run one second after start)."""
        return self._add(Job(name, callback, interval=seconds))

    def run_daily(self, name: str, callback: JobCallback, *, at: clock_time) -> Job:
        """Run ``callback(app)`` every day at ``at`` in the configured time zone (the job decides about holidays)."""
        return self._add(Job(name, callback, at=at))

    def _add(self, job: Job) -> Job:
        if job.name in self._jobs:
            raise ValueError(f"job {job.name!r} is already registered")
        self._jobs[job.name] = job
        if self._scheduler is not None:
            self._schedule(self._scheduler, job)
        return job

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    async def run(self, name: str) -> object:
        """Run one job now, through the same wrapper as a scheduled run (tests, ``/clock``)."""
        return await self._run(self._jobs[name])

    async def run_all(self) -> None:
        for job in self.jobs:
            await self._run(job)

    async def _run(self, job: Job) -> object:
        app = self._app
        started = time.perf_counter()
        try:
            result = await job.callback(app)
        except Exception:  # noqa: BLE001 - a failing job must not stop the schedule
            app.log.exception("job.failed", job=job.name)
            app.metrics.job_runs.labels(job.name, "error").inc()
            return None
        finally:
            app.metrics.job_seconds.labels(job.name).observe(time.perf_counter() - started)
        app.metrics.job_runs.labels(job.name, "ok").inc()
        return result

    def _schedule(self, scheduler: AsyncIOScheduler, job: Job) -> None:
        async def fire() -> None:
            await self._run(job)

        if job.interval is not None:
            scheduler.add_job(
                fire, "interval", seconds=job.interval, id=job.name, max_instances=1, coalesce=True,
                misfire_grace_time=max(1, int(job.interval)),
                next_run_time=datetime.now(timezone.utc) + timedelta(seconds=1),
            )
        else:
            assert job.at is not None
            scheduler.add_job(
                fire, "cron", hour=job.at.hour, minute=job.at.minute, second=job.at.second, id=job.name,
                max_instances=1, coalesce=True, misfire_grace_time=3600,
            )

    async def start(self) -> None:
        if self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(timezone=self._app.config.tz)
        for job in self._jobs.values():
            self._schedule(scheduler, job)
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        if self._scheduler is None:
            return
        self._scheduler.shutdown(wait=False)
        self._scheduler = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running
