"""Issue 16, domain-aware correction that generalises: places at the head of a hospital name, the
hospital-type word before 医院, date words, 前 heard as 钱 — each only in its context, each reported as
an edit (so the card shows it as unsure). No model needed."""

from __future__ import annotations

import pytest

from nlp.lexicon import load_lexicon
from nlp.speech.correct import ContextTerms, context_terms, correct_in_context


@pytest.fixture(scope="module")
def ctx() -> ContextTerms:
    return context_terms(load_lexicon())


def fixed(text: str, ctx: ContextTerms) -> str:
    new, edits = correct_in_context(text, [], ctx)
    changed = {i for i, (a, b) in enumerate(zip(text, new)) if a != b}
    assert changed <= {i for start, end, _ in edits for i in range(start, end)}, "every change is a reported edit"
    return new


@pytest.mark.parametrize(("heard", "said"), [
    ("下周一去临疑市人民医院装机", "下周一去临沂市人民医院装机"),  # one character off, 市 + 医院 follow
    ("长周二院设备科的顾科长", "常州二院设备科的顾科长"),  # a numbered short form follows; 长 read chang by tone
    ("数千市第一人民医院的合同签了", "宿迁市第一人民医院的合同签了"),  # a common word, but 市 + a hospital follow
    ("洛杨中心医院急诊科", "洛阳中心医院急诊科"),
    ("跟男您是第二人民医院的蓝主任", "跟南宁市第二人民医院的蓝主任"),  # 市 heard as 是, mended with the place
    ("泰州是人民医院的项目", "泰州市人民医院的项目"),  # the place heard right, its 市 not
])
def test_a_place_heard_as_a_homophone_is_restored_in_front_of_a_hospital(ctx: ContextTerms, heard: str,
                                                                        said: str) -> None:
    assert fixed(heard, ctx) == said


@pytest.mark.parametrize("heard", [
    "我们数千台设备都卖出去了",  # no hospital follows
    "东方医院采购办通知我们中标了",  # a known hospital (and a common word) is never a place
    "明早八点前到手术室跟台第一台",  # 邢's rare reading geng3 does not make 跟台 a 邢台
    "抬州市人民医院",  # 泰州 and 台州 sound alike: a tie is left as heard
    "长沙市第一医院",  # already a place
])
def test_no_place_is_made_up(ctx: ContextTerms, heard: str) -> None:
    assert fixed(heard, ctx) == heard


@pytest.mark.parametrize(("heard", "said"), [
    ("南宁市第二眼迷医院的蓝主任", "南宁市第二人民医院的蓝主任"),
    ("保定市第一种新医院", "保定市第一中心医院"),
    ("青岛大学副属医院的骨科", "青岛大学附属医院的骨科"),
    ("昆明医科大学医复院病理科", "昆明医科大学一附院病理科"),  # 一 heard as 医 in a numbered short form
])
def test_the_hospital_type_word_before_yiyuan_is_restored(ctx: ContextTerms, heard: str, said: str) -> None:
    assert fixed(heard, ctx) == said


@pytest.mark.parametrize("heard", ["市第一眼科医院", "市第二康宁医院", "县第一新民医院", "市中心医院"])
def test_a_real_or_unknown_hospital_type_stays(ctx: ContextTerms, heard: str) -> None:
    assert fixed(heard, ctx) == heard


@pytest.mark.parametrize(("heard", "said"), [
    ("首付款三成,原蛋钱要把发票开出去", "首付款三成,元旦前要把发票开出去"),
    ("刘主任要试用协议,周三钱。", "刘主任要试用协议,周三前。"),
    ("下周一钱给回复", "下周一前给回复"),
    ("他们要我们下离拜一之前把样品交过去", "他们要我们下礼拜一之前把样品交过去"),
    ("财务说结后走付款流程", "财务说节后走付款流程"),
])
def test_date_words_heard_as_homophones_are_restored(ctx: ContextTerms, heard: str, said: str) -> None:
    assert fixed(heard, ctx) == said


@pytest.mark.parametrize("heard", ["下周一钱到账", "医院今年的钱都投到新院区去了", "三年的试剂加设备投放",
                                   "怎么导出上个月的拜访记录", "周五前给答复"])
def test_money_and_ordinary_words_stay(ctx: ContextTerms, heard: str) -> None:
    assert fixed(heard, ctx) == heard


def test_the_previous_behaviour_is_one_switch_away() -> None:
    """``[speech]`` names_and_dates off (the benchmark's "previous"): none of these repairs."""
    old = context_terms(load_lexicon(), names_and_dates=False)
    for heard in ("下周一去临疑市人民医院装机", "南宁市第二眼迷医院", "原蛋钱要把发票开出去"):
        assert correct_in_context(heard, [], old)[0] == heard
