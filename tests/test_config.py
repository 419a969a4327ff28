"""Configuration errors name the file, the key and what is wrong; env vars override."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_example_config_is_valid_and_documents_every_section() -> None:
    config = load_config(EXAMPLE, env={})
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in config.model_dump():
        if isinstance(config.model_dump()[section], dict):
            assert f"[{section}]" in text, f"config.example.toml lacks [{section}]"
            for key in config.model_dump()[section]:
                assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key} undocumented"


def test_errors_name_file_key_and_problem(tmp_path: Path) -> None:
    file = tmp_path / "genjin.toml"
    file.write_text('timezone = "Mars/Olympus"\n[server]\nport = 99999\n[databse]\nurl = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(file, env={})
    problems = "\n".join(err.value.problems)
    assert f"{file}: timezone: unknown time zone" in problems
    assert f"{file}: server.port:" in problems and "65535" in problems
    assert f"{file}: databse: unknown key" in problems


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml", env={})


def test_secrets_from_environment(tmp_path: Path) -> None:
    file = tmp_path / "genjin.toml"
    file.write_text('[wecom]\nenabled = true\ncorp_id = "ww1"\n', encoding="utf-8")
    config = load_config(file, env={"GENJIN_WECOM_SECRET": "s3cret", "GENJIN_DATABASE_URL": "postgresql+asyncpg://db/genjin", "GENJIN_PIPELINE_WORKERS": "4"})
    assert config.wecom.secret == "s3cret" and config.wecom.corp_id == "ww1"
    assert config.database.url.startswith("postgresql")
    assert config.pipeline.workers == 4
    with pytest.raises(ConfigError, match="GENJIN|pipeline.workers"):
        load_config(file, env={"GENJIN_PIPELINE_WORKERS": "many"})


def test_cli_reports_config_errors_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "genjin.toml"
    file.write_text('[wecom]\nencoding_aes_key = "short"\n', encoding="utf-8")
    assert main(["--config", str(file), "db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "wecom.encoding_aes_key" in err and "43" in err and str(file) in err
