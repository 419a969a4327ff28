"""The speed-ups of nlp.text's regex builders must not change a single match.

The flat forms below are the builders as they were before the trie / shared look-behind /
first-character look-ahead; every rewritten pattern is compared with them on the corpora's texts and
on random strings made of the words' own characters (where prefixes and near-misses are dense).
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from nlp.lexicon import load_lexicon
from nlp.text import (
    _FOLDS_TO_ASCII,
    _plain_alternation,
    _trie_alternation,
    alternation,
    first_chars,
    starting_with,
)

DATA = Path(__file__).parent / "data"


def flat_alternation(words: list[str], ignore_case_ascii: bool = False) -> str:
    parts = []
    for word in sorted(set(words), key=lambda w: (-len(w), w)):
        escaped = re.escape(word)
        if word.isascii() and any(ch.isalpha() for ch in word):
            escaped = rf"(?<![A-Za-z]){escaped}(?![A-Za-z])"
            if ignore_case_ascii and len(word) >= 3:
                escaped = f"(?i:{escaped})"
        parts.append(escaped)
    return "|".join(parts) if parts else r"(?!x)x"


def corpus_texts() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def fuzz_texts(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    chars = sorted({c for w in words for c in w} | set(" aAgG1,，"))
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.6 and words:
                w = rng.choice(words)
                w = w[: rng.randint(1, len(w))] if rng.random() < 0.3 else w
                parts.append(w.swapcase() if rng.random() < 0.2 else w)
            else:
                parts.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 3))))
        out.append("".join(parts))
    return out


def same_matches(a: str, b: str, texts: list[str], flags: int = 0) -> None:
    for wrap in ("{}", "(?:{})$", "^(?:{})", "(?:{})(?:的|s)"):
        ra, rb = re.compile(wrap.format(a), flags), re.compile(wrap.format(b), flags)
        for t in texts:
            assert [m.span() for m in ra.finditer(t)] == [m.span() for m in rb.finditer(t)], (wrap, t)
            assert ra.sub("#", t) == rb.sub("#", t)


def lexicon_word_lists() -> list[tuple[list[str], bool]]:
    lex = load_lexicon()
    acts = lex.actions
    lists = [(list(acts.verbs), True), (list(acts.future_markers), True), (list(acts.appointments), True),
             (list(acts.not_verbs), False), (list(acts.past_markers), False), (list(acts.speech_verbs), False),
             (list(lex.departments), False), (list(lex.hospitals.aliases), False), (list(lex.people.titles), False),
             (list(lex.product_terms), True), ([f for b in lex.brands for f in b.forms], True),
             (list(lex.language.fillers), False), (list(lex.language.soft_breaks), False)]
    for family in (lex.stages, lex.concerns, lex.cues):
        lists.append(([k for g in family for k in g.keywords], False))
    return lists


@pytest.mark.parametrize("index", range(16))
def test_alternation_matches_the_flat_form_on_lexicon_words(index: int) -> None:
    lists = lexicon_word_lists()
    if index >= len(lists):
        pytest.skip("fewer word lists")
    words, loose = lists[index]
    texts = corpus_texts()[:400] + fuzz_texts(words, 400, index)
    same_matches(flat_alternation(words, loose), alternation(words, loose), texts)


def test_alternation_with_mixed_scripts_and_prefixes() -> None:
    cases = [
        ["CT", "CT室", "ct机", "3", "3M", "GE", "GEL", "ge医疗", "发", "发给", "发给他", "Send", "sending", "send"],
        ["ABC", "abc", "ab", "a", "甲", "甲乙", "甲乙丙", "K", "kit", "\u212ait", "ſend", "send"],
        ["报价", "报", "报价单", "价", "单", "PDF", "pdf版", "IT", "it部门"],
    ]
    for words in cases:
        for loose in (False, True):
            texts = fuzz_texts(words, 1500, len(words) + loose)
            same_matches(flat_alternation(words, loose), alternation(words, loose), texts)


def test_trie_matches_the_plain_alternation() -> None:
    rng = random.Random(7)
    alphabet = "发给他报价单过去了"
    for _ in range(50):
        words = list({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 30))})
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(100)]
        same_matches(_plain_alternation(words), _trie_alternation(words), texts)


def test_first_chars_is_a_superset_of_every_match_start() -> None:
    lex = load_lexicon()
    patterns = [p for family in (lex.stages, lex.concerns, lex.cues) for g in family for p in g.patterns]
    patterns += list(lex.actions.verb_patterns) + [r"(?i:cut\s*\d+\s*%)", r"\d+个?小时", r"(?i)budget|预算",
                                                   r"(?<!建议)(?:让|要)?(?:尽快|kit)", r"x*", r".{0,3}个点", r"[^，]价"]
    texts = corpus_texts() + ["BUDGET ſend \u212aIT 12个小时 ３小时", "cut 15% ＣＵＴ 5 %"]
    for pattern in patterns:
        rx = re.compile(pattern)
        found = first_chars(rx)
        fast = re.compile(starting_with(pattern), rx.flags)
        for t in texts:
            spans = [m.span() for m in rx.finditer(t)]
            assert spans == [m.span() for m in fast.finditer(t)], (pattern, t)
            if found is not None:
                chars, digit = found
                for s, e in spans:
                    assert s < e and (t[s] in chars or (digit and t[s].isdecimal())), (pattern, t, s)
    assert first_chars(re.compile(r"x*")) is None  # may match empty: must run everywhere
    assert first_chars(re.compile(r".{0,3}个点")) is None


def test_ignore_case_folds_to_ascii_are_all_known() -> None:
    rx = re.compile("[a-z]", re.IGNORECASE)
    folds = {chr(c) for c in range(0x80, 0x110000) if rx.match(chr(c))}
    assert folds <= _FOLDS_TO_ASCII
