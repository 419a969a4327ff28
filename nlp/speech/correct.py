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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from nlp.speech.phonetic import is_common_word, pinyin, readings, word_readings

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
    places: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    # each place's reading (one TONE3 syllable per character), as the place is read
    place_sounds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # places, the hospital-type word before 医院, date homophones and 钱 → 前 (issue 16, round 4)
    names_and_dates: bool = False


BRAND_REACH: Final = 12
_BRAND_CUE_CONCERNS: Final = ("price", "competitor")
_EXTRA_BRAND_CUES: Final = ("价格", "报价", "方案", "对比", "比较", "品牌", "厂家", "用的是", "换成")


def context_terms(lexicon: object, names_and_dates: bool = True) -> ContextTerms:
    """Build :class:`ContextTerms` from a loaded ``nlp.lexicon.Lexicon`` (duck-typed).

    ``names_and_dates=False`` leaves out places, hospital and date words (the previous behaviour).
    """
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
    base = ContextTerms(hospitals=hospitals, brands=brands, brand_cues=tuple(dict.fromkeys(cues)),
                        surnames=tuple(people.ranked_surnames), titles=titles, terms=terms)
    if not names_and_dates:
        return base
    places = tuple(p for p in getattr(lexicon, "places", ()) if _CJK.match(p) and 2 <= len(p) <= 4)
    holidays = (n for h in lexicon.holidays for n in h.names)  # type: ignore[attr-defined]
    return replace(base, terms=(*terms, *_HOSPITAL_WORDS, *DATE_WORDS), places=places,
                   place_sounds=word_readings(places, getattr(lexicon, "place_readings", None)) if places else {},
                   dates=tuple(dict.fromkeys([*DATE_WORDS, *holidays])), names_and_dates=True)


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


# -- place names at the head of a hospital name ---------------------------------------------------

# Words hospital names are built from: corrected like lexicon terms (副属医院 → 附属医院).
# Not 人民/中心/中医院…: an exact term is protected from longer corrections (是人民医院 → 市人民医院),
# and 中医院 is one fuzzy syllable from 总医院.
# The numbered short forms (医副院 → 一附院: 一 is heard as 医 before 院 all the time).
_HOSPITAL_WORDS: Final = ("附属", "医学院", "医科大学", "妇幼保健院",
                          *(f"{n}附院" for n in "一二三"), *(f"附{n}院" for n in "一二三"))
# What follows a place at the head of a hospital name: 省/市/县/区, or the name's next word.
_PLACE_SUFFIX: Final = "省市县区"
_NAME_NEXT = re.compile(r"(?:第[一二三四五六七八九十]|[一二三四五六七八九]院|[一二三四五六七八九]附院|附[属一二三]|人民|中心|"
                        r"中医|妇幼|大学|学院|医学院|医科|医院)")
# ... and within a few characters after it, a sign that a hospital is being named.
_HOSPITAL_SIGN = re.compile(r"医院|院|妇幼|保健|大学|学院|医科")
_SIGN_REACH: Final = 12
# 市 (shi4) is often written as another shi: 南宁是第二人民医院.
_SHI: Final = frozenset("是事式室试时十使实世势示视适")


def _toneless(syllables: Sequence[str]) -> tuple[str, ...]:
    return tuple(s.rstrip("012345") for s in syllables)


_PLACE_MIN: Final = 0.85  # mean syllable score, as for terms (one fuzzy syllable of two is too loose)


def _place_score(heard: Sequence[Sequence[str]], place_sounds: Sequence[str]) -> float:
    """Mean syllable score (0 when any syllable does not at least fuzzy-match, or the mean is low)."""
    scores = [_best_score(h, (sound,)) for h, sound in zip(heard, place_sounds)]
    mean = sum(scores) / len(scores)
    return 0.0 if min(scores) < 0.75 or mean < _PLACE_MIN else mean


def _place_edits(text: str, places: Mapping[str, Sequence[str]],
                 locked: list[bool]) -> list[tuple[int, int, str, str]]:
    """A place heard as a homophone where a hospital name follows: 临疑市人民医院 → 临沂市人民医院,
    长周二院 → 常州二院, 男您是第二人民医院 → 南宁市第二人民医院 (市 heard as 是, mended with it).

    Why only there: city names are short and sound like everyday words (数千, 无辜, 期近); in
    front of 市/县 + a hospital word, or directly before 第N/人民/中心/医院…, a place is what
    the rep said. Two places that sound alike (泰州/台州) are decided by tones and shared
    characters; a tie is left as heard. A window that already is a place is left alone, and so is
    a common word unless 市/县/省/区 follows it (东方医院 is not 东莞医院).
    """
    if not places or not text:
        return []
    names = set(places)
    sounds = places
    by_first: dict[str, list[str]] = {}
    for place, sound in places.items():
        by_first.setdefault(_fuzzy(sound[0].rstrip("012345")), []).append(place)
    heard = _sounds(text)  # every reading: 长周 is chang zhou as much as zhang zhou (tones decide)
    found: list[tuple[int, int, str, str]] = []
    i = 0
    while i < len(text):
        best: tuple[float, int, str, int] | None = None  # score, shared characters, place, extra (是→市)
        tied = False
        keys = {_fuzzy(r.rstrip("012345")) for r in heard[i]}
        for place in dict.fromkeys(p for key in keys for p in by_first.get(key, ())):
            n = len(place)
            window = text[i : i + n]
            if len(window) < n or any(locked[i : i + n]) or not _CJK.match(window) or window in names:
                continue
            after = text[i + n :]
            if after[:1] in _PLACE_SUFFIX and _HOSPITAL_SIGN.search(after[1 : 1 + _SIGN_REACH]):
                extra = 0
            elif after[:1] in _SHI and not locked[i + n] and _HOSPITAL_SIGN.search(after[1 : 1 + _SIGN_REACH]):
                extra = 1
            elif _NAME_NEXT.match(after) and not is_common_word(window):
                extra = 0
            else:
                continue
            score = _place_score(heard[i : i + n], sounds[place])
            if score == 0.0:
                continue
            candidate = (score, len(set(window) & set(place)), place, extra)
            if best is None or candidate[:2] > best[:2] or (candidate[:2] == best[:2] and len(place) > len(best[2])):
                best, tied = candidate, False
            elif candidate[:2] == best[:2] and len(place) == len(best[2]):
                tied = True
        if best is None or tied:
            i += 1
            continue
        _score, _shared, place, extra = best
        end = i + len(place) + extra
        found.append((i, end, text[i:end], place + ("市" if extra else "")))
        for j in range(i, end):
            locked[j] = True
        i = end
    return found


def _city_shi_edits(text: str, places: Sequence[str], locked: list[bool]) -> list[tuple[int, int, str, str]]:
    """A place heard right but its 市 as another shi: 泰州是人民医院 → 泰州市人民医院."""
    found: list[tuple[int, int, str, str]] = []
    for place in sorted(places, key=len, reverse=True):
        for match in re.finditer(re.escape(place), text):
            at = match.end()
            if (at < len(text) and text[at] in _SHI and not locked[at]
                    and _HOSPITAL_SIGN.search(text[at + 1 : at + 1 + _SIGN_REACH])):
                found.append((at, at + 1, text[at], "市"))
                locked[at] = True
    return found


# The word between a place or number and 医院 in most hospital names (市第二人民医院, 县中医医院).
# With how much more often it names a hospital than the rest (a prior added to the sound score):
# most city and county hospitals are 人民医院, then 中心/中医.
_SLOT_PRIOR: Final = {"人民": 0.1, "中心": 0.05, "中医": 0.05}
_SLOT_WORDS: Final = ("人民", "中心", "中医", "附属", "妇幼", "儿童", "肿瘤", "口腔", "眼科", "骨科", "胸科", "职工",
                      "精神", "传染", "康复", "中西")
_SLOT = re.compile(r"(?:(?<=[市县区省州])|(?<=第[一二三四五六七八九十]))([\u4e00-\u9fff]{2})(?=医院)")
_GROUPS: Final = ("bpmf", "dtnl", "gkh", "jqx", ("zh", "ch", "sh", "r"), "zcs", ("y", "w", ""))
_SLOT_MIN: Final = 0.6
_SLOT_MARGIN: Final = 0.15


# r said the way many speakers say it, as y or l (人 yín, 热 lè): near, like same-place initials.
_NEAR_INITIALS: Final = frozenset({("r", "y"), ("y", "r"), ("r", "l"), ("l", "r")})


def _initial_group(initial: str) -> int:
    return next((k for k, group in enumerate(_GROUPS) if initial in group), -1)


def _loose(a: str, b: str) -> float:
    """How alike two toneless syllables sound, 0–1: initial and final half each; near sounds count half."""
    (ia, fa), (ib, fb) = _split_syllable(a), _split_syllable(b)
    if ia == ib:
        initial = 1.0
    elif _fuzzy(ia) == _fuzzy(ib):
        initial = 0.75
    elif _initial_group(ia) == _initial_group(ib) or (ia, ib) in _NEAR_INITIALS:
        initial = 0.4
    else:
        initial = 0.0
    if fa == fb:
        final = 1.0
    elif _fuzzy("x" + fa) == _fuzzy("x" + fb):
        final = 0.75
    elif fa.rstrip("ng") == fb.rstrip("ng") or fa[:1] == fb[:1] or (fa[-1:] == fb[-1:] == "n"):
        final = 0.5
    else:
        final = 0.0
    return (initial + final) / 2


def _slot_edits(text: str, locked: list[bool]) -> list[tuple[int, int, str, str]]:
    """The word before 医院 after 市/县/第N, heard as a non-word: 第二眼迷医院 → 第二人民医院.

    Why a looser match than anywhere else: that slot holds one of a handful of words, so the
    nearest of them (by initials and finals, :func:`_loose`) is a far better guess than a
    non-word — but only when it is clearly nearest (``_SLOT_MARGIN``) and near enough
    (``_SLOT_MIN``). Every such edit is a guess the card asks about.
    """
    found: list[tuple[int, int, str, str]] = []
    for match in _SLOT.finditer(text):
        heard = match.group(1)
        start, end = match.span(1)
        if heard in _SLOT_WORDS or any(locked[start:end]) or is_common_word(heard):
            continue
        heard_py = _toneless(pinyin(heard))
        scored = sorted(((sum(_loose(a, b) for a, b in zip(heard_py, _toneless(pinyin(word)))) / 2
                          + _SLOT_PRIOR.get(word, 0.0), word) for word in _SLOT_WORDS), reverse=True)
        (best, word), (second, _) = scored[0], scored[1]
        if best >= _SLOT_MIN and best - second >= _SLOT_MARGIN:
            found.append((start, end, heard, word))
            for j in range(start, end):
                locked[j] = True
    return found


# 周 (zhou1) before a weekday is often heard as 中 (zhong1): 周三前 → 中三前, 上周五 → 上中午.
_WEEKDAY_HEARD = re.compile(r"中([一二三四五午])")
_BEFORE_DEADLINE = ("前", "之前", "以前")
_DAY_WORDS = re.compile(r"(天|号|日|早|周.|拜.|期.)$")


# Date words: corrected like lexicon terms (离拜一 → 礼拜一); the two-character ones also from a
# pure homophone that is not a word (原蛋前 → 元旦前), holidays' names included (ContextTerms.dates).
# Not 月底/年底 (底 also reads de5: 去年的价格 → 去年底价格) nor 上午/中午/下午 (中五前 is 周五前).
DATE_WORDS: Final = (*(f"{w}{d}" for w in ("礼拜", "星期") for d in "一二三四五六天日"), "周末", "月初", "年初",
                     "节后", "节前", "下周", "本周", "这周", "明早")
# 前 (qian2) heard as 钱 right after a day: 周三钱给答复 → 周三前. Only before a pause or a
# deliverable verb: "下周一钱到账" (the money arrives on Monday) stays.
_DEADLINE_HEARD = re.compile(r"(?:周[一二三四五六日天末]|礼拜[一二三四五六日天]|星期[一二三四五六日天]|[月年]底|[月年]初|"
                             r"节[前后]|[0-9一二三四五六七八九十]号|[明后今]天|下班|中午|元旦|春节|国庆|月中)(钱)"
                             r"(?=$|[，,。.！!？?、；;\s]|给|把|发|交|报|送|提交|完成|回复|答复|搞定|准备|出|要|必须)")


def _date_homophones(text: str, dates: Sequence[str], locked: list[bool]) -> list[tuple[int, int, str, str]]:
    """Two-character date words heard as a non-word that sounds exactly alike (toneless)."""
    found: list[tuple[int, int, str, str]] = []
    sounds = {d: _toneless(pinyin(d)) for d in dates if len(d) == 2 and _CJK.match(d)}
    heard = _toneless(pinyin(text))
    for i in range(len(text) - 1):
        window = text[i : i + 2]
        if any(locked[i : i + 2]) or window in sounds or not _CJK.match(window) or is_common_word(window):
            continue
        match = [d for d, py in sounds.items() if py == heard[i : i + 2]]
        if len(match) == 1:
            found.append((i, i + 2, window, match[0]))
            locked[i] = locked[i + 1] = True
    chars = list(text)
    for start, end, _heard, word in found:
        chars[start:end] = list(word)
    for m in _DEADLINE_HEARD.finditer("".join(chars)):  # 原蛋钱 → 元旦钱 → 元旦前
        if not locked[m.start(1)]:
            found.append((m.start(1), m.end(1), "钱", "前"))
            locked[m.start(1)] = True
    return found


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
    """:func:`correct_terms_with_edits` over ``terms`` + the context's hospitals and terms, then brand
    homophones near price/competitor cues and places at the head of a hospital name, then 周N heard
    as 中N, then surnames before titles. All edits keep length;
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
    if context.names_and_dates:
        for start, end, heard, place in [*_place_edits(text, context.place_sounds, locked),
                                         *_city_shi_edits(text, context.places, locked)]:
            chars[start:end] = list(place)
            edits.append((start, end, heard))
    text = "".join(chars)
    if context.names_and_dates:
        chars = list(text)
        for start, end, heard, word in [*_slot_edits(text, locked), *_date_homophones(text, context.dates, locked)]:
            chars[start:end] = list(word)
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
