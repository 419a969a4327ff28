"""The sales calendar: working days, working hours and the three clocks timers run on.

Why three clocks: "claim a lead within 15 minutes" means 15 minutes of *working hours*
(``business``); "no activity for 3 days" means three *working days*, counted around the
clock (``workday``: a working day contributes its whole 24 hours, days off nothing);
"15 days overdue" means plain ``calendar`` time.

Semantics (tests pin each of them):

* ``add(start, d, clock)`` is the earliest moment ``t`` at which ``elapsed(start, t) == d``,
  never before the next working moment of ``start``. So a budget that runs out exactly at
  a segment end is due *at* that end (Fri 17:45 + 15m = Fri 18:00, not Mon 09:00), and
  ``add(start, 0)`` is ``next_working_moment(start)`` (the start itself on the calendar clock).
* ``elapsed(start, end, clock)`` is the counted time in ``[start, end]``; it is the inverse
  of ``add``: ``elapsed(s, add(s, d)) == d`` for every ``d >= 0``.
* Working segments are half-open: 18:00 is not a working moment, 09:00 is.
* Arithmetic is done in UTC between wall-clock segment boundaries, so a zone with DST
  still counts real elapsed time.
* Inputs must be timezone-aware (naive datetimes raise ValueError); results are aware in
  the calendar's zone.

Working days: ``extra_workdays`` and ``extra_holidays`` from the TOML win; otherwise the
``chinese_calendar`` package decides (statutory holidays and 调休 make-up workdays). For
years that package does not cover it raises NotImplementedError; we then fall back to
Monday–Friday and *record* the year in :attr:`Calendar.fallback_years_used` so the caller
can alert ops once (the calendar never alerts by itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from reminders.calendar.spec import CalendarSpec, Segment

DayKind = Literal["workday", "weekend", "holiday", "makeup", "extra_holiday", "extra_workday"]
_WHOLE_DAY: tuple[Segment, ...] = ((0, 24 * 60),)
_MAX_IDLE_DAYS = 3660  # no working time for ten years means a broken calendar, not a long weekend
_DAY = timedelta(days=1)
_MAX_CACHED_DAYS = 10_000  # (day, clock) interval lists kept per calendar; past it the cache starts over


class Clock(StrEnum):
    """How a duration is counted; values are what ladders and the CLI spell."""

    BUSINESS = "business"
    WORKDAY = "workday"
    CALENDAR = "calendar"


@dataclass(frozen=True, slots=True)
class DayInfo:
    """Why a day is (not) a working day; ``holiday`` is the Chinese holiday name when known."""

    day: date
    working: bool
    kind: DayKind
    holiday: str | None = None
    fallback: bool = False  # chinese_calendar does not cover the year: Monday–Friday was assumed


def _holiday_name(english: str | None) -> str | None:
    if not english:
        return None
    try:
        return str(chinese_calendar.Holiday(english).chinese)
    except ValueError:
        return english


class Calendar:
    """Built once from a :class:`CalendarSpec` and passed to whoever needs it.

    Per-day answers are cached on the instance (the statutory lookup and the TOML sets
    never change for a given spec); reload = build a new Calendar.
    """

    def __init__(self, spec: CalendarSpec | None = None) -> None:
        self.spec = spec if spec is not None else CalendarSpec()
        self.tz = ZoneInfo(self.spec.timezone)
        self._days: dict[date, DayInfo] = {}
        self._intervals: dict[tuple[date, Clock], tuple[tuple[datetime, datetime], ...]] = {}
        self._fallback_years: set[int] = set()

    def __repr__(self) -> str:
        return f"Calendar({self.spec.timezone}, hours={self.spec.hours_text!r}, source={self.spec.source!r})"

    # ---- days ------------------------------------------------------------------

    def day_info(self, day: date) -> DayInfo:
        """The kind of ``day``: workday, weekend, holiday, makeup (调休), extra_holiday, extra_workday."""
        if isinstance(day, datetime):
            raise TypeError("day_info takes a date, not a datetime (convert to the calendar's zone first)")
        cached = self._days.get(day)
        if cached is not None:
            return cached
        weekend = day.weekday() >= 5
        if day in self.spec.extra_workdays:
            info = DayInfo(day, True, "extra_workday")
        elif day in self.spec.extra_holidays:
            info = DayInfo(day, False, "extra_holiday")
        else:
            try:
                working = bool(chinese_calendar.is_workday(day))
                _off, english = chinese_calendar.get_holiday_detail(day)
                name, fallback = _holiday_name(english), False
            except NotImplementedError:
                self._fallback_years.add(day.year)
                working, name, fallback = not weekend, None, True
            if working:
                kind: DayKind = "makeup" if weekend else "workday"
            else:
                kind = "holiday" if name else "weekend"
            info = DayInfo(day, working, kind, name, fallback)
        self._days[day] = info
        return info

    def is_working_day(self, day: date) -> bool:
        return self.day_info(day).working

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``[start, end)`` (like ``range``: start counted, end not); 0 if end <= start."""
        count, day = 0, start
        while day < end:
            count += self.is_working_day(day)
            day += _DAY
        return count

    @property
    def fallback_years_used(self) -> frozenset[int]:
        """Years for which a working-day answer so far had to assume Monday–Friday."""
        return frozenset(self._fallback_years)

    @staticmethod
    def statutory_years() -> tuple[int, int]:
        """First and last year the installed chinese_calendar has statutory data for."""
        years = [day.year for day in chinese_calendar.holidays]
        return min(years), max(years)

    @staticmethod
    def uncovered_years(start: date, end: date) -> tuple[int, ...]:
        """Years in ``start.year..end.year`` that chinese_calendar has no data for (no side effects)."""
        missing = []
        for year in range(start.year, end.year + 1):
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
            except NotImplementedError:
                missing.append(year)
        return tuple(missing)

    # ---- moments ---------------------------------------------------------------

    def _utc(self, moment: datetime, name: str = "datetime") -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (got naive {moment.isoformat()})")
        return moment.astimezone(UTC)

    def _wall(self, day: date, minute: int) -> datetime:
        extra_days, minute = divmod(minute, 24 * 60)
        local = datetime.combine(day + timedelta(days=extra_days), time(minute // 60, minute % 60), tzinfo=self.tz)
        return local.astimezone(UTC)

    def _counted(self, day: date, clock: Clock) -> tuple[tuple[datetime, datetime], ...]:
        """The UTC intervals of ``day`` that the clock counts (cached: every timer restart walks the same days)."""
        key = (day, clock)
        cached = self._intervals.get(key)
        if cached is not None:
            return cached
        if clock is Clock.CALENDAR:
            segments = _WHOLE_DAY
        elif not self.is_working_day(day):
            segments = ()
        else:
            segments = _WHOLE_DAY if clock is Clock.WORKDAY else self.spec.hours
        intervals = tuple((self._wall(day, a), self._wall(day, b)) for a, b in segments)
        if len(self._intervals) >= _MAX_CACHED_DAYS:
            self._intervals.clear()
        self._intervals[key] = intervals
        return intervals

    def add(self, start: datetime, duration: timedelta, clock: Clock | str = Clock.BUSINESS) -> datetime:
        """The moment ``duration`` of ``clock`` time after ``start`` (see the module docstring)."""
        clock = Clock(clock)
        now = self._utc(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative (got {duration})")
        if clock is Clock.CALENDAR:
            return (now + duration).astimezone(self.tz)
        remaining = duration
        day = now.astimezone(self.tz).date()
        idle = 0
        while idle < _MAX_IDLE_DAYS:
            intervals = self._counted(day, clock)
            idle = 0 if intervals else idle + 1
            for seg_start, seg_end in intervals:
                if seg_end <= now:
                    continue
                begin = max(seg_start, now)
                if remaining <= seg_end - begin:
                    return (begin + remaining).astimezone(self.tz)
                remaining -= seg_end - begin
                now = seg_end
            day += _DAY
        raise ValueError(f"no working time within {_MAX_IDLE_DAYS} days after {day - _DAY * _MAX_IDLE_DAYS}")

    def elapsed(self, start: datetime, end: datetime, clock: Clock | str = Clock.BUSINESS) -> timedelta:
        """Counted ``clock`` time between two moments: the budget a timer consumed from ``start`` to ``end``."""
        clock = Clock(clock)
        lo, hi = self._utc(start, "start"), self._utc(end, "end")
        if hi < lo:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        if clock is Clock.CALENDAR:
            return hi - lo
        total = timedelta(0)
        day = lo.astimezone(self.tz).date()
        while self._wall(day, 0) < hi:
            for seg_start, seg_end in self._counted(day, clock):
                a, b = max(seg_start, lo), min(seg_end, hi)
                if b > a:
                    total += b - a
            day += _DAY
        return total

    def next_working_moment(self, moment: datetime, clock: Clock | str = Clock.BUSINESS) -> datetime:
        """``moment`` itself if the clock counts it, else the start of the next counted interval."""
        return self.add(moment, timedelta(0), clock)

    def next_working_day_at(self, moment: datetime, at: time) -> datetime:
        """First ``at`` wall time on a working day that is not before ``moment`` (send windows: 09:30)."""
        local = self._utc(moment, "moment").astimezone(self.tz)
        day = local.date()
        for _ in range(_MAX_IDLE_DAYS):
            candidate = datetime.combine(day, at.replace(tzinfo=None), tzinfo=self.tz)
            if candidate >= local and self.is_working_day(day):
                return candidate
            day += _DAY
        raise ValueError(f"no working day within {_MAX_IDLE_DAYS} days after {local.date()}")

    def localize(self, moment: datetime) -> datetime:
        """An aware moment in the calendar's zone; a naive one is taken as calendar-zone wall time."""
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self.tz)
        return moment.astimezone(self.tz)
