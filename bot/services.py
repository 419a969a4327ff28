"""Heavy shared services (lexicon, extractor, speech model, playbook), created on first use.

Loading the speech model costs seconds and hundreds of MB, so nothing is loaded until a
handler needs it, and then exactly once per process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Config, SpeechSection

if TYPE_CHECKING:
    from cards.playbook import Playbook, PlaybookService
    from nlp.extract import Extractor
    from nlp.lexicon import Lexicon
    from nlp.speech import SpeechConfig


def speech_config(section: SpeechSection, lexicon_dir: str = "") -> SpeechConfig:
    """The ``[speech]`` section as the speech module's own settings (one conversion for all).

    ``lexicon_dir`` is ``[nlp] lexicon_dir``: context correction reads the same lexicon as
    extraction, so there is no second setting for it.
    """
    from nlp.speech import SpeechConfig

    return SpeechConfig(
        backend=section.backend,
        model=section.model or None,
        cache_dir=Path(section.cache_dir).expanduser() if section.cache_dir else None,
        beam_size=section.beam_size,
        max_seconds=section.max_seconds,
        concurrency=section.concurrency,
        correct_terms=section.correct_terms,
        parallel_pieces=section.parallel_pieces,
        split_min_seconds=section.split_min_seconds,
        long_beam_size=section.long_beam_size,
        long_memo_seconds=section.long_memo_seconds,
        word_probabilities=section.word_probabilities,
        prompt_hotword_chars=section.prompt_hotword_chars,
        warm_on_load=section.warm_on_load,
        trim_memory=section.trim_memory,
        repair_loops=section.repair_loops,
        context_correction=section.context_correction,
        spell_numbers=section.spell_numbers,
        encoder_min_seconds=section.encoder_min_seconds,
        encoder_margin_seconds=section.encoder_margin_seconds,
        names_and_dates=section.names_and_dates,
        max_tokens_per_second=section.max_tokens_per_second,
        malloc_arenas=section.malloc_arenas,
        lexicon_dir=lexicon_dir or None,
    )


class Services:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._lexicon: Lexicon | None = None
        self._extractor: Extractor | None = None
        self._stt: Any = None
        self._playbook: PlaybookService | None = None

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            from nlp.lexicon import load_lexicon

            self._lexicon = load_lexicon(self._config.nlp.lexicon_dir or None)
        return self._lexicon

    @property
    def extractor(self) -> Extractor:
        if self._extractor is None:
            from nlp.extract import Extractor

            self._extractor = Extractor(self.lexicon, tz=self._config.timezone)
        return self._extractor

    @property
    def stt(self) -> Any:
        """The speech-to-text backend (``nlp.speech``), loaded lazily."""
        if self._stt is None:
            from nlp.speech import create_stt

            self._stt = create_stt(speech_config(self._config.speech, self._config.nlp.lexicon_dir))
        return self._stt

    async def warm_up(self) -> None:
        """Load the lexicon, extractor and speech model before the first message needs them."""
        extractor = self.extractor
        warm = getattr(extractor, "warm_up", None)
        if warm is not None:
            await asyncio.to_thread(warm)
        stt_warm = getattr(self.stt, "warmup", None)
        if stt_warm is not None:
            await stt_warm()

    def close(self) -> None:
        if self._stt is not None:
            self._stt.close()
            self._stt = None

    def set_playbook(self, service: PlaybookService) -> None:
        """Replace the playbook service (tests, or a custom source of talk tracks)."""
        self._playbook = service

    @property
    def playbook_service(self) -> PlaybookService:
        """Holds the current playbook and reloads it when ``[playbook] dir`` changes."""
        if self._playbook is None:
            from cards.playbook import PlaybookService

            p = self._config.playbook
            self._playbook = PlaybookService(p.dir or None, watch=p.watch)
        return self._playbook

    @property
    def playbook(self) -> Playbook:
        """The current (last valid) playbook; re-checked against the files when watched."""
        return self.playbook_service.current
