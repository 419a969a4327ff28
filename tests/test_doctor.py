"""``genjin doctor`` against the WeCom and DingTalk emulators and a temporary SQLite database.

The doctor runs its own event loop (it is a CLI command), so the emulators run in a thread
with theirs: that is also how the real platforms look to it, a server somewhere else.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.cli.doctor import FAIL, OK, diagnose
from storage.db import upgrade_sync
from tests.emulators.dingtalk import DingTalkEmulator
from tests.emulators.wecom import WeComEmulator


class Platforms:
    """Both emulators on one background event loop, for as long as the test runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.wecom = WeComEmulator(users={"ZhangWei"})
        self.dingtalk = DingTalkEmulator(known_staff={"rep-001"})

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> Platforms:
        self.thread.start()
        self._run(self.wecom.start())
        self._run(self.dingtalk.start())
        return self

    def stop(self) -> None:
        self._run(self.wecom.stop())
        self._run(self.dingtalk.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    running = Platforms().start()
    yield running
    running.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(platforms: Platforms, db: Path, **extra: str) -> dict[str, str]:
    """Env-only configuration, the way the container and compose stack configure Genjin."""
    env = {
        "GENJIN_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "GENJIN_SERVER_PORT": str(_free_port()),
        "GENJIN_WECOM_ENABLED": "true",
        "GENJIN_WECOM_CORP_ID": platforms.wecom.corp_id,
        "GENJIN_WECOM_SECRET": platforms.wecom.secret,
        "GENJIN_WECOM_API_BASE": platforms.wecom.base_url,
        "GENJIN_DINGTALK_ENABLED": "true",
        "GENJIN_DINGTALK_CLIENT_ID": platforms.dingtalk.app_key,
        "GENJIN_DINGTALK_CLIENT_SECRET": platforms.dingtalk.app_secret,
        "GENJIN_DINGTALK_API_BASE": platforms.dingtalk.base_url,
    }
    return {**env, **extra}


@pytest.fixture
def migrated_db(tmp_path: Path) -> Path:
    db = tmp_path / "genjin.db"
    upgrade_sync(f"sqlite+aiosqlite:///{db}")
    return db


@pytest.fixture
def speech_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache with an assembled model, as ``genjin speech install`` leaves it (symlinked: no 145 MB copy)."""
    from nlp.speech.weights import MODEL_NAME, ensure_model_dir

    real = ensure_model_dir()
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / MODEL_NAME).symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("GENJIN_MODEL_CACHE", str(cache))
    return cache


def by_name(lines: list[str]) -> dict[str, str]:
    return {line[2:].split(":", 1)[0]: line for line in lines}


def test_all_green(platforms: Platforms, migrated_db: Path, speech_cache: Path, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./genjin.toml: env-only configuration
    lines, healthy = diagnose(None, env_for(platforms, migrated_db))
    assert healthy, "\n".join(lines)
    checks = by_name(lines)
    assert set(checks) == {"config", "database", "migrations", "speech model", "wecom", "dingtalk",
                           "playbook", "lexicon", "calendar", "ladders", "http port"}
    assert all(line.startswith(OK) for line in lines)
    assert "GENJIN_WECOM_SECRET" in checks["config"]  # which variables were used, never their values
    assert "access token fetched" in checks["wecom"] and "access token fetched" in checks["dingtalk"]
    assert platforms.wecom.gettoken_calls == 1


def test_wrong_secrets_are_errcodes_with_hints_and_never_printed(
    platforms: Platforms, migrated_db: Path, speech_cache: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wecom_secret, dingtalk_secret = "wrong-wecom-secret-1234", "wrong-dingtalk-secret-5678"
    env = env_for(platforms, migrated_db, GENJIN_WECOM_SECRET=wecom_secret, GENJIN_DINGTALK_CLIENT_SECRET=dingtalk_secret)
    for name in list(env):
        monkeypatch.setenv(name, env[name])
    assert main(["--config", str(migrated_db.with_name("absent.toml")), "doctor"]) == 1  # a named file must exist
    assert "absent.toml: file not found" in capsys.readouterr().out
    monkeypatch.chdir(migrated_db.parent)
    assert main(["doctor"]) == 1
    out = capsys.readouterr()
    checks = by_name(out.out.splitlines())
    assert checks["wecom"].startswith(FAIL) and "errcode 40001" in checks["wecom"]
    assert "GENJIN_WECOM_SECRET" in checks["wecom"]  # the hint says where the secret goes
    assert checks["dingtalk"].startswith(FAIL) and "invalidClientIdOrSecret" in checks["dingtalk"]
    assert "GENJIN_DINGTALK_CLIENT_SECRET" in checks["dingtalk"]
    assert checks["database"].startswith(OK) and checks["migrations"].startswith(OK)
    for secret in (wecom_secret, dingtalk_secret, platforms.wecom.secret, platforms.dingtalk.app_secret):
        assert secret not in out.out and secret not in out.err


def test_database_not_migrated(platforms: Platforms, tmp_path: Path, speech_cache: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # exists, reachable, but no tables
    lines, healthy = diagnose(None, env_for(platforms, empty))
    checks = by_name(lines)
    assert not healthy
    assert checks["database"].startswith(OK)
    assert checks["migrations"].startswith(FAIL) and "run genjin db upgrade" in checks["migrations"]

    missing = tmp_path / "missing.db"
    lines, _ = diagnose(None, env_for(platforms, missing))
    assert "run genjin db upgrade" in by_name(lines)["database"]
    assert not missing.exists(), "the doctor must not create the database it checks"


def test_database_password_is_masked(platforms: Platforms, speech_cache: Path) -> None:
    env = env_for(platforms, Path("unused"), GENJIN_DATABASE_URL="postgresql+asyncpg://genjin:hunter2-pw@127.0.0.1:1/genjin")
    lines, healthy = diagnose(None, env)
    checks = by_name(lines)
    assert not healthy and checks["database"].startswith(FAIL) and "GENJIN_DATABASE_URL" in checks["database"]
    assert "hunter2-pw" not in "\n".join(lines)


def test_model_missing_port_busy_and_bad_playbook(platforms: Platforms, migrated_db: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENJIN_MODEL_CACHE", str(tmp_path / "no-models"))
    playbook = tmp_path / "playbook"
    playbook.mkdir()
    (playbook / "bad.toml").write_text("[[entry]\n", encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = env_for(platforms, migrated_db, GENJIN_SERVER_PORT=str(port), GENJIN_PLAYBOOK_DIR=str(playbook))
        lines, healthy = diagnose(None, env)
    checks = by_name(lines)
    assert not healthy
    assert checks["speech model"].startswith(FAIL) and "genjin speech install" in checks["speech model"]
    assert checks["http port"].startswith(FAIL) and "GENJIN_SERVER_PORT" in checks["http port"]
    assert checks["playbook"].startswith(FAIL) and "bad.toml" in checks["playbook"]
    assert checks["lexicon"].startswith(OK)


def test_invalid_config_stops_with_one_line_and_hides_secrets(tmp_path: Path) -> None:
    secret = "S" * 42  # EncodingAESKey must be 43 characters: the error echoes the input
    lines, healthy = diagnose(None, {"GENJIN_WECOM_ENCODING_AES_KEY": secret, "GENJIN_DATABASE_URL": "mysql://x"})
    assert not healthy and len(lines) == 1 and lines[0].startswith(f"{FAIL} config")
    assert "encoding_aes_key" in lines[0] and secret not in lines[0]
