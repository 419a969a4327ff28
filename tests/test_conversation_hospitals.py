"""Issue 15, item 2: fake hospitals never become customers; unknown ones are confirmed first;
corrections never land on a fake customer; 撤销 removes what the note alone created."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from storage.models import Account, Contact, Note, Opportunity
from tests.harness import MONDAY, Harness, rows


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))


async def test_a_name_without_the_shape_of_a_hospital_is_no_customer(h: Harness) -> None:
    [card] = await h.say("zhangwei", "今天在XX医院见了张主任")
    assert "XX医院" not in card and "是哪家医院" in card
    assert await rows(h, Account) == []
    # the next corrections must not land on a fake customer
    [fixed] = await h.say("zhangwei", "联系人改成王主任")
    assert "王主任" in fixed and "医院 联系人" not in fixed
    assert await rows(h, Account) == []
    [note] = await rows(h, Note)
    assert note.fields["contacts"][0] == "王主任"


async def test_unknown_hospital_is_confirmed_before_an_account_exists(h: Harness) -> None:
    [card] = await h.say("zhangwei", "今天在阳光医院心内科见了李主任，周三前发报价")
    assert "新客户『阳光医院』，确认建档吗？" in card
    assert "「确认建档 1」确认" in card and "「改名 1」改名" in card
    assert await rows(h, Account) == [] and await rows(h, Opportunity) == []
    [note] = await rows(h, Note)
    assert note.account_id is None and note.fields["account_pending"] == "阳光医院"
    [stage] = await h.say("zhangwei", "阶段改成招标")  # a correction meanwhile goes to the note
    assert "招标采购" in stage
    [done] = await h.say("zhangwei", "确认")
    assert "阳光医院" in done
    [account] = await rows(h, Account)
    [opp] = await rows(h, Opportunity)
    [note] = await rows(h, Note)
    assert account.name == "阳光医院" and note.account_id == account.id and opp.stage == "tender"
    [mine] = await h.say("zhangwei", "#客户")
    assert "阳光医院" in mine
    # 撤销 removes what only this note created: account, contact, opportunity
    [undone] = await h.say("zhangwei", "撤销")
    assert "已撤销" in undone
    assert await rows(h, Account) == [] and await rows(h, Opportunity) == [] and await rows(h, Contact) == []
    [mine] = await h.say("zhangwei", "#客户")
    assert "阳光医院" not in mine


async def _named_renji_after(h: Harness, command: str) -> Account:
    """A note at a hospital nobody knows, ``command`` on it, then the right name: the account it is filed under."""
    await h.say("lina", "今天在光明医院见了赵科长，下周二前把报价单发过去")
    [ask] = await h.say("lina", command)
    assert "医院的正确名称" in ask
    [done] = await h.say("lina", "仁济医院")
    assert "上海交通大学医学院附属仁济医院" in done
    [account] = await rows(h, Account)
    assert account.name == "上海交通大学医学院附属仁济医院"
    return account


async def test_rename_files_the_note_under_the_right_hospital(h: Harness) -> None:
    await _named_renji_after(h, "改名 1")
    [typed] = await h.say("lina", "改名 1 XX医院")
    assert "不像医院名称" in typed


async def test_fix_on_a_new_hospital_asks_for_the_name_like_rename(h: Harness) -> None:
    """The card's 改 button on a note whose only open point is its new hospital: the 改名 question."""
    account = await _named_renji_after(h, "改 1")
    [note] = await rows(h, Note)
    assert note.account_id == account.id
    [other] = await h.say("zhangwei", "改 1")  # another rep's note is not theirs to fix
    assert "没有找到要更正的记录" in other


async def test_ignored_confirmation_is_not_repeated_and_creates_nothing(h: Harness) -> None:
    await h.say("chenjing", "今天在阳光医院见了李主任")
    [card] = await h.say("chenjing", "今天去华山医院设备科拜访了张科长，周五前发资料")
    assert "已记录" in card and "确认建档" not in card
    assert [a.name for a in await rows(h, Account)] == ["复旦大学附属华山医院"]


async def test_undo_keeps_what_other_notes_use(h: Harness) -> None:
    await h.say("yangfan", "华山医院设备科张科长第一次见面，留了电话")
    h.app.clock.advance(__import__("datetime").timedelta(minutes=30))  # type: ignore[attr-defined]
    await h.say("yangfan", "华山医院设备科张科长要了报价，周五前发过去")
    await h.say("yangfan", "撤销")
    assert [a.name for a in await rows(h, Account)] == ["复旦大学附属华山医院"]
    assert len(await rows(h, Opportunity)) == 1 and len(await rows(h, Contact)) == 1


async def test_a_new_hospital_named_twice_is_not_asked_about_twice(h: Harness) -> None:
    [first] = await h.say("liuyang", "今天在阳光医院见了李主任")
    assert "确认建档吗" in first
    await h.say("liuyang", "华山医院设备科张科长要了报价，周五前发过去")  # the question is dropped
    [second] = await h.say("liuyang", "阳光医院李主任说下个月招标，周三前把参数发给他")
    assert "确认建档吗" not in second and "医院：阳光医院" in second
    sunny = [a for a in await rows(h, Account) if a.name == "阳光医院"]
    assert len(sunny) == 1
    linked = [n for n in await rows(h, Note) if n.account_id == sunny[0].id]
    assert len(linked) == 2  # the earlier note is filed too
