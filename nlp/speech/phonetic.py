"""Per-character pinyin and a common-word check for term correction, small enough to keep loaded.

Why not ``pypinyin.lazy_pinyin`` and jieba's global dictionary (what correction used before):
importing pypinyin loads its phrase dictionary and segmenter (~56 MB resident) and
``jieba.initialize()`` builds a prefix dictionary of 350 000 words (~71 MB), both kept for the
life of the bot although correction only ever asks "how does this character sound?" and "is this
2–8 character window a common word?". Here both come from the same data files, read once:

- :func:`readings`: every reading of a character (pypinyin's ``pinyin_dict.json``), most common
  first, in TONE3 style (``zhong1``, ``lv4``; neutral tone 5). Correction compares the readings
  of a transcript window with a term's: polyphonic characters match by any reading (重 zhong/chong,
  行 xing/hang), which phrase-based conversion could not do for a misheard window anyway.
- :func:`is_common_word`: jieba's ``dict.txt`` words of frequency ≥ ``COMMON_WORD_FREQ`` (about
  36 000) in one frozenset (~4 MB).

Both are loaded lazily on first use, under a lock (worker threads), and the file data is read
with :func:`importlib.util.find_spec` so neither package is imported.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Final

COMMON_WORD_FREQ: Final = 100  # jieba frequency at or above which a window is a real word, left alone

_TONED: Final = {
    **{c: ("a", t) for t, c in enumerate("āáǎà", 1)},
    **{c: ("e", t) for t, c in enumerate("ēéěè", 1)},
    **{c: ("i", t) for t, c in enumerate("īíǐì", 1)},
    **{c: ("o", t) for t, c in enumerate("ōóǒò", 1)},
    **{c: ("u", t) for t, c in enumerate("ūúǔù", 1)},
    **{c: ("v", t) for t, c in enumerate("ǖǘǚǜ", 1)},
    "ü": ("v", 0), "ê": ("e", 0), "ḿ": ("m", 2), "ń": ("n", 2), "ň": ("n", 3), "ǹ": ("n", 4),
}
_lock = threading.Lock()
_char_readings: dict[int, str] | None = None
_common_words: frozenset[str] | None = None


def _package_file(package: str, name: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed (needed for speech term correction)")
    return Path(next(iter(spec.submodule_search_locations))) / name


def tone3(marked: str) -> str:
    """``zhōng`` → ``zhong1``, ``lǜ`` → ``lv4``, ``de`` → ``de5`` (pypinyin's TONE3, neutral = 5)."""
    tone = 0
    plain = []
    for ch in marked:
        base, t = _TONED.get(ch, (ch, 0))
        plain.append(base)
        tone = t or tone
    return "".join(plain) + str(tone or 5)


def _readings_table() -> dict[int, str]:
    global _char_readings  # noqa: PLW0603 - a read-only cache of a package data file
    if _char_readings is None:
        with _lock:
            if _char_readings is None:
                raw = json.loads(_package_file("pypinyin", "pinyin_dict.json").read_text(encoding="utf-8"))
                _char_readings = {int(code): value for code, value in raw.items()}
    return _char_readings


@lru_cache(maxsize=8192)
def readings(ch: str) -> tuple[str, ...]:
    """Every TONE3 reading of one character, most common first; a non-Chinese character is itself."""
    value = _readings_table().get(ord(ch)) if len(ch) == 1 else None
    if not value:
        return (ch,)
    return tuple(dict.fromkeys(tone3(r) for r in value.split(",")))


def pinyin(text: str) -> tuple[str, ...]:
    """The most common reading of each character of ``text`` (one item per character)."""
    return tuple(readings(ch)[0] for ch in text)


def _common_word_set() -> frozenset[str]:
    global _common_words  # noqa: PLW0603 - a read-only cache of a package data file
    if _common_words is None:
        with _lock:
            if _common_words is None:
                words = []
                with _package_file("jieba", "dict.txt").open(encoding="utf-8") as handle:
                    for line in handle:
                        parts = line.split(" ", 2)
                        if len(parts) >= 2 and 2 <= len(parts[0]) <= 8 and int(parts[1]) >= COMMON_WORD_FREQ:
                            words.append(parts[0])
                _common_words = frozenset(words)
    return _common_words


def is_common_word(word: str) -> bool:
    """Is ``word`` a common word (jieba frequency ≥ ``COMMON_WORD_FREQ``)? Then it is left as heard."""
    return word in _common_word_set()


def load_tables() -> None:
    """Read both tables now (~0.1 s), at model load, instead of during a rep's first memo."""
    _readings_table()
    _common_word_set()


def word_readings(words: Sequence[str], known: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """One TONE3 reading per character of each word, as the word is read: 长沙 ``chang2 sha1``.

    Why: a character's most common reading is wrong inside many names (长 zhang3, 重 zhong4, 六 liu4
    in 长沙, 重庆, 六安), and matching a name by every reading of its characters lets rare ones
    match ordinary speech (邢 geng3 heard in 跟台). ``known`` (word → "chang2 zhi4") wins, then
    pypinyin's phrase table (read here and dropped: it is only needed once, when terms are built),
    then each character's most common reading.
    """
    wanted = set(words)
    table = _package_file("pypinyin", "phrases_dict.json").read_text(encoding="utf-8")
    phrases: dict[str, list[list[str]]] = {}
    # only the entries asked for are parsed (the whole table as objects would be ~50 MB at peak)
    decoder = json.JSONDecoder()
    for match in _PHRASE_KEY.finditer(table):
        if match.group(1) in wanted:
            phrases[match.group(1)] = decoder.raw_decode(table, match.end())[0]
    out: dict[str, tuple[str, ...]] = {}
    for word in words:
        given = (known or {}).get(word)
        if given and len(given.split()) == len(word):
            out[word] = tuple(given.split())
        elif word in phrases and len(phrases[word]) == len(word) and all(phrases[word]):
            out[word] = tuple(tone3(options[0]) for options in phrases[word])
        else:
            out[word] = pinyin(word)
    return out


# the key of one entry of pypinyin's phrases_dict.json: "长沙": [["cháng"], ["shā"]] (over several lines)
_PHRASE_KEY = re.compile(r'^"([^"]+)":\s*', re.MULTILINE)
