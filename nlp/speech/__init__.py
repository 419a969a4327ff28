"""Local speech-to-text for rep voice memos (WeCom AMR, DingTalk formats), no cloud, no network.

Usage::

    stt = create_stt(SpeechConfig())
    transcript = await stt.transcribe(amr_bytes, hotwords=lexicon.hotwords())

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
)

__all__ = [
    "LocalSpeechToText",
    "SpeechConfig",
    "SpeechError",
    "SpeechToText",
    "Transcript",
    "correct_surnames",
    "correct_terms",
    "create_stt",
]
