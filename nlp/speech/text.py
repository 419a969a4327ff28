"""Post-processing of whisper output: simplified script, prompts, echo/hallucination guards.

Whisper base writes Mandarin in traditional characters surprisingly often; a simplified-Chinese
``initial_prompt`` steers it, and a script conversion (zhconv, "zh-hans": script only, no regional
vocabulary swaps) is the safety net. Prompts and hotwords have a known failure mode: on unclear
audio the decoder just copies them out, which would put invented products and names in a rep's
follow-up note, so such output is detected and rejected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

DEFAULT_PROMPT: Final = "以下是普通话的医疗器械销售跟进语音记录，请使用简体中文和标点符号。"
MAX_HOTWORDS: Final = 5000  # for correction/echo checks (all of a lexicon); the prompt gets a small budget below
# Whisper's text context (448 tokens) is shared by prompt and output, per 30 s window. A Chinese
# character costs ~1.35 tokens. The hotword share of the prompt is sized from the memo length so
# that even fast speech (6 chars/s) keeps room for its transcript: short memos (the usual case) get
# up to 165 chars of hotwords (faster-whisper's own 223-token cap), a 30 s+ memo about 105.
MAX_PROMPT_HOTWORD_CHARS: Final = 165
MIN_PROMPT_HOTWORD_CHARS: Final = 40
_TEXT_CTX: Final = 448
_RESERVED_TOKENS: Final = 64  # the initial prompt (~49 tokens) + special tokens
_TOKENS_PER_CHAR: Final = 1.35
_FAST_SPEECH_CHARS_PER_S: Final = 6.0


def hotword_char_budget(audio_seconds: float) -> int:
    """How many characters of hotwords fit in the prompt for a memo of this length."""
    window = min(max(audio_seconds, 1.0), 30.0)
    output_tokens = window * _FAST_SPEECH_CHARS_PER_S * _TOKENS_PER_CHAR
    free = (_TEXT_CTX - _RESERVED_TOKENS - output_tokens) / _TOKENS_PER_CHAR
    return int(min(MAX_PROMPT_HOTWORD_CHARS, max(MIN_PROMPT_HOTWORD_CHARS, free)))

# Phrases whisper emits on silence/noise (learnt from subtitle-laden training data).
_HALLUCINATIONS: Final = (
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "字幕由amaraorg社区提供",
    "字幕by索兰娅",
    "优优独播剧场youyoujuchang",
    "中文字幕志愿者",
    "谢谢观看",
    "感谢观看",
    "请订阅",
)
_NON_WORD = re.compile(r"[\W_]+")
_SPLIT = re.compile(r"[，,、；;。.！!？?\s]+")


def to_simplified(text: str) -> str:
    """Traditional → simplified characters; a no-op if zhconv is missing (it is a hard dep)."""
    try:
        import zhconv  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return text
    return zhconv.convert(text, "zh-hans")


def squash(text: str) -> str:
    """Lower-case and drop punctuation/whitespace: the form used for all comparisons here."""
    return _NON_WORD.sub("", text.lower())


def clean_hotwords(hotwords: Sequence[str]) -> list[str]:
    """Deduplicate, drop blanks, keep order, cap the count (prompt space is limited)."""
    seen: set[str] = set()
    out: list[str] = []
    for word in hotwords:
        word = word.strip()
        if word and word not in seen:
            seen.add(word)
            out.append(word)
    return out[:MAX_HOTWORDS]


def prompt_hotwords(hotwords: Sequence[str], max_chars: int = MAX_PROMPT_HOTWORD_CHARS) -> tuple[str, ...]:
    """The leading hotwords that fit the prompt budget (callers order them by importance)."""
    kept: list[str] = []
    used = 0
    for word in clean_hotwords(hotwords):
        if used + len(word) + 1 > max_chars:
            break
        kept.append(word)
        used += len(word) + 1
    return tuple(kept)


def hotword_string(hotwords: Sequence[str]) -> str:
    return "、".join(prompt_hotwords(hotwords))


def is_hallucination(text: str) -> bool:
    flat = squash(text)
    return bool(flat) and any(h in flat or flat in h for h in _HALLUCINATIONS if len(flat) >= 4)


def is_echo(text: str, prompt: str, hotwords: Sequence[str]) -> bool:
    """True when ``text`` only parrots the prompt or lists hotwords.

    Two shapes are caught: (1) the squashed text is a long-enough substring of the squashed prompt
    (or of the hotword list); (2) the text splits into 3+ items nearly all of which are hotwords
    ("迈瑞、联影、美敦力、…"), which real memos never do.
    """
    flat = squash(text)
    if not flat:
        return False
    words = clean_hotwords(hotwords)
    for source in (squash(prompt), squash("".join(words))):
        if len(flat) >= 6 and flat in source:
            return True
    if words:
        vocab = {squash(w) for w in words}
        items = [squash(p) for p in _SPLIT.split(text) if squash(p)]
        if len(items) >= 3 and sum(item in vocab for item in items) >= 0.8 * len(items):
            return True
        covered = _covered_by_hotwords(flat, vocab)
        if len(flat) >= 8 and covered >= 0.9 * len(flat):
            return True
    return False


def _covered_by_hotwords(flat: str, vocab: set[str]) -> int:
    """How many characters of ``flat`` a greedy left-to-right tiling by hotwords covers.

    Only runs of two or more consecutive hotwords count, so a memo that happens to mention one
    hotword is not mistaken for an echo.
    """
    longest = max((len(v) for v in vocab), default=0)
    covered = run_len = run_words = 0
    i = 0
    while i < len(flat):
        match = next(
            (n for n in range(min(longest, len(flat) - i), 1, -1) if flat[i : i + n] in vocab), 0
        )
        if match:
            run_len += match
            run_words += 1
            i += match
            continue
        covered += run_len if run_words >= 2 else 0
        run_len = run_words = 0
        i += 1
    covered += run_len if run_words >= 2 else 0
    return covered


def tidy(text: str) -> str:
    """Join segment texts the Chinese way: no spaces between CJK characters."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])", "", text)


# A decoding loop repeats a short unit far more often than speech does ("温温温温…", "的的的的").
_LOOP_1 = re.compile(r"(.)\1{7,}")  # one character 8+ times
_LOOP_N = re.compile(r"(.{2,4}?)\1{3,}")  # a 2–4 character unit 4+ times
_MIN_PROMPT_LEAK: Final = 7


def collapse_loops(text: str) -> str:
    """Collapse decoder repetition loops to one occurrence of the repeated unit."""
    text = _LOOP_1.sub(r"\1", text)
    return _LOOP_N.sub(r"\1", text)


def strip_prompt_leak(text: str, prompt: str) -> str:
    """Remove a long-enough piece of the initial prompt copied into the text ("请使用简体中文和").

    Only runs of ``_MIN_PROMPT_LEAK``+ characters of the prompt count (as written, punctuation
    included in neither), so a rep saying "医疗器械" is untouched.
    """
    flat_prompt = re.sub(r"[\W_]+", "", prompt)
    if len(flat_prompt) < _MIN_PROMPT_LEAK or len(text) < _MIN_PROMPT_LEAK:
        return text
    best = ""
    for i in range(len(text) - _MIN_PROMPT_LEAK + 1):
        j = i + _MIN_PROMPT_LEAK
        if text[i:j] not in flat_prompt:
            continue
        while j < len(text) and text[i : j + 1] in flat_prompt:
            j += 1
        if j - i > len(best):
            best = text[i:j]
    return text.replace(best, "", 1) if best else text
