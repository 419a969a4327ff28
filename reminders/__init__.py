"""Time: the sales calendar (working time, holidays, 调休), ladders and timers, and the job queue.

Due work is stored as database rows that any node may claim; the job queue only decides
how often each node looks. Features register their jobs through
:class:`reminders.jobs.JobQueue`. The calendar and ladder modules are pure (no database,
no ``bot``), so the CLI and checks can load them cheaply.
"""
