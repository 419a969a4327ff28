"""Heavy shared services (lexicon, extractor, speech model, playbook), created on first use.

Loading the speech model costs seconds and hundreds of MB, so nothing is loaded until a
handler needs it, and then exactly once per process.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pathlib import Path

from bot.config import Config, SpeechSection

if TYPE_CHECKING:
    from cards.playbook import Playbook, PlaybookService
    from nlp.speech import SpeechConfig
    from nlp.extract import Extractor
    from nlp.lexicon import Lexicon


def speech_config(section: SpeechSection) -> SpeechConfig:
    """The ``[speech]`` section as the speech module's own settings (one conversion for all)."""
    from nlp.speech import SpeechConfig

    return SpeechConfig(
        backend=section.backend,
        model=section.model or None,
        cache_dir=Path(section.cache_dir).expanduser() if section.cache_dir else None,
        beam_size=section.beam_size,
        max_seconds=section.max_seconds,
        concurrency=section.concurrency,
        correct_terms=section.correct_terms,
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

            self._stt = create_stt(speech_config(self._config.speech))
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
