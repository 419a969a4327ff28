"""Near-miss correction of lexicon terms in a transcript, by pinyin similarity.

Why: whisper base often hears a domain term right but writes a homophone it knows better
(注测证 for 注册证, 连影 for 联影, 古科 for 骨科). Hotwords in the prompt help but do not remove
these. A replacement is made only when a window of the transcript sounds like a lexicon term
(same syllables; tones and classic fuzzy pairs such as in/ing are tolerated in longer terms),
shares at least one character with it, and is not itself a common word (jieba's dictionary) — so
"大家使用" is never rewritten to "试用".
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
_FUZZY_INITIALS: Final = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS: Final = (("ing", "in"), ("eng", "en"), ("ang", "an"), ("iang", "ian"), ("uang", "uan"))
_INITIALS: Final = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q",
                    "x", "r", "z", "c", "s", "y", "w")
COMMON_WORD_FREQ: Final = 100  # jieba frequency above which a window is a real word, left alone
_jieba_lock = threading.Lock()


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


@lru_cache(maxsize=4096)
def _pinyin(text: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin  # noqa: PLC0415

    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: list(s))
    if len(syllables) != len(text):  # defensive: keep one item per character
        syllables = [lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: list(s))[0]
                     for ch in text]
    return tuple(syllables)


def _word_freq(word: str) -> int:
    try:
        import jieba  # noqa: PLC0415
    except ImportError:  # pragma: no cover - jieba is a core dependency
        return 0
    with _jieba_lock:  # jieba's lazy initialisation is not thread-safe
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
    return int(jieba.get_FREQ(word) or 0)


def _matches(window: str, window_py: Sequence[str], term: str, term_py: Sequence[str]) -> bool:
    if window == term or not set(window) & set(term):
        return False
    scores = [syllable_score(a, b) for a, b in zip(window_py, term_py)]
    if min(scores) == 0.0:
        return False
    if len(term) == 2 and min(scores) < 0.9:
        return False  # two syllables leave no room for fuzziness
    if sum(scores) / len(scores) < 0.85:
        return False
    return _word_freq(window) < COMMON_WORD_FREQ


def correct_terms(text: str, terms: Sequence[str]) -> str:
    """Replace near-homophones of ``terms`` in ``text``; longer terms win, no overlapping edits."""
    candidates = sorted({t.strip() for t in terms if 2 <= len(t.strip()) <= 8 and _CJK.match(t.strip())},
                        key=len, reverse=True)
    if not candidates or not text:
        return text
    chars = list(text)
    text_py = _pinyin(text)
    locked = [False] * len(chars)
    for term in candidates:  # exact occurrences are right by definition: protect them
        for match in re.finditer(re.escape(term), text):
            for i in range(match.start(), match.end()):
                locked[i] = True
    for term in candidates:
        term_py = _pinyin(term)
        n = len(term)
        i = 0
        while i + n <= len(chars):
            window = "".join(chars[i : i + n])
            if not any(locked[i : i + n]) and _CJK.match(window) and _matches(window, text_py[i : i + n], term, term_py):
                chars[i : i + n] = list(term)
                for j in range(i, i + n):
                    locked[j] = True
                i += n
            else:
                i += 1
    return "".join(chars)


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
