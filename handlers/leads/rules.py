"""Lead routing rules: the TOML sales ops edit, loaded strictly and checked against the org.

Two steps, kept apart like the org import:

* :func:`load_rules` / :func:`parse_rules` check the *shape* of the file (types, unknown
  keys, duplicate ids) and raise :class:`RulesError` listing every problem as
  ``file: key: problem``, so one edit-check cycle fixes them all;
* :func:`check` checks the *meaning* against the organisation (unknown or inactive reps,
  pools that do not exist, fallback cycles, a missing catch-all, rules that can never
  match).  It returns problems instead of raising because some are warnings, and because
  the org changes without the rules file changing.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.leads.intake import (
    CANONICAL_GRADES,
    LeadInput,
    normalize_grade,
    normalize_region,
)

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.toml"
STRATEGIES = ("weighted_rr", "least_load")
MATCH_FIELDS = ("region", "product_line", "grade")
KEY_FIELDS = ("hospital", "phone", "department", "contact", "external_id")
LEAD_FIELDS = tuple(f for f in LeadInput.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class RuleProblem:
    file: str
    key: str
    problem: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.problem}"


class RulesError(Exception):
    """The rules file is malformed; ``problems`` names every file/key/problem found."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    max_offers: int = 3
    claim_minutes: int = 15
    reassign_minutes: int = 120
    required: tuple[str, ...] = ("hospital", "phone")
    duplicate_keys: tuple[tuple[str, ...], ...] = (("hospital", "phone"), ("hospital", "department", "contact"))
    duplicate_window_days: int = 90
    max_hits: int = 20


@dataclass(frozen=True, slots=True)
class Member:
    """A rep in a pool. Caps of ``None`` mean "no pool cap" (the org capacity still applies)."""

    rep: str
    weight: int = 1
    open_cap: int | None = None
    daily_cap: int | None = None


@dataclass(frozen=True, slots=True)
class Pool:
    id: str
    strategy: str
    members: tuple[Member, ...]
    fallback: str | None = None

    def member(self, rep: str) -> Member | None:
        return next((m for m in self.members if m.rep == rep), None)


@dataclass(frozen=True, slots=True)
class Rule:
    """``when`` maps a lead field to the accepted values (any of); empty means catch-all.

    Values are stored normalised (region and grade canonical, text folded) so matching is a
    set lookup.
    """

    id: str
    pool: str
    when: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def matches(self, lead: LeadInput) -> bool:
        """A lead without the attribute never matches a non-empty condition."""
        for name, accepted in self.when.items():
            value = getattr(lead, name)
            if not value or match_value(name, value) not in accepted:
                return False
        return True

    def covers(self, other: Rule) -> bool:
        """True when every lead ``other`` matches is matched by this rule too."""
        return all(name in other.when and other.when[name] <= accepted for name, accepted in self.when.items())


@dataclass(frozen=True, slots=True)
class Rules:
    settings: Settings
    pools: Mapping[str, Pool]
    rules: tuple[Rule, ...]
    source: str = "<rules>"

    def first_match(self, lead: LeadInput) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(lead)), None)


def match_value(name: str, value: str) -> str:
    """The form both rules and leads are compared in (case, width and spelling folded)."""
    if name == "grade":
        value = normalize_grade(value)
    elif name == "region":
        value = normalize_region(value)
    return unicodedata.normalize("NFKC", value).strip().casefold()


# ------------------------------------------------------------------ loading

def load_rules(path: str | Path = DEFAULT_RULES) -> Rules:
    file = Path(path)
    try:
        content = file.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([RuleProblem(str(file), "", f"cannot read: {exc}")]) from None
    return parse_rules(content, str(file))


def parse_rules(content: str, source: str = "<rules>") -> Rules:
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError([RuleProblem(source, "", f"not valid TOML: {exc}")]) from None
    reader = _Reader(source)
    reader.only(data, {"settings", "pool", "rule"}, "")
    settings = _settings(reader, data.get("settings", {}))
    pools = _pools(reader, data.get("pool", []))
    rules = _rules(reader, data.get("rule", []))
    if reader.problems:
        raise RulesError(reader.problems)
    return Rules(settings, pools, rules, source)


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[RuleProblem] = []

    def fail(self, key: str, problem: str) -> None:
        self.problems.append(RuleProblem(self.source, key, problem))

    def only(self, table: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def integer(self, table: Mapping[str, Any], key: str, path: str, default: int | None, minimum: int) -> int | None:
        value = table.get(key, default)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(f"{path}.{key}", f"must be a whole number >= {minimum} (got {value!r})")
            return default
        return value

    def text(self, table: Mapping[str, Any], key: str, path: str, required: bool = True) -> str:
        value = table.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{path}.{key}", "is required" if value is None else "must be non-empty text")
            return ""
        return value.strip()

    def names(self, value: Any, path: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, "must be a list of field names")
            return ()
        for name in value:
            if name not in allowed:
                self.fail(path, f"{name!r} is not one of: {', '.join(allowed)}")
        return tuple(dict.fromkeys(v for v in value if v in allowed))


def _settings(reader: _Reader, raw: Any) -> Settings:
    if not isinstance(raw, dict):
        reader.fail("settings", "must be a table")
        return Settings()
    reader.only(raw, set(Settings.__dataclass_fields__), "settings")
    d = Settings()
    keys = d.duplicate_keys
    if "duplicate_keys" in raw:
        value = raw["duplicate_keys"]
        if not isinstance(value, list):
            reader.fail("settings.duplicate_keys", "must be a list of lists of field names")
            value = []
        keys = tuple(reader.names(k, f"settings.duplicate_keys[{i}]", KEY_FIELDS) for i, k in enumerate(value))
        for i, key in enumerate(keys):
            if set(key) <= {"hospital"}:
                reader.fail(f"settings.duplicate_keys[{i}]", "a key needs a field besides hospital (a hospital alone never identifies a lead)")
    return Settings(
        max_offers=reader.integer(raw, "max_offers", "settings", d.max_offers, 1) or d.max_offers,
        claim_minutes=reader.integer(raw, "claim_minutes", "settings", d.claim_minutes, 1) or d.claim_minutes,
        reassign_minutes=reader.integer(raw, "reassign_minutes", "settings", d.reassign_minutes, 1) or d.reassign_minutes,
        required=reader.names(raw["required"], "settings.required", LEAD_FIELDS) if "required" in raw else d.required,
        duplicate_keys=tuple(k for k in keys if set(k) - {"hospital"}),
        duplicate_window_days=reader.integer(raw, "duplicate_window_days", "settings", d.duplicate_window_days, 1)
        or d.duplicate_window_days,
        max_hits=reader.integer(raw, "max_hits", "settings", d.max_hits, 1) or d.max_hits,
    )


def _pools(reader: _Reader, raw: Any) -> dict[str, Pool]:
    if not isinstance(raw, list):
        reader.fail("pool", "must be an array of tables ([[pool]])")
        return {}
    pools: dict[str, Pool] = {}
    for i, entry in enumerate(raw):
        path = f"pool[{i}]"
        if not isinstance(entry, dict):
            reader.fail(path, "must be a table")
            continue
        reader.only(entry, {"id", "strategy", "fallback", "members"}, path)
        pool_id = reader.text(entry, "id", path)
        strategy = entry.get("strategy", "weighted_rr")
        if strategy not in STRATEGIES:
            reader.fail(f"{path}.strategy", f"{strategy!r} is not one of: {', '.join(STRATEGIES)}")
        fallback = reader.text(entry, "fallback", path, required=False) or None
        if fallback is not None and fallback == pool_id:
            reader.fail(f"{path}.fallback", "a pool cannot fall back to itself")
        members = _members(reader, entry.get("members", []), path)
        if pool_id in pools:
            reader.fail(f"{path}.id", f"pool {pool_id!r} is defined more than once")
        if pool_id:
            pools[pool_id] = Pool(pool_id, str(strategy), members, fallback)
    return pools


def _members(reader: _Reader, raw: Any, path: str) -> tuple[Member, ...]:
    if not isinstance(raw, list):
        reader.fail(f"{path}.members", "must be a list of {rep = ..., weight = ...} tables or rep keys")
        return ()
    members: list[Member] = []
    for j, entry in enumerate(raw):
        where = f"{path}.members[{j}]"
        if isinstance(entry, str):
            entry = {"rep": entry}
        if not isinstance(entry, dict):
            reader.fail(where, "must be a table or a rep key")
            continue
        reader.only(entry, {"rep", "weight", "open_cap", "daily_cap"}, where)
        rep = reader.text(entry, "rep", where)
        if rep and any(m.rep == rep for m in members):
            reader.fail(f"{where}.rep", f"{rep!r} is listed twice in this pool")
            continue
        members.append(Member(
            rep=rep,
            weight=reader.integer(entry, "weight", where, 1, 1) or 1,
            open_cap=reader.integer(entry, "open_cap", where, None, 0),
            daily_cap=reader.integer(entry, "daily_cap", where, None, 0),
        ))
    return tuple(members)


def _rules(reader: _Reader, raw: Any) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        reader.fail("rule", "must be an array of tables ([[rule]])")
        return ()
    rules: list[Rule] = []
    for i, entry in enumerate(raw):
        path = f"rule[{i}]"
        if not isinstance(entry, dict):
            reader.fail(path, "must be a table")
            continue
        reader.only(entry, {"id", "when", "pool"}, path)
        rule_id = reader.text(entry, "id", path)
        if rule_id and any(r.id == rule_id for r in rules):
            reader.fail(f"{path}.id", f"rule {rule_id!r} is defined more than once")
        when_raw = entry.get("when")
        if not isinstance(when_raw, dict):
            reader.fail(f"{path}.when", "is required (use when = {} for the catch-all)" if when_raw is None else "must be a table")
            when_raw = {}
        reader.only(when_raw, set(MATCH_FIELDS), f"{path}.when")
        when: dict[str, frozenset[str]] = {}
        for name in MATCH_FIELDS:
            if name not in when_raw:
                continue
            value = when_raw[name]
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
                reader.fail(f"{path}.when.{name}", "must be text or a non-empty list of text")
                continue
            when[name] = frozenset(match_value(name, v) for v in values)
        rules.append(Rule(rule_id, reader.text(entry, "pool", path), when))
    return tuple(rules)


# ------------------------------------------------------------------ checking against the org

def known_reps(org_people: Any) -> dict[str, bool]:
    """rep key → active, from a dict of key → active, a set of keys (all active), or people.

    People may be anything with ``key`` and ``active`` (``storage.org.PersonSpec``,
    ``storage.models.Person``) so the CLI and the service pass what they already hold.
    """
    if isinstance(org_people, Mapping):
        return {str(k): bool(getattr(v, "active", v)) for k, v in org_people.items()}
    reps: dict[str, bool] = {}
    for person in org_people:
        if isinstance(person, str):
            reps[person] = True
        else:
            reps[person.key] = bool(getattr(person, "active", True))
    return reps


def check(rules: Rules, org_people: Any) -> list[RuleProblem]:
    """Problems that make routing wrong or surprising; errors first, then warnings."""
    reps = known_reps(org_people)
    src = rules.source
    problems: list[RuleProblem] = []
    for pool in rules.pools.values():
        for member in pool.members:
            if member.rep not in reps:
                problems.append(RuleProblem(src, f"pool {pool.id}", f"rep {member.rep!r} is not a person in the org"))
            elif not reps[member.rep]:
                problems.append(RuleProblem(src, f"pool {pool.id}", f"rep {member.rep!r} is inactive and will never get a lead", "warning"))
        if pool.fallback is not None and pool.fallback not in rules.pools:
            problems.append(RuleProblem(src, f"pool {pool.id}", f"fallback {pool.fallback!r} is not a defined pool"))
        if not pool.members and pool.fallback is None:
            problems.append(RuleProblem(src, f"pool {pool.id}", "has no members and no fallback: every lead goes to the manager queue", "warning"))
    problems.extend(_cycles(rules))
    for rule in rules.rules:
        if rule.pool not in rules.pools:
            problems.append(RuleProblem(src, f"rule {rule.id}", f"pool {rule.pool!r} is not a defined pool"))
        grades = rule.when.get("grade", frozenset())
        odd = sorted(g for g in grades if g not in {c.casefold() for c in CANONICAL_GRADES})
        if odd:
            problems.append(RuleProblem(src, f"rule {rule.id}", f"grade {odd} is not a known hospital grade (三甲, 三级, 二甲 …)", "warning"))
    if not any(not rule.when for rule in rules.rules):
        problems.append(RuleProblem(src, "rule", "no catch-all rule (when = {}): a lead matching no rule would not be routed"))
    problems.extend(_shadowed(rules))
    return sorted(problems, key=lambda p: p.severity != "error")


def _cycles(rules: Rules) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    reported: set[frozenset[str]] = set()
    for start in rules.pools:
        chain: list[str] = []
        current: str | None = start
        while current is not None and current in rules.pools and current not in chain:
            chain.append(current)
            current = rules.pools[current].fallback
        if current is not None and current in chain:
            cycle = chain[chain.index(current):]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                loop = " → ".join([*cycle, current])
                problems.append(RuleProblem(rules.source, f"pool {current}", f"fallback cycle {loop}"))
    return problems


def _shadowed(rules: Rules) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    for j, later in enumerate(rules.rules):
        earlier = next((r for r in rules.rules[:j] if r.covers(later)), None)
        if earlier is not None:
            problems.append(RuleProblem(rules.source, f"rule {later.id}",
                                        f"is never used: earlier rule {earlier.id!r} matches every lead it matches"))
    return problems
