"""Domain lexicon: the TOML data sales ops edit, loaded into one immutable object.

Why a strict loader: the files are edited by people who are not programmers, so every
mistake must be reported with the file, the key and what is wrong, instead of surfacing
later as a silently missed keyword.  An optional override directory lets a deployment add
terms (lists extend, scalars override, a table with ``replace = true`` replaces) without
touching the packaged files.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

PACKAGE_DIR = Path(__file__).resolve().parent / "lexicon"
FILES = (
    "stages.toml", "concerns.toml", "cues.toml", "competitors.toml", "departments.toml", "titles.toml",
    "hospitals.toml", "products.toml", "holidays.toml", "required.toml", "actions.toml", "language.toml",
    "speech.toml",
)
NOTE_FIELDS = ("stage", "account", "contacts", "departments", "amount", "competitors", "next_action", "due")


class LexiconError(Exception):
    """A lexicon file is malformed; names the file, the dotted key and the problem."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


@dataclass(frozen=True)
class KeywordGroup:
    """One stage / concern / cue code with the surface forms that signal it."""

    code: str
    label: str
    keywords: tuple[str, ...]
    patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()          # phrases containing a keyword that do not count
    dominant: bool = False                 # stages: wins over any other stage
    negation_keeps: bool = False           # stages: "还没付款" still signals the stage
    implied_by_competitor: bool = False    # concerns: a competitor mention implies it
    competitor_before: tuple[str, ...] = ()
    competitor_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Brand:
    id: str
    name: str
    aliases: tuple[str, ...]
    origin: str
    exclude: tuple[str, ...] = ()

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True, eq=False)  # identity hash: cheap as a cache key for the compiled regex
class Holiday:
    id: str
    names: tuple[str, ...]
    periods: tuple[tuple[date, date], ...]
    lunar_new_year: bool = False


@dataclass(frozen=True)
class ActionWords:
    verbs: tuple[str, ...]
    verb_patterns: tuple[str, ...]
    not_verbs: tuple[str, ...]
    strong_past_markers: tuple[str, ...]
    continuations: tuple[str, ...]
    past_markers: tuple[str, ...]
    not_past: tuple[str, ...]
    future_markers: tuple[str, ...]
    first_person: tuple[str, ...]
    request_frames: tuple[str, ...]
    third_party_subjects: tuple[str, ...]
    speech_verbs: tuple[str, ...]


@dataclass(frozen=True)
class LanguageWords:
    fillers: tuple[str, ...]
    soft_breaks: tuple[str, ...]
    clause_starters: tuple[str, ...]
    no_split_after: tuple[str, ...]
    split_min_length: int
    negation_before: tuple[str, ...]
    negation_after: tuple[str, ...]
    negation_bridges: tuple[str, ...]
    positive_frames: tuple[str, ...]
    chatter: tuple[str, ...]


@dataclass(frozen=True, eq=False)  # holds mappings: identity hash, usable as a cache key
class HospitalRules:
    anchors: tuple[str, ...]
    short_anchor: str
    max_prefix: int
    boundary_words: frozenset[str]
    boundary_chars: str
    generic_prefixes: frozenset[str]
    aliases: Mapping[str, str]


@dataclass(frozen=True, eq=False)  # holds mappings: identity hash, usable as a cache key
class PeopleRules:
    titles: tuple[str, ...]
    guards: Mapping[str, tuple[str, ...]]
    surnames: frozenset[str]
    double_surnames: tuple[str, ...]
    blocked_bigrams: frozenset[str]
    false_contacts: frozenset[str]
    ranked_surnames: tuple[str, ...] = ()  # as listed: most frequent first (repairs misheard surnames)


@dataclass(frozen=True, eq=False)  # holds mappings: identity hash, usable as a cache key
class Lexicon:
    """Everything the extractor knows about the domain; immutable once loaded."""

    stage_order: tuple[str, ...]
    stages: tuple[KeywordGroup, ...]
    concerns: tuple[KeywordGroup, ...]
    cues: tuple[KeywordGroup, ...]
    brands: tuple[Brand, ...]
    own_brands: tuple[str, ...]
    departments: tuple[str, ...]
    department_patterns: tuple[str, ...]
    department_guards: Mapping[str, tuple[str, ...]]
    people: PeopleRules
    hospitals: HospitalRules
    product_terms: tuple[str, ...]
    product_modifiers: tuple[str, ...]
    holidays: tuple[Holiday, ...]
    required: Mapping[str, tuple[str, ...]]
    questions: Mapping[str, str]
    actions: ActionWords
    language: LanguageWords
    sources: tuple[str, ...] = field(default=())
    speech_priority: tuple[str, ...] = field(default=())

    def canonical_account(self, name: str) -> str:
        """Alias → canonical full hospital name; any other name is returned unchanged."""
        key = name.strip()
        return self.hospitals.aliases.get(key, key)

    def question_for(self, field_name: str) -> str:
        """The Chinese question the bot asks when ``field_name`` is missing."""
        return self.questions.get(field_name) or self.questions.get(field_name.split(".")[-1], "还有什么补充吗？")

    def hotwords(self) -> list[str]:
        """Terms worth boosting in speech-to-text, most useful first (the prompt keeps a prefix).

        ``speech.toml``'s priority list, then titles, departments, brands and products.
        """
        words: list[str] = [*self.speech_priority, *self.people.titles, *self.departments]
        for brand in self.brands:
            words.extend(brand.forms)
        words.extend(self.product_terms)
        return _dedupe(w for w in words if len(w) > 1 or not _is_cjk(w))

    def terms(self) -> list[str]:
        """All surface terms of the lexicon, e.g. for correcting speech transcripts."""
        words: list[str] = [*self.speech_priority]
        for group in (*self.stages, *self.concerns, *self.cues):
            words.extend(group.keywords)
        for brand in self.brands:
            words.extend(brand.forms)
        words.extend(self.departments)
        words.extend(self.people.titles)
        words.extend(self.hospitals.aliases.keys())
        words.extend(self.hospitals.aliases.values())
        words.extend(self.product_terms)
        for holiday in self.holidays:
            words.extend(holiday.names)
        return _dedupe(words)


def _dedupe(words: Any) -> list[str]:
    return list(dict.fromkeys(w for w in words if w))


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


# --------------------------------------------------------------------------- reading

class _Source:
    """Parsed data of one lexicon file (packaged, possibly merged with an override)."""

    def __init__(self, name: str, data: dict[str, Any], display: str, extra: dict[str, Any] | None,
                 extra_display: str | None) -> None:
        self.name = name
        self.data = data
        self.display = display
        self.extra = extra or {}
        self.extra_display = extra_display

    def origin(self, key: str) -> str:
        """Which file a dotted key came from (the override wins when it sets the key)."""
        node: Any = self.extra
        for part in key.split("."):
            part = part.split("[", 1)[0]
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return self.display
        return self.extra_display or self.display

    def fail(self, key: str, message: str) -> LexiconError:
        return LexiconError(self.origin(key), key, message)

    def get(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(path, "is required")
            return default
        return table[key]

    def str_list(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...,
                 regex: bool = False) -> tuple[str, ...]:
        value = self.get(table, key, path, default)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a list of strings")
        if any(not v.strip() for v in value):
            raise self.fail(path, "must not contain empty strings")
        if regex:
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise self.fail(path, f"invalid regular expression {pattern!r}: {exc}") from None
        return tuple(dict.fromkeys(value))

    def string(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...) -> str:
        value = self.get(table, key, path, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "must be a non-empty string")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, path: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def table(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...) -> dict[str, Any]:
        value = self.get(table, key, path, default)
        if not isinstance(value, dict):
            raise self.fail(path, "must be a table")
        return value

    def only(self, table: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                raise self.fail(where, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Override semantics: tables merge, lists extend, scalars replace; ``replace = true`` replaces."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and value.get("replace") is True:
            merged[key] = {k: v for k, v in value.items() if k != "replace"}
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            combined = [*merged[key], *value]
            # keyword lists are de-duplicated; other lists (holiday periods) are simply extended
            merged[key] = list(dict.fromkeys(combined)) if all(isinstance(v, str) for v in combined) else combined
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path, display: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(display, "", f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise LexiconError(display, "", f"cannot read: {exc}") from None


def _sources(extra_dir: str | Path | None) -> dict[str, _Source]:
    extra_path = Path(extra_dir) if extra_dir is not None else None
    if extra_path is not None and not extra_path.is_dir():
        raise LexiconError(str(extra_path), "", "override directory does not exist")
    if extra_path is not None:
        for unknown in sorted(p.name for p in extra_path.glob("*.toml") if p.name not in FILES):
            raise LexiconError(str(extra_path / unknown), "", f"unknown lexicon file (expected one of: {', '.join(FILES)})")
    out: dict[str, _Source] = {}
    for name in FILES:
        display = f"nlp/lexicon/{name}"
        data = _read_toml(PACKAGE_DIR / name, display)
        extra, extra_display = None, None
        if extra_path is not None and (extra_path / name).is_file():
            extra_display = str(extra_path / name)
            extra = _read_toml(extra_path / name, extra_display)
            data = _merge(data, extra)
        out[name] = _Source(name, data, display, extra, extra_display)
    return out


# --------------------------------------------------------------------------- per-file parsers

_GROUP_KEYS = {"label", "keywords", "patterns", "exclude"}


def _groups(src: _Source, root: str, extra_keys: set[str]) -> tuple[KeywordGroup, ...]:
    groups = src.table(src.data, root, root)
    out = []
    for code, body in groups.items():
        path = f"{root}.{code}"
        if not isinstance(body, dict):
            raise src.fail(path, "must be a table")
        src.only(body, _GROUP_KEYS | extra_keys, path)
        out.append(KeywordGroup(
            code=code,
            label=src.string(body, "label", f"{path}.label", code),
            keywords=src.str_list(body, "keywords", f"{path}.keywords"),
            patterns=src.str_list(body, "patterns", f"{path}.patterns", (), regex=True),
            exclude=src.str_list(body, "exclude", f"{path}.exclude", ()),
            dominant=src.boolean(body, "dominant", f"{path}.dominant"),
            negation_keeps=src.boolean(body, "negation_keeps", f"{path}.negation_keeps"),
            implied_by_competitor=src.boolean(body, "implied_by_competitor", f"{path}.implied_by_competitor"),
            competitor_before=src.str_list(body, "competitor_before", f"{path}.competitor_before", ()),
            competitor_after=src.str_list(body, "competitor_after", f"{path}.competitor_after", ()),
        ))
    return tuple(out)


def _stages(src: _Source) -> tuple[tuple[str, ...], tuple[KeywordGroup, ...]]:
    src.only(src.data, {"order", "stages"}, "")
    order = src.str_list(src.data, "order", "order")
    groups = _groups(src, "stages", {"dominant", "negation_keeps", "competitor_before", "competitor_after"})
    codes = {g.code for g in groups}
    for code in order:
        if code not in codes:
            raise src.fail("order", f"stage {code!r} has no [stages.{code}] table")
    for code in codes - set(order):
        raise src.fail(f"stages.{code}", "stage is not listed in order")
    by_code = {g.code: g for g in groups}
    return order, tuple(by_code[c] for c in order)


def _brands(src: _Source) -> tuple[tuple[Brand, ...], tuple[str, ...]]:
    src.only(src.data, {"own", "brands"}, "")
    own = src.table(src.data, "own", "own", {})
    src.only(own, {"names"}, "own")
    own_names = src.str_list(own, "names", "own.names", ())
    brands = []
    for bid, body in src.table(src.data, "brands", "brands").items():
        path = f"brands.{bid}"
        if not isinstance(body, dict):
            raise src.fail(path, "must be a table")
        src.only(body, {"name", "aliases", "origin", "exclude"}, path)
        origin = src.string(body, "origin", f"{path}.origin", "unknown")
        if origin not in {"domestic", "international", "unknown"}:
            raise src.fail(f"{path}.origin", "must be \"domestic\" or \"international\"")
        brands.append(Brand(bid, src.string(body, "name", f"{path}.name"),
                            src.str_list(body, "aliases", f"{path}.aliases", ()), origin,
                            src.str_list(body, "exclude", f"{path}.exclude", ())))
    return tuple(brands), own_names


def _people(src: _Source) -> PeopleRules:
    src.only(src.data, {"titles", "guards", "names"}, "")
    titles = src.str_list(src.data, "titles", "titles")
    guards_raw = src.table(src.data, "guards", "guards", {})
    guards = {}
    for title, chars in guards_raw.items():
        if title not in titles:
            raise src.fail(f"guards.{title}", "is not one of the titles")
        guards[title] = src.str_list(guards_raw, title, f"guards.{title}")
    names = src.table(src.data, "names", "names")
    src.only(names, {"surnames", "double_surnames", "blocked_bigrams", "false_contacts"}, "names")
    raw = src.string(names, "surnames", "names.surnames")
    surnames = frozenset(ch for ch in raw if not ch.isspace())
    if any(not _is_cjk(ch) for ch in surnames):
        raise src.fail("names.surnames", "must contain only Chinese characters")
    doubles = src.str_list(names, "double_surnames", "names.double_surnames", ())
    if any(len(d) != 2 for d in doubles):
        raise src.fail("names.double_surnames", "every double surname must have exactly two characters")
    ranked = tuple(dict.fromkeys(ch for ch in raw if not ch.isspace()))
    return PeopleRules(titles, MappingProxyType(guards), surnames, doubles,
                       frozenset(src.str_list(names, "blocked_bigrams", "names.blocked_bigrams", ())),
                       frozenset(src.str_list(names, "false_contacts", "names.false_contacts", ())),
                       ranked)


def _hospitals(src: _Source) -> HospitalRules:
    src.only(src.data, {"anchors", "short_anchor", "bare_ok", "max_prefix", "boundary_words", "boundary_chars",
                        "generic_prefixes", "aliases"}, "")
    short = src.string(src.data, "short_anchor", "short_anchor")
    try:
        re.compile(short)
    except re.error as exc:
        raise src.fail("short_anchor", f"invalid regular expression: {exc}") from None
    max_prefix = src.data.get("max_prefix", 16)
    if not isinstance(max_prefix, int) or isinstance(max_prefix, bool) or not 1 <= max_prefix <= 40:
        raise src.fail("max_prefix", "must be an integer between 1 and 40")
    aliases = src.table(src.data, "aliases", "aliases", {})
    for alias, canonical in aliases.items():
        if not isinstance(canonical, str) or not canonical.strip():
            raise src.fail(f"aliases.{alias}", "must map to a non-empty hospital name")
    return HospitalRules(
        anchors=src.str_list(src.data, "anchors", "anchors"),
        short_anchor=short,
        max_prefix=max_prefix,
        boundary_words=frozenset(src.str_list(src.data, "boundary_words", "boundary_words", ())),
        boundary_chars=src.string(src.data, "boundary_chars", "boundary_chars", " ").strip(),
        generic_prefixes=frozenset(src.str_list(src.data, "generic_prefixes", "generic_prefixes", ())),
        aliases=MappingProxyType(dict(aliases)),
    )


def _holidays(src: _Source) -> tuple[Holiday, ...]:
    src.only(src.data, {"holidays"}, "")
    out = []
    for hid, body in src.table(src.data, "holidays", "holidays", {}).items():
        path = f"holidays.{hid}"
        if not isinstance(body, dict):
            raise src.fail(path, "must be a table")
        src.only(body, {"names", "periods", "lunar_new_year"}, path)
        periods_raw = src.get(body, "periods", f"{path}.periods")
        periods = []
        if not isinstance(periods_raw, list):
            raise src.fail(f"{path}.periods", "must be a list of [first_day, last_day] date pairs")
        for i, pair in enumerate(periods_raw):
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(d, date) and not hasattr(d, "hour") for d in pair)):
                raise src.fail(f"{path}.periods[{i}]", "must be [first_day, last_day] with TOML dates like 2026-10-01")
            if pair[1] < pair[0]:
                raise src.fail(f"{path}.periods[{i}]", "last day is before first day")
            periods.append((pair[0], pair[1]))
        out.append(Holiday(hid, src.str_list(body, "names", f"{path}.names"), tuple(sorted(periods)),
                           src.boolean(body, "lunar_new_year", f"{path}.lunar_new_year")))
    return tuple(out)


def _required(src: _Source) -> tuple[Mapping[str, tuple[str, ...]], Mapping[str, str]]:
    src.only(src.data, {"required", "questions"}, "")
    req = src.table(src.data, "required", "required")
    questions = src.table(src.data, "questions", "questions")
    required = {}
    for stage, fields in req.items():
        values = src.str_list(req, stage, f"required.{stage}")
        for f in values:
            if f not in NOTE_FIELDS:
                raise src.fail(f"required.{stage}", f"unknown field {f!r} (expected one of: {', '.join(NOTE_FIELDS)})")
            if f not in questions:
                raise src.fail(f"questions.{f}", f"is required because required.{stage} lists {f!r}")
        required[stage] = values
    if "default" not in required:
        raise src.fail("required.default", "is required")
    out_q = {}
    for key in questions:
        out_q[key] = src.string(questions, key, f"questions.{key}")
    return MappingProxyType(required), MappingProxyType(out_q)


def load_lexicon(extra_dir: str | Path | None = None) -> Lexicon:
    """Load and validate the packaged lexicon, extended/overridden by ``extra_dir`` if given."""
    src = _sources(extra_dir)
    order, stages = _stages(src["stages.toml"])

    c = src["concerns.toml"]
    c.only(c.data, {"concerns"}, "")
    concerns = _groups(c, "concerns", {"implied_by_competitor", "negation_keeps"})
    q = src["cues.toml"]
    q.only(q.data, {"cues"}, "")
    cues = _groups(q, "cues", set())
    brands, own = _brands(src["competitors.toml"])

    d = src["departments.toml"]
    d.only(d.data, {"names", "patterns", "guards"}, "")
    departments = d.str_list(d.data, "names", "names")
    department_patterns = d.str_list(d.data, "patterns", "patterns", (), regex=True)
    guards_raw = d.table(d.data, "guards", "guards", {})
    department_guards = {}
    for ending in guards_raw:
        if len(ending) != 1:
            raise d.fail(f"guards.{ending}", "must be a single character (the last character of a department name)")
        department_guards[ending] = d.str_list(guards_raw, ending, f"guards.{ending}")

    p = src["products.toml"]
    p.only(p.data, {"terms", "modifiers"}, "")
    product_terms = p.str_list(p.data, "terms", "terms")
    product_modifiers = p.str_list(p.data, "modifiers", "modifiers", ())

    a = src["actions.toml"]
    action_keys = ("verbs", "verb_patterns", "not_verbs", "strong_past_markers", "continuations", "past_markers",
                   "not_past", "future_markers", "first_person", "request_frames", "third_party_subjects",
                   "speech_verbs")
    optional = {"verb_patterns", "not_verbs", "strong_past_markers", "continuations", "not_past", "speech_verbs",
                "third_party_subjects"}
    a.only(a.data, set(action_keys), "")
    actions = ActionWords(**{k: a.str_list(a.data, k, k, () if k in optional else ..., regex=k == "verb_patterns")
                             for k in action_keys})
    g = src["language.toml"]
    lang_keys = ("fillers", "soft_breaks", "clause_starters", "no_split_after", "negation_before", "negation_after",
                 "negation_bridges", "positive_frames", "chatter")
    g.only(g.data, {*lang_keys, "split_min_length"}, "")
    split_min = g.data.get("split_min_length", 14)
    if not isinstance(split_min, int) or isinstance(split_min, bool) or split_min < 4:
        raise g.fail("split_min_length", "must be an integer >= 4")
    lists = {k: g.str_list(g.data, k, k, ()) for k in lang_keys}
    language = LanguageWords(split_min_length=split_min, **lists)

    required, questions = _required(src["required.toml"])
    r = src["required.toml"]
    for stage in required:
        if stage != "default" and stage not in order:
            raise r.fail(f"required.{stage}", f"unknown stage (expected one of: default, {', '.join(order)})")

    return Lexicon(
        stage_order=order, stages=stages, concerns=concerns, cues=cues, brands=brands, own_brands=own,
        departments=departments, department_patterns=department_patterns,
        department_guards=MappingProxyType(department_guards), people=_people(src["titles.toml"]),
        hospitals=_hospitals(src["hospitals.toml"]), product_terms=product_terms,
        product_modifiers=product_modifiers, holidays=_holidays(src["holidays.toml"]), required=required,
        questions=questions, actions=actions, language=language,
        sources=tuple(s.extra_display or s.display for s in src.values()),
        speech_priority=_speech_priority(src["speech.toml"]),
    )


def _speech_priority(src: _Source) -> tuple[str, ...]:
    """An override's priority terms come first: the point of the list is its order."""
    src.only(src.data, {"priority"}, "")
    merged = src.str_list(src.data, "priority", "priority", ())
    first = src.str_list(src.extra, "priority", "priority", ()) if src.extra else ()
    return tuple(dict.fromkeys([*first, *merged]))


# --------------------------------------------------------------------------- consistency report

def check_lexicon(lex: Lexicon) -> list[str]:
    """Warnings about overlapping or conflicting entries (the lexicon still loads).

    Reported: a keyword listed under two codes of the same kind; a keyword that is part of a
    longer keyword of another code of the same kind (the longer one wins where both match);
    a brand form claimed by two brands or also used as a product/department; own brands that
    are listed as competitors; stages without a required-fields entry.
    """
    issues: list[str] = []
    for kind, groups in (("stages", lex.stages), ("concerns", lex.concerns), ("cues", lex.cues)):
        owner: dict[str, str] = {}
        for group in groups:
            for kw in group.keywords:
                if kw in owner and owner[kw] != group.code:
                    issues.append(f"{kind}: keyword {kw!r} is listed in both {owner[kw]} and {group.code}")
                owner.setdefault(kw, group.code)
        items = sorted(owner.items(), key=lambda kv: len(kv[0]))
        for i, (short, code) in enumerate(items):
            for long, other in items[i + 1:]:
                if other != code and len(long) > len(short) and short in long:
                    issues.append(f"{kind}: keyword {short!r} ({code}) is part of {long!r} ({other}); "
                                  f"where {long!r} appears it counts as {other} only")
    brand_of: dict[str, str] = {}
    for brand in lex.brands:
        for form in brand.forms:
            key = form.lower()
            if key in brand_of and brand_of[key] != brand.id:
                issues.append(f"competitors: {form!r} is claimed by brands {brand_of[key]} and {brand.id}")
            brand_of.setdefault(key, brand.id)
    others = {t: "products" for t in lex.product_terms} | {t: "departments" for t in lex.departments}
    for form, bid in brand_of.items():
        for term, where in others.items():
            if form == term.lower():
                issues.append(f"competitors: brand form {form!r} ({bid}) is also listed in {where}")
    for own in lex.own_brands:
        if own.lower() in brand_of:
            issues.append(f"competitors: own brand {own!r} is also listed as competitor {brand_of[own.lower()]} "
                          "(it will never be reported)")
    dept = set(lex.departments)
    for term in lex.product_terms:
        for d in dept:
            if term in d and term != d:
                issues.append(f"products: term {term!r} is part of department {d!r}; inside the department name "
                              "it is not reported as a product")
                break
    for stage in lex.stage_order:
        if stage not in lex.required:
            issues.append(f"required: stage {stage!r} has no entry; required.default is used")
    return issues
