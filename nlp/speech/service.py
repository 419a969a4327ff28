"""The async speech-to-text service: config, lazy model, bounded concurrency, error mapping.

Why this shape: the bot runs on one event loop and must keep answering other chats while a memo
is transcribed (~1–2 s of CPU per memo), so decoding and inference run in threads; a semaphore
bounds how many memos are in flight so a burst of voice messages cannot exhaust memory or
thrash the two cores. The model (≈330 MB) is loaded once per process on first use, under a lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from nlp.speech.audio import (
    DecodedAudio,
    check_not_silent,
    decode_audio,
    read_audio_bytes,
)
from nlp.speech.backends import DecodeOptions, Engine
from nlp.speech.correct import correct_terms
from nlp.speech.errors import SpeechError
from nlp.speech.text import (
    DEFAULT_PROMPT,
    clean_hotwords,
    hotword_char_budget,
    is_echo,
    is_hallucination,
    prompt_hotwords,
    tidy,
    to_simplified,
)

log = logging.getLogger(__name__)

Backend = Literal["faster-whisper", "openai-whisper"]
BUNDLED_NAMES = frozenset({"base", "whisper-base"})


@dataclass(frozen=True)
class Transcript:
    """A memo's text (simplified Chinese), its duration, the processing wall time, the engine."""

    text: str
    audio_seconds: float
    seconds: float
    backend: str


@dataclass(frozen=True)
class SpeechConfig:
    """Settings for :func:`create_stt`. Defaults are the measured best on the dev memos.

    ``model``: None/"base" = the bundled whisper-base weights (assembled into ``cache_dir``); else
    a local path — a CTranslate2 directory (faster-whisper) or an openai-whisper ``.pt`` file (or a
    CTranslate2 directory, converted). Model names that would need a download are refused.
    """

    backend: Backend = "faster-whisper"
    model: str | Path | None = None
    cache_dir: Path | None = None
    beam_size: int = 5
    max_seconds: float = 120.0
    concurrency: int = 2
    cpu_threads: int = 1
    compute_type: str = "int8"
    correct_terms: bool = True
    language: str = "zh"
    initial_prompt: str = DEFAULT_PROMPT
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4)
    silence_dbfs: float = -45.0
    default_hotwords: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.backend not in ("faster-whisper", "openai-whisper"):
            raise ValueError(f"unknown speech backend {self.backend!r}")
        if self.beam_size < 1 or self.concurrency < 1 or self.cpu_threads < 1 or self.max_seconds <= 0:
            raise ValueError("beam_size, concurrency, cpu_threads and max_seconds must be positive")
        if not self.temperatures:
            raise ValueError("temperatures must not be empty")


@runtime_checkable
class SpeechToText(Protocol):
    async def transcribe(self, audio: bytes | Path, *, hotwords: Sequence[str] = ()) -> Transcript: ...


class LocalSpeechToText:
    """Whisper on this machine. Create with :func:`create_stt`; call :meth:`close` at shutdown."""

    def __init__(self, config: SpeechConfig) -> None:
        self.config = config
        self.backend = config.backend
        self._engine: Engine | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="genjin-stt")
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.load_seconds: float | None = None

    # -- public API -------------------------------------------------------------------------
    async def transcribe(self, audio: bytes | Path, *, hotwords: Sequence[str] = ()) -> Transcript:
        """Transcribe one memo. Raises :class:`SpeechError` (only) when the audio is unusable."""
        loop = asyncio.get_running_loop()
        async with self._semaphore(loop):
            return await loop.run_in_executor(self._executor, self.transcribe_sync, audio, tuple(hotwords))

    async def warmup(self) -> None:
        """Load the model now (at bot start) instead of on the first memo."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- blocking internals (worker threads) -------------------------------------------------
    def engine(self) -> Engine:
        """The loaded engine; the first caller loads it, concurrent callers wait for that load."""
        if self._engine is None:
            with self._load_lock:
                if self._engine is None:
                    started = time.perf_counter()
                    self._engine = load_engine(self.config)
                    self.load_seconds = time.perf_counter() - started
        return self._engine

    def prepare(self, audio: bytes | Path) -> DecodedAudio:
        """Decode and vet the audio (length, silence) without touching the model."""
        decoded = decode_audio(read_audio_bytes(audio), max_seconds=self.config.max_seconds)
        check_not_silent(decoded, self.config.silence_dbfs)
        return decoded

    def transcribe_sync(self, audio: bytes | Path, hotwords: Sequence[str] = ()) -> Transcript:
        started = time.perf_counter()
        decoded = self.prepare(audio)
        words = tuple(clean_hotwords([*self.config.default_hotwords, *hotwords]))
        options = DecodeOptions(
            language=self.config.language,
            beam_size=self.config.beam_size,
            temperatures=self.config.temperatures,
            initial_prompt=self.config.initial_prompt,
            # The prompt gets the leading hotwords that fit; correction/echo checks use them all.
            hotwords=prompt_hotwords(words, hotword_char_budget(decoded.seconds)),
        )
        engine = self.engine()
        try:
            segments = engine.transcribe(decoded.samples, options)
        except Exception as exc:  # noqa: BLE001 - an engine crash on one memo must not kill the bot
            log.exception("speech engine %s failed", engine.name)
            raise SpeechError("corrupt", detail=f"{engine.name}: {type(exc).__name__}: {exc}") from exc
        text = self._postprocess(segments, words)
        return Transcript(text=text, audio_seconds=round(decoded.seconds, 3),
                          seconds=round(time.perf_counter() - started, 3), backend=engine.name)

    def _postprocess(self, segments: Sequence[str], hotwords: Sequence[str]) -> str:
        kept: list[str] = []
        echoed = False
        for raw in segments:
            text = tidy(to_simplified(raw))
            if not text or is_hallucination(text):
                continue
            if is_echo(text, self.config.initial_prompt, hotwords):
                echoed = True
                continue
            kept.append(text)
        text = tidy("".join(kept))
        if not text:
            if echoed:
                raise SpeechError("echo", detail="output only repeated the prompt/hotwords")
            raise SpeechError("empty", detail="no speech recognised")
        if self.config.correct_terms and hotwords:
            text = correct_terms(text, hotwords)
        return text

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        """One semaphore per event loop (asyncio primitives bind to the loop that first waits)."""
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.config.concurrency)
        return semaphore


def load_engine(config: SpeechConfig) -> Engine:
    """Resolve the model (never from the network) and load the configured backend."""
    if config.backend == "faster-whisper":
        from nlp.speech.backends import FasterWhisperEngine  # noqa: PLC0415

        return FasterWhisperEngine(
            resolve_ct2_dir(config),
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            num_workers=config.concurrency,
        )
    from nlp.speech.backends import OpenAIWhisperEngine  # noqa: PLC0415

    checkpoint, model_dir = resolve_openai_checkpoint(config)
    return OpenAIWhisperEngine(checkpoint, threads=config.cpu_threads * config.concurrency, model_dir=model_dir)


def resolve_ct2_dir(config: SpeechConfig) -> Path:
    from nlp.speech.weights import ensure_model_dir  # noqa: PLC0415

    if config.model is None or str(config.model) in BUNDLED_NAMES:
        return ensure_model_dir(config.cache_dir)
    path = Path(config.model).expanduser()
    if path.is_dir() and (path / "model.bin").is_file():
        return path
    raise ValueError(f"faster-whisper model must be a local CTranslate2 directory, got {config.model!r}")


def resolve_openai_checkpoint(config: SpeechConfig) -> tuple[Path, Path | None]:
    """Return (checkpoint .pt, CT2 dir it came from or None), converting and caching if needed."""
    from nlp.speech.convert import write_openai_checkpoint  # noqa: PLC0415
    from nlp.speech.weights import MODEL_NAME, default_cache_dir, ensure_model_dir  # noqa: PLC0415

    cache = (config.cache_dir or default_cache_dir()).expanduser()
    if config.model is None or str(config.model) in BUNDLED_NAMES:
        ct2_dir = ensure_model_dir(cache)
        target = cache / f"{MODEL_NAME.removesuffix('-ct2')}-openai.pt"
    else:
        path = Path(config.model).expanduser()
        if path.is_file():
            return path, None
        if not (path.is_dir() and (path / "model.bin").is_file()):
            raise ValueError(f"openai-whisper model must be a local .pt file or CTranslate2 dir, got {config.model!r}")
        ct2_dir = path
        target = cache / f"{path.resolve().name}-openai.pt"
    model_bin = ct2_dir / "model.bin"
    if not target.is_file() or target.stat().st_mtime < model_bin.stat().st_mtime:
        write_openai_checkpoint(ct2_dir, target)
    return target, ct2_dir


def create_stt(config: SpeechConfig | None = None) -> LocalSpeechToText:
    """Build the service; nothing heavy happens until the first memo (or :meth:`warmup`)."""
    return LocalSpeechToText(config or SpeechConfig())
