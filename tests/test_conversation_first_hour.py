"""Issue 15, items 1, 6, 8, 9: what a rep meets in the first hour — every message is answered
with what happened; talk-track requests file nothing; the card shows the rep's own action; products."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from storage.models import DialogState, Note, Task
from tests.harness import MONDAY, Harness, rows

NOT_RECORDED = "没有记录"


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))


async def test_every_first_message_says_what_happened(h: Harness) -> None:
    [card] = await h.say("zhangwei", "Dr. Li from Ruijin cardiology said the tender is next month, price is negotiable")
    assert "已记录" in card and "上海交通大学医学院附属瑞金医院" in card and "招标采购" in card
    for question in ("你能干啥？", "help"):
        [reply] = await h.say("zhangwei", question)
        assert "跟进助手能做什么" in reply and "#帮助" in reply, (question, reply)
    for chatter in ("嗯", "ok", "👍"):
        assert await h.say("zhangwei", chatter) == ["好的 👌"], chatter
    assert len(await rows(h, Note)) == 1  # only the real note
    assert all("收到。" not in d.text for d in h.delivered)


async def test_unclear_text_is_not_stored_but_offered_and_never_nagged_twice(h: Harness) -> None:
    [reply] = await h.say("lina", "今天天气不错，开会开了一下午，大家都很累")
    assert NOT_RECORDED in reply and "没找到客户或要做的事" in reply
    for button in ("记录成备注", "补充医院", "#帮助"):
        assert f"「{button}」" in reply
    assert await rows(h, Note) == []
    [again] = await h.say("lina", "价格有点高，他们还在比较，下午再说吧")
    assert "没有记录" in again and "补充医院" not in again  # one line, no second set of buttons
    [stored] = await h.say("lina", "记录成备注")
    assert "已记录" in stored
    [note] = await rows(h, Note)
    assert note.raw_text == "价格有点高，他们还在比较，下午再说吧" and note.account_id is None
    assert await rows(h, DialogState) == []  # no question follows a plain note


async def test_add_hospital_button_asks_and_files(h: Harness) -> None:
    await h.say("lina", "主任对新一代产品挺感兴趣，还在比较几家的方案")
    replies = await h.say("lina", "补充医院")
    assert replies[-1] == "❓ 是哪家医院？"
    [answer] = await h.say("lina", "华山医院")
    assert "复旦大学附属华山医院" in answer
    [note] = await rows(h, Note)
    assert note.account_id is not None


async def test_small_talk_gets_a_short_friendly_reply(h: Harness) -> None:
    [reply] = await h.say("chenjing", "哈哈，今天天气真不错")
    assert reply != "收到。" and len(reply) < 60 and "不记录" in reply
    [hello] = await h.say("chenjing", "你好")
    assert "你好" in hello and "#帮助" in hello
    assert await rows(h, Note) == []


async def test_a_talk_track_request_files_no_note(h: Harness) -> None:
    replies = await h.say("zhangwei", "客户说太贵了 #价格")
    assert len(replies) == 1 and "价格" in replies[0] and "已记录" not in replies[0]
    assert await rows(h, Note) == []
    # a hashtag message that names a customer and an action is still a note
    replies = await h.say("zhangwei", "华山医院王主任嫌贵，周五前重新报价 #价格")
    assert len(replies) == 2 and "已记录" in replies[1]
    assert len(await rows(h, Note)) == 1


async def test_card_shows_the_reps_action_not_the_customers_words(h: Harness) -> None:
    [card] = await h.say("zhangwei", "今天去新华医院心内科拜访了钱主任，钱主任让我把产品资料和报价发给他")
    assert "下一步：把产品资料和报价发给钱主任" in card
    h.app.clock.advance(__import__("datetime").timedelta(minutes=30))  # type: ignore[attr-defined]
    await h.say("zhangwei", "瑞金医院财务说下个月15号前付款，我周三前把发票寄过去")
    tasks = [t.text for t in await rows(h, Task)]
    assert "把发票寄过去" in tasks  # the rep's own commitment
    assert not any("付款" in t for t in tasks)  # the finance department's words are not the rep's task


async def test_products_are_on_the_card(h: Harness) -> None:
    [card] = await h.say("liuyang", "今天在华山医院心内科给刘主任演示了药物洗脱支架和球囊导管，周五前发报价")
    assert "产品：药物洗脱支架、球囊、导管" in card


async def test_the_examples_in_friendly_replies_work(h: Harness) -> None:
    import re


    [hello] = await h.say("yangfan", "你好")
    [example] = re.findall(r"“([^”]+)”", hello)
    [card] = await h.say("yangfan", example)
    assert "已记录" in card and "复旦大学附属华山医院" in card
    banner_example = "今天去新华医院拜访了钱主任，他让我周五前把报价发给他"  # the `genjin demo` banner
    h.app.clock.advance(__import__("datetime").timedelta(minutes=30))  # type: ignore[attr-defined]
    [card] = await h.say("yangfan", banner_example)
    assert "已记录" in card and "下一步：把报价发给" in card and "截止：11月27日" in card
