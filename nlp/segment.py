"""Private jieba tokenizer with the domain lexicon, built for a fast start-up.

Why not the global jieba: other code (speech, search) may configure it differently, and its
350k-word dictionary costs ~1.3 s to load even from cache.  We build a trimmed dictionary
(jieba words with frequency >= ``min_freq`` plus every lexicon term at a high frequency),
store it once in a writable cache directory together with jieba's own prefix-dict cache, and
initialise lazily on first use.  The trimmed dictionary loads in ~0.3 s.  Cutting runs without
the HMM: unknown names fall apart into single characters, which is harmless for our only use
(finding where a hospital name starts) and keeps cutting fast and deterministic.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable

LEXICON_FREQ = 200000
MEMO_SIZE = 4096  # high enough that lexicon terms beat general words in segmentation


def cache_dir() -> Path:
    """$GENJIN_CACHE_DIR, else $XDG_CACHE_HOME/genjin, else ~/.cache/genjin; a temp dir if unwritable."""
    env = os.environ.get("GENJIN_CACHE_DIR")
    candidates = [Path(env)] if env else []
    xdg = os.environ.get("XDG_CACHE_HOME")
    candidates.append(Path(xdg) / "genjin" if xdg else Path.home() / ".cache" / "genjin")
    candidates.append(Path(tempfile.gettempdir()) / f"genjin-cache-{os.getuid() if hasattr(os, 'getuid') else 0}")
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
            return path
        except OSError:
            continue
    raise OSError("no writable cache directory for the jieba dictionary")


class Segmenter:
    """Lazily initialised private ``jieba.Tokenizer`` loaded with the lexicon words."""

    def __init__(self, words: Iterable[str], min_freq: int = 20, directory: Path | None = None) -> None:
        self._words = sorted({w for w in words if w and " " not in w})
        self._min_freq = min_freq
        self._directory = directory
        self._tokenizer = None
        self._memo: dict[str, list[str]] = {}  # hospital-name windows repeat a lot across messages

    def initialize(self) -> None:
        if self._tokenizer is not None:
            return
        import jieba

        logging.getLogger("jieba").setLevel(logging.WARNING)  # no "Building prefix dict" chatter
        directory = self._directory or cache_dir()
        dictionary = self._dictionary_file(directory, jieba)
        tokenizer = jieba.Tokenizer(dictionary=str(dictionary))
        tokenizer.tmp_dir = str(directory)
        tokenizer.initialize()
        self._tokenizer = tokenizer

    def cut(self, text: str) -> list[str]:
        cached = self._memo.get(text)
        if cached is not None:
            return list(cached)
        self.initialize()
        assert self._tokenizer is not None
        tokens = self._tokenizer.lcut(text, HMM=False)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[text] = tokens
        return list(tokens)

    def is_word(self, text: str) -> bool:
        """Is ``text`` a word of the (trimmed) dictionary, e.g. "分管", "项目", "年轻"?"""
        self.initialize()
        assert self._tokenizer is not None
        return self._tokenizer.FREQ.get(text, 0) > 0

    def _dictionary_file(self, directory: Path, jieba_module: object) -> Path:
        source = Path(getattr(jieba_module, "__file__", "")).parent / "dict.txt"
        digest = hashlib.sha1()
        digest.update(f"{getattr(jieba_module, '__version__', '?')}|{self._min_freq}|{LEXICON_FREQ}".encode())
        digest.update("\n".join(self._words).encode("utf-8"))
        target = directory / f"genjin-jieba-{digest.hexdigest()[:16]}.txt"
        if target.exists():
            return target
        lines: list[str] = []
        with source.open(encoding="utf-8") as fh:
            for line in fh:
                parts = line.split(" ")
                if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= self._min_freq:
                    lines.append(line.rstrip("\n"))
        lines.extend(f"{w} {LEXICON_FREQ}" for w in self._words)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        self._remove_stale(directory, keep=target)
        return target

    @staticmethod
    def _remove_stale(directory: Path, keep: Path) -> None:
        """Drop dictionaries (and jieba's caches of them) built for earlier lexicon versions."""
        for old in directory.glob("genjin-jieba-*.txt"):
            if old == keep:
                continue
            digest = hashlib.md5(os.path.abspath(old).encode("utf-8", "replace")).hexdigest()  # as jieba names it
            for path in (old, directory / f"jieba.u{digest}.cache"):
                try:
                    path.unlink()
                except OSError:
                    pass
