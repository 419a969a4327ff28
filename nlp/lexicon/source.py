"""Reading lexicon files: the packaged data layered with an optional override directory.

Why layering lives here and not in the parsers: an override (``[nlp] lexicon_dir``) must
extend or override the packaged files the same way for every file, and every error must
name the file a key actually came from, so the parsers see one merged table per file
together with where each key originated.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Mapping

DATA_DIR = Path(__file__).resolve().parent / "data"
FILES = (
    "stages.toml", "concerns.toml", "cues.toml", "competitors.toml", "departments.toml", "titles.toml",
    "hospitals.toml", "products.toml", "holidays.toml", "required.toml", "actions.toml", "language.toml",
    "speech.toml", "places.toml",
)


class LexiconError(Exception):
    """A lexicon file is malformed; names the file, the dotted key and the problem."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")



class Source:
    """Parsed data of one lexicon file (packaged, possibly merged with an override)."""

    def __init__(self, name: str, data: dict[str, Any], display: str, extra: dict[str, Any] | None,
                 extra_display: str | None) -> None:
        self.name = name
        self.data = data
        self.display = display
        self.extra = extra or {}
        self.extra_display = extra_display

    def origin(self, key: str) -> str:
        """Which file a dotted key came from (the override wins when it sets the key)."""
        node: Any = self.extra
        for part in key.split("."):
            part = part.split("[", 1)[0]
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return self.display
        return self.extra_display or self.display

    def fail(self, key: str, message: str) -> LexiconError:
        return LexiconError(self.origin(key), key, message)

    def get(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(path, "is required")
            return default
        return table[key]

    def str_list(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...,
                 regex: bool = False) -> tuple[str, ...]:
        value = self.get(table, key, path, default)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a list of strings")
        if any(not v.strip() for v in value):
            raise self.fail(path, "must not contain empty strings")
        if regex:
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise self.fail(path, f"invalid regular expression {pattern!r}: {exc}") from None
        return tuple(dict.fromkeys(value))

    def string(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...) -> str:
        value = self.get(table, key, path, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "must be a non-empty string")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, path: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def table(self, table: Mapping[str, Any], key: str, path: str, default: Any = ...) -> dict[str, Any]:
        value = self.get(table, key, path, default)
        if not isinstance(value, dict):
            raise self.fail(path, "must be a table")
        return value

    def only(self, table: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                raise self.fail(where, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Override semantics: tables merge, lists extend, scalars replace; ``replace = true`` replaces."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and value.get("replace") is True:
            merged[key] = {k: v for k, v in value.items() if k != "replace"}
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            combined = [*merged[key], *value]
            # keyword lists are de-duplicated; other lists (holiday periods) are simply extended
            merged[key] = list(dict.fromkeys(combined)) if all(isinstance(v, str) for v in combined) else combined
        else:
            merged[key] = value
    return merged


def read_toml(path: Path, display: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(display, "", f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise LexiconError(display, "", f"cannot read: {exc}") from None


def read_sources(extra_dir: str | Path | None, names: Sequence[str] = FILES) -> dict[str, Source]:
    """Read ``names`` from the packaged data, each layered with the same file of ``extra_dir``.

    The override directory is checked as a whole (unknown file names are an error) even when
    only some files are read, so a typo in an override is reported by every entry point.
    """
    extra_path = Path(extra_dir) if extra_dir is not None else None
    if extra_path is not None and not extra_path.is_dir():
        raise LexiconError(str(extra_path), "", "override directory does not exist")
    if extra_path is not None:
        for unknown in sorted(p.name for p in extra_path.glob("*.toml") if p.name not in FILES):
            raise LexiconError(str(extra_path / unknown), "", f"unknown lexicon file (expected one of: {', '.join(FILES)})")
    out: dict[str, Source] = {}
    for name in names:
        display = f"nlp/lexicon/data/{name}"
        data = read_toml(DATA_DIR / name, display)
        extra, extra_display = None, None
        if extra_path is not None and (extra_path / name).is_file():
            extra_display = str(extra_path / name)
            extra = read_toml(extra_path / name, extra_display)
            data = merge(data, extra)
        out[name] = Source(name, data, display, extra, extra_display)
    return out

