"""The layer contracts (``[tool.importlinter]`` in pyproject.toml) hold, and they do catch violations.

``make test`` runs ``lint-imports`` first; these tests also run it on a copy of the tree
with a deliberately broken layer, so a contract that silently stopped checking fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "reminders", "nlp", "cards", "storage")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is installed with the test extras")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.toml", "*.amr"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_cycle_is_caught(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    with (tree / "bot" / "pipeline" / "inbox.py").open("a", encoding="utf-8") as fh:
        fh.write("\nimport bot.pipeline.dispatcher  # a deliberate cycle\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "No import cycles between sibling modules or packages BROKEN" in result.stdout
    assert ".inbox -> .dispatcher" in result.stdout


def test_a_channel_importing_the_inbox_is_caught(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    with (tree / "bot" / "channels" / "local.py").open("a", encoding="utf-8") as fh:
        fh.write("\nfrom bot.pipeline import inbox  # channels must get ingest injected\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "Channels import no handler and no inbox (ingest is injected) BROKEN" in result.stdout


def test_a_handler_importing_a_platform_module_is_caught(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    with (tree / "handlers" / "notes" / "handlers.py").open("a", encoding="utf-8") as fh:
        fh.write("\nimport wechatpy  # handlers never see platforms\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "Handlers never see platform modules or payloads BROKEN" in result.stdout
