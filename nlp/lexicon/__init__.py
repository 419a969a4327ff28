"""Domain lexicon: the TOML data sales ops edit (``data/*.toml``), loaded into one immutable object.

The package splits what the lexicon *is* (:mod:`.model`), how files are read and layered
with an override directory (:mod:`.source`), how they are parsed and validated
(:mod:`.load`) and the consistency report (:mod:`.check`). Callers import from here, so
the split stays an internal matter.
"""
from __future__ import annotations

from nlp.lexicon.check import check_lexicon
from nlp.lexicon.load import concern_codes, load_lexicon, stage_order
from nlp.lexicon.model import (
    ActionWords,
    Brand,
    Holiday,
    HospitalRules,
    KeywordGroup,
    LanguageWords,
    Lexicon,
    PeopleRules,
)
from nlp.lexicon.source import DATA_DIR, FILES, LexiconError

__all__ = [
    "DATA_DIR",
    "FILES",
    "ActionWords",
    "Brand",
    "Holiday",
    "HospitalRules",
    "KeywordGroup",
    "LanguageWords",
    "Lexicon",
    "LexiconError",
    "PeopleRules",
    "check_lexicon",
    "concern_codes",
    "load_lexicon",
    "stage_order",
]
