"""The Genjin sales calendar: working days and hours, and durations counted on three clocks.

Pure Python (stdlib, ``chinese_calendar``, ``zoneinfo``, ``tomllib``): nothing here may
import ``bot``, ``handlers`` or ``storage``, so ladders, the reminder sweep and the CLI can
all share it. There is no module-level state: build a :class:`Calendar` once from config
and pass it around.

    >>> cal = load_calendar()                      # packaged calendar, or load_calendar(DIR)
    >>> cal.add(start, timedelta(minutes=15), Clock.BUSINESS)
    >>> cal.elapsed(start, now, Clock.WORKDAY)     # budget consumed, to pause/resume timers
    >>> cal.next_working_day_at(due, time(9, 30))  # send windows
    >>> cal.fallback_years_used                    # years not covered by chinese_calendar → alert ops once

See :mod:`reminders.calendar.core` for the exact semantics of the clocks and
:mod:`reminders.calendar.spec` for the TOML that sales ops edit.
"""

from __future__ import annotations

from pathlib import Path

from reminders.calendar.core import Calendar, Clock, DayInfo, DayKind
from reminders.calendar.durations import format_duration, parse_duration
from reminders.calendar.spec import (
    PACKAGED_DIR,
    CalendarError,
    CalendarSpec,
    format_hours,
    load_calendar_spec,
    parse_calendar_files,
    parse_hours,
)


def load_calendar(directory: str | Path | None = None) -> Calendar:
    """The calendar of ``directory`` (default: the packaged one); raises :class:`CalendarError`."""
    return Calendar(load_calendar_spec(directory))


__all__ = [
    "PACKAGED_DIR",
    "Calendar",
    "CalendarError",
    "CalendarSpec",
    "Clock",
    "DayInfo",
    "DayKind",
    "format_duration",
    "format_hours",
    "load_calendar",
    "load_calendar_spec",
    "parse_calendar_files",
    "parse_duration",
    "parse_hours",
]
