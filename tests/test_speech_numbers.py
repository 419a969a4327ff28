"""Numbers as spoken, 周N heard as 中N, and the small pinyin/common-word tables of term correction."""

from __future__ import annotations

import pytest

from nlp.speech.correct import ContextTerms, correct_in_context, correct_terms
from nlp.speech.numbers import spell_integer, spell_numbers
from nlp.speech.phonetic import is_common_word, pinyin, readings, tone3


@pytest.mark.parametrize(("text", "spoken"), [
    ("总金额120万", "总金额一百二十万"),
    ("12月8号开标", "十二月八号开标"),
    ("比美敦力贵了15%", "比美敦力贵了百分之十五"),
    ("设备总价86.5万", "设备总价八十六点五万"),
    ("明早10点去", "明早十点去"),
    ("送2台样机", "送两台样机"),
    ("一年大概220万", "一年大概两百二十万"),
    ("电话13812345678", "电话一三八一二三四五六七八"),
    ("2026年的预算", "二零二六年的预算"),
    ("PET-CT和5G V3", "PET-CT和5G V3"),
    ("报12万8", "报十二万八"),
    ("已经是一百二十万", "已经是一百二十万"),
    ("采购一点2个亿", "采购一点二个亿"),
])
def test_numbers_are_written_as_spoken(text: str, spoken: str) -> None:
    assert spell_numbers(text) == spoken


@pytest.mark.parametrize(("n", "spoken"), [(0, "零"), (10, "十"), (15, "十五"), (105, "一百零五"), (2005, "两千零五"),
                                           (35000, "三万五千"), (100015, "十万零一十五"), (20000, "两万")])
def test_integers_by_position(n: int, spoken: str) -> None:
    assert spell_integer(n) == spoken


@pytest.mark.parametrize(("heard", "fixed"), [
    ("张科长要求提供报告，中三前发过去。", "张科长要求提供报告，周三前发过去。"),
    ("发票上中午开了", "发票上周五开了"),
    ("再降五个点，中午前给答复。", "再降五个点，周五前给答复。"),
    ("其中一台坏了", "其中一台坏了"),  # 其中 is a word
    ("我们集中一下", "我们集中一下"),
    ("明天中午前给答复", "明天中午前给答复"),  # a day in front: noon
    ("中午一起吃饭", "中午一起吃饭"),
])
def test_weekday_heard_as_zhong_is_repaired_only_in_context(heard: str, fixed: str) -> None:
    text, edits = correct_in_context(heard, [], ContextTerms())
    assert text == fixed
    assert bool(edits) == (heard != fixed)


def test_pinyin_tables_match_by_any_reading() -> None:
    assert tone3("zhōng") == "zhong1" and tone3("lǜ") == "lv4" and tone3("de") == "de5"
    assert pinyin("重庆") == ("zhong4", "qing4")  # the most common reading first …
    assert "chong2" in readings("重")  # … but every reading is known
    assert is_common_word("大家") and not is_common_word("连影")
    # 都 read du1 in 首都 but dou1 by default: a window misheard from it still matches.
    assert correct_terms("首度医科大学", ["首都医科大学"]) == "首都医科大学"


@pytest.mark.parametrize("heard", ["按去年的价格报", "回款还差四十万", "客户问能不能月底前到货"])
def test_heard_windows_match_by_their_usual_reading_only(heard: str) -> None:
    """的/差/不 have rare readings (di, jie, fu); matching by them rewrote real speech."""
    assert correct_terms(heard, ["低价", "还价", "付款", "能付"]) == heard
