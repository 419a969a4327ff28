"""Escalation ladders: what sales ops write in TOML about who is reminded when.

A ladder (``[[ladder]]``: ``id``, ``clock``, optional ``send_at``) is a list of levels
(``[[ladder.level]]``) that fire as a timer's budget on the ladder's clock runs out:

* ``at`` — budget since the timer started, ``"15m"``, ``"72h"``, ``"15d"``; strictly
  increasing within a ladder. On the ``business`` clock a ``d`` is refused: it would mean
  24 *working hours* (about three working days), which nobody means.
* ``audience`` — ``owner``, ``manager``, ``director``, ``finance``, ``role:KEY``, ``team:KEY``.
* ``class`` — card class, used later for merging and flood control (optional).
* ``action`` — ``remind`` (default) or ``reassign``.
* ``send_at`` — ``"09:30"``: the card goes out on the first working day at/after the due
  moment, at that time (a ladder-level ``send_at`` is the default for its levels).
* ``when`` — condition over the subject's attributes, e.g. ``amount >= 500000 and
  stage != "won"``. The language is deliberately tiny and parsed here (never ``eval``):
  ``field OP number|"string"`` joined by ``and``; OP is one of ``>= > <= < == !=``; strings
  only compare with ``==``/``!=``. A missing or non-numeric attribute makes the comparison
  false, so a level whose condition cannot be decided does not fire.

Why strict loading with ``file: ladder: level: key: problem`` messages: a typo in an
audience or a condition would silently stop escalations to a director; ops must see it
before it goes live. Files of a directory are read in name order; a directory given by
the caller replaces the packaged ``default_ladders/``. Pure Python: no ``bot``/``storage``.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from reminders.calendar import Clock, parse_duration
from reminders.calendar.durations import duration_uses_days
from reminders.tomldir import read_toml_dir

PACKAGED_DIR = Path(__file__).with_name("default_ladders")
AUDIENCES = ("owner", "manager", "director", "finance")
ACTIONS = ("remind", "reassign")
OPERATORS = (">=", "<=", "==", "!=", ">", "<")
FILE_KEYS = {"ladder"}
LADDER_KEYS = {"id", "clock", "send_at", "level"}
LEVEL_KEYS = {"at", "audience", "class", "action", "send_at", "when"}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_AUDIENCE = re.compile(r"^(?:role|team):[A-Za-z0-9_\-]{1,40}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TOKEN = re.compile(
    r'\s*(?:(?P<num>-?\d[\d_]*(?:\.\d+)?)|(?P<str>"[^"\\]*")|(?P<op>>=|<=|==|!=|>|<)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))'
)


class LadderError(Exception):
    """The ladders cannot be used; ``problems`` lists each one (file, ladder, level, key, what)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# ---- conditions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: str
    value: Decimal | str

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        actual = attributes.get(self.field)
        if isinstance(self.value, str):
            if not isinstance(actual, str):
                return False
            return actual == self.value if self.op == "==" else actual != self.value
        number = _number(actual)
        if number is None:
            return False
        return {
            ">=": number >= self.value,
            ">": number > self.value,
            "<=": number <= self.value,
            "<": number < self.value,
            "==": number == self.value,
            "!=": number != self.value,
        }[self.op]


@dataclass(frozen=True, slots=True)
class Condition:
    """``field OP value and …``; all comparisons must hold."""

    text: str
    comparisons: tuple[Comparison, ...]

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        return all(c.holds(attributes) for c in self.comparisons)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:  # only trailing whitespace left
            break
        kind = match.lastgroup or "bad"
        yield kind, match.group(kind)
        pos = match.end()


def parse_condition(text: str) -> Condition:
    """Parse ``amount >= 500000 and stage != "won"``; ValueError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError('must be a condition like "amount >= 500000"')
    norm = unicodedata.normalize("NFKC", text).replace("“", '"').replace("”", '"')
    tokens = list(_tokens(norm))
    comparisons: list[Comparison] = []
    i = 0
    while True:
        part = tokens[i : i + 3]
        if len(part) < 3:
            raise ValueError(f"{text!r} is incomplete: expected field OP value (e.g. amount >= 500000)")
        (k1, field), (k2, op), (k3, raw) = part
        if k1 == "bad" or k2 == "bad" or k3 == "bad":
            bad = next(v for k, v in part if k == "bad")
            raise ValueError(f"{text!r}: unexpected character {bad!r}")
        if k1 != "name" or field == "and":
            raise ValueError(f"{text!r}: expected a field name, got {field!r}")
        if k2 != "op":
            raise ValueError(f"{text!r}: after {field!r} expected one of {' '.join(OPERATORS)}, got {op!r}")
        if k3 == "num":
            value: Decimal | str = Decimal(raw.replace("_", ""))
        elif k3 == "str":
            value = raw[1:-1]
            if op not in ("==", "!="):
                raise ValueError(f"{text!r}: a text value can only be compared with == or != (got {op})")
        else:
            raise ValueError(f'{text!r}: {raw!r} is not a number or a "quoted text" value')
        comparisons.append(Comparison(field, op, value))
        i += 3
        if i == len(tokens):
            return Condition(text, tuple(comparisons))
        if tokens[i] != ("name", "and"):
            raise ValueError(f"{text!r}: expected 'and' between comparisons, got {tokens[i][1]!r}")
        i += 1


# ---- ladders -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Level:
    number: int  # 1-based position in the ladder; a timer row stores the highest one handled
    at: timedelta
    audience: tuple[str, ...]
    action: str = "remind"
    card_class: str | None = None
    send_at: time | None = None
    when: Condition | None = None

    def applies(self, attributes: Mapping[str, Any] | None) -> bool:
        return self.when is None or self.when.holds(attributes or {})


@dataclass(frozen=True, slots=True)
class Ladder:
    id: str
    clock: Clock
    levels: tuple[Level, ...]
    source: str = ""

    def level(self, number: int) -> Level:
        return self.levels[number - 1]


@dataclass(frozen=True)
class Ladders:
    ladders: tuple[Ladder, ...]
    source: str = ""

    def get(self, ladder_id: str) -> Ladder:
        for ladder in self.ladders:
            if ladder.id == ladder_id:
                return ladder
        raise KeyError(ladder_id)

    def __contains__(self, ladder_id: object) -> bool:
        return any(ladder.id == ladder_id for ladder in self.ladders)

    def ids(self) -> tuple[str, ...]:
        return tuple(ladder.id for ladder in self.ladders)


def _unknown(raw: Mapping[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(raw) - allowed):
        problems.append(f"{where}: {key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _send_at(value: Any, where: str, problems: list[str]) -> time | None:
    if value is None:
        return None
    if isinstance(value, time):  # TOML local time 09:30:00
        return value.replace(microsecond=0)
    match = _HHMM.match(unicodedata.normalize("NFKC", value).strip()) if isinstance(value, str) else None
    if not match:
        problems.append(f'{where}: send_at: {value!r} is not a time "HH:MM" (e.g. "09:30")')
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _audience(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        problems.append(f"{where}: audience: missing (e.g. audience = [\"owner\"])")
        return ()
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: audience: must be a non-empty list, e.g. [\"owner\", \"manager\"]")
        return ()
    found: list[str] = []
    for i, item in enumerate(value, 1):
        if not isinstance(item, str) or not (item in AUDIENCES or _AUDIENCE.match(item)):
            problems.append(
                f"{where}: audience[{i}]: unknown audience {item!r} "
                f"(allowed: {', '.join(AUDIENCES)}, role:KEY, team:KEY)"
            )
        elif item in found:
            problems.append(f"{where}: audience[{i}]: {item!r} is listed twice")
        else:
            found.append(item)
    return tuple(found)


def _parse_level(raw: Any, number: int, clock: Clock | None, default_send_at: time | None,
                 where: str, problems: list[str]) -> Level | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table ([[ladder.level]])")
        return None
    _unknown(raw, LEVEL_KEYS, where, problems)
    before = len(problems)
    at = timedelta(0)
    if "at" not in raw:
        problems.append(f'{where}: at: missing (e.g. at = "15m")')
    else:
        try:
            at = parse_duration(raw["at"])
            if at <= timedelta(0):
                problems.append(f"{where}: at: must be more than zero")
            elif clock is Clock.BUSINESS and duration_uses_days(raw["at"]):
                problems.append(
                    f"{where}: at: {raw['at']!r} — on the business clock a 'd' would mean 24 working hours; "
                    "write hours or minutes (9 working hours a day: 3 days = \"27h\")"
                )
        except ValueError as exc:
            problems.append(f"{where}: at: {exc}")
    audience = _audience(raw.get("audience"), where, problems)
    action = raw.get("action", "remind")
    if action not in ACTIONS:
        problems.append(f"{where}: action: {action!r} is not one of {', '.join(ACTIONS)}")
    card_class = raw.get("class")
    if card_class is not None and (not isinstance(card_class, str) or not _ID.match(card_class)):
        problems.append(f"{where}: class: {card_class!r} must be a short lowercase name like \"lead\"")
    send_at = _send_at(raw.get("send_at"), where, problems) if "send_at" in raw else default_send_at
    when = None
    if "when" in raw:
        try:
            when = parse_condition(raw["when"])
        except ValueError as exc:
            problems.append(f"{where}: when: {exc}")
    if len(problems) > before:
        return None
    return Level(number, at, audience, action, card_class, send_at, when)


def _parse_ladder(raw: Any, file: str, index: int, problems: list[str]) -> Ladder | None:
    where = f"{file}: ladder {index}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table ([[ladder]])")
        return None
    ladder_id = raw.get("id")
    if not isinstance(ladder_id, str) or not _ID.match(ladder_id):
        problems.append(f"{where}: id: {'missing' if ladder_id is None else repr(ladder_id)} — "
                        "needs a lowercase id like \"lead_claim\"")
        ladder_id = None
    else:
        where = f"{file}: ladder {ladder_id}"
    _unknown(raw, LADDER_KEYS, where, problems)
    before = len(problems)
    clock: Clock | None = None
    try:
        clock = Clock(raw.get("clock"))
    except ValueError:
        problems.append(f"{where}: clock: {raw.get('clock')!r} is not one of {', '.join(c.value for c in Clock)}")
    default_send_at = _send_at(raw.get("send_at"), where, problems)
    raw_levels = raw.get("level")
    if not isinstance(raw_levels, list) or not raw_levels:
        problems.append(f"{where}: level: at least one [[ladder.level]] is needed")
        raw_levels = []
    levels: list[Level] = []
    for number, raw_level in enumerate(raw_levels, 1):
        level = _parse_level(raw_level, number, clock, default_send_at, f"{where}: level {number}", problems)
        if level is not None:
            if levels and level.at <= levels[-1].at:
                problems.append(
                    f"{where}: level {number}: at: must be later than level {levels[-1].number} "
                    "(list levels in increasing order of at)"
                )
            levels.append(level)
    if len(problems) > before or ladder_id is None or clock is None:
        return None
    return Ladder(ladder_id, clock, tuple(levels), source=file)


def parse_ladder_files(files: Sequence[tuple[str, str]], source: str = "") -> Ladders:
    """Build ladders from ``(file name, TOML text)`` pairs; raise :class:`LadderError` listing every problem."""
    problems: list[str] = []
    ladders: list[Ladder] = []
    seen: dict[str, str] = {}
    for name, text in files:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{name}: not valid TOML: {exc}")
            continue
        _unknown(data, FILE_KEYS, name, problems)
        raw_ladders = data.get("ladder", [])
        if not isinstance(raw_ladders, list):
            problems.append(f"{name}: ladder: write ladders as [[ladder]] tables")
            continue
        for index, raw in enumerate(raw_ladders, 1):
            ladder = _parse_ladder(raw, name, index, problems)
            if ladder is None:
                continue
            if ladder.id in seen:
                problems.append(f"{name}: ladder {ladder.id}: id: already defined in {seen[ladder.id]}")
                continue
            seen[ladder.id] = name
            ladders.append(ladder)
    if not problems and not ladders:
        problems.append(f"{source or 'ladders'}: no [[ladder]] found")
    if problems:
        raise LadderError(problems)
    return Ladders(tuple(ladders), source=source)


def load_ladders(directory: str | Path | None = None) -> Ladders:
    """Every ``*.toml`` of ``directory`` (default: the packaged ladders); raise :class:`LadderError`."""
    files, problems, folder = read_toml_dir(directory, PACKAGED_DIR, "ladder")
    if problems:
        raise LadderError(problems)
    return parse_ladder_files(files, source=str(folder))
