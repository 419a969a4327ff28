"""Scripted `genjin chat` and `genjin demo`: lines on stdin, replies on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_ORG

pytestmark = pytest.mark.slow
GENJIN = [sys.executable, "-m", "bot.cli"]


def test_scripted_chat_goes_through_the_pipeline(tmp_path: Path) -> None:
    config = tmp_path / "genjin.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "chat.db"}"\n', encoding="utf-8")
    assert subprocess.run([*GENJIN, "--config", str(config), "org", "import", str(DEMO_ORG)], capture_output=True).returncode == 0
    result = subprocess.run(
        [*GENJIN, "--config", str(config), "chat", "--user", "zhangwei"],
        input="你好\n\n/voice /no/such/file.amr\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "the bot answered"
    assert "找不到文件" in result.stdout


def test_scripted_demo_runs_and_exits_at_end_of_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [*GENJIN, "demo", "--db", str(tmp_path / "demo.db"), "--port", "0"],
        input="你好\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert (tmp_path / "demo.db").exists()


def test_unknown_user_in_chat_is_told_once(tmp_path: Path) -> None:
    config = tmp_path / "genjin.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "chat.db"}"\n', encoding="utf-8")
    result = subprocess.run(
        [*GENJIN, "--config", str(config), "chat", "--user", "nobody"],
        input="你好\n在吗\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("登记") == 2  # the warning line + exactly one polite reply
