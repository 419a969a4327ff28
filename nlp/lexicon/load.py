"""Parsing the lexicon files into a :class:`~nlp.lexicon.model.Lexicon`.

Why a strict loader: the files are edited by people who are not programmers, so every
mistake must be reported with the file, the key and what is wrong, instead of surfacing
later as a silently missed keyword.  An optional override directory lets a deployment add
terms (lists extend, scalars override, a table with ``replace = true`` replaces) without
touching the packaged files.
"""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from nlp.fields import REQUIRABLE
from nlp.lexicon.model import (
    ActionWords,
    Brand,
    Holiday,
    HospitalRules,
    KeywordGroup,
    LanguageWords,
    Lexicon,
    PeopleRules,
    is_cjk,
)
from nlp.lexicon.source import Source, read_sources

_GROUP_KEYS = {"label", "keywords", "patterns", "exclude"}


def _groups(src: Source, root: str, extra_keys: set[str]) -> tuple[KeywordGroup, ...]:
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


def _stages(src: Source) -> tuple[tuple[str, ...], tuple[KeywordGroup, ...]]:
    src.only(src.data, {"order", "stages"}, "")
    # ``order`` is a sequence, not a keyword list: an override that gives it means its order
    # (so a new stage can sit between two packaged ones), instead of appending to the packaged one.
    ordered_by = src.extra if src.extra is not None and "order" in src.extra else src.data
    order = src.str_list(ordered_by, "order", "order")
    groups = _groups(src, "stages", {"dominant", "negation_keeps", "competitor_before", "competitor_after"})
    codes = {g.code for g in groups}
    for code in order:
        if code not in codes:
            raise src.fail("order", f"stage {code!r} has no [stages.{code}] table")
    for code in codes - set(order):
        raise src.fail(f"stages.{code}", "stage is not listed in order")
    by_code = {g.code: g for g in groups}
    return order, tuple(by_code[c] for c in order)


def _concerns(src: Source) -> tuple[KeywordGroup, ...]:
    src.only(src.data, {"concerns"}, "")
    return _groups(src, "concerns", {"implied_by_competitor", "negation_keeps"})


def _brands(src: Source) -> tuple[tuple[Brand, ...], tuple[str, ...]]:
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


def _people(src: Source) -> PeopleRules:
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
    if any(not is_cjk(ch) for ch in surnames):
        raise src.fail("names.surnames", "must contain only Chinese characters")
    doubles = src.str_list(names, "double_surnames", "names.double_surnames", ())
    if any(len(d) != 2 for d in doubles):
        raise src.fail("names.double_surnames", "every double surname must have exactly two characters")
    ranked = tuple(dict.fromkeys(ch for ch in raw if not ch.isspace()))
    return PeopleRules(titles, MappingProxyType(guards), surnames, doubles,
                       frozenset(src.str_list(names, "blocked_bigrams", "names.blocked_bigrams", ())),
                       frozenset(src.str_list(names, "false_contacts", "names.false_contacts", ())),
                       ranked)


def _hospitals(src: Source) -> HospitalRules:
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


def _holidays(src: Source) -> tuple[Holiday, ...]:
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


def _required(src: Source) -> tuple[Mapping[str, tuple[str, ...]], Mapping[str, str]]:
    src.only(src.data, {"required", "questions"}, "")
    req = src.table(src.data, "required", "required")
    questions = src.table(src.data, "questions", "questions")
    required = {}
    for stage, fields in req.items():
        values = src.str_list(req, stage, f"required.{stage}")
        for f in values:
            if f not in REQUIRABLE:
                raise src.fail(f"required.{stage}", f"unknown field {f!r} (expected one of: {', '.join(REQUIRABLE)})")
            if f not in questions:
                raise src.fail(f"questions.{f}", f"is required because required.{stage} lists {f!r}")
        required[stage] = values
    if "default" not in required:
        raise src.fail("required.default", "is required")
    out_q = {}
    for key in questions:
        if key not in REQUIRABLE:
            raise src.fail(f"questions.{key}", f"not a field that can be asked for (expected one of: {', '.join(REQUIRABLE)})")
        out_q[key] = src.string(questions, key, f"questions.{key}")
    return MappingProxyType(required), MappingProxyType(out_q)


def load_lexicon(extra_dir: str | Path | None = None) -> Lexicon:
    """Load and validate the packaged lexicon, extended/overridden by ``extra_dir`` if given."""
    src = read_sources(extra_dir)
    order, stages = _stages(src["stages.toml"])

    concerns = _concerns(src["concerns.toml"])
    q = src["cues.toml"]
    q.only(q.data, {"cues"}, "")
    cues = _groups(q, "cues", set())
    brands, own = _brands(src["competitors.toml"])

    d = src["departments.toml"]
    d.only(d.data, {"names", "patterns", "guards", "short_forms"}, "")
    departments = d.str_list(d.data, "names", "names")
    department_patterns = d.str_list(d.data, "patterns", "patterns", (), regex=True)
    department_short_forms = d.str_list(d.data, "short_forms", "short_forms", ())
    guards_raw = d.table(d.data, "guards", "guards", {})
    department_guards = {}
    for ending in guards_raw:
        if len(ending) != 1:
            raise d.fail(f"guards.{ending}", "must be a single character (the last character of a department name)")
        department_guards[ending] = d.str_list(guards_raw, ending, f"guards.{ending}")

    p = src["products.toml"]
    p.only(p.data, {"terms", "modifiers", "lines"}, "")
    product_terms = p.str_list(p.data, "terms", "terms")
    product_modifiers = p.str_list(p.data, "modifiers", "modifiers", ())
    lines_raw = p.table(p.data, "lines", "lines", {})
    product_lines = {line: p.str_list(lines_raw, line, f"lines.{line}") for line in lines_raw}

    a = src["actions.toml"]
    action_keys = ("verbs", "verb_patterns", "not_verbs", "strong_past_markers", "continuations", "past_markers",
                   "not_past", "future_markers", "first_person", "request_frames", "third_party_subjects",
                   "speech_verbs", "appointments")
    optional = {"verb_patterns", "not_verbs", "strong_past_markers", "continuations", "not_past", "speech_verbs",
                "third_party_subjects", "appointments"}
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
    language = LanguageWords(split_min_length=split_min, **{**lists, "chatter": frozenset(lists["chatter"])})

    required, questions = _required(src["required.toml"])
    r = src["required.toml"]
    for stage in required:
        if stage != "default" and stage not in order:
            raise r.fail(f"required.{stage}", f"unknown stage (expected one of: default, {', '.join(order)})")

    places, place_readings = _places(src["places.toml"])
    return Lexicon(
        stage_order=order, stages=stages, concerns=concerns, cues=cues, brands=brands, own_brands=own,
        departments=departments, department_patterns=department_patterns,
        department_guards=MappingProxyType(department_guards),
        department_short_forms=department_short_forms, people=_people(src["titles.toml"]),
        hospitals=_hospitals(src["hospitals.toml"]), product_terms=product_terms,
        product_modifiers=product_modifiers, holidays=_holidays(src["holidays.toml"]), required=required,
        questions=questions, actions=actions, language=language,
        sources=tuple(s.extra_display or s.display for s in src.values()),
        speech_priority=_speech_priority(src["speech.toml"]),
        product_lines=MappingProxyType(product_lines),
        places=places,
        place_readings=place_readings,
    )


def _places(src: Source) -> tuple[tuple[str, ...], Mapping[str, str]]:
    src.only(src.data, {"provinces", "cities", "readings"}, "")
    names = [*src.str_list(src.data, "provinces", "provinces", ()), *src.str_list(src.data, "cities", "cities", ())]
    raw = src.table(src.data, "readings", "readings", {})
    readings = {name: src.string(raw, name, f"readings.{name}") for name in raw}
    return tuple(dict.fromkeys(names)), MappingProxyType(readings)


def _speech_priority(src: Source) -> tuple[str, ...]:
    """An override's priority terms come first: the point of the list is its order."""
    src.only(src.data, {"priority"}, "")
    merged = src.str_list(src.data, "priority", "priority", ())
    first = src.str_list(src.extra, "priority", "priority", ()) if src.extra else ()
    return tuple(dict.fromkeys([*first, *merged]))



def stage_order(extra_dir: str | Path | None = None) -> tuple[str, ...]:
    """Stage codes in funnel order, as ``stages.toml``'s ``order`` lists them.

    Why a function of its own: code that ranks stages (opportunity stage changes, reports)
    should take the order from the one file that defines the stages instead of hard-coding
    it, without loading and validating the whole lexicon. Same value as
    ``load_lexicon(extra_dir).stage_order``.
    """
    src = read_sources(extra_dir, ("stages.toml",))["stages.toml"]
    return _stages(src)[0]


def concern_codes(extra_dir: str | Path | None = None) -> tuple[str, ...]:
    """Concern codes in ``concerns.toml`` order, validated like the full load.

    Why: the playbook maps talk tracks to the concerns the extractor reports and must
    accept exactly these codes; reading the one file keeps that check cheap enough to run
    on every playbook reload. Same codes as ``load_lexicon(extra_dir).concerns``.
    """
    src = read_sources(extra_dir, ("concerns.toml",))["concerns.toml"]
    return tuple(g.code for g in _concerns(src))
