"""Regression tests for the fourth generalisation round (issue 15, round 2): the account as written after
emoji and prepositions, region and shorthand hospital names, departments in English, short forms and the
longest name, clipped titles, verbless appointment notes and "right away" dates.  The sentences are new,
not corpus lines."""
from __future__ import annotations

import pytest

from nlp.dates import find_dates
from nlp.extract import Extractor
from tests.nlp_cases import WED, run


# ------------------------------------------------- account: the name without what precedes it
@pytest.mark.parametrize("text,account", [
    # emoji and symbols end the name on the left
    ("✅✅市二院的监护仪合同今天签了", "市二院"),
    ("🔥省肿瘤医院 放疗科 要加一台", "省肿瘤医院"),
    # prepositions and follow-up verbs are no part of the name
    ("关于市第三人民医院的发票问题汇报一下", "市第三人民医院"),
    ("针对儿童医院的投诉我们已经在处理", "儿童医院"),
    ("跟进一下鼓楼那边的试用反馈", "鼓楼"),
    # region + kind shorthand
    ("省人民 设备处 下周论证", "省人民"),
    ("市中心那边的单子还在走流程", "市中心"),
    ("今天又跑了一趟省医，主任不在", "省医"),
    ("市疾控的冷藏箱还没验收", "市疾控"),
    ("县人民的DR下个月挂网", "县人民"),
    # 附X and 附属 + specialty, with or without the university in front
    ("附三 ICU 监护仪 试用中", "附三"),
    ("郑大附二的主任说价格再谈", "郑大附二"),
    ("附属肿瘤 放疗 预算批了", "附属肿瘤"),
    # famous short names and pinyin names
    ("西京 心内 想再看一下数据", "西京"),
    ("齐鲁的设备科说下周开标", "齐鲁"),
    ("Met the chief of cardiology at Shengjing, very positive", "Shengjing"),
    ("Xiehe wants a second demo next week", "Xiehe"),
    ("Quote sent to Tianjin Cancer Center yesterday", "Tianjin Cancer Center"),
    # a specialty hospital keeps its department word
    ("下午去了市口腔医院，主任在开会", "市口腔医院"),
])
def test_account_as_written(ex: Extractor, text: str, account: str) -> None:
    assert run(ex, text)["account"] == account


@pytest.mark.parametrize("text", [
    "省人民政府采购网发了公告",      # the provincial government, not a hospital
    "附一份报价单给主任看看",        # 附 = attach
    "省医保局的新政策下个月执行",    # the medical insurance bureau
    "所有目标医院都要在月底前拜访一遍",  # intent/target hospitals are generic
    "区里五家社区卫生服务中心打包采购",  # generic community centres
    "全省人民都在关注集采",
])
def test_no_account(ex: Extractor, text: str) -> None:
    assert run(ex, text)["account"] is None


# ------------------------------------------------- departments
@pytest.mark.parametrize("text,departments", [
    # the longest name wins over a name inside it
    ("信息安全科的老师说接口要单独审批", ["信息安全科"]),
    ("医院保卫科要求登记", ["保卫科"]),
    # English names as written
    ("Dropped the samples at the cath lab, nurses were happy", ["cath lab"]),
    ("The OR manager wants the trial extended", ["OR"]),
    ("Need to chase the finance office for the invoice", ["finance office"]),
    ("Met the head of nephrology and the procurement office", ["nephrology", "procurement office"]),
    # short forms only right after the hospital, in telegraphic notes
    ("附三 病理 切片机 报价已发", ["病理"]),
    ("华山 放疗 主任出差了", ["放疗"]),
    # new Chinese office names
    ("基建办牵头新院区的设备规划", ["基建办"]),
    ("要先过伦理委员会才能开始试用", ["伦理委员会"]),
])
def test_departments_as_written(ex: Extractor, text: str, departments: list[str]) -> None:
    assert run(ex, text)["departments"] == departments


@pytest.mark.parametrize("text", [
    "迈瑞 超声 报价比我们低",          # a short form after a brand is the product
    "He is now in charge of device procurement",  # the activity, not the office
    "由县采购中心统一组织招标",          # a county body, not the hospital's office
    "要申报胸痛中心",                   # an existing rule: a project, not an office
])
def test_no_department(ex: Extractor, text: str) -> None:
    assert run(ex, text)["departments"] == []


# ------------------------------------------------- contacts: clipped and staff titles
@pytest.mark.parametrize("text,contacts", [
    ("下午见了马处，说预算没问题", ["马处"]),
    ("设备科的吕干事让我们补材料", ["吕干事"]),
    ("法务的邓律师在看合同", ["邓律师"]),
])
def test_clipped_and_staff_titles(ex: Extractor, text: str, contacts: list[str]) -> None:
    assert run(ex, text)["contacts"] == contacts


@pytest.mark.parametrize("text", ["高处的吊塔要重新装", "这几处参数要改一下", "设备处理得很及时"])
def test_chu_is_no_title_inside_words(ex: Extractor, text: str) -> None:
    assert run(ex, text)["contacts"] == []


# ------------------------------------------------- appointment notes without a verb
@pytest.mark.parametrize("text,due,due_at", [
    ("后天下午三点 医务处", "2026-03-20", "2026-03-20T15:00:00+08:00"),
    ("周五上午 华山 科室会", "2026-03-20", "2026-03-20T09:00:00+08:00"),
    ("下周一 西京 许主任 答疑", "2026-03-23", None),
    ("Friday 2pm w/ 周主任 @ 省医", "2026-03-20", "2026-03-20T14:00:00+08:00"),
])
def test_appointment_note(ex: Extractor, text: str, due: str, due_at: str | None) -> None:
    na = run(ex, text)["next_action"]
    assert na is not None and na["due"] == due and na["due_at"] == due_at


@pytest.mark.parametrize("text", [
    "下周三 省人民医院中标公示",     # someone else's event
    "下周一 市二院 开标结果出来",
    "昨天下午 设备科",              # a past date is a report
])
def test_not_an_appointment(ex: Extractor, text: str) -> None:
    assert run(ex, text)["next_action"] is None


# ------------------------------------------------- right away / before close of business
@pytest.mark.parametrize("text", [
    "我立刻把授权书扫描发过去",
    "客户急要，我马上去仓库调货",
    "下班前把修改后的报价发给主任",
    "今天下班之前我把发票寄出去",
])
def test_right_away_is_due_today(ex: Extractor, text: str) -> None:
    na = run(ex, text)["next_action"]
    assert na is not None and na["due"] == "2026-03-18"


def test_right_away_is_a_deadline_today() -> None:
    found = find_dates("马上处理", WED)
    assert [(d.due.isoformat(), d.deadline) for d in found] == [("2026-03-18", True)]


@pytest.mark.parametrize("text", ["我尽快把合同发过去", "ASAP I will send the spec sheet to Dr. Li"])
def test_as_soon_as_possible_stays_undated(ex: Extractor, text: str) -> None:
    na = run(ex, text)["next_action"]
    assert na is not None and na["due"] is None
