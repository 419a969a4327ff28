"""Issue 15, items 3 and 4: English and mixed input; context from the previous message."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from storage.models import Note, Task
from tests.harness import MONDAY, Harness, rows

EXAMPLE = ("Visited Zhongshan Hospital cardiology today. Dr. Zhang wants a quote for 50 stents by Friday, "
           "Medtronic already offered 15% off.")


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))


async def test_english_note_becomes_a_real_card(h: Harness) -> None:
    [card] = await h.say("zhangwei", EXAMPLE)
    assert "已记录" in card
    assert "医院：复旦大学附属中山医院" in card
    assert "竞品：美敦力" in card and "Medtronic" not in card  # the lexicon's brand on the card
    assert "Dr. Zhang" in card and "下一步：" in card
    [note] = await rows(h, Note)
    assert note.fields["competitors"] == ["Medtronic"]  # the stored extract keeps it as written
    [task] = await rows(h, Task)
    assert not task.text.endswith(" by") and "quote" in task.text
    assert task.due_date == date(2026, 11, 27)  # "by Friday", not the "today" of the sentence before


async def test_follow_up_attaches_to_the_previous_note(h: Harness) -> None:
    await h.say("zhangwei", "今天去新华医院心内科拜访了钱主任，介绍了产品")
    h.app.clock.advance(timedelta(minutes=3))  # type: ignore[attr-defined]
    [reply] = await h.say("zhangwei", "下周五之前约他再聊一次")
    assert "已补充到 上海交通大学医学院附属新华医院 的记录" in reply and "12月4日" in reply
    [note] = await rows(h, Note)
    [task] = await rows(h, Task)
    assert task.note_id == note.id and task.due_date == date(2026, 12, 4) and task.opportunity_id == note.opportunity_id
    # outside the window it is a note of its own (and asks for the hospital)
    h.app.clock.advance(timedelta(minutes=11))  # type: ignore[attr-defined]
    [card] = await h.say("zhangwei", "下周一之前约他再聊一次")
    assert "已记录" in card and "是哪家医院" in card
    assert len(await rows(h, Note)) == 2


async def test_follow_up_window_is_configurable(make_runtime) -> None:  # type: ignore[no-untyped-def]
    h = Harness(await make_runtime({"notes": {"followup_window_minutes": 0}}, clock=FakeClock(MONDAY)))
    await h.say("zhangwei", "今天去新华医院心内科拜访了钱主任，介绍了产品")
    [card] = await h.say("zhangwei", "下周五之前约他再聊一次")
    assert "已记录" in card and len(await rows(h, Note)) == 2
    example = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text(encoding="utf-8")
    assert "followup_window_minutes = 10" in example


async def test_a_full_sentence_answers_the_next_step_question(h: Harness) -> None:
    [card] = await h.say("zhangwei", "Dr. Li from Ruijin cardiology said the tender is next month, price is negotiable")
    assert "下一步打算做什么" in card
    [reply] = await h.say("zhangwei", "下周三前把产品资料和报价发给李主任")
    assert reply.startswith("✅ 已补充：下一步") and "12月2日" in reply  # 下周三: Wednesday of next week
    [note] = await rows(h, Note)
    [task] = await rows(h, Task)
    assert task.note_id == note.id
