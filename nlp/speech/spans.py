"""Per-character confidence carried from whisper's words to the final transcript text.

Whisper (``word_timestamps=True``) gives each word a probability. The transcript the note is
built from is not whisper's raw text: it is converted to simplified script, re-spaced, filtered
(echo / hallucination segments dropped) and term-corrected. :class:`Tracked` holds the text with
one annotation per character (probability, source word, correction group) and carries the
annotations through every such rewrite by aligning old and new text, so the spans handed to the
note card always index the final text.

A :class:`Span` is ``(start, end, text, probability, corrected)`` over ``Transcript.text``:
``text == transcript.text[start:end]``; ``probability`` is the lowest probability of the whisper
word(s) it came from (``None`` when the engine gave none); ``corrected`` is True when term
correction rewrote it — the words the rep said were heard as something else and replaced by a
lexicon term, which is a guess the card must show as unsure, whatever the probability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import NamedTuple


class Span(NamedTuple):
    start: int
    end: int
    text: str
    probability: float | None
    corrected: bool = False


@dataclass(frozen=True)
class CharInfo:
    probability: float | None
    word: int  # index of the whisper word the character came from (-1: none)
    corrected: int = -1  # correction group (-1: not corrected)


class Tracked:
    """Text plus one :class:`CharInfo` per character."""

    def __init__(self, text: str, info: Sequence[CharInfo]) -> None:
        if len(text) != len(info):
            raise ValueError("one annotation per character")
        self.text = text
        self.info = list(info)

    @classmethod
    def from_words(cls, words: Iterable[tuple[str, float | None]], first_word: int = 0) -> Tracked:
        text: list[str] = []
        info: list[CharInfo] = []
        for index, (word, probability) in enumerate(words, first_word):
            text.append(word)
            info.extend(CharInfo(probability, index) for _ in word)
        return cls("".join(text), info)

    @classmethod
    def plain(cls, text: str, probability: float | None = None, word: int = -1) -> Tracked:
        return cls(text, [CharInfo(probability, word)] * len(text))

    def __add__(self, other: Tracked) -> Tracked:
        return Tracked(self.text + other.text, self.info + other.info)

    def rewrite(self, new_text: str) -> Tracked:
        """``new_text`` (a rewrite of ``self.text``) with the annotations carried over."""
        if new_text == self.text:
            return self
        if len(new_text) == len(self.text):  # script conversion, same-length correction: positional
            return Tracked(new_text, list(self.info))
        out: list[CharInfo] = []
        matcher = SequenceMatcher(None, self.text, new_text, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
                out.extend(self.info[i1:i2])
            elif tag in ("replace", "insert"):
                source = self.info[i1:i2] or self.info[max(0, i1 - 1) : i1] or self.info[i1 : i1 + 1]
                out.extend([_weakest(source)] * (j2 - j1))
        return Tracked(new_text, out)

    def apply(self, fn: Callable[[str], str]) -> Tracked:
        return self.rewrite(fn(self.text))

    def mark_corrected(self, start: int, end: int, group: int) -> None:
        for i in range(start, end):
            self.info[i] = CharInfo(self.info[i].probability, self.info[i].word, group)

    def spans(self) -> tuple[Span, ...]:
        """Consecutive characters of one whisper word (or one correction) form a span.

        A corrected run swallows the words it overlaps, so "连影" heard as two words and corrected
        to "联影" is one span ``corrected=True`` with the weaker word's probability.
        """
        keys = [("c", c.corrected) if c.corrected >= 0 else ("w", c.word) for c in self.info]
        result: list[Span] = []
        i = 0
        while i < len(self.text):
            j = i + 1
            while j < len(self.text) and keys[j] == keys[i]:
                j += 1
            chars = self.info[i:j]
            result.append(Span(i, j, self.text[i:j], _weakest(chars).probability, keys[i][0] == "c"))
            i = j
        return tuple(result)


def _weakest(chars: Sequence[CharInfo]) -> CharInfo:
    known = [c for c in chars if c.probability is not None]
    if not known:
        return chars[0] if chars else CharInfo(None, -1)
    return min(known, key=lambda c: c.probability)  # type: ignore[arg-type, return-value]


def uncertain(spans: Iterable[Span], threshold: float) -> list[Span]:
    """Spans below ``threshold`` or rewritten by term correction; whitespace/punctuation-only skipped."""
    return [s for s in spans if s.text.strip(" ，,。.！!？?、；;：:")
            and (s.corrected or (s.probability is not None and s.probability < threshold))]


def pack(spans: Iterable[Span]) -> list[list[object]]:
    """Spans as JSON-friendly rows ``[start, end, probability, corrected]`` (the text is implied).

    Why: the voice preprocessor runs before the message is handled and hands its result over in
    ``Inbound.extra``, which is stored as JSON with the inbox row; the text of each span is a
    slice of the transcript stored beside it, so it is not repeated.
    """
    return [[s.start, s.end, s.probability, bool(s.corrected)] for s in spans]


def unpack(rows: object, text: str) -> list[Span]:
    """The spans :func:`pack` wrote, checked against ``text``; malformed rows are dropped."""
    out: list[Span] = []
    if not isinstance(rows, (list, tuple)):
        return out
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            continue
        start, end, probability, corrected = row
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            continue
        if probability is not None and not isinstance(probability, (int, float)):
            continue
        out.append(Span(start, end, text[start:end], None if probability is None else float(probability),
                        bool(corrected)))
    return out
