"""The async speech-to-text service: config, lazy model, bounded concurrency, error mapping.

Why this shape: the bot runs on one event loop and must keep answering other chats while a memo
is transcribed (~1–2 s of CPU per memo), so decoding and inference run in threads; a semaphore
bounds how many memos are in flight so a burst of voice messages cannot exhaust memory or
thrash the two cores. The model (≈330 MB) is loaded once per process on first use, under a lock,
and warmed with a one-second decode so the first memo does not pay CTranslate2's first call.

Latency: a memo of ``split_min_seconds`` or more is cut at pauses (:mod:`nlp.speech.split`) into
``parallel_pieces`` pieces decoded at the same time, one core each (the model serves that many
calls at once; weights are shared, so memory barely grows). The pieces' texts are joined in order.

Uncertainty, never guessed: ``Transcript.spans`` is a tuple of :class:`~nlp.speech.spans.Span`
``(start, end, text, probability, corrected)`` covering ``Transcript.text`` end to end, in order
(``text[start:end] == span.text``). ``probability`` is whisper's word probability (the weakest
word when a span merges several); ``corrected`` is True when term correction rewrote that text,
i.e. what was heard was replaced by a lexicon term — a guess, to be shown as unsure whatever its
probability. :func:`uncertain_spans(transcript, threshold) <uncertain_spans>` lists the spans a
card should flag (probability below ``threshold`` or corrected; punctuation never). A later repair
of the text (the voice handler's surname repair) keeps the spans valid through
:meth:`Transcript.revise`, which marks the changed characters corrected. Spans are empty when
``word_probabilities`` is off or the engine gives none. Card code typically asks whether a field
value's character range overlaps an uncertain span (``截止：周五？``).

Term correction (:mod:`nlp.speech.correct`): near-homophones of the hotwords, and with
``context_correction`` every lexicon term, the lexicon's hospital names, brand homophones near
price/competitor words, 周N heard as 中N, and surnames before titles; with ``names_and_dates``
also places at the head of a hospital name, the hospital-type word before 医院, date words and
前 heard as 钱. The hotwords a memo gets start with the sender's own accounts, contacts and
products (``handlers.notes.voice.memo_hotwords``). With ``spell_numbers``
digits are written as spoken Chinese numerals first (:mod:`nlp.speech.numbers`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from nlp.speech.audio import (
    DecodedAudio,
    check_not_silent,
    decode_audio,
    read_audio_bytes,
)
from nlp.speech.backends import DecodeOptions, Engine, RawSegment
from nlp.speech.correct import ContextTerms, context_terms, correct_in_context
from nlp.speech.errors import SpeechError
from nlp.speech.numbers import spell_numbers
from nlp.speech.phonetic import load_tables
from nlp.speech.spans import Span, Tracked, uncertain
from nlp.speech.split import piece_count, split
from nlp.speech.text import (
    DEFAULT_PROMPT,
    MAX_PROMPT_HOTWORD_CHARS,
    clean_hotwords,
    collapse_loops,
    hotword_char_budget,
    is_echo,
    is_hallucination,
    prompt_hotwords,
    strip_prompt_leak,
    tidy,
    to_simplified,
)

log = logging.getLogger(__name__)

Backend = Literal["faster-whisper", "openai-whisper"]
BUNDLED_NAMES = frozenset({"base", "whisper-base"})


@dataclass(frozen=True)
class Transcript:
    """A memo's text (simplified Chinese), its duration, the processing wall time, the engine.

    ``spans`` cover ``text`` (see :mod:`nlp.speech.spans`): ``(start, end, text, probability,
    corrected)``; empty when the engine gave no word probabilities. Use :func:`uncertain_spans`.
    """

    text: str
    audio_seconds: float
    seconds: float
    backend: str
    spans: tuple[Span, ...] = ()
    pieces: int = 1
    # Where ``seconds`` went, in order: ("audio", s) read + decode + resample, ("split", s),
    # ("decode", s) all pieces (wall, they run in parallel), per piece ("piece1.encode", s),
    # ("piece1.generate", s), ("piece1.align", s), ("piece1.other", s) (features, prompt,
    # segment handling), then ("postprocess", s) (script, loops, numbers, term correction) and
    # ("trim", s). Logged and printed by benchmarks/voice_notes_bench.py.
    stages: tuple[tuple[str, float], ...] = ()

    def revise(self, new_text: str) -> Transcript:
        """This transcript after a later repair of its text (e.g. the handler's surname repair).

        Spans are carried over; characters the repair changed become corrected spans.
        """
        if new_text == self.text:
            return self
        if not self.spans:
            return replace(self, text=new_text)
        from difflib import SequenceMatcher  # noqa: PLC0415

        moved = _tracked_from_spans(self.text, self.spans).rewrite(new_text)
        group = 1 + max((c.corrected for c in moved.info), default=0)
        for tag, _i1, _i2, j1, j2 in SequenceMatcher(None, self.text, new_text, autojunk=False).get_opcodes():
            if tag in ("replace", "insert"):
                moved.mark_corrected(j1, j2, group)
                group += 1
        return replace(self, text=new_text, spans=moved.spans())


def uncertain_spans(transcript: Transcript, threshold: float = 0.5) -> list[Span]:
    """The spans of ``transcript`` the card should show as unsure.

    A span is unsure when whisper's probability for it is below ``threshold`` or when term
    correction rewrote it. Punctuation-only spans are never returned.
    """
    return uncertain(transcript.spans, threshold)


def _tracked_from_spans(text: str, spans: Sequence[Span]) -> Tracked:
    from nlp.speech.spans import CharInfo  # noqa: PLC0415

    info = [CharInfo(None, -1)] * len(text)
    for index, span in enumerate(spans):
        for i in range(span.start, min(span.end, len(text))):
            info[i] = CharInfo(span.probability, index, index if span.corrected else -1)
    return Tracked(text, info)


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
    # -- added for issue 16 (latency, uncertainty) ------------------------------------------
    # A memo at least split_min_seconds long is cut at pauses into parallel_pieces pieces that are
    # decoded at the same time (one core each); 1 = never cut (memos over 28 s are still cut).
    parallel_pieces: int = 2
    split_min_seconds: float = 10.0
    # Beam size by memo length: a memo of long_memo_seconds or more is decoded with at most
    # long_beam_size (beam 3 measured as accurate as 5 on all three voice sets, ~15% faster).
    long_beam_size: int = 3
    long_memo_seconds: float = 15.0
    # Per-word probabilities → Transcript.spans (one extra alignment pass per piece).
    word_probabilities: bool = True
    # Hotword characters allowed in the prompt (also bounded by the memo length, text.py).
    prompt_hotword_chars: int = MAX_PROMPT_HOTWORD_CHARS
    # Decode a little audio when the model is loaded so the first memo does not pay CT2's warm-up.
    warm_on_load: bool = True
    # Term correction also from the whole lexicon with context (hospital names, brand homophones
    # near price/competitor words, surnames before titles); lexicon_dir as [nlp] lexicon_dir.
    context_correction: bool = True
    lexicon_dir: str | Path | None = None
    # With context correction: places at the head of a hospital name (临疑市 → 临沂市), the
    # hospital-type word before 医院 (第二眼迷医院 → 第二人民医院), date words from homophones
    # (原蛋 → 元旦) and 前 heard as 钱 after a day; every edit is an unsure span.
    names_and_dates: bool = True
    # Collapse decoder repetition loops and cut copied pieces of the prompt out of a segment.
    repair_loops: bool = True
    # Give freed heap back to the OS after each memo (glibc malloc_trim; ~20 ms). Without it the
    # worker threads' malloc arenas keep ~200 MB of freed decoder buffers resident.
    trim_memory: bool = True
    # Numbers as spoken: whisper's digits back to Chinese numerals (120万 → 一百二十万), one form.
    spell_numbers: bool = True
    # Encoder window (backends.encoder_window_frames): each piece's audio plus encoder_margin_seconds
    # of silence, at least encoder_min_seconds; 30 = whisper's full window (the previous behaviour).
    encoder_min_seconds: float = 15.0
    encoder_margin_seconds: float = 5.0
    # Output tokens allowed per second of a piece (plus 24); 0 = up to whisper's limit. The fastest
    # dev memos are under 6 characters (~9 tokens) a second; a repetition loop would otherwise run
    # to 448 tokens on each fallback temperature, with beam/best_of candidates in memory.
    max_tokens_per_second: float = 12.0
    # glibc malloc arenas for the whole process (limit_malloc_arenas), set when the service is
    # created; 0 = glibc's default (8 per core).
    malloc_arenas: int = 2

    def __post_init__(self) -> None:
        if self.backend not in ("faster-whisper", "openai-whisper"):
            raise ValueError(f"unknown speech backend {self.backend!r}")
        if self.beam_size < 1 or self.concurrency < 1 or self.cpu_threads < 1 or self.max_seconds <= 0:
            raise ValueError("beam_size, concurrency, cpu_threads and max_seconds must be positive")
        if self.long_beam_size < 1:
            raise ValueError("long_beam_size must be positive")
        if self.parallel_pieces < 1 or self.split_min_seconds < 0 or self.prompt_hotword_chars < 0:
            raise ValueError("parallel_pieces must be positive; split_min_seconds, prompt_hotword_chars >= 0")
        if not self.temperatures:
            raise ValueError("temperatures must not be empty")
        if self.max_tokens_per_second < 0 or self.malloc_arenas < 0:
            raise ValueError("max_tokens_per_second and malloc_arenas must be >= 0")
        if not 1.0 <= self.encoder_min_seconds <= 30.0 or self.encoder_margin_seconds < 0:
            raise ValueError("encoder_min_seconds must be within 1–30, encoder_margin_seconds >= 0")


@runtime_checkable
class SpeechToText(Protocol):
    async def transcribe(self, audio: bytes | Path, *, hotwords: Sequence[str] = ()) -> Transcript: ...


class LocalSpeechToText:
    """Whisper on this machine. Create with :func:`create_stt`; call :meth:`close` at shutdown."""

    def __init__(self, config: SpeechConfig) -> None:
        self.config = config
        self.backend = config.backend
        if config.malloc_arenas:
            limit_malloc_arenas(config.malloc_arenas)
        self._engine: Engine | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="genjin-stt")
        # pieces of one memo run here (a separate pool: memo threads wait on their pieces)
        self._pieces = ThreadPoolExecutor(max_workers=config.parallel_pieces, thread_name_prefix="genjin-stt-piece")
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.load_seconds: float | None = None
        self._context: ContextTerms | None = None
        self._context_loaded = False
        self._context_lock = threading.Lock()

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
        self._pieces.shutdown(wait=True, cancel_futures=True)

    # -- blocking internals (worker threads) -------------------------------------------------
    def engine(self) -> Engine:
        """The loaded engine; the first caller loads it, concurrent callers wait for that load."""
        if self._engine is None:
            with self._load_lock:
                if self._engine is None:
                    started = time.perf_counter()
                    engine = load_engine(self.config)
                    self.context()
                    if self.config.correct_terms:
                        load_tables()
                    if self.config.warm_on_load:
                        _warm(engine, self.config)
                    self._engine = engine
                    self.load_seconds = time.perf_counter() - started
        return self._engine

    def context(self) -> ContextTerms | None:
        """The lexicon's context terms (loaded once), or None when context correction is off."""
        if self.config.context_correction and not self._context_loaded:
            with self._context_lock:
                if not self._context_loaded:
                    from nlp.lexicon import load_lexicon  # noqa: PLC0415

                    self._context = context_terms(load_lexicon(self.config.lexicon_dir or None),
                                                  names_and_dates=self.config.names_and_dates)
                    self._context_loaded = True
        return self._context if self.config.context_correction else None

    def prepare(self, audio: bytes | Path) -> DecodedAudio:
        """Decode and vet the audio (length, silence) without touching the model."""
        decoded = decode_audio(read_audio_bytes(audio), max_seconds=self.config.max_seconds)
        check_not_silent(decoded, self.config.silence_dbfs)
        return decoded

    def transcribe_sync(self, audio: bytes | Path, hotwords: Sequence[str] = ()) -> Transcript:
        started = time.perf_counter()
        stages: list[tuple[str, float]] = []
        decoded = self.prepare(audio)
        words = tuple(clean_hotwords([*self.config.default_hotwords, *hotwords]))
        engine = self.engine()
        mark = time.perf_counter()
        stages.append(("audio", mark - started))
        pieces = split(decoded.samples, piece_count(decoded.seconds, min_split_seconds=self.config.split_min_seconds,
                                                     workers=self.config.parallel_pieces))
        stages.append(("split", time.perf_counter() - mark))
        beam = self.config.beam_size
        if decoded.seconds >= self.config.long_memo_seconds:
            beam = min(beam, self.config.long_beam_size)
        timings: list[dict[str, float]] = [{} for _ in pieces]
        mark = time.perf_counter()
        try:
            if len(pieces) == 1:
                outputs = [self._decode_piece(engine, pieces[0], words, beam, timings[0])]
            else:
                futures = [self._pieces.submit(self._decode_piece, engine, piece, words, beam, timing)
                           for piece, timing in zip(pieces, timings)]
                outputs = [f.result() for f in futures]
        except Exception as exc:  # noqa: BLE001 - an engine crash on one memo must not kill the bot
            log.exception("speech engine %s failed", engine.name)
            raise SpeechError("corrupt", detail=f"{engine.name}: {type(exc).__name__}: {exc}") from exc
        stages.append(("decode", time.perf_counter() - mark))
        stages.extend(_piece_stages(timings))
        mark = time.perf_counter()
        segments = [segment for output in outputs for segment in output]
        tracked = self._postprocess_tracked(segments, words)
        spans = tracked.spans() if any(c.probability is not None for c in tracked.info) else ()
        stages.append(("postprocess", time.perf_counter() - mark))
        if self.config.trim_memory:
            mark = time.perf_counter()
            _trim_heap()
            stages.append(("trim", time.perf_counter() - mark))
        return Transcript(text=tracked.text, audio_seconds=round(decoded.seconds, 3),
                          seconds=round(time.perf_counter() - started, 3), backend=engine.name,
                          spans=spans, pieces=len(pieces), stages=tuple((k, round(v, 4)) for k, v in stages))

    def _decode_piece(self, engine: Engine, samples: object, words: Sequence[str],
                      beam: int, timings: dict[str, float] | None = None) -> list[RawSegment | str]:
        started = time.perf_counter()
        seconds = len(samples) / 16_000  # type: ignore[arg-type]
        budget = min(hotword_char_budget(seconds), self.config.prompt_hotword_chars)
        options = DecodeOptions(
            language=self.config.language,
            beam_size=beam,
            temperatures=self.config.temperatures,
            initial_prompt=self.config.initial_prompt,
            # The prompt gets the leading hotwords that fit; correction/echo checks use them all.
            hotwords=prompt_hotwords(words, budget) if budget > 0 else (),
            word_probabilities=self.config.word_probabilities,
            encoder_min=self.config.encoder_min_seconds,
            encoder_margin=self.config.encoder_margin_seconds,
            max_new_tokens=(int(seconds * self.config.max_tokens_per_second) + 24
                            if self.config.max_tokens_per_second > 0 else None),
        )
        if getattr(engine, "reports_timings", False):
            out = list(engine.transcribe(samples, options, timings))  # type: ignore[arg-type]
        else:
            out = list(engine.transcribe(samples, options))  # type: ignore[arg-type]
        if timings is not None:
            timings["total"] = time.perf_counter() - started
        return out

    def _postprocess(self, segments: Sequence[RawSegment | str], hotwords: Sequence[str]) -> str:
        return self._postprocess_tracked(segments, hotwords).text

    def _postprocess_tracked(self, segments: Sequence[RawSegment | str], hotwords: Sequence[str]) -> Tracked:
        kept: list[Tracked] = []
        echoed = False
        word_index = 0
        for raw in segments:
            segment = raw if isinstance(raw, RawSegment) else RawSegment(str(raw))
            if segment.words:
                tracked = Tracked.from_words(segment.words, word_index).rewrite(segment.text)
                word_index += len(segment.words)
            else:
                tracked = Tracked.plain(segment.text)
            tracked = tracked.apply(to_simplified).apply(tidy)
            text = tracked.text
            if not text or is_hallucination(text):
                continue
            if is_echo(text, self.config.initial_prompt, hotwords):
                echoed = True
                continue
            if self.config.repair_loops:
                tracked = tracked.apply(collapse_loops).apply(
                    lambda t: strip_prompt_leak(t, self.config.initial_prompt))
                if not tracked.text.strip():
                    echoed = True
                    continue
            kept.append(tracked)
        joined = Tracked("", [])
        for part in kept:
            joined = joined + part
        joined = joined.apply(tidy)
        if self.config.spell_numbers:
            joined = joined.apply(spell_numbers)
        if not joined.text:
            if echoed:
                raise SpeechError("echo", detail="output only repeated the prompt/hotwords")
            raise SpeechError("empty", detail="no speech recognised")
        if self.config.correct_terms and (hotwords or self.config.context_correction):
            text, edits = correct_in_context(joined.text, hotwords, self.context())
            joined = joined.rewrite(text)
            for group, (start, end, _heard) in enumerate(edits):
                joined.mark_corrected(start, end, group)
        return joined

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        """One semaphore per event loop (asyncio primitives bind to the loop that first waits)."""
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.config.concurrency)
        return semaphore


def _piece_stages(timings: Sequence[dict[str, float]]) -> list[tuple[str, float]]:
    """Each piece's engine stages as ("pieceN.stage", seconds); "other" = the rest of that piece."""
    out: list[tuple[str, float]] = []
    for number, timing in enumerate(timings, 1):
        known = 0.0
        for stage in ("encode", "generate", "align"):
            if stage in timing:
                out.append((f"piece{number}.{stage}", timing[stage]))
                known += timing[stage]
        if "total" in timing:
            out.append((f"piece{number}.other", max(0.0, timing["total"] - known)))
    return out


def _libc() -> object:
    """glibc, loaded once (False elsewhere: musl, macOS)."""
    global _LIBC  # noqa: PLW0603
    if _LIBC is None:
        import ctypes  # noqa: PLC0415
        import ctypes.util  # noqa: PLC0415

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC = libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else False
        except OSError:
            _LIBC = False
    return _LIBC


def _trim_heap() -> None:
    """glibc only: return free heap pages to the OS (a no-op elsewhere)."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)  # type: ignore[attr-defined]


_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas for the process (mallopt M_ARENA_MAX); False when not possible.

    Why: glibc gives threads their own arenas (up to 8 per core) and a freed block stays in its
    arena. The speech threads (memo workers, piece workers, CTranslate2's) each grow an arena to
    their largest decode, and the peaks add up: a memo whose decoding falls back to temperature
    sampling took the speech-only process from 446 to 578 MB with glibc's default, 402 to 474 MB
    with two arenas, 388 to 401 MB with one (voice-gen-dev; peak over the set 578 / 474 / 404 MB).
    In the whole bot (voice_notes_bench, runtime + extraction + speech) one arena gained nothing
    over two (peak 647 vs 654 MB over voice-dev + voice-gen-dev; the fallback memo varies run to
    run by ±20 MB) and may cost wall time (~21 s memo, median 3.64 vs 3.37 s, noisy box): two.
    Process-wide, so set once when the speech service is created, before its threads exist.
    """
    libc = _libc()
    return bool(arenas > 0 and libc and libc.mallopt(_M_ARENA_MAX, arenas) == 1)  # type: ignore[attr-defined]


_LIBC: object = None


def _warm(engine: Engine, config: SpeechConfig) -> None:
    """One tiny decode so CT2's first-call allocations happen at load, not on a rep's memo."""
    import numpy as np  # noqa: PLC0415

    t = np.arange(16_000, dtype=np.float32) / 16_000
    try:
        engine.transcribe((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
                          DecodeOptions(language=config.language, beam_size=1, temperatures=(0.0,),
                                        initial_prompt="", word_probabilities=config.word_probabilities,
                                        encoder_min=config.encoder_min_seconds,
                                        encoder_margin=config.encoder_margin_seconds))
    except Exception:  # noqa: BLE001 - warming is best effort; a real memo will surface real errors
        log.warning("speech warm-up failed", exc_info=True)


def load_engine(config: SpeechConfig) -> Engine:
    """Resolve the model (never from the network) and load the configured backend."""
    if config.backend == "faster-whisper":
        from nlp.speech.backends import FasterWhisperEngine  # noqa: PLC0415

        return FasterWhisperEngine(
            resolve_ct2_dir(config),
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            num_workers=max(config.concurrency, config.parallel_pieces),
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
