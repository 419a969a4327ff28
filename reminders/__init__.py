"""Task reminders: a database-driven tick that pushes each due reminder exactly once.

``run_reminder_tick(app)`` is the unit of work (tests call it directly with a FakeClock);
``ReminderScheduler`` runs it periodically with APScheduler as a background service.

The two are imported lazily so that the pure sub-modules (``reminders.calendar``,
``reminders.ladders``, ``reminders.ladder_timers``) can be imported without pulling in
``bot``, the database or APScheduler: importing a sub-module runs this file first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReminderScheduler", "run_reminder_tick"]


def __getattr__(name: str) -> Any:
    if name == "ReminderScheduler":
        from reminders.scheduler import ReminderScheduler

        return ReminderScheduler
    if name == "run_reminder_tick":
        from reminders.tick import run_reminder_tick

        return run_reminder_tick
    raise AttributeError(f"module 'reminders' has no attribute {name!r}")
