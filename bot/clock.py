"""Time as a dependency, so reminders and dialogs can be tested with a controllable clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class Clock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FakeClock(Clock):
    """A clock that only moves when told to (tests, demos)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(timezone.utc)


class OffsetClock(Clock):
    """Wall-clock time shifted by an offset the demo moves (``/clock +2h``), so timers can be watched firing.

    It keeps running with real time between jumps, unlike :class:`FakeClock`.
    """

    def __init__(self, start: datetime | None = None) -> None:
        real = datetime.now(timezone.utc)
        self._offset = (start.astimezone(timezone.utc) - real) if start is not None else timedelta(0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta
