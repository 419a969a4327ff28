"""The periodic reminder tick as a background service (APScheduler 3, AsyncIOScheduler).

Why APScheduler and not a bare loop: interval jobs with ``coalesce`` and ``max_instances=1``
give "never two ticks at once, skip missed runs after a pause" for free, and the scheduler
is where other periodic jobs (digests, escalations) can be added. State lives in the
database, not in the scheduler, so every node can run one and restarts lose nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.context import AppContext
from reminders.tick import run_reminder_tick

JOB_ID = "genjin.reminders"


class ReminderScheduler:
    def __init__(self, app: AppContext) -> None:
        self._app = app
        self._scheduler: AsyncIOScheduler | None = None

    async def _tick(self) -> None:
        try:
            await run_reminder_tick(self._app)
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the schedule
            self._app.log.exception("reminders.tick_failed")

    async def start(self) -> None:
        if self._scheduler is not None:
            return
        seconds = self._app.config.notes.reminder_tick_seconds
        scheduler = AsyncIOScheduler(timezone=self._app.config.tz)
        scheduler.add_job(
            self._tick,
            "interval",
            seconds=seconds,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds)),
            # APScheduler runs on wall time; the tick itself reads app.clock
            next_run_time=datetime.now(timezone.utc) + timedelta(seconds=1),
        )
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
