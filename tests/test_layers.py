"""Layering: channels sit below the pipeline and get the inbox injected, never imported."""

from __future__ import annotations

import ast
from pathlib import Path

CHANNELS = Path(__file__).resolve().parents[1] / "bot" / "channels"
FORBIDDEN = ("bot.inbox", "bot.outbox", "bot.dispatcher", "bot.runtime", "handlers")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_channels_do_not_import_the_pipeline() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in CHANNELS.glob("*.py")
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offenders
