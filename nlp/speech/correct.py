"""Near-miss correction of lexicon terms in a transcript, by pinyin similarity.

Why: whisper base often hears a domain term right but writes a homophone it knows better
(注测证 for 注册证, 连影 for 联影, 古科 for 骨科). Hotwords in the prompt help but do not remove
these. A replacement is made only when a window of the transcript sounds like a lexicon term
(same syllables, by any reading of a polyphone; tones and classic fuzzy pairs such as in/ing are
tolerated in longer terms), shares at least one character with it, and is not itself a common word
(jieba's dictionary, via :mod:`nlp.speech.phonetic`) — so "大家使用" is never rewritten to "试用".

Context (:func:`correct_in_context`, terms from :func:`context_terms` over the whole lexicon, not
only the prompt's hotwords): hospital names ending in an anchor (华三医院 → 华山医院; the anchor
in the window is the context); a brand may be restored from a pure homophone sharing no
character (连营 → 联影) only within a few characters of a price/competitor word (the lexicon's
price and competitor concern keywords, 报价, 方案, 对比…); a surname is repaired only in front of a
title (留主任 → 刘主任). Every edit keeps the length and is reported, so the service can mark it
as a corrected (unsure) span.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from nlp.speech.phonetic import is_common_word, pinyin, readings

_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
_FUZZY_INITIALS: Final = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS: Final = (("ing", "in"), ("eng", "en"), ("ang", "an"), ("iang", "ian"), ("uang", "uan"))
_INITIALS: Final = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q",
                    "x", "r", "z", "c", "s", "y", "w")


def _split_syllable(syllable: str) -> tuple[str, str]:
    for initial in _INITIALS:
        if syllable.startswith(initial):
            return initial, syllable[len(initial) :]
    return "", syllable


def _fuzzy(syllable: str) -> str:
    initial, final = _split_syllable(syllable)
    for a, b in _FUZZY_INITIALS:
        initial = b if initial == a else initial
    for a, b in _FUZZY_FINALS:
        final = b if final == a else final
    return initial + final


def syllable_score(a: str, b: str) -> float:
    """1.0 same syllable+tone, 0.9 same syllable, 0.75 fuzzy-equal (l/n, in/ing…), else 0."""
    if a == b:
        return 1.0
    ta, tb = a.rstrip("012345"), b.rstrip("012345")
    if ta == tb:
        return 0.9
    if _fuzzy(ta) == _fuzzy(tb):
        return 0.75
    return 0.0


def _pinyin(text: str) -> tuple[str, ...]:
    """The most common TONE3 reading of each character (one item per character)."""
    return pinyin(text)


def _sounds(text: str) -> tuple[tuple[str, ...], ...]:
    """Every reading of each character of a lexicon term: its polyphones (重, 行, 都) match by any.

    A transcript window is compared by its most common reading only (:func:`_heard`): whisper
    writes a character for the sound it heard, and letting 的/不/差 match by their rare readings
    (di, fu, jie) rewrote 去年的价格 to 去年低价格.
    """
    return tuple(readings(ch) for ch in text)


def _heard(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple((syllable,) for syllable in pinyin(text))


def _best_score(a: Sequence[str], b: Sequence[str]) -> float:
    return max(syllable_score(x, y) for x in a for y in b)


def _matches(window: str, window_py: Sequence[Sequence[str]], term: str, term_py: Sequence[Sequence[str]]) -> bool:
    if window == term or not set(window) & set(term):
        return False
    scores = [_best_score(a, b) for a, b in zip(window_py, term_py)]
    if min(scores) == 0.0:
        return False
    if len(term) == 2 and min(scores) < 0.9:
        return False  # two syllables leave no room for fuzziness
    if sum(scores) / len(scores) < 0.85:
        return False
    return not is_common_word(window)


def correct_terms(text: str, terms: Sequence[str]) -> str:
    """Replace near-homophones of ``terms`` in ``text``; longer terms win, no overlapping edits."""
    return correct_terms_with_edits(text, terms)[0]


def correct_terms_with_edits(text: str, terms: Sequence[str]) -> tuple[str, list[tuple[int, int, str]]]:
    """:func:`correct_terms` plus the edits made: ``(start, end, heard)`` over the returned text.

    Replacements keep the length (a window of n characters becomes an n-character term), so the
    offsets are valid in both the old and the new text.
    """
    candidates = sorted({t.strip() for t in terms if 2 <= len(t.strip()) <= 8 and _CJK.match(t.strip())},
                        key=len, reverse=True)
    if not candidates or not text:
        return text, []
    chars = list(text)
    text_py = _heard(text)
    locked = [False] * len(chars)
    edits: list[tuple[int, int, str]] = []
    for term in candidates:  # exact occurrences are right by definition: protect them
        for match in re.finditer(re.escape(term), text):
            for i in range(match.start(), match.end()):
                locked[i] = True
    # every syllable must at least fuzzy-match, so only windows whose first syllable does are tried
    starts: dict[str, list[int]] = {}
    for i, sounds in enumerate(text_py):
        for key in {_fuzzy(s.rstrip("012345")) for s in sounds}:
            starts.setdefault(key, []).append(i)
    for term in candidates:
        term_py = _sounds(term)
        n = len(term)
        free_from = 0
        first = sorted({i for key in {_fuzzy(s.rstrip("012345")) for s in term_py[0]} for i in starts.get(key, ())})
        for i in first:
            if i < free_from or i + n > len(chars):
                continue
            window = "".join(chars[i : i + n])
            if not any(locked[i : i + n]) and _CJK.match(window) and _matches(window, text_py[i : i + n], term, term_py):
                chars[i : i + n] = list(term)
                edits.append((i, i + n, window))
                for j in range(i, i + n):
                    locked[j] = True
                free_from = i + n
    return "".join(chars), sorted(edits)


# Characters that commonly stand before a title without being a surname ("是主任医师",
# "新来的主任", "副主任"): never rewritten.
_NOT_BEFORE_TITLE = frozenset("是的了和跟与给对向找见问让被把说请约在这那个位新老小大副总该某各每其他她它我你您们")
_COMMON_RANK = 120  # surnames within this rank are trusted as heard


def correct_surnames(text: str, ranked_surnames: Sequence[str], titles: Sequence[str]) -> str:
    """Repair a misheard surname in front of a title: 留主任 → 刘主任, 湖主任 → 胡主任.

    Speech models pick any character with the right sound, while the people reps meet have
    common surnames. A character before a title that is not a common surname becomes the
    most common surname with the same toneless pinyin, if there is one.
    """
    if not text or not ranked_surnames or not titles:
        return text
    common = list(ranked_surnames[:_COMMON_RANK])

    def sound(ch: str) -> str:
        return _pinyin(ch)[0].rstrip("012345")

    by_sound: dict[str, str] = {}
    for surname in common:
        by_sound.setdefault(sound(surname), surname)
    title_alt = "|".join(re.escape(t) for t in sorted({t for t in titles if len(t) >= 2}, key=len, reverse=True))
    if not title_alt:
        return text

    def fix(match: re.Match[str]) -> str:
        heard = match.group(1)
        if heard in common or heard in _NOT_BEFORE_TITLE or not _CJK.match(heard):
            return match.group(0)
        better = by_sound.get(sound(heard))
        return (better or heard) + match.group(2)

    return re.sub(rf"(.)({title_alt})", fix, text)


# -- context-aware correction over the whole lexicon ----------------------------------------------

_PUNCT = "，,。.！!？?、；;：: "


@dataclass(frozen=True)
class ContextTerms:
    """Lexicon terms grouped by the context that licenses correcting to them (see module doc).

    ``terms``: every term of the lexicon (stage, concern and cue keywords, holidays, hospital
    aliases… — ``Lexicon.terms()``), corrected like hotwords: the prompt has room for few of them.

    ``hospitals``: hospital names ending in an anchor (华山医院, 市一院): corrected anywhere, since
    the anchor is part of the window. ``brands`` may also be corrected from a pure homophone (no
    shared character) when a price/competitor cue (``brand_cues``) is within ``BRAND_REACH``
    characters. ``surnames`` (most common first) and ``titles`` repair a surname before a title.
    """

    hospitals: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    brand_cues: tuple[str, ...] = ()
    surnames: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


BRAND_REACH: Final = 12
_BRAND_CUE_CONCERNS: Final = ("price", "competitor")
_EXTRA_BRAND_CUES: Final = ("价格", "报价", "方案", "对比", "比较", "品牌", "厂家", "用的是", "换成")


def context_terms(lexicon: object) -> ContextTerms:
    """Build :class:`ContextTerms` from a loaded ``nlp.lexicon.Lexicon`` (duck-typed)."""
    anchors = tuple(getattr(lexicon.hospitals, "anchors", ()))  # type: ignore[attr-defined]
    names = {*lexicon.hospitals.aliases.keys(), *lexicon.hospitals.aliases.values()}  # type: ignore[attr-defined]
    hospitals = tuple(sorted(n for n in names if _CJK.match(n) and len(n) >= 3
                             and (n.endswith(anchors) or n.endswith("院"))))
    brands = tuple(dict.fromkeys(f for b in lexicon.brands for f in b.forms if _CJK.match(f) and len(f) >= 2))  # type: ignore[attr-defined]
    cues: list[str] = list(_EXTRA_BRAND_CUES)
    for group in lexicon.concerns:  # type: ignore[attr-defined]
        if getattr(group, "code", "") in _BRAND_CUE_CONCERNS:
            cues.extend(k for k in group.keywords if _CJK.match(k))
    people = lexicon.people  # type: ignore[attr-defined]
    titles = tuple(t for t in people.titles if len(t) >= 2)
    terms = tuple(t for t in lexicon.terms() if _CJK.match(t) and 2 <= len(t) <= 8)  # type: ignore[attr-defined]
    return ContextTerms(hospitals=hospitals, brands=brands, brand_cues=tuple(dict.fromkeys(cues)),
                        surnames=tuple(people.ranked_surnames), titles=titles, terms=terms)


def _brand_homophones(text: str, brands: Sequence[str], cues: Sequence[str],
                      locked: list[bool]) -> list[tuple[int, int, str, str]]:
    """Windows that sound exactly like a brand (toneless, no shared character needed) near a cue."""
    cue_at = [m.start() for cue in cues for m in re.finditer(re.escape(cue), text)]
    if not cue_at:
        return []
    text_py = [{s.rstrip("012345") for s in sounds} for sounds in _heard(text)]
    found: list[tuple[int, int, str, str]] = []
    for brand in sorted(brands, key=len, reverse=True):
        brand_py = [{s.rstrip("012345") for s in sounds} for sounds in _sounds(brand)]
        n = len(brand)
        for i in range(len(text) - n + 1):
            if any(locked[i : i + n]) or not any(abs(c - i) <= BRAND_REACH for c in cue_at):
                continue
            window = text[i : i + n]
            if window == brand or not _CJK.match(window):
                continue
            if not all(a & b for a, b in zip(text_py[i : i + n], brand_py)):
                continue
            if is_common_word(window):
                continue
            found.append((i, i + n, window, brand))
            for j in range(i, i + n):
                locked[j] = True
    return found


# 周 (zhou1) before a weekday is often heard as 中 (zhong1): 周三前 → 中三前, 上周五 → 上中午.
_WEEKDAY_HEARD = re.compile(r"中([一二三四五午])")
_BEFORE_DEADLINE = ("前", "之前", "以前")
_DAY_WORDS = re.compile(r"(天|号|日|早|周.|拜.|期.)$")


def _weekday_edits(text: str) -> list[tuple[int, int, str, str]]:
    """``中N`` → ``周N`` (N 一…五) unless 中 ends a word (其中一台, 集中一下); ``中午`` → ``周五``
    only where noon makes no sense: after 上/下/本/这 (上中午) or before a deadline word with no day
    in front (中午前给答复, but 明天中午前 stays).
    """
    found: list[tuple[int, int, str, str]] = []
    for match in _WEEKDAY_HEARD.finditer(text):
        i, digit = match.start(), match.group(1)
        prev = text[i - 1] if i else ""
        if prev and is_common_word(prev + "中"):
            continue
        if digit == "午":
            after = text[match.end() : match.end() + 2]
            after_prev = bool(prev) and prev in "上下本这"
            deadline = after.startswith(_BEFORE_DEADLINE) and not _DAY_WORDS.search(text[max(0, i - 3) : i])
            if not (after_prev or deadline):
                continue
            digit = "五"
        found.append((i, i + 2, match.group(0), "周" + digit))
    return found


def _surname_edits(text: str, surnames: Sequence[str], titles: Sequence[str]) -> list[tuple[int, int, str, str]]:
    fixed = correct_surnames(text, surnames, titles)
    return [(i, i + 1, a, b) for i, (a, b) in enumerate(zip(text, fixed)) if a != b]


def correct_in_context(text: str, terms: Sequence[str], context: ContextTerms | None
                       ) -> tuple[str, list[tuple[int, int, str]]]:
    """:func:`correct_terms_with_edits` over ``terms`` + the context's hospitals, then brand
    homophones near price/competitor cues, then surnames before titles. All edits keep length;
    returns the text and the edits ``(start, end, heard)``.
    """
    if context is None:
        return correct_terms_with_edits(text, terms)
    text, edits = correct_terms_with_edits(text, [*terms, *context.hospitals, *context.terms])
    locked = [False] * len(text)
    for start, end, _ in edits:
        for i in range(start, end):
            locked[i] = True
    chars = list(text)
    for start, end, heard, brand in _brand_homophones(text, context.brands, context.brand_cues, locked):
        chars[start:end] = list(brand)
        edits.append((start, end, heard))
    text = "".join(chars)
    chars = list(text)
    for start, end, heard, fixed in _weekday_edits(text):
        if not any(s < end and start < e for s, e, _ in edits):
            chars[start:end] = list(fixed)
            edits.append((start, end, heard))
    text = "".join(chars)
    if context.surnames and context.titles:
        chars = list(text)
        for start, end, heard, better in _surname_edits(text, context.surnames, context.titles):
            if not any(s <= start < e for s, e, _ in edits):
                chars[start:end] = list(better)
                edits.append((start, end, heard))
        text = "".join(chars)
    return text, sorted(edits)
