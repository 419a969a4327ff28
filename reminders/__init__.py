"""Task reminders: a database-driven tick that pushes each due reminder exactly once.

``run_reminder_tick(app)`` is the unit of work (tests call it directly with a FakeClock);
``ReminderScheduler`` runs it periodically with APScheduler as a background service.
"""

from reminders.scheduler import ReminderScheduler
from reminders.tick import run_reminder_tick

__all__ = ["ReminderScheduler", "run_reminder_tick"]
