"""Reading a directory of TOML files that sales ops edit (the calendar, the ladders).

Both are "every ``*.toml`` in a folder, the packaged one by default"; the problems name the
folder or the file, and the caller turns them into its own error type.
"""

from __future__ import annotations

from pathlib import Path


def read_toml_dir(directory: str | Path | None, packaged: Path, what: str) -> tuple[list[tuple[str, str]], list[str], Path]:
    """(file name, text) for every ``*.toml`` of ``directory`` (default ``packaged``), the problems, and the folder."""
    folder = Path(directory) if directory else packaged
    if not folder.is_dir():
        return [], [f"{folder}: {what} directory does not exist"], folder
    paths = sorted(p for p in folder.glob("*.toml") if p.is_file())
    if not paths:
        return [], [f"{folder}: no *.toml files in the {what} directory"], folder
    files: list[tuple[str, str]] = []
    problems: list[str] = []
    for path in paths:
        try:
            files.append((path.name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: cannot be read: {exc}")
    return files, problems, folder
