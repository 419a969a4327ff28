"""Regression tests for the fifth generalisation round (issue 15, round 3): concerns, stage and cues in other
words — trial paperwork and our own signing are no concern, a complement 不过 is no "but", devices that work
unsmoothly, price as a worry in paraphrase, delivery deadlines the customer sets, conditional stage words,
budgetary quotes, reported English plans, and price flexibility / urgency in other words.  The sentences are
new, not corpus lines; each family has a negative twin so the pattern cannot simply fire everywhere."""
from __future__ import annotations

import pytest

from nlp.extract import Extractor
from nlp.lexicon import load_lexicon
from nlp.text import Language
from tests.nlp_cases import run


# ------------------------------------------------- concerns: implied, in other words
@pytest.mark.parametrize("text,concern", [
    # 不过 as a verb complement: the device cannot get through — a product complaint, not "but"
    ("刘主任说我们的鞘管在迂曲血管里送不过去，两台都换了别家的", "product"),
    ("球囊在狭窄段推不过去，主任有点失望", "product"),
    # works unsmoothly in use / measures off
    ("护士长说闭合器有两次闭合不到位，想先停用", "product"),
    ("检验科反馈读数跟原来那台对不上，差了不少", "product"),
    # price as the customer's worry in paraphrase
    ("主任对方案挺满意的，不过价格是院里最大的顾虑", "price"),
    ("设备处一直担心价钱，说超了就得重新报", "price"),
    # a rival's low price in English
    ("Heard GE gave a very cheap price to the radiology dept; we could not match it", "price"),
    ("Mindray offered a low quote and undercut us on the monitors", "price"),
])
def test_concern_in_other_words(ex: Extractor, text: str, concern: str) -> None:
    assert concern in run(ex, text)["concerns"]


@pytest.mark.parametrize("text,absent", [
    # the worry denied: 价格不是…顾虑
    ("价格不是他们的顾虑，主要看售后", "price"),
    # trial paperwork is the trial's formality, not a demand for clinical evidence
    ("下周二去骨科把试用报告拿回来", "clinical"),
    ("主任催试用报告，我今晚写完", "clinical"),
    # we go and sign: our step, no process obstacle
    ("合同条款都谈妥了，周五我去签字", "process"),
    # starting over after a change of head is the relationship, not a procurement step
    ("原来的科长调走了，什么都得重新来", "process"),
    # 不过 as "but" still splits: praise before it does not hide a complaint after it, and vice versa
    ("设备挺好用的，不过维修响应慢", "product"),
])
def test_concern_not_added(ex: Extractor, text: str, absent: str) -> None:
    assert absent not in run(ex, text)["concerns"]


def test_but_still_breaks_a_clause() -> None:
    lang = Language(load_lexicon().language)
    assert lang.normalize("设备挺好用的不过维修慢") == "设备挺好用的，维修慢"
    assert lang.normalize("导丝推不过去") == "导丝推不过去"
    assert lang.normalize("科里人手忙不过来") == "科里人手忙不过来"


def test_clinical_report_still_counts_when_asked_for_as_evidence(ex: Extractor) -> None:
    assert "clinical" in run(ex, "设备处要求提供三家医院的临床使用数据")["concerns"]


def test_relationship_change_keeps_its_concern(ex: Extractor) -> None:
    got = run(ex, "原来的科长调走了，什么都得重新来")["concerns"]
    assert got == ["relationship"]


# ------------------------------------------------- stage: delivery deadlines, conditions, paraphrase
@pytest.mark.parametrize("text", [
    "主任要求开学前必须装好，不然影响教学",
    "The new ward opens in May so delivery must be done by end of April, I'll check lead time with the plant",
    "他们最关心 delivery lead time，要 6 周内到",
])
def test_a_delivery_deadline_is_a_worry_not_the_delivery_stage(ex: Extractor, text: str) -> None:
    got = run(ex, text)
    assert got["stage"] != "delivery"
    assert "delivery" in got["concerns"]


def test_delivery_that_happened_stays_delivery(ex: Extractor) -> None:
    assert run(ex, "呼吸机昨天装好了，下周验收")["stage"] == "delivery"


@pytest.mark.parametrize("text,not_stage", [
    # the stage word names what a condition waits for
    ("采购办说编码下来了才能入库", "delivery"),
    ("财政的钱批了才能启动招标", "tender"),
    # someone's installed base is no installation
    ("Olympus has a big installed base there, hard to break in", "delivery"),
])
def test_conditional_or_descriptive_stage_words(ex: Extractor, text: str, not_stage: str) -> None:
    assert run(ex, text)["stage"] != not_stage


def test_stage_word_after_condition_only_when_conditional(ex: Extractor) -> None:
    assert run(ex, "今天在设备科办完入库，下周培训")["stage"] == "delivery"


@pytest.mark.parametrize("text", [
    "影像科主任让我们先给个参考报价，他好报明年预算",
    "They want to upgrade the cath lab and asked for a budgetary quote, I'll send it Friday",
    "Prof. Wang said they are planning to replace the old DR. I will send the brochure next Monday.",
])
def test_budgeting_and_reported_plans_are_needs(ex: Extractor, text: str) -> None:
    assert run(ex, text)["stage"] == "needs"


def test_a_real_quote_stays_negotiation(ex: Extractor) -> None:
    assert run(ex, "正式报价已经发给设备科，对方说还要再压一压")["stage"] == "negotiation"


# ------------------------------------------------- cues in other words
@pytest.mark.parametrize("text", [
    "客户还在嫌贵，我这边最多再降2个点",
    "谈到九折了，底线88折",
    "设备处说在现在报价的基础上还可以再谈",
    "他们想再便宜五个点，我跟老板问了，应该问题不大",
])
def test_price_flexible_in_other_words(ex: Extractor, text: str) -> None:
    assert "price_flexible" in run(ex, text)["cues"]


@pytest.mark.parametrize("text", [
    "他们要我们再让二十个点，这根本不可能",   # the customer's ask, refused
    "等院长出差回来再谈吧",                     # talk later is no flexibility
])
def test_no_price_flexibility(ex: Extractor, text: str) -> None:
    assert "price_flexible" not in run(ex, text)["cues"]


@pytest.mark.parametrize("text,urgent", [
    ("护士长让我们尽快把备用机送过去", True),
    ("主任要求尽早出方案，周五前", True),
    ("经理建议我们尽快去拜访新院长", False),
    ("需要公司尽快确认注册证延续的进度", False),
])
def test_asap_is_urgent_only_when_the_customer_asks(ex: Extractor, text: str, urgent: bool) -> None:
    assert ("urgent" in run(ex, text)["cues"]) is urgent


# ------------------------------------------------- competitors written as their English short names
@pytest.mark.parametrize("text,brand", [
    ("BSCI这次报价比我们低了十个点", "BSCI"),
    ("BSC的工程师上周来过", "BSC"),
])
def test_competitor_short_names(ex: Extractor, text: str, brand: str) -> None:
    assert run(ex, text)["competitors"] == [brand]
