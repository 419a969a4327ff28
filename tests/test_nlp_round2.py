"""Regression tests for the second generalisation round (new sentences, not corpus lines):
past weekdays, first-person deadlines, English spacing and dates, date clauses with a bare verb,
and the statistical classifier beside the rules."""
from __future__ import annotations

from datetime import datetime

import pytest

from nlp.extract import Extractor
from nlp.lexicon import load_lexicon
from nlp.statmodel import (
    DEFAULT_PATH,
    Policy,
    Prediction,
    StatModel,
    combine_concerns,
    combine_stage,
    features,
)
from tests.nlp_cases import WED


def due(ex: Extractor, text: str, now: datetime = WED):
    na = ex.extract(text, now).to_dict()["next_action"]
    return "none" if na is None else na["due"]


# ------------------------------------------------- a bare weekday reporting the past is no due date
@pytest.mark.parametrize("text,expected", [
    ("周六跟刘主任喝了个茶，聊得挺好", "none"),
    ("周一刚跟设备科对过参数", "none"),
    ("礼拜天也没歇着，陪主任吃了顿饭，我下周二前把方案发他", "2026-03-24"),
    ("周三跟院长汇报了方案，他让我们下周一前再改一版", "2026-03-23"),  # "today" reported as done
])
def test_past_weekday(ex: Extractor, text: str, expected: str) -> None:
    assert due(ex, text) == expected


def test_future_bare_weekday_still_next_occurrence(ex: Extractor) -> None:
    assert due(ex, "周五去科里送资料") == "2026-03-20"
    assert due(ex, "周五约了主任，去科里讲方案") == "2026-03-20"


# ------------------------------------------------- the rep as subject of a deadline clause commits
@pytest.mark.parametrize("text,expected", [
    ("我周五前把新版合同条款改完发回去", "2026-03-20"),
    ("下周一之前我给领导打个申请", "2026-03-23"),
    ("我们月底前先出个样稿", "2026-03-31"),
])
def test_first_person_deadline(ex: Extractor, text: str, expected: str) -> None:
    assert due(ex, text) == expected


def test_someone_elses_deadline_is_not_ours(ex: Extractor) -> None:
    assert due(ex, "主任说周五前他们自己先过一遍") == "none"


# ------------------------------------------------- English inside Chinese, English dates
@pytest.mark.parametrize("text,expected", [
    ("EOD 之前把 NMPA 的证书扫描件 发给 Prof. Lin", "2026-03-18"),
    ("Prof. Lin wants the updated quote by Thursday", "2026-03-19"),
    ("Tender won! contract signing next Monday", "2026-03-23"),
    ("Dr. Ma wants a demo of the new probe, scheduled next Friday", "2026-03-27"),
])
def test_english_dates_stay_with_their_action(ex: Extractor, text: str, expected: str) -> None:
    assert due(ex, text) == expected


# ------------------------------------------------- a date clause with only a bare give/send verb
def test_date_clause_with_bare_verb_joins_action(ex: Extractor) -> None:
    assert due(ex, "科里让我们先出一版配置单，周四前给") == "2026-03-19"
    assert due(ex, "明天下午三点跟科主任汇报进展") == "2026-03-19"


# ------------------------------------------------- statistical classifier
def test_model_shipped_and_loaded(ex: Extractor) -> None:
    assert DEFAULT_PATH.exists() and ex.model is not None
    assert set(ex.model.concerns) >= {"price", "budget", "process"}


def test_model_deterministic_and_contract_unchanged(ex: Extractor) -> None:
    text = "院里钱一直没批下来，主任也挺无奈的"
    a, b = ex.extract(text, WED).to_dict(), Extractor(load_lexicon()).extract(text, WED).to_dict()
    assert a == b
    rules = Extractor(load_lexicon(), model=None).extract(text, WED).to_dict()
    assert set(a) == set(rules)


def _pred(stage: dict, concerns: dict) -> Prediction:
    return Prediction(stage, concerns)


def test_combine_stage_rules_win_when_they_fire() -> None:
    pred = _pred({None: 0.05, "tender": 0.9, "negotiation": 0.05}, {})
    assert combine_stage(("negotiation", 0.85), ["negotiation"], [], pred, Policy(), frozenset()) == ("negotiation", 0.85)


def test_combine_stage_model_decides_when_rules_found_none() -> None:
    sure = _pred({None: 0.1, "tender": 0.85}, {})
    unsure = _pred({None: 0.45, "tender": 0.55}, {})
    assert combine_stage(None, [], [], sure, Policy(), frozenset())[0] == "tender"
    assert combine_stage(None, [], [], unsure, Policy(), frozenset()) is None


def test_combine_concerns_adds_only_confident_and_not_vetoed() -> None:
    pred = _pred({}, {"price": 0.95, "budget": 0.9, "process": 0.5})
    # price keyword was negated by the rules ("价格不是问题"): the model may not bring it back
    assert combine_concerns(["delivery"], ["price"], pred, Policy()) == ["delivery", "budget"]


def test_features_fold_digits_and_keep_signals() -> None:
    f = features("预算60w", ["ck:budget"])
    assert "算0w" in f and "ck:budget" in f and "w:w" not in f


def test_model_roundtrip(tmp_path) -> None:
    import numpy as np
    m = StatModel(["a", "b"], [None, "tender"], ["price"], np.array([[0.0, 2.0], [0.0, 0.0]]), np.zeros(2),
                  np.array([[3.0], [0.0]]), np.zeros(1))
    m.save(tmp_path / "m.npz")
    back = StatModel.load(tmp_path / "m.npz")
    p = back.predict({"a": 1.0})
    assert p.stage["tender"] > 0.8 and p.concerns["price"] > 0.9
