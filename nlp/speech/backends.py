"""Synchronous whisper engines. Each is loaded once and called from worker threads.

Why two: faster-whisper (CTranslate2, int8) is the production engine — about 1.6x faster than
openai-whisper on CPU and ~330 MB resident. openai-whisper (torch) is an optional fallback for
machines where CTranslate2 is unavailable or to cross-check accuracy; it runs from the same bundled
weights via :mod:`nlp.speech.convert`.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from nlp.speech.convert import alignment_heads_from_config

_WINDOW_SAMPLES = 30 * 16_000  # whisper's input window
_MAX_LENGTH = 448  # whisper's text context: prompt and output tokens together


@dataclass(frozen=True)
class DecodeOptions:
    """What one transcription call needs besides audio; built by the service from SpeechConfig."""

    language: str
    beam_size: int
    temperatures: tuple[float, ...]
    initial_prompt: str
    hotwords: tuple[str, ...] = ()
    word_probabilities: bool = False  # ask for per-word probabilities (costs one alignment pass)
    # Seconds of encoder window (see FasterWhisperEngine): the audio plus encoder_margin, at least
    # encoder_min, at most whisper's 30 s. 30/any = the classic full window.
    encoder_min: float = 30.0
    encoder_margin: float = 5.0
    # At most this many tokens per piece (None: up to whisper's 448 with the prompt). A repetition
    # loop runs to the limit on every try of the temperature fallback; speech needs far fewer.
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class RawSegment:
    """One segment as the engine wrote it; ``words`` (text, probability) when asked for and known.

    The word texts concatenated give ``text`` (whisper splits Chinese into characters or tokens).
    """

    text: str
    words: tuple[tuple[str, float], ...] | None = None


class Engine(Protocol):
    """A loaded model. ``transcribe`` returns the raw segments (or plain texts), blocking.

    ``timings`` (passed only to engines with ``reports_timings = True``) is filled with the wall
    seconds of the engine's own stages of that call (``encode``, ``generate``, ``align``, and
    ``engine`` for the whole call), added up when a stage runs more than once.
    """

    name: str

    def transcribe(self, samples: np.ndarray, options: DecodeOptions,
                   timings: dict[str, float] | None = None) -> list[RawSegment] | list[str]: ...


def encoder_window_frames(samples: int, options: DecodeOptions) -> int:
    """Mel frames (100 per second) the encoder sees for ``samples`` of 16 kHz audio.

    Whisper pads every input to a 30 s window and the encoder's cost grows faster than linearly
    with it (on this CPU, int8, one thread: 30 s 0.91 s, 20 s 0.34 s, 15 s 0.21 s), while a
    memo's pieces are 3–15 s long. CTranslate2 accepts a shorter window; whisper was trained on
    30 s windows with silence after the speech, so some silence margin is kept after the audio
    (a window cut right after the speech measured worse: dev CER 0.114 → 0.125).
    """
    content = -(-samples // 160)
    wanted = max(options.encoder_min * 100, content + options.encoder_margin * 100)
    frames = int(min(_WINDOW_SAMPLES // 160, wanted))
    return frames + frames % 2  # the encoder halves the frame count


def _windowed_model_class() -> type:
    """faster-whisper's WhisperModel with a shorter encoder window and per-stage timings.

    The per-call state (window, timings) is thread-local: each piece of a memo is decoded on its
    own thread with the one shared model, and faster-whisper calls these hooks on that thread.
    """
    from faster_whisper import WhisperModel  # noqa: PLC0415

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.call = threading.local()

        def _timed(self, stage: str, started: float) -> None:
            timings = getattr(self.call, "timings", None)
            if timings is not None:
                timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started

        def encode(self, features: np.ndarray) -> object:
            window = getattr(self.call, "window", None)
            if window is not None and features.shape[-1] > window:
                # features are the piece's mel frames zero-padded to 30 s: keep the window only.
                # A contiguous copy held here: CTranslate2's StorageView borrows the array's memory,
                # and a copy made inside faster-whisper would be freed while still being read.
                features = np.ascontiguousarray(features[..., :window])
            started = time.perf_counter()
            try:
                return super().encode(features)
            finally:
                self._timed("encode", started)

        def generate_with_fallback(self, *args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return super().generate_with_fallback(*args, **kwargs)
            finally:
                self._timed("generate", started)

        def find_alignment(self, *args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return super().find_alignment(*args, **kwargs)
            finally:
                self._timed("align", started)

    return WindowedWhisperModel


class FasterWhisperEngine:
    """faster-whisper on CPU. ``num_workers`` lets that many threads decode at once, sharing weights."""

    name = "faster-whisper"
    reports_timings = True

    def __init__(self, model_dir: Path, *, compute_type: str, cpu_threads: int, num_workers: int) -> None:
        self._model = _windowed_model_class()(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            local_files_only=True,  # never reach for a hub
        )

    def transcribe(self, samples: np.ndarray, options: DecodeOptions,
                   timings: dict[str, float] | None = None) -> list[RawSegment]:
        call = self._model.call
        call.window = encoder_window_frames(len(samples), options)
        call.timings = timings
        try:
            return self._transcribe(samples, options, timings)
        finally:
            call.window = call.timings = None

    def _max_new_tokens(self, options: DecodeOptions) -> int | None:
        """``options.max_new_tokens`` within what the prompt leaves of whisper's 448 tokens.

        faster-whisper refuses (ValueError) a limit that does not fit beside the prompt; when the
        wanted limit does not fit, the room left is the same limit whisper would apply anyway.
        """
        if options.max_new_tokens is None:
            return None
        tokenizer = self._model.hf_tokenizer
        hotwords = "、".join(options.hotwords)
        used = 1 + (min(len(tokenizer.encode(" " + hotwords).ids), _MAX_LENGTH // 2 - 1) if hotwords else 0)
        if options.initial_prompt:
            used += min(len(tokenizer.encode(" " + options.initial_prompt.strip()).ids), _MAX_LENGTH // 2 - 1)
        used += 4  # start of transcript, language, task, no timestamps
        return max(1, min(options.max_new_tokens, _MAX_LENGTH - used))

    def _transcribe(self, samples: np.ndarray, options: DecodeOptions,
                    timings: dict[str, float] | None) -> list[RawSegment]:
        started = time.perf_counter()
        segments, _info = self._model.transcribe(
            samples,
            language=options.language,
            task="transcribe",
            beam_size=options.beam_size,
            best_of=max(1, options.beam_size),
            max_new_tokens=self._max_new_tokens(options),
            temperature=list(options.temperatures),
            initial_prompt=options.initial_prompt or None,
            hotwords="、".join(options.hotwords) or None,
            # A memo is one thought; carrying text across 30 s windows only feeds repetition loops.
            condition_on_previous_text=False,
            without_timestamps=True,
            word_timestamps=options.word_probabilities,
            vad_filter=False,  # the service cuts long memos at pauses itself (nlp.speech.split)
            # No repetition_penalty: it truncated a 22 s memo to one sentence in measurements.
        )
        if options.word_probabilities and len(samples) <= _WINDOW_SAMPLES:
            # Without timestamps one 30 s window is one segment. With word timestamps faster-whisper
            # then re-seeks to the last word's end and encodes + decodes a second window for the
            # tail (≈+50% time, and the tail is silence or a hallucination): stop after the first.
            segments = itertools.islice(segments, 1)
        out = []
        for segment in segments:  # the generator decodes lazily: consume here
            words = (tuple((w.word, float(w.probability)) for w in segment.words)
                     if options.word_probabilities and segment.words is not None else None)
            out.append(RawSegment(segment.text, words))
        if timings is not None:
            timings["engine"] = timings.get("engine", 0.0) + time.perf_counter() - started
        return out


class OpenAIWhisperEngine:
    """openai-whisper on CPU (fp32). Calls are serialised: its decoder installs kv-cache hooks on
    the shared modules per call, so two concurrent decodes would corrupt each other's cache.
    """

    name = "openai-whisper"

    def __init__(self, checkpoint: Path, *, threads: int, model_dir: Path | None = None) -> None:
        import torch  # noqa: PLC0415
        import whisper  # noqa: PLC0415

        torch.set_num_threads(max(1, threads))
        self._model = whisper.load_model(str(checkpoint), device="cpu")  # a path: loads offline
        self._model.eval()
        if model_dir is not None:
            _set_alignment_heads(self._model, alignment_heads_from_config(model_dir))
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray, options: DecodeOptions,
                   timings: dict[str, float] | None = None) -> list[RawSegment]:
        import torch  # noqa: PLC0415

        # openai-whisper has no hotwords; put them before the prompt as faster-whisper does.
        prompt = "。".join(p for p in ("、".join(options.hotwords), options.initial_prompt) if p)
        decode: dict[str, object] = {"language": options.language, "task": "transcribe", "fp16": False,
                                     "without_timestamps": True}
        if options.beam_size > 1:
            decode.update(beam_size=options.beam_size, best_of=options.beam_size)
        with self._lock, torch.inference_mode():
            result = self._model.transcribe(
                samples.astype(np.float32, copy=False),
                temperature=tuple(options.temperatures),
                initial_prompt=prompt or None,
                condition_on_previous_text=False,
                word_timestamps=options.word_probabilities,
                verbose=None,
                **decode,
            )
        out = []
        for segment in result["segments"]:
            words = segment.get("words") if options.word_probabilities else None
            out.append(RawSegment(str(segment["text"]), tuple((str(w["word"]), float(w["probability"])) for w in words)
                                  if words else None))
        return out


def _set_alignment_heads(model: object, heads: Sequence[tuple[int, int]]) -> None:
    """openai-whisper keeps alignment heads outside the checkpoint; restore them from config.json."""
    dims = model.dims  # type: ignore[attr-defined]
    if not heads or any(l >= dims.n_text_layer or h >= dims.n_text_head for l, h in heads):
        return
    mask = np.zeros((dims.n_text_layer, dims.n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    model.set_alignment_heads(base64.b85encode(gzip.compress(mask.tobytes())))  # type: ignore[attr-defined]
