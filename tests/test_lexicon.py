"""Lexicon loading, validation errors, override directory and consistency report."""
from __future__ import annotations

from pathlib import Path

import pytest

from nlp.lexicon import LexiconError, check_lexicon, load_lexicon


@pytest.fixture(scope="module")
def lex():
    return load_lexicon()


def test_packaged_lexicon_loads(lex) -> None:
    assert lex.stage_order[0] == "first_contact" and lex.stage_order[-1] == "lost"
    assert [g.code for g in lex.stages] == list(lex.stage_order)
    assert {g.code for g in lex.concerns} == {"price", "budget", "competitor", "process", "product", "clinical",
                                             "delivery", "compliance", "service", "relationship"}
    assert {g.code for g in lex.cues} == {"price_flexible", "urgent"}
    assert len(lex.brands) >= 40


def test_canonical_account(lex) -> None:
    assert lex.canonical_account("市一院") == "市第一人民医院"
    assert lex.canonical_account("华山医院") == "复旦大学附属华山医院"
    assert lex.canonical_account("某某县人民医院") == "某某县人民医院"


def test_questions(lex) -> None:
    assert lex.question_for("account") == "是哪家医院？"
    assert lex.question_for("contacts") == "对接的是哪位老师？"
    assert lex.question_for("due") == "下一步什么时候做？"
    assert lex.question_for("next_action.due") == "下一步什么时候做？"


def test_hotwords_and_terms(lex) -> None:
    hot = lex.hotwords()
    for word in ("导管", "美敦力", "GE", "设备科", "主任"):
        assert word in hot
    terms = lex.terms()
    assert set(hot) <= set(terms)
    assert "招标" in terms and "市一院" in terms
    assert len(terms) == len(set(terms))


def test_check_reports_overlaps(lex) -> None:
    issues = check_lexicon(lex)
    assert any("'中标'" in i and "lost" in i for i in issues)


def write(dir_: Path, name: str, text: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_text(text, encoding="utf-8")
    return dir_


def test_override_extends_lists(tmp_path: Path) -> None:
    extra = write(tmp_path, "stages.toml", '[stages.tender]\nkeywords = ["比价会"]\n')
    write(extra, "hospitals.toml", '[aliases]\n"城东医院" = "某市城东人民医院"\n')
    lex = load_lexicon(extra)
    tender = next(g for g in lex.stages if g.code == "tender")
    assert "比价会" in tender.keywords and "招标" in tender.keywords
    assert lex.canonical_account("城东医院") == "某市城东人民医院"
    assert lex.canonical_account("市一院") == "市第一人民医院"


def test_override_replace_table(tmp_path: Path) -> None:
    extra = write(tmp_path, "cues.toml", '[cues.urgent]\nreplace = true\nkeywords = ["十万火急"]\n')
    lex = load_lexicon(extra)
    urgent = next(g for g in lex.cues if g.code == "urgent")
    assert urgent.keywords == ("十万火急",)


def test_override_same_keyword_two_stages_is_reported(tmp_path: Path) -> None:
    extra = write(tmp_path, "stages.toml", '[stages.demo]\nkeywords = ["招标"]\n')
    issues = check_lexicon(load_lexicon(extra))
    assert any("'招标'" in i and "tender" in i and "demo" in i for i in issues)


@pytest.mark.parametrize("name, text, key, fragment", [
    ("stages.toml", '[stages.tender]\nkeywords = "招标"\n', "stages.tender.keywords", "must be a list of strings"),
    ("stages.toml", '[stages.tender]\nkeywords = [1, 2]\n', "stages.tender.keywords", "must be a list of strings"),
    ("stages.toml", '[stages.tender]\npatterns = ["(未闭合"]\n', "stages.tender.patterns", "invalid regular expression"),
    ("stages.toml", '[stages.tender]\nkeyword = ["x"]\n', "stages.tender.keyword", "unknown key"),
    ("stages.toml", '[stages.won]\nkeywords = ["赢了"]\n', "stages.won", "not listed in order"),
    ("concerns.toml", '[concerns.price]\nkeywords = ["贵", ""]\n', "concerns.price.keywords", "empty"),
    ("required.toml", '[required]\ntender = ["phone"]\n', "required.tender", "unknown field"),
    ("titles.toml", '[names]\ndouble_surnames = ["欧阳修"]\n', "names.double_surnames", "two characters"),
    ("holidays.toml", '[holidays.x]\nnames = ["某节"]\nperiods = [["2026-01-01"]]\n', "holidays.x.periods[0]",
     "first_day, last_day"),
    ("competitors.toml", '[brands.x]\nname = "某牌"\norigin = "mars"\n', "brands.x.origin", "domestic"),
])
def test_validation_errors_name_file_and_key(tmp_path: Path, name: str, text: str, key: str, fragment: str) -> None:
    extra = write(tmp_path, name, text)
    with pytest.raises(LexiconError) as err:
        load_lexicon(extra)
    assert err.value.file == str(extra / name)
    assert err.value.key == key
    assert fragment in err.value.message
    assert str(err.value).startswith(f"{extra / name}: {key}: ")


def test_invalid_toml(tmp_path: Path) -> None:
    extra = write(tmp_path, "cues.toml", "[cues.urgent\n")
    with pytest.raises(LexiconError, match="invalid TOML"):
        load_lexicon(extra)


def test_unknown_file_and_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="override directory does not exist"):
        load_lexicon(tmp_path / "nope")
    write(tmp_path, "stage.toml", "")
    with pytest.raises(LexiconError, match="unknown lexicon file"):
        load_lexicon(tmp_path)


def test_packaged_error_message_format() -> None:
    err = LexiconError("nlp/lexicon/stages.toml", "stages.tender.keywords", "must be a list of strings")
    assert str(err) == "nlp/lexicon/stages.toml: stages.tender.keywords: must be a list of strings"


def test_hotwords_put_the_speech_priority_first_and_ops_can_override_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nlp.lexicon import LexiconError, load_lexicon

    packaged = load_lexicon()
    words = packaged.hotwords()
    assert words[: len(packaged.speech_priority)] == list(packaged.speech_priority)
    assert len(words) == len(set(words))
    assert {t for t in packaged.people.titles if len(t) > 1} <= set(words)
    assert {t for t in packaged.product_terms if len(t) > 1} <= set(words)

    (tmp_path / "speech.toml").write_text('priority = ["达芬奇", "主任"]\n', encoding="utf-8")
    assert load_lexicon(tmp_path).hotwords()[:2] == ["达芬奇", "主任"]

    (tmp_path / "speech.toml").write_text('priority = "主任"\n', encoding="utf-8")
    try:
        load_lexicon(tmp_path)
    except LexiconError as exc:
        assert "speech.toml" in str(exc) and "priority" in str(exc)
    else:
        raise AssertionError("a malformed priority list must be rejected")
