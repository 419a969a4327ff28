"""Heavy shared services (lexicon, extractor, speech model, playbook), created on first use.

Loading the speech model costs seconds and hundreds of MB, so nothing is loaded until a
handler needs it, and then exactly once per process.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.config import Config

if TYPE_CHECKING:
    from cards.playbook import Playbook, PlaybookService
    from nlp.extract import Extractor
    from nlp.lexicon import Lexicon


class Services:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._lexicon: Lexicon | None = None
        self._extractor: Extractor | None = None
        self._stt: Any = None
        self._playbook: PlaybookService | None = None
        self._lock = asyncio.Lock()

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
            from nlp.speech import SpeechConfig, create_stt

            s = self._config.speech
            self._stt = create_stt(
                SpeechConfig(
                    backend=s.backend,
                    model=s.model or None,
                    cache_dir=s.cache_dir or None,
                    beam_size=s.beam_size,
                    max_seconds=s.max_seconds,
                    concurrency=s.concurrency,
                    correct_terms=s.correct_terms,
                )
            )
        return self._stt

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
