"""The calendar TOML that sales ops edit, loaded strictly into a :class:`CalendarSpec`.

Why strict: a wrong date or a typo in a key silently moves every reminder and escalation
of the sales team, so every problem is reported at once and names the file, the key and
what is wrong (``calendar.toml: extra_holidays[2]: '2026-13-01' is not a date``).

A calendar directory holds ``*.toml`` files, read in name order. Keys (all optional):

* ``timezone`` — IANA name, default ``Asia/Shanghai``;
* ``hours`` — working-hour segments ``"09:00-12:00,13:30-18:00"`` (the default);
* ``extra_holidays`` / ``extra_workdays`` — lists of dates (TOML dates or ``"YYYY-MM-DD"``)
  applied on top of the statutory calendar.

The lists of all files are merged; ``timezone`` and ``hours`` may be set in one file only.
A directory given by the caller *replaces* the packaged one (``default/calendar.toml``),
so ``genjin calendar check DIR`` validates exactly what will be used; keys it leaves out
take the defaults above. A date that is both an extra holiday and an extra workday is an
error.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reminders.tomldir import read_toml_dir

PACKAGED_DIR = Path(__file__).with_name("default")
DEFAULT_HOURS = "09:00-12:00,13:30-18:00"
DEFAULT_TIMEZONE = "Asia/Shanghai"
FILE_KEYS = ("timezone", "hours", "extra_holidays", "extra_workdays")
_SEGMENT = re.compile(r"^(\d{1,2}):(\d{2})[-~](\d{1,2}):(\d{2})$")

Segment = tuple[int, int]
"""Working-hour segment as minutes after midnight, ``[start, end)``; ``end`` may be 1440 (24:00)."""


class CalendarError(Exception):
    """The calendar cannot be used; ``problems`` lists each one as ``file: key: what is wrong``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_hours(text: str) -> tuple[Segment, ...]:
    """``"09:00-12:00,13:30-18:00"`` → ((540, 720), (810, 1080)); ValueError naming the bad segment.

    Segments must be in order and must not overlap; ``24:00`` is allowed as an end.
    Full-width characters (``０９：００``, ``，``) are accepted because ops type in Chinese IMEs.
    """
    if not isinstance(text, str):
        raise ValueError(f"must be a string like {DEFAULT_HOURS!r}")
    norm = unicodedata.normalize("NFKC", text).replace(" ", "")
    if not norm:
        raise ValueError(f"is empty; write segments like {DEFAULT_HOURS!r}")
    segments: list[Segment] = []
    for part in norm.split(","):
        match = _SEGMENT.match(part)
        if not match:
            raise ValueError(f"segment {part!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise ValueError(f"segment {part!r} has an impossible time")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise ValueError(f"segment {part!r} ends before it starts")
        if segments and start < segments[-1][1]:
            raise ValueError(f"segment {part!r} overlaps or comes before the previous one; list segments in order")
        segments.append((start, end))
    return tuple(segments)


def format_hours(segments: Sequence[Segment]) -> str:
    """Inverse of :func:`parse_hours`."""
    return ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in segments)


@dataclass(frozen=True, slots=True)
class CalendarSpec:
    """What the TOML says; a :class:`~reminders.calendar.core.Calendar` is built from it."""

    hours: tuple[Segment, ...] = field(default_factory=lambda: parse_hours(DEFAULT_HOURS))
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    timezone: str = DEFAULT_TIMEZONE
    source: str = ""

    def __post_init__(self) -> None:
        if not self.hours:
            raise ValueError("a calendar needs at least one working-hour segment")
        overlap = self.extra_holidays & self.extra_workdays
        if overlap:
            raise ValueError(f"dates both extra holiday and extra workday: {sorted(overlap)}")

    @property
    def hours_text(self) -> str:
        return format_hours(self.hours)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):  # a TOML datetime is a date with a time: not what ops mean
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(unicodedata.normalize("NFKC", value).strip())
        except ValueError:
            return None
    return None


def _dates(value: Any, where: str, problems: list[str]) -> dict[date, str]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list of dates, e.g. [2026-10-09, 2026-12-31]")
        return {}
    found: dict[date, str] = {}
    for i, item in enumerate(value, 1):
        day = _date(item)
        if day is None:
            problems.append(f"{where}[{i}]: {item!r} is not a date (write YYYY-MM-DD)")
        elif day in found:
            problems.append(f"{where}[{i}]: {day.isoformat()} is listed twice")
        else:
            found[day] = where
    return found


def parse_calendar_files(files: Sequence[tuple[str, str]], source: str = "") -> CalendarSpec:
    """Build a spec from ``(file name, TOML text)`` pairs; raise :class:`CalendarError` listing every problem."""
    problems: list[str] = []
    holidays: dict[date, str] = {}
    workdays: dict[date, str] = {}
    scalars: dict[str, tuple[str, Any]] = {}
    for name, text in files:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{name}: not valid TOML: {exc}")
            continue
        for key in sorted(set(data) - set(FILE_KEYS)):
            problems.append(f"{name}: {key}: unknown key (allowed: {', '.join(FILE_KEYS)})")
        for key in ("timezone", "hours"):
            if key in data:
                if key in scalars:
                    problems.append(f"{name}: {key}: already set in {scalars[key][0]}; set it in one file only")
                else:
                    scalars[key] = (name, data[key])
        for key, merged in (("extra_holidays", holidays), ("extra_workdays", workdays)):
            if key in data:
                for day, where in _dates(data[key], f"{name}: {key}", problems).items():
                    merged.setdefault(day, where)

    hours = parse_hours(DEFAULT_HOURS)
    if "hours" in scalars:
        name, value = scalars["hours"]
        try:
            hours = parse_hours(value)
        except ValueError as exc:
            problems.append(f"{name}: hours: {exc}")
    timezone = DEFAULT_TIMEZONE
    if "timezone" in scalars:
        name, value = scalars["timezone"]
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name}: timezone: must be a time zone name such as \"Asia/Shanghai\"")
        else:
            try:
                ZoneInfo(value.strip())
                timezone = value.strip()
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(f"{name}: timezone: unknown time zone {value!r} (e.g. \"Asia/Shanghai\")")
    for day in sorted(set(holidays) & set(workdays)):
        problems.append(
            f"{holidays[day]}: {day.isoformat()} is also an extra workday ({workdays[day]}); "
            "a day cannot be both — remove it from one list"
        )
    if problems:
        raise CalendarError(problems)
    return CalendarSpec(
        hours=hours,
        extra_holidays=frozenset(holidays),
        extra_workdays=frozenset(workdays),
        timezone=timezone,
        source=source,
    )


def load_calendar_spec(directory: str | Path | None = None) -> CalendarSpec:
    """Read every ``*.toml`` of ``directory`` (default: the packaged calendar); raise :class:`CalendarError`."""
    files, problems, folder = read_toml_dir(directory, PACKAGED_DIR, "calendar")
    if problems:
        raise CalendarError(problems)
    return parse_calendar_files(files, source=str(folder))
