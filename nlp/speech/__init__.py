"""Local speech-to-text for rep voice memos (WeCom AMR, DingTalk formats), no cloud, no network.

Usage::

    stt = create_stt(SpeechConfig())
    transcript = await stt.transcribe(amr_bytes, hotwords=lexicon.hotwords())
    unsure = uncertain_spans(transcript, 0.5)   # [(start, end, text, probability, corrected), ...]

Errors the rep should hear about are :class:`SpeechError` (``reason`` + Chinese message).
"""

from nlp.speech.correct import correct_surnames, correct_terms
from nlp.speech.errors import SpeechError
from nlp.speech.service import (
    LocalSpeechToText,
    SpeechConfig,
    SpeechToText,
    Transcript,
    create_stt,
    uncertain_spans,
)
from nlp.speech.spans import Span

__all__ = [
    "LocalSpeechToText",
    "SpeechConfig",
    "SpeechError",
    "Span",
    "SpeechToText",
    "Transcript",
    "correct_surnames",
    "correct_terms",
    "create_stt",
    "uncertain_spans",
]
