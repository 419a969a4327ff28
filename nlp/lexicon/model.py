"""What the lexicon holds: immutable dataclasses the extractor reads, and nothing that parses.

Kept apart from the loader so code that only consumes a lexicon (the extractor, speech
correction, tests building a small one) does not depend on TOML parsing or file layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping


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
    appointments: tuple[str, ...] = ()  # meeting nouns of a verbless appointment note ("明天十点 设备科 答疑")


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
    chatter: frozenset[str]  # only ever asked "is this one of them" (per message, in nlp and the notes feature)


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

    stage_order: tuple[str, ...]  # stage codes in funnel order: stages.toml's `order` list
    stages: tuple[KeywordGroup, ...]
    concerns: tuple[KeywordGroup, ...]
    cues: tuple[KeywordGroup, ...]
    brands: tuple[Brand, ...]
    own_brands: tuple[str, ...]
    departments: tuple[str, ...]
    department_patterns: tuple[str, ...]
    department_guards: Mapping[str, tuple[str, ...]]
    department_short_forms: tuple[str, ...]
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
    # product line (as on a person: "心血管") → the products reps of that line name most
    product_lines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # provinces and cities without 省/市 (places.toml): speech correction of hospital names
    places: tuple[str, ...] = field(default=())
    place_readings: Mapping[str, str] = field(default_factory=dict)  # "长治" → "chang2 zhi4"

    def canonical_brand(self, name: str) -> str:
        """Any surface form of a brand ("Medtronic", "波科", "GE医疗") → the display name the card shows
        ("美敦力", "波士顿科学", "GE"); an unknown name is returned unchanged.  The extract contract
        keeps names as written; cards and storage call this."""
        key = name.strip()
        low = key.lower()
        for brand in self.brands:
            if any(form.lower() == low for form in brand.forms):
                return brand.name
        return key

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
        return _dedupe(w for w in words if len(w) > 1 or not is_cjk(w))

    def line_products(self, lines: Any) -> list[str]:
        """The products of these product lines, in the lines' order (unknown lines name nothing)."""
        return _dedupe(term for line in lines for term in self.product_lines.get(str(line).strip(), ()))

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


def is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)

