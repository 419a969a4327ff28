"""Issue 15, item 11: newcomer polish — README demo users, `make demo` progress, `genjin serve --help`,
a busy port suggests --port, quiet library logs."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.cli import build_parser, configure_logging, main

ROOT = Path(__file__).resolve().parents[1]


def test_readme_lists_every_demo_user_with_role_and_what_to_try() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    org = tomllib.loads((ROOT / "bot" / "demo" / "org.toml").read_text(encoding="utf-8"))
    section = readme[readme.index("## 演示用户与可以试试的话"):readme.index("## 常用命令")]
    for person in org["people"]:
        row = next((line for line in section.splitlines() if f"`{person['key']}`" in line), "")
        assert person["name"] in row and f"（{person['role']}）" in row, person["key"]
    for hint in ("/as", "/clock +20m", "#帮助", "撤销", "--port"):
        assert hint in section


def test_make_demo_shows_progress() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    install = makefile[makefile.index("$(VENV)/.installed:"):makefile.index("$(VENV)/.installed-test:")]
    assert "[2/4]" in install and "[3/4]" in install and ">/dev/null" not in install
    assert "[4/4]" in makefile[makefile.index("demo: install"):]


def test_serve_help_documents_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    assert "--port" in text and "--host" in text and "genjin.toml" in text and "GENJIN_" in text


def test_a_busy_port_suggests_another(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "genjin.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "g.db"}"\n[logging]\nlevel = "WARNING"\n',
                      encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--config", str(config), "serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--port {port + 1}" in err and str(port) in err


def test_library_info_chatter_is_not_logged() -> None:
    configure_logging("INFO", "console")
    for name in ("apscheduler.executors.default", "alembic.runtime.migration", "alembic.runtime.plugins"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("apscheduler").isEnabledFor(logging.WARNING)


@pytest.mark.slow
def test_serve_help_runs_as_a_command() -> None:
    result = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--port" in result.stdout
