"""One source per vocabulary: the playbook takes concern codes from the lexicon and roles
from storage.org; the lexicon exposes the stage order; code and data folders do not share
a name (a module beside a data folder of the same name)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cards.playbook import (
    CONCERNS,
    PACKAGED_DIR,
    ROLE_LABELS,
    PlaybookError,
    PlaybookService,
    load_playbook,
)
from nlp.lexicon import DATA_DIR, concern_codes, load_lexicon, stage_order
from storage.org import ROLES

ROOT = Path(__file__).resolve().parents[1]

EXTRA_TRACK = """
[[entry]]
tag = "天气"
title = "天气影响交付"
when = "客户担心天气"
steps = ["确认时间。"]
concerns = ["weather"]
"""


def test_concern_codes_are_the_lexicons() -> None:
    lexicon = load_lexicon()
    assert concern_codes() == tuple(g.code for g in lexicon.concerns) == CONCERNS
    assert {c for e in load_playbook().entries for c in e.concerns} <= set(concern_codes())


def test_stage_order_is_the_lexicons() -> None:
    assert stage_order() == load_lexicon().stage_order
    assert stage_order()[0] == "first_contact" and stage_order()[-1] == "lost"


def test_override_concern_is_accepted_when_passed(tmp_path: Path) -> None:
    lexicon_dir = tmp_path / "lexicon"
    lexicon_dir.mkdir()
    (lexicon_dir / "concerns.toml").write_text('[concerns.weather]\nlabel = "天气"\nkeywords = ["下雨"]\n', encoding="utf-8")
    codes = concern_codes(lexicon_dir)
    assert codes[-1] == "weather" and codes[:-1] == concern_codes()

    tracks = tmp_path / "tracks"
    shutil.copytree(PACKAGED_DIR, tracks)
    (tracks / "95-weather.toml").write_text(EXTRA_TRACK, encoding="utf-8")
    with pytest.raises(PlaybookError) as info:
        load_playbook(tracks)  # default: the packaged lexicon, which has no "weather"
    assert any("unknown concern 'weather'" in p for p in info.value.problems)
    playbook = load_playbook(tracks, concerns=codes)
    assert playbook.for_concern("weather") is not None
    assert PlaybookService(tracks, watch=False, concerns=codes).current.for_concern("weather") is not None


def test_roles_come_from_storage(tmp_path: Path) -> None:
    assert set(ROLE_LABELS) == set(ROLES)
    shutil.copytree(PACKAGED_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "95-x.toml").write_text(EXTRA_TRACK.replace('concerns = ["weather"]', 'roles = ["boss"]'), encoding="utf-8")
    with pytest.raises(PlaybookError) as info:
        load_playbook(tmp_path)
    assert any(f"unknown role 'boss' (allowed: {', '.join(ROLES)})" in p for p in info.value.problems)


def test_packaged_data_lives_inside_the_packages() -> None:
    assert PACKAGED_DIR == ROOT / "cards" / "playbook" / "tracks" and any(PACKAGED_DIR.glob("*.toml"))
    assert DATA_DIR == ROOT / "nlp" / "lexicon" / "data" and (DATA_DIR / "stages.toml").is_file()


@pytest.mark.parametrize("package", ["cards", "nlp"])
def test_no_module_beside_a_folder_of_the_same_name(package: str) -> None:
    clashes = [p for p in (ROOT / package).rglob("*.py") if p.with_suffix("").is_dir()]
    assert clashes == []
