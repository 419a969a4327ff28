"""Text plumbing shared by the extractors: normalisation, clauses, keyword scanning, negation.

Why clauses: negation, "past vs. planned" and "who acts" are all local to a clause in rep
messages ("价格不是问题，关键是要有注册证"), so every decision is taken inside one clause.
Voice transcripts have no punctuation; their discourse words ("然后", "那个") act as breaks.

Keyword scanning uses one compiled alternation per keyword family, longest keyword first,
which gives leftmost-longest matches in a single pass (cheaper than a tokenizer).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from re import _constants, _parser  # type: ignore[attr-defined]
from typing import Any

from .lexicon import KeywordGroup, LanguageWords
from .numerals import FULLWIDTH

_CLAUSE_BREAK = re.compile(r"[，,。！!？?；;\n…~～]+|(?<![A-Za-z0-9.])\s+(?![A-Za-z0-9])|(?<!\d)(?<!Dr)(?<!Mr)(?<!Ms)(?<!Mrs)(?<!Prof)(?<!St)\.(?!\d)|(?<=\d)\.(?!\d)|(?<!\d)\.(?=\d)")
_NON_WORD = re.compile(r"[\W_]+")


class LiteralMatcher:
    """Leftmost-longest literal matching, fast for large CJK vocabularies.

    Python's regex engine is fast on a plain alternation of literals but slows down a lot when
    alternatives carry look-arounds, which ASCII words need ("GE" must not match in "GEL").
    So CJK words go in one plain alternation and ASCII words in a second one that only runs
    when the text has ASCII letters at all.
    """

    def __init__(self, words: Iterable[str], ignore_case_ascii: bool = False) -> None:
        words = set(words)
        ascii_words = {w for w in words if w.isascii() and any(ch.isalpha() for ch in w)}
        self._cjk = re.compile(starting_with(_trie_alternation(words - ascii_words))) if words - ascii_words else None
        # short ASCII words ("GE", "BD", "CT") are matched case-sensitively, longer ones ignoring case
        loose = {w for w in ascii_words if ignore_case_ascii and len(w) >= 3}
        self._ascii = tuple(
            re.compile(starting_with(rf"(?<![A-Za-z])(?:{_plain_alternation(group)})(?![A-Za-z])", re.IGNORECASE if i else 0),
                       re.IGNORECASE if i else 0)
            for i, group in enumerate((ascii_words - loose, loose)) if group)

    def finditer(self, text: str) -> list[re.Match[str]]:
        found = list(self._cjk.finditer(text)) if self._cjk is not None else []
        if self._ascii and _HAS_ASCII_LETTER.search(text):
            extra = [m for rx in self._ascii for m in rx.finditer(text)
                     if not any(f.start() < m.end() and m.start() < f.end() for f in found)]
            if extra:
                found = sorted(found + extra, key=lambda m: m.start())
        return found


_HAS_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _plain_alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def _trie_alternation(words: Iterable[str]) -> str:
    """The same language and match order as :func:`_plain_alternation`, factored as a trie.

    Why: Python's engine tries a flat alternation's branches one by one at every position, so
    a 500-word lexicon costs ~500 steps per character; a trie costs one step per matched
    character.  Equivalence (case-sensitive, no flags): at a given position the text picks
    one path through the trie, and each node tries its longer continuation before stopping
    (a greedy ``?``), so the words that match there are tried longest first — exactly the
    flat alternation's order (longest first; two words of one length cannot both match),
    also when an enclosing pattern backtracks into the alternation.
    """
    root: dict[str, dict] = {}
    for word in set(words):
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
        kids = sorted(ch for ch in node if ch)
        if not kids:
            return ""
        parts = [re.escape(ch) + emit(node[ch]) for ch in kids]
        body = parts[0] if len(parts) == 1 and "" not in node else "(?:" + "|".join(parts) + ")"
        return body + "?" if "" in node else body

    return emit(root)


_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u0130\u0131\u017f\u212a\u212b]")


def _may_share_start(plain: str, ascii_word: str, loose: bool) -> bool:
    """Can a match of ``plain`` and one of ``ascii_word`` (case-folded when ``loose``) start at the
    same position, i.e. is one a prefix of the other?  Then their order in the alternation matters."""
    if not _LATIN.match(plain[:1]) and plain[:1] != ascii_word[:1]:
        return False
    flags = re.IGNORECASE if loose else 0
    if re.match(re.escape(ascii_word), plain, flags):
        return True
    return len(plain) <= len(ascii_word) and re.fullmatch(re.escape(ascii_word[:len(plain)]), plain, flags) is not None


def alternation(words: Iterable[str], ignore_case_ascii: bool = False) -> str:
    """Regex alternation of literal words, longest first (so the longest keyword wins).

    Built for speed with the same matches as the flat form ("w1|(?<![A-Za-z])GE(?![A-Za-z])|…",
    longest first): the CJK words as one trie (:func:`_trie_alternation`), the ASCII words
    behind one shared look-behind per run instead of one per word (a look-behind per branch
    defeats the engine's first-character check and made a 250-verb list ~30× slower).  The
    two groups may be tried in either order only because no word of one group can match
    where a word of the other matches (checked; otherwise the flat form is returned).
    """
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    if not ordered:
        return r"(?!x)x"
    flat, plain, ascii_parts = [], [], []
    for word in ordered:
        escaped = re.escape(word)
        if word.isascii() and any(ch.isalpha() for ch in word):
            loose = ignore_case_ascii and len(word) >= 3
            ascii_parts.append((word, loose, escaped))
            # ASCII brand/department names must stand alone: "GE" is not inside "GEL"
            escaped = rf"(?<![A-Za-z]){escaped}(?![A-Za-z])"
            if loose:
                escaped = f"(?i:{escaped})"
        else:
            plain.append(word)
        flat.append(escaped)
    if "" in plain or any(_may_share_start(p, a, loose) for a, loose, _ in ascii_parts for p in plain):
        return starting_with("|".join(flat))
    groups = [_trie_alternation(plain)] if plain else []
    run: list[str] = []
    for i, (_, loose, escaped) in enumerate(ascii_parts):
        run.append(rf"{escaped}(?![A-Za-z])")
        if i + 1 == len(ascii_parts) or ascii_parts[i + 1][1] != loose:
            body = rf"(?<![A-Za-z])(?:{'|'.join(run)})"
            groups.append(f"(?i:{body})" if loose else body)
            run = []
    return starting_with("|".join(groups))


# characters other than a-z/A-Z that an ignore-case a-z matches (İ ı ſ K); checked by a test over all of Unicode
_FOLDS_TO_ASCII = frozenset("\u0130\u0131\u017f\u212a")


def first_chars(rx: re.Pattern[str]) -> tuple[frozenset[str], bool] | None:
    """The characters any match of ``rx`` must start with: (characters, or any decimal digit).

    ``None`` when that is unknown or a match may be empty; then ``rx`` has to run on every text.
    Why: the keyword families' hand-written patterns mostly start with a group or a class, which
    defeats the engine's own first-character skip, so each pattern costs a full pass over the
    text even when the text cannot contain a match; most texts hold none of a code's starters.
    """
    return _first_chars(rx.pattern, rx.flags)


def _first_chars(pattern: str, flags: int = 0) -> tuple[frozenset[str], bool] | None:
    parsed = _parser.parse(pattern, flags)
    found = _first(parsed.data, bool(parsed.state.flags & re.IGNORECASE))
    if found is None or found[2] or not (found[0] or found[1]):
        return None
    return frozenset(found[0]), found[1]


def starting_with(pattern: str, flags: int = 0) -> str:
    """``pattern`` behind a look-ahead for the characters its matches can start with (same matches).

    Why: the engine has no first-character skip for a pattern that opens with a group, a class
    or a look-behind, so at every position it tries each branch in turn; one class test per
    position rejects most positions at once (a 250-word verb list ~7× faster, the hand-written
    concern patterns ~3×).  Exact because every match starts with one of those characters.
    """
    found = _first_chars(pattern, flags)
    if found is None:
        return pattern
    chars, digit = found
    return f"(?=[{''.join(re.escape(c) for c in sorted(chars))}{chr(92) + 'd' if digit else ''}])(?:{pattern})"


def _first(seq: Any, ignore_case: bool) -> tuple[set[str], bool, bool] | None:
    """(first characters, any digit, may be empty) of a parsed sequence, or None when unknown."""
    out: set[str] = set()
    digit = False
    for op, av in seq:
        if op is _constants.LITERAL or op is _constants.IN:
            items = [(op, av)] if op is _constants.LITERAL else av
            for o, a in items:
                if o is _constants.LITERAL:
                    chars = {chr(a)}
                elif o is _constants.RANGE and a[1] - a[0] < 512:
                    chars = {chr(c) for c in range(a[0], a[1] + 1)}
                elif o is _constants.CATEGORY and a is _constants.CATEGORY_DIGIT:
                    digit = True
                    continue
                else:
                    return None
                if ignore_case:
                    if not all(c.isascii() for c in chars):
                        return None
                    chars |= {c.swapcase() for c in chars}
                    if any(c.isalpha() for c in chars):
                        chars |= _FOLDS_TO_ASCII
                out |= chars
            return out, digit, False
        if op is _constants.SUBPATTERN:
            _, add, remove, sub = av
            ic = (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
            found = _first(sub, ic)
            if found is None:
                return None
            out |= found[0]
            digit |= found[1]
            if not found[2]:
                return out, digit, False
        elif op is _constants.BRANCH:
            empty = False
            for alt in av[1]:
                found = _first(alt, ignore_case)
                if found is None:
                    return None
                out |= found[0]
                digit |= found[1]
                empty |= found[2]
            if not empty:
                return out, digit, False
        elif op is _constants.MAX_REPEAT or op is _constants.MIN_REPEAT:
            low, _, sub = av
            found = _first(sub, ignore_case)
            if found is None:
                return None
            out |= found[0]
            digit |= found[1]
            if low > 0 and not found[2]:
                return out, digit, False
        elif op is not _constants.AT and op is not _constants.ASSERT and op is not _constants.ASSERT_NOT:
            return None  # ".", "\\w", a back-reference…: anything may start a match
    return out, digit, True


@dataclass(frozen=True)
class Hit:
    code: str
    start: int
    end: int
    text: str


class KeywordScanner:
    """Finds the keywords and patterns of a family of codes (stages, concerns or cues)."""

    def __init__(self, groups: Sequence[KeywordGroup]) -> None:
        self._code_of: dict[str, str] = {}
        for group in groups:
            for kw in group.keywords:
                self._code_of.setdefault(kw, group.code)
        self._rx = LiteralMatcher(self._code_of)
        # one alternation per code keeps the number of regex passes small
        self._patterns = tuple((g.code, re.compile(starting_with("|".join(f"(?:{p})" for p in g.patterns))))
                               for g in groups if g.patterns)
        # a code's patterns are skipped for a text holding none of the characters a match could start with
        self._starts = tuple(first_chars(rx) for _, rx in self._patterns)
        self._exclude = {g.code: re.compile(alternation(g.exclude)) for g in groups if g.exclude}

    def scan(self, text: str) -> list[Hit]:
        hits = [Hit(self._code_of[m.group()], m.start(), m.end(), m.group()) for m in self._rx.finditer(text)]
        chars = frozenset(text)
        digits: bool | None = None
        for (code, rx), starts in zip(self._patterns, self._starts):
            if starts is not None and chars.isdisjoint(starts[0]):
                if not starts[1]:
                    continue
                if digits is None:
                    digits = any(ch.isdecimal() for ch in chars)
                if not digits:
                    continue
            hits.extend(Hit(code, m.start(), m.end(), m.group()) for m in rx.finditer(text))
        if self._exclude:
            hits = [h for h in hits if not self._excluded(text, h)]
        hits.sort(key=lambda h: (h.start, -h.end))
        return hits

    def _excluded(self, text: str, hit: Hit) -> bool:
        rx = self._exclude.get(hit.code)
        if rx is None:
            return False
        lo = max(0, hit.start - 8)
        return any(m.start() + lo <= hit.start and hit.end <= m.end() + lo for m in rx.finditer(text[lo:hit.end + 8]))


# "院办说院长|下周开会": a time right after "<speaker>说<someone>" still belongs to the reported words
_SPEAKER_END = re.compile(r"(?:说|讲|表示|提到|通知)[\u4e00-\u9fff]{0,2}(?:院长|主任|科长|处长|书记|他们|她们|他|她)$")


_IN_ENGLISH = re.compile(r"[A-Za-z][\s]*$")
# words that end in a negation character without negating anything ("特别急", "差不多", "不然")
_NOT_NEGATION = re.compile(r"(?:特别|分别|区别|个别|级别|类别|差别|告别|离别)$")


class Language:
    """Normalisation, clause splitting and negation, driven by language.toml."""

    def __init__(self, words: LanguageWords) -> None:
        self._fillers = re.compile(alternation(words.fillers)) if words.fillers else None
        self._breaks = re.compile(alternation(words.soft_breaks)) if words.soft_breaks else None
        self._neg_before = re.compile(f"(?:{alternation(words.negation_before)})$")
        bridges = alternation(words.negation_bridges)
        # a space may stand between the keyword and its verdict in shorthand ("参数论证 通过")
        self._neg_after = re.compile(f"\\s?(?:{bridges})*(?:{alternation(words.negation_after)})")
        self._positive = re.compile(alternation(words.positive_frames))
        self._chatter = words.chatter
        self._starters = re.compile(alternation(words.clause_starters)) if words.clause_starters else None
        self._no_split = re.compile(f"(?:{alternation(words.no_split_after)})$") if words.no_split_after else None
        self._split_min = words.split_min_length

    def normalize(self, text: str) -> str:
        """Full-width → ASCII, fillers dropped, discourse words turned into clause breaks."""
        out = text.translate(FULLWIDTH).strip()
        if self._fillers is not None:
            out = self._fillers.sub("", out)
        if self._breaks is not None:
            out = self._breaks.sub(_soft_break, out)
        return out

    def is_chatter(self, text: str) -> bool:
        """Only acknowledgements/thanks/emoji ("收到，谢谢", "好的👍")."""
        if len(text) > 24:
            return False
        parts = [p for p in _CLAUSE_BREAK.split(text) if p]
        cleaned = [_NON_WORD.sub("", p) for p in parts]
        return all(not c or c in self._chatter or _only_symbols(p) for c, p in zip(cleaned, parts))

    @staticmethod
    def clauses(text: str) -> list[tuple[int, int]]:
        """[start, end) spans of the clauses of ``text`` (punctuation and spaces split)."""
        spans, start = [], 0
        for m in _CLAUSE_BREAK.finditer(text):
            if m.start() > start:
                spans.append((start, m.start()))
            start = m.end()
        if start < len(text):
            spans.append((start, len(text)))
        return spans

    def split_long(self, text: str, clauses: Sequence[tuple[int, int]], time_starts: Iterable[int]
                   ) -> list[tuple[int, int]]:
        """Split unpunctuated long clauses where a time expression starts (voice transcripts)."""
        starts = sorted(set(time_starts))
        out: list[tuple[int, int]] = []
        for s, e in clauses:
            if e - s < self._split_min:
                out.append((s, e))
                continue
            cuts = [p for p in starts if s + 2 <= p < e - 1]
            if self._starters is not None:
                cuts.extend(m.start() + s for m in self._starters.finditer(text[s:e]) if m.start() >= 2)
            begin = s
            for p in sorted(set(cuts)):
                if _IN_ENGLISH.search(text, begin, p):
                    continue  # "wants a quote by Friday": an English sentence keeps its date
                if p - begin < 2 or (self._no_split is not None and self._no_split.search(text[begin:p])) \
                        or _SPEAKER_END.search(text, begin, p):
                    continue
                out.append((begin, p))
                begin = p
            out.append((begin, e))
        return out

    def negated(self, clause: str, start: int, end: int, before: bool = True, after: bool = True) -> bool:
        """Is the keyword at clause[start:end] negated ("没提竞品", "价格不是问题")?

        ``before=False`` only honours negation after the keyword: for process steps "还没签字"
        is the concern itself, while "审批走完了" settles it.
        """
        if before:
            window = clause[max(0, start - 6):start]
            m = self._neg_before.search(window)
            if m and not _NOT_NEGATION.search(window, 0, m.end()):
                return True
        return after and self._neg_after.match(clause, end) is not None

    def positive(self, clause: str) -> bool:
        """Clause framed as a strength or satisfaction ("优势是售后响应快"); "不满意" is not."""
        for m in self._positive.finditer(clause):
            if not self._neg_before.search(clause[max(0, m.start() - 3):m.start()]):
                return True
        return False


def _soft_break(m: re.Match[str]) -> str:
    """A discourse word becomes a clause break, except 不过 as a verb complement: "推不过去" and
    "忙不过来" say a thing cannot be done (a product complaint), they are no "but"."""
    if m.group() == "不过" and m.start() > 0 and m.string[m.end():m.end() + 1] in ("去", "来"):
        return m.group()
    return "，"


def _only_symbols(text: str) -> bool:
    return all(not ch.isalnum() for ch in text)


def clause_index(spans: Sequence[tuple[int, int]], pos: int) -> int:
    """Index of the clause containing ``pos`` (or the one before a break)."""
    for i, (s, e) in enumerate(spans):
        if pos < e:
            return i if pos >= s else max(0, i - 1)
    return len(spans) - 1
