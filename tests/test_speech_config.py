"""[speech] settings reach the speech service; defaults agree with the speech module's own."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from bot.config import ConfigError, SpeechSection, load_config
from bot.services import Services, speech_config
from nlp.speech import SpeechConfig

WIRED = ("parallel_pieces", "split_min_seconds", "long_beam_size", "long_memo_seconds", "word_probabilities",
         "prompt_hotword_chars", "warm_on_load", "trim_memory", "repair_loops", "context_correction",
         "encoder_min_seconds", "encoder_margin_seconds")


def test_config_file_values_reach_the_speech_service(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon"
    file = tmp_path / "genjin.toml"
    file.write_text(
        f'[nlp]\nlexicon_dir = "{lexicon}"\n'
        "[speech]\nparallel_pieces = 1\nsplit_min_seconds = 12.5\nlong_beam_size = 2\nlong_memo_seconds = 20\n"
        "word_probabilities = false\nprompt_hotword_chars = 80\nwarm_on_load = false\ntrim_memory = false\n"
        "repair_loops = false\ncontext_correction = false\nencoder_min_seconds = 30\nencoder_margin_seconds = 2.5\n",
        encoding="utf-8",
    )
    services = Services(load_config(file, env={}))
    try:
        stt = services.stt  # built lazily; the model is not loaded until the first memo
        got = {name: getattr(stt.config, name) for name in WIRED}
        assert got == {"parallel_pieces": 1, "split_min_seconds": 12.5, "long_beam_size": 2, "long_memo_seconds": 20,
                       "word_probabilities": False, "prompt_hotword_chars": 80, "warm_on_load": False,
                       "trim_memory": False, "repair_loops": False, "context_correction": False,
                       "encoder_min_seconds": 30, "encoder_margin_seconds": 2.5}
        assert stt.config.lexicon_dir == str(lexicon)  # [nlp] lexicon_dir, not a second setting
    finally:
        services.close()


def test_environment_overrides_a_speech_setting(tmp_path: Path) -> None:
    file = tmp_path / "genjin.toml"
    file.write_text("", encoding="utf-8")
    config = load_config(file, env={"GENJIN_SPEECH_PARALLEL_PIECES": "1", "GENJIN_SPEECH_TRIM_MEMORY": "false"})
    speech = speech_config(config.speech, config.nlp.lexicon_dir)
    assert (speech.parallel_pieces, speech.trim_memory, speech.lexicon_dir) == (1, False, None)


def test_section_defaults_are_the_speech_modules_defaults() -> None:
    """One set of defaults: a changed default on either side fails here."""
    assert speech_config(SpeechSection()) == SpeechConfig()
    section = set(SpeechSection.model_fields)
    module = {f.name for f in fields(SpeechConfig)}
    assert set(WIRED) <= section and set(WIRED) <= module


@pytest.mark.parametrize("line", ["parallel_pieces = 0", "long_beam_size = 0", "split_min_seconds = -1",
                                  "prompt_hotword_chars = 500", "long_memo_seconds = -5", "lexicon_dir = \"x\""])
def test_out_of_bounds_speech_values_name_the_key(tmp_path: Path, line: str) -> None:
    file = tmp_path / "genjin.toml"
    file.write_text(f"[speech]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(file, env={})
    assert f"speech.{line.split()[0]}" in "\n".join(err.value.problems)
