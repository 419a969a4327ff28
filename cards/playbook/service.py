"""The running playbook: hot reload that never replaces a good playbook with a broken edit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from cards.playbook.load import PACKAGED_DIR, PlaybookError, load_playbook, playbook_files, resolve_dir
from cards.playbook.model import Playbook

Signature = tuple[tuple[str, int, int], ...]


def _signature(directory: Path) -> Signature:
    """Names, mtimes and sizes of the files: cheap to compare on every use."""
    try:
        files = playbook_files(directory)
    except OSError:
        return ()
    out: list[tuple[str, int, int]] = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            continue
        out.append((file.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class PlaybookService:
    """Holds the current playbook and reloads it when the files change.

    With ``watch`` the files' names, mtimes and sizes are compared on every use and
    every ``interval`` seconds in the background (so a broken edit is logged promptly,
    not when a rep next asks). An invalid edit is logged with its problems and the
    last good playbook keeps serving. If the configured directory is invalid at start,
    the packaged default playbook serves until it is fixed.
    """

    def __init__(
        self,
        directory: str | Path | None,
        *,
        watch: bool = True,
        interval: float = 1.0,
        log: Any = None,
        concerns: Sequence[str] | None = None,
    ) -> None:
        self.directory = resolve_dir(directory)
        self.concerns = tuple(concerns) if concerns is not None else None  # None: the packaged lexicon's
        self.watch = watch
        self.interval = interval
        self.log = log or structlog.get_logger("genjin.playbook")
        self.problems: list[str] = []
        self.reloads = 0
        self._playbook: Playbook | None = None
        self._signature: Signature | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Playbook:
        if self._playbook is None:
            self._initial_load()
        elif self.watch:
            self.refresh()
        assert self._playbook is not None
        return self._playbook

    def _initial_load(self) -> None:
        self._signature = _signature(self.directory)
        try:
            self._playbook = load_playbook(self.directory, concerns=self.concerns)
            self.problems = []
        except PlaybookError as exc:
            self.problems = exc.problems
            self.log.error("playbook.invalid", directory=str(self.directory), problems=exc.problems, serving="packaged default")
            self._playbook = load_playbook(PACKAGED_DIR, concerns=self.concerns)

    def refresh(self) -> bool:
        """Reload if the files changed. True when a new playbook was taken into use."""
        if self._playbook is None:
            self._initial_load()
            return True
        signature = _signature(self.directory)
        if signature == self._signature:
            return False
        self._signature = signature  # a broken edit is reported once, not on every use
        try:
            playbook = load_playbook(self.directory, concerns=self.concerns)
        except PlaybookError as exc:
            self.problems = exc.problems
            self.log.error("playbook.reload_rejected", directory=str(self.directory), problems=exc.problems, serving="last good playbook")
            return False
        self._playbook = playbook
        self.problems = []
        self.reloads += 1
        self.log.info("playbook.reloaded", directory=str(self.directory), entries=len(playbook.entries))
        return True

    async def start(self) -> None:
        _ = self.current
        if self.watch and self._task is None:
            self._task = asyncio.create_task(self._poll(), name="playbook-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must survive anything a file system does
                self.log.exception("playbook.watch_failed")
