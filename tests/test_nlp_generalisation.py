"""Regression tests for the generalisation classes of the extractor (new sentences, not corpus lines)."""
from __future__ import annotations

import pytest

from nlp.amounts import find_amount
from nlp.dates import find_dates
from nlp.extract import Extractor
from nlp.lexicon import load_lexicon
from tests.nlp_cases import WED, run


# ---------------------------------------------------------------- dates
@pytest.mark.parametrize("text,due", [
    ("11/3前把样本寄到检验科", "2026-11-03"),
    ("4.2前交资料", "2026-04-02"),
    ("by Friday send the spec", "2026-03-20"),
    ("next Tuesday 去科里", "2026-03-24"),
    ("EOD 前回复", "2026-03-18"),
    ("tomorrow 见主任", "2026-03-19"),
    ("下礼拜二去", "2026-03-24"),
    ("大后天去", "2026-03-21"),
])
def test_date_forms(text: str, due: str) -> None:
    found = find_dates(text, WED)
    assert found and str(found[0].due) == due


def test_amount_like_numbers_are_not_dates() -> None:
    assert find_dates("总价2.5M，单价42.8w", WED) == []
    assert find_dates("Sun Yat-sen Memorial", WED) == []


@pytest.mark.parametrize("text,due", [
    ("周四前 给骨科发配置单", "2026-03-19"),
    ("明天 follow up 设备科的 PO", "2026-03-19"),
    ("I'll send the quotation to Dr. Gao by Friday", "2026-03-20"),
    ("今天必须回复采购办的问询函", "2026-03-18"),
])
def test_date_apart_from_its_verb_is_a_commitment(ex: Extractor, text: str, due: str) -> None:
    assert run(ex, text)["next_action"]["due"] == due


# ---------------------------------------------------------------- reported speech / customer side
def test_question_and_forecast_are_no_action(ex: Extractor) -> None:
    assert run(ex, "后天的科室会是几点来着？")["next_action"] is None
    assert run(ex, "合同在走流程，估计下个月能盖章")["next_action"] is None


def test_their_meeting_is_not_ours(ex: Extractor) -> None:
    assert run(ex, "医务处说院长下周开会讨论这个项目，让我们等消息")["next_action"] is None


def test_customer_side_action_names_the_requester(ex: Extractor) -> None:
    na = run(ex, "孟主任让我把彩页和报价单发给他")["next_action"]
    assert na["text"] == "把彩页和报价单发给孟主任"
    na = run(ex, "袁科长要求我们下周一前把授权书交给她")["next_action"]
    assert na["text"] == "把授权书交给袁科长" and na["due"] == "2026-03-23"


# ---------------------------------------------------------------- concerns implied without their keyword
@pytest.mark.parametrize("text,concern", [
    ("科里今年钱紧，新项目都往后放", "budget"),
    ("信息科问我们的软件有没有过等保三级", "compliance"),
    ("护理部问能不能十天内到货，新病房下月启用", "delivery"),
    ("主任想先看看别家医院的随访结果", "clinical"),
    ("回款要等审计完才能走", "process"),
    ("科里嫌我们售后网点太少", "service"),
    ("新来了个分管副院长，之前的承诺都不算了", "relationship"),
    ("他们说导丝头端有点硬", "product"),
])
def test_implied_concerns(ex: Extractor, text: str, concern: str) -> None:
    assert concern in run(ex, text)["concerns"]


def test_our_concession_is_a_cue_not_a_price_objection(ex: Extractor) -> None:
    note = run(ex, "价格还能再降两个点，但要这个月签")
    assert "price" not in note["concerns"] and "price_flexible" in note["cues"]


def test_training_on_a_date_is_no_service_concern(ex: Extractor) -> None:
    assert "service" not in run(ex, "监护仪装好了，周五培训护士")["concerns"]


# ---------------------------------------------------------------- stages
@pytest.mark.parametrize("text,stage", [
    ("被飞利浦截胡了", "lost"),
    ("quotation 今天发给采购中心", "negotiation"),
    ("下周去检验科讲一下新的生化仪", "demo"),
    ("新加了骨科邹主任的微信", "first_contact"),
])
def test_stage_words(ex: Extractor, text: str, stage: str) -> None:
    assert run(ex, text)["stage"] == stage


def test_demonstration_is_not_a_trial(ex: Extractor) -> None:
    assert run(ex, "今天在超声科只是做了个演示，还没开始试用")["stage"] == "demo"


def test_urgency_words(ex: Extractor) -> None:
    for text in ("ASAP 把报价发给设备科", "urgent: 明天前回复招标办", "火速把样品送到检验科"):
        assert "urgent" in run(ex, text)["cues"], text


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("text,account", [
    ("下周二再去一次瑞金医院", "瑞金医院"),
    ("明天去哈医大一院找于主任", "哈医大一院"),
    ("刚从温医附院出来", "温医附院"),
    ("Met Dr. Xu at Nanjing First Hospital today", "Nanjing First Hospital"),
])
def test_hospital_shapes(ex: Extractor, text: str, account: str) -> None:
    assert run(ex, text)["account"] == account


def test_no_hospital_without_a_name(ex: Extractor) -> None:
    assert run(ex, "最近医院都在搞集采，节后再说")["account"] is None
    assert run(ex, "认识了一个区县医院的院长")["account"] is None


def test_english_contacts_and_departments(ex: Extractor) -> None:
    note = run(ex, "Prof. Lin from cardiology wants a demo next Wednesday")
    assert note["contacts"] == ["Prof. Lin"] and note["departments"] == ["cardiology"]
    assert note["stage"] == "demo" and note["next_action"]["due"] == "2026-03-25"


def test_old_surname_contact(ex: Extractor) -> None:
    assert run(ex, "采购办老邓说下周再议")["contacts"] == ["老邓"]


def test_planned_centre_is_no_department(ex: Extractor) -> None:
    assert run(ex, "院长说明年要建卒中中心")["departments"] == []


def test_brand_display_name() -> None:
    lex = load_lexicon()
    assert lex.canonical_brand("Medtronic") == "美敦力"
    assert lex.canonical_brand("波科") == "波士顿科学"
    assert lex.canonical_brand("某某医疗") == "某某医疗"


def test_english_brand_is_reported_as_written(ex: Extractor) -> None:
    assert run(ex, "Medtronic 已经报了价")["competitors"] == ["Medtronic"]


@pytest.mark.parametrize("text,amount", [
    ("报价十二万五", 125000), ("预算七十来万", 700000), ("RMB 2.4M", 2400000), ("¥56,000", 56000), ("5k的服务费", 5000),
])
def test_amount_forms(text: str, amount: int) -> None:
    assert find_amount(text)[0] == amount
