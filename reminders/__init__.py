"""Time: the job queue every node runs (and, with the sales calendar, working time and timers).

Due work is stored as database rows that any node may claim; the job queue only decides
how often each node looks. Features register their jobs through :class:`JobQueue`.
"""
