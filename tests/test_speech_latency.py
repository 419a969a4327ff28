"""Voice memo latency levers: the shorter encoder window, speech-balanced pieces, stage timings.

The window and the split are checked without the model; one slow test checks with the real
model that the encoder really gets the shorter window and that every stage is reported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nlp.speech import SpeechConfig
from nlp.speech.backends import DecodeOptions, RawSegment, encoder_window_frames
from nlp.speech.service import LocalSpeechToText
from nlp.speech.split import split_points

RATE = 16_000
FIXTURES = Path(__file__).parent / "fixtures" / "voice"


def _options(encoder_min: float = 15.0, encoder_margin: float = 5.0) -> DecodeOptions:
    return DecodeOptions(language="zh", beam_size=1, temperatures=(0.0,), initial_prompt="",
                         encoder_min=encoder_min, encoder_margin=encoder_margin)


def test_encoder_window_is_the_audio_plus_a_margin_within_min_and_30_seconds() -> None:
    assert encoder_window_frames(8 * RATE, _options()) == 1500  # short piece: the 15 s minimum
    assert encoder_window_frames(int(12.5 * RATE), _options()) == 1750  # 12.5 s + 5 s of silence
    assert encoder_window_frames(28 * RATE, _options()) == 3000  # never more than whisper's window
    assert encoder_window_frames(8 * RATE, _options(encoder_min=30.0)) == 3000  # the previous behaviour
    assert encoder_window_frames(int(12.51 * RATE), _options()) % 2 == 0  # the encoder halves it
    with pytest.raises(ValueError):
        SpeechConfig(encoder_min_seconds=0.5)
    with pytest.raises(ValueError):
        SpeechConfig(encoder_margin_seconds=-1.0)


def _speech(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (0.3 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def _pause(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (0.001 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def test_pieces_share_the_speech_not_the_seconds() -> None:
    """Decoding time follows the words: a memo whose first half is mostly pauses is cut later."""
    rng = np.random.default_rng(1)
    samples = np.concatenate([_speech(2.0, rng), _pause(3.0, rng), _speech(3.0, rng), _pause(0.3, rng),
                              _speech(3.0, rng), _pause(0.3, rng), _speech(6.0, rng)])
    (cut,) = split_points(samples, 2)
    # 14 s of speech in 17.6 s: half of it is said by 10.3 s; the nearest pause is at 11.3–11.6 s
    # (8 s of speech before, 6 after). Halving the seconds (8.8 s) would cut at 8.0–8.3 s: 5 and 9.
    assert 11.3 * RATE < cut < 11.6 * RATE


def test_a_short_clear_pause_near_the_middle_beats_a_long_one_far_away() -> None:
    rng = np.random.default_rng(2)
    samples = np.concatenate([_speech(6.0, rng), _pause(0.5, rng), _speech(3.0, rng), _pause(0.26, rng),
                              _speech(9.0, rng)])
    (cut,) = split_points(samples, 2)
    assert 9.5 * RATE < cut < 9.8 * RATE  # the 260 ms pause at 9.5–9.76 s, not the 500 ms one at 6 s


class _TimedEngine:
    """A fake engine that reports stage timings the way FasterWhisperEngine does."""

    name = "fake"
    reports_timings = True

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.token_limits: list[int | None] = []

    def transcribe(self, samples: np.ndarray, options: DecodeOptions,
                   timings: dict[str, float] | None = None) -> list[RawSegment]:
        self.windows.append(encoder_window_frames(len(samples), options))
        self.token_limits.append(options.max_new_tokens)
        if timings is not None:
            timings.update(encode=0.01, generate=0.02, align=0.003)
        return [RawSegment("设备科说中标了。", (("设备科", 0.9), ("说", 0.8), ("中标", 0.9), ("了", 0.9), ("。", 0.9)))]


class _PlainEngine:
    name = "plain"

    def transcribe(self, samples: np.ndarray, options: DecodeOptions) -> list[str]:
        return ["设备科说中标了。"]


def _service(engine: object, **config: object) -> LocalSpeechToText:
    stt = LocalSpeechToText(SpeechConfig(warm_on_load=False, context_correction=False, **config))  # type: ignore[arg-type]
    stt._engine = engine  # type: ignore[assignment]  # noqa: SLF001 - the model is not under test
    return stt


def _names(stages: Sequence[tuple[str, float]]) -> list[str]:
    return [name for name, _ in stages]


def test_transcript_says_where_the_time_went() -> None:
    pytest.importorskip("av")
    from nlp.speech.testing import amr_nb, tone  # noqa: PLC0415

    audio = np.concatenate([tone(6.0, rate=8000), np.zeros(4000, np.float32), tone(6.0, rate=8000, freq=300)])
    engine = _TimedEngine()
    stt = _service(engine, split_min_seconds=10.0, parallel_pieces=2)
    try:
        tr = stt.transcribe_sync(amr_nb(audio))
    finally:
        stt.close()
    names = _names(tr.stages)
    assert names[:3] == ["audio", "split", "decode"] and names[-2:] == ["postprocess", "trim"]
    for piece in ("piece1", "piece2"):
        assert [f"{piece}.{s}" for s in ("encode", "generate", "align", "other")] == [
            n for n in names if n.startswith(piece)]
    assert all(seconds >= 0 for _, seconds in tr.stages)
    assert sum(s for n, s in tr.stages if "." not in n) <= tr.seconds + 0.01
    assert engine.windows == [1500, 1500]  # two ~6 s pieces: the 15 s minimum window each

    plain = _service(_PlainEngine())  # an engine without timings still gets the service's stages
    try:
        tr = plain.transcribe_sync(amr_nb(tone(3.0, rate=8000)))
    finally:
        plain.close()
    assert _names(tr.stages)[:3] == ["audio", "split", "decode"] and "piece1.other" in _names(tr.stages)


@pytest.mark.slow
def test_real_model_encodes_the_short_window_and_reports_every_stage(model_cache: Path) -> None:
    pytest.importorskip("av")
    from nlp.speech import create_stt  # noqa: PLC0415
    from nlp.speech.metrics import cer  # noqa: PLC0415

    memo = json.loads((FIXTURES / "voice.jsonl").read_text(encoding="utf-8").splitlines()[0])
    stt = create_stt(SpeechConfig(beam_size=1, cache_dir=model_cache))
    try:
        model = stt.engine()._model  # type: ignore[attr-defined]  # noqa: SLF001
        widths: list[int] = []
        ct2 = model.model

        class Spy:
            def __getattr__(self, name: str) -> object:
                return getattr(ct2, name)

            def encode(self, features: object, **kwargs: object) -> object:
                widths.append(features.shape[-1])  # type: ignore[attr-defined]
                return ct2.encode(features, **kwargs)

        model.model = Spy()
        try:
            tr = stt.transcribe_sync(FIXTURES / memo["file"], ["设备科", "采购办", "中标"])
        finally:
            model.model = ct2
    finally:
        stt.close()
    assert widths == [encoder_window_frames(round(memo["seconds"] * RATE), _options())] and widths[0] < 3000
    assert cer(memo["spoken"], tr.text) <= 0.2, tr.text
    names = _names(tr.stages)
    assert {"piece1.encode", "piece1.generate", "piece1.align"} <= set(names)
    assert tr.spans  # word probabilities still come with the shorter window


def test_output_tokens_are_bounded_by_the_piece_length() -> None:
    """A repetition loop stops near what speech of that length could say, not at 448 tokens."""
    pytest.importorskip("av")
    from nlp.speech.testing import amr_nb, tone  # noqa: PLC0415

    audio = np.concatenate([tone(6.0, rate=8000), np.zeros(4000, np.float32), tone(6.0, rate=8000, freq=300)])
    for per_second, expected in ((12.0, range(80, 110)), (0.0, None)):
        engine = _TimedEngine()
        stt = _service(engine, split_min_seconds=10.0, parallel_pieces=2, max_tokens_per_second=per_second)
        try:
            stt.transcribe_sync(amr_nb(audio))
        finally:
            stt.close()
        assert len(engine.token_limits) == 2
        for limit in engine.token_limits:  # ~6 s pieces: 6 × 12 + 24
            assert (limit is None) if expected is None else (limit in expected), engine.token_limits


def test_malloc_arenas_can_be_capped_on_glibc() -> None:
    from nlp.speech.service import _libc, limit_malloc_arenas  # noqa: PLC0415

    assert limit_malloc_arenas(0) is False  # 0 = leave glibc's default
    if not _libc():
        pytest.skip("not glibc")
    assert limit_malloc_arenas(8) is True


@pytest.mark.slow
def test_real_model_keeps_a_token_limit_within_the_prompt_room(model_cache: Path) -> None:
    """faster-whisper refuses a limit that does not fit beside the prompt: the engine clamps it."""
    pytest.importorskip("av")
    from nlp.lexicon import load_lexicon  # noqa: PLC0415
    from nlp.speech import create_stt  # noqa: PLC0415
    from nlp.speech.text import DEFAULT_PROMPT, prompt_hotwords  # noqa: PLC0415

    memo = json.loads((FIXTURES / "voice.jsonl").read_text(encoding="utf-8").splitlines()[0])
    stt = create_stt(SpeechConfig(beam_size=1, cache_dir=model_cache, max_tokens_per_second=1000.0))
    try:
        engine = stt.engine()
        hotwords = prompt_hotwords(load_lexicon().hotwords(), 165)
        options = DecodeOptions(language="zh", beam_size=1, temperatures=(0.0,), initial_prompt=DEFAULT_PROMPT,
                                hotwords=hotwords, max_new_tokens=10_000)
        limit = engine._max_new_tokens(options)  # type: ignore[attr-defined]  # noqa: SLF001
        assert limit is not None and 100 < limit < 448
        tr = stt.transcribe_sync(FIXTURES / memo["file"], list(hotwords))  # a huge wanted limit does not raise
    finally:
        stt.close()
    assert tr.text
