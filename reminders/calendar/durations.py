"""Durations as sales ops write them in TOML and on the command line: ``15m``, ``2h``, ``15d``, ``1h30m``.

Why a tiny grammar of our own: ladders and the CLI need exact, unambiguous durations
(integers of days, hours, minutes, seconds), and a message that tells an ops person
what to type, not a Python exception.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1), "s": timedelta(seconds=1)}
_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"^(?:\d+[dhms])+$")


def parse_duration(text: str) -> timedelta:
    """``"15m"`` → 15 minutes; units d (24 h), h, m, s, combinable (``"1h30m"``); ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string like \"15m\", \"2h\" or \"15d\" (got {text!r})")
    norm = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "")
    if not _WHOLE.match(norm):
        raise ValueError(f"{text!r} is not a duration: write a number and a unit d/h/m/s, e.g. \"15m\", \"2h\", \"15d\"")
    units = [unit for _n, unit in _PART.findall(norm)]
    if len(set(units)) != len(units) or units != sorted(units, key="dhms".index):
        raise ValueError(f"{text!r}: write each unit once, largest first (e.g. \"1h30m\")")
    return sum((int(n) * _UNITS[unit] for n, unit in _PART.findall(norm)), timedelta())


def duration_uses_days(text: str) -> bool:
    """True when the written duration has a ``d`` part (meaningless on the business clock, see ladders)."""
    return "d" in unicodedata.normalize("NFKC", text).lower()


def format_duration(value: timedelta) -> str:
    """Inverse of :func:`parse_duration` for whole seconds: 90 minutes → ``"1h30m"``; zero → ``"0m"``."""
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-value)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0m"
