"""Relative-date parser: weeks start on Monday, bare weekday = next occurrence after today."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from nlp.dates import find_dates, parse_date_answer, parse_due
from nlp.lexicon import load_lexicon

TZ = timezone(timedelta(hours=8))
MON = datetime(2026, 11, 23, 9, 30, tzinfo=TZ)   # Monday
WED = datetime(2026, 11, 25, 10, 15, tzinfo=TZ)  # Wednesday
HOLIDAYS = load_lexicon().holidays


@pytest.mark.parametrize("text, now, due, deadline", [
    ("周三前发过去", MON, "2026-11-25", True),
    ("下周三前把表发给他", MON, "2026-12-02", True),
    ("下下周一开会", MON, "2026-12-07", False),
    ("本周五", MON, "2026-11-27", False),
    ("这周五带方案过去", MON, "2026-11-27", False),
    ("月底前打款", MON, "2026-11-30", True),
    ("下个月10号", MON, "2026-12-10", False),
    ("12月3号带工程师去", MON, "2026-12-03", False),
    ("十二月三号", MON, "2026-12-03", False),
    ("3号", MON, "2026-12-03", False),          # day already passed this month → next month
    ("25号", MON, "2026-11-25", False),
    ("三天内", datetime(2026, 11, 26, 16, 40, tzinfo=TZ), "2026-11-29", True),
    ("两周内到货", MON, "2026-12-07", True),
    # a bare weekday listed after a qualified one shares its week
    ("下周一或者周二都行", MON, "2026-11-30", False),
    ("下周二到周四都在医院", WED, "2026-12-01", False),
    ("下礼拜三或礼拜五", MON, "2026-12-02", False),
    ("明天", MON, "2026-11-24", False),
    ("后天", MON, "2026-11-25", False),
    ("大后天", MON, "2026-11-26", False),
    ("今天", MON, "2026-11-23", False),
    ("年底前", MON, "2026-12-31", True),
    ("周三", WED, "2026-12-02", False),          # bare weekday on that weekday → next week's
    ("周一", WED, "2026-11-30", False),
    ("下周一", WED, "2026-11-30", False),
    ("两个工作日内", MON, "2026-11-25", True),
    ("半个月内", MON, "2026-12-08", True),
    ("1月5号", MON, "2027-01-05", False),        # far in the past this year → next year
    ("下周末", MON, "2026-12-05", False),
    ("春节前", MON, "2027-02-04", True),
    ("国庆后", MON, "2027-10-08", False),
    ("本周内", MON, "2026-11-27", True),
])
def test_parse_due(text: str, now: datetime, due: str, deadline: bool) -> None:
    found = parse_due(text, now, HOLIDAYS)
    assert found is not None, text
    assert found.due == date.fromisoformat(due)
    assert found.deadline is deadline
    assert found.past is False


@pytest.mark.parametrize("text, due_at", [
    ("明早10点去省肿瘤医院", "2026-11-24T10:00:00+08:00"),
    ("明天上午", "2026-11-24T09:00:00+08:00"),
    ("后天下午三点在会议室", "2026-11-25T15:00:00+08:00"),
    ("明天下午两点半", "2026-11-24T14:30:00+08:00"),
    ("下周一上午去科室拜访", "2026-11-30T09:00:00+08:00"),
    ("今晚把保证金打过去", "2026-11-23T20:00:00+08:00"),
    ("下午3点前", "2026-11-23T15:00:00+08:00"),
])
def test_due_at(text: str, due_at: str) -> None:
    found = parse_due(text, MON)
    assert found is not None and found.due_at is not None
    assert found.due_at.isoformat() == due_at


def test_no_time_means_no_due_at() -> None:
    found = parse_due("周三前发过去", MON)
    assert found is not None and found.due_at is None


@pytest.mark.parametrize("text", ["下周", "下个月", "过几天", "降5个点", "3号床", "一周一次", "有两点要求",
                                  "百分之十五", "试用周期一个月"])
def test_vague_or_not_a_date(text: str) -> None:
    assert parse_due(text, MON) is None


@pytest.mark.parametrize("text, due", [("11月3号", "2026-11-03"), ("上周五", "2026-11-20"), ("昨天", "2026-11-22"),
                                       ("三天前", "2026-11-20")])
def test_past_dates_are_flagged(text: str, due: str) -> None:
    found = parse_due(text, MON)
    assert found is not None and found.past is True and found.due == date.fromisoformat(due)


def test_relative_to_previous_date() -> None:
    found = find_dates("12月8号开标，我提前一天到现场", datetime(2026, 11, 24, 14, tzinfo=TZ))
    assert [d.due.isoformat() for d in found] == ["2026-12-08", "2026-12-07"]


def test_earliest_wins_and_span() -> None:
    text = "要求两周内到货，我明天答复"
    found = parse_due(text, MON)
    assert found is not None and found.due == date(2026, 11, 24)
    assert text[found.span[0]:found.span[1]] == "明天"


@pytest.mark.parametrize("answer, due", [("周四", "2026-11-26"), ("不对，是下周四", "2026-12-03"),
                                         ("推迟到周五", "2026-11-27"), ("改到明天下午", "2026-11-24"),
                                         ("推迟两天", "2026-11-28"), ("提前一天", "2026-11-25")])
def test_date_answers(answer: str, due: str) -> None:
    found = parse_date_answer(answer, MON, base=date(2026, 11, 26), holidays=HOLIDAYS)
    assert found is not None and found.due == date.fromisoformat(due)


def test_date_answer_without_date() -> None:
    assert parse_date_answer("好的", MON) is None
    assert parse_date_answer("推迟两天", MON) is None  # a shift needs the date it shifts
