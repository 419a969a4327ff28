"""Follow-up notes end to end through the local channel, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.messages import Kind
from storage.models import (
    Account,
    AuditLog,
    Contact,
    DialogState,
    Note,
    Opportunity,
    Person,
    Task,
)
from tests.harness import MONDAY, SH, Harness, rows


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))



async def person_id(h: Harness, key: str) -> int:
    async with h.app.sessions() as s:
        pid = await s.scalar(select(Person.id).where(Person.key == key))
        assert pid is not None
        return pid


async def test_note_is_stored_with_card_and_task(h: Harness) -> None:
    replies = await h.say("zhangwei", "今天去华山医院设备科做了产品演示，张科长要求提供临床试用报告，周三前发过去。")
    assert len(replies) == 1
    card = replies[0]
    assert "已记录" in card
    assert "阶段：方案演示" in card
    assert "临床" in card  # the concern
    assert "11月25日" in card  # Wednesday of this week
    assert "张科长" in card and "设备科" in card
    assert "复旦大学附属华山医院" in card
    assert "撤销" in card
    assert "金额" not in card and "竞品" not in card  # empty fields are omitted

    zw = await person_id(h, "zhangwei")
    notes = await rows(h, Note)
    assert len(notes) == 1
    note = notes[0]
    assert note.author_id == zw and note.source == "text" and note.inbox_id is not None
    assert note.raw_text.startswith("今天去华山医院")
    assert note.fields["stage"] == "demo" and "clinical" in note.fields["concerns"]

    [account] = await rows(h, Account)
    assert account.name == "复旦大学附属华山医院" and "华山医院" in account.aliases
    [contact] = await rows(h, Contact)
    assert (contact.name, contact.department, contact.account_id) == ("张科长", "设备科", account.id)
    [opp] = await rows(h, Opportunity)
    assert (opp.owner_id, opp.account_id, opp.stage, opp.status) == (zw, account.id, "demo", "open")
    assert note.opportunity_id == opp.id and note.contact_id == contact.id
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 11, 25) and task.owner_id == zw and task.note_id == note.id
    # no time given → 09:00 local on the due date
    assert task.remind_at == datetime(2026, 11, 25, 9, 0, tzinfo=SH).astimezone(timezone.utc)
    assert task.status == "open" and task.reminded_at is None

    audit = await rows(h, AuditLog, AuditLog.note_id == note.id)
    changed = {(a.entity, a.field) for a in audit}
    assert ("opportunity", "stage") in changed and ("task", "created") in changed
    stage_row = next(a for a in audit if a.field == "stage")
    assert (stage_row.old, stage_row.new, stage_row.actor_id) == (None, "demo", zw)


async def test_chatter_stores_nothing(h: Harness) -> None:
    for text in ("收到", "好的，谢谢", "辛苦了👍", "👍👍", "OK"):
        replies = await h.say("lina", text)
        assert replies == ["好的 👌"], f"{text!r} got {replies!r}"  # one short friendly line, never "收到。"
    assert await rows(h, Note) == []
    assert await rows(h, Task) == []
    assert await rows(h, DialogState) == []


async def test_small_talk_is_not_a_note_but_is_answered(h: Harness) -> None:
    replies = await h.say("lina", "哈哈，今天天气真不错")
    assert replies  # someone (the fallback) answers …
    assert await rows(h, Note) == []  # … but nothing is stored


async def test_negated_concern_is_not_recorded(h: Harness) -> None:
    replies = await h.say("chenjing", "价格不是问题，关键是要有注册证，下周三之前把证件复印件盖章发给鼓楼医院设备科。")
    [note] = await rows(h, Note)
    assert "price" not in note.fields["concerns"]
    assert "compliance" in note.fields["concerns"]
    assert "价格异议" not in replies[0]
    assert "资质合规" in replies[0]


async def test_same_message_delivered_twice_gives_one_note(h: Harness) -> None:
    text = "瑞金医院的合同已经盖章了，总金额一百二十万，下周一安排装机。"
    first = await h.say("liuyang", text, msg_id="wx-msg-42")
    second = await h.say("liuyang", text, msg_id="wx-msg-42")
    assert len(first) == 1 and second == []
    notes = await rows(h, Note)
    assert len(notes) == 1
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "contract" and opp.amount == 1_200_000
    assert len(await rows(h, Task)) == 1


async def test_alias_and_full_name_are_one_account(h: Harness) -> None:
    await h.say("yangfan", "市一院心内科刘主任刚加上微信，初步聊了一下，约了下周一上午去科室拜访。")
    await h.say("yangfan", "今天在市第一人民医院心内科给刘主任做了支架的产品演示，周五前把报价发过去。")
    accounts = await rows(h, Account)
    assert [a.name for a in accounts] == ["市第一人民医院"]
    assert "市一院" in accounts[0].aliases
    opps = await rows(h, Opportunity)
    assert len(opps) == 1 and opps[0].stage == "demo"  # first_contact → demo on one opportunity
    contacts = await rows(h, Contact)
    assert [c.name for c in contacts] == ["刘主任"]


async def test_stage_never_moves_back_without_a_correction(h: Harness) -> None:
    await h.say("huangli", "东方医院采购办通知我们中标了！下周一去签合同。")
    replies = await h.say("huangli", "东方医院又安排了一次产品演示，主任挺满意。")
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "contract"
    assert "合同签订" in replies[0]  # the card says the opportunity kept its later stage
    # a note without any stage signal leaves the stage alone but still counts as activity
    before = opp.last_activity_at
    h.app.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    await h.say("huangli", "东方医院设备科李科长问了下交货时间，下周二前回复他。")
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "contract" and opp.last_activity_at > before


async def test_lost_closes_the_opportunity_and_a_new_deal_opens_a_new_one(h: Harness) -> None:
    await h.say("zhangwei", "省人民医院骨科在做参数论证，下周三前把技术参数发给设备科。")
    await h.say("zhangwei", "省人民医院骨科的单子丢了，最后选了威高，价格比我们低不少。")
    [opp] = await rows(h, Opportunity)
    assert (opp.stage, opp.status) == ("lost", "lost")
    await h.say("zhangwei", "省人民医院心内科想换一批导管，约了下周四去拜访王主任。")
    opps = await rows(h, Opportunity)
    assert len(opps) == 2 and opps[1].status == "open" and opps[1].stage == "needs"


async def test_amount_is_updated_and_audited(h: Harness) -> None:
    await h.say("lina", "仁济医院报价单已经发了，设备总价86.5万，对方要求再降5个点，周五前给答复。")
    await h.say("lina", "仁济医院谈下来了，最终价格82万，下周一前把合同条款发给采购办。")
    [opp] = await rows(h, Opportunity)
    assert opp.amount == 820_000
    audit = await rows(h, AuditLog, AuditLog.entity == "opportunity", AuditLog.field == "amount")
    assert [(a.old, a.new) for a in audit] == [(None, "865000"), ("865000", "820000")]


async def test_contact_seen_before_tells_the_hospital(h: Harness) -> None:
    await h.say("chenjing", "今天去中山医院介入科见了孙主任，第一次见面，下周二带样机过去。")
    h.app.clock.advance(timedelta(minutes=30))  # past the follow-up window: a note of its own
    replies = await h.say("chenjing", "孙主任说科里想再采购两台，周四前把报价发给他。")
    notes = await rows(h, Note)
    assert notes[1].account_id == notes[0].account_id is not None
    assert "复旦大学附属中山医院" in replies[0]
    assert "是哪家医院" not in replies[0]


async def test_voice_note_uses_the_transcript(h: Harness) -> None:
    msg = h.message(
        "liuyang",
        kind=Kind.VOICE,
        media="/tmp/nowhere.amr",
        media_format="amr",
        extra={"transcript": "今天在二院做了一场技术交流会，反响不错，下周四前把会议纪要发给信息科。"},
    )
    out = await h.send(msg)
    [reply] = [d.text for d in out if d.recipient == "liuyang"]
    assert "🎤" in reply and "技术交流会" in reply
    [note] = await rows(h, Note)
    assert note.source == "voice" and "技术交流会" in note.transcript
    [task] = await rows(h, Task)
    assert task.due_date == date(2026, 12, 3)


async def test_voice_that_could_not_be_transcribed_gets_a_polite_answer(h: Harness) -> None:
    msg = h.message("liuyang", kind=Kind.VOICE, media="/tmp/x.amr", media_format="amr", extra={"speech_error": "音频太短"})
    out = await h.send(msg)
    [reply] = [d.text for d in out if d.recipient == "liuyang"]
    assert "语音" in reply and "打字" in reply
    assert await rows(h, Note) == []


async def test_account_lookup_by_alias_and_partial_name(h: Harness) -> None:
    await h.say("zhangwei", "市一院心内科刘主任刚加上微信，约了下周一上午去科室拜访。")
    await h.say("zhangwei", "市第一人民医院心内科安排了产品演示，刘主任很感兴趣，周五前把方案发过去。")
    for query in ("#客户 市一院", "#客户 市第一人民医院", "＃客户 第一人民"):
        [reply] = await h.say("zhangwei", query)
        assert "市第一人民医院" in reply
        assert "方案演示" in reply  # the opportunity's current stage
        assert "产品演示" in reply and "加上微信" in reply  # latest notes
    [reply] = await h.say("zhangwei", "#客户 协和医院")
    assert "没有找到" in reply


async def test_reps_see_their_own_notes_managers_see_all(h: Harness) -> None:
    await h.say("zhangwei", "华山医院设备科张科长要求提供临床试用报告，周三前发过去。")
    await h.say("lina", "华山医院骨科第一次拜访，留了电话。")
    [zw] = await h.say("zhangwei", "#客户 华山医院")
    assert "临床试用报告" in zw and "骨科第一次拜访" not in zw
    [boss] = await h.say("wang_jl", "#客户 华山医院")
    assert "临床试用报告" in boss and "骨科第一次拜访" in boss


async def test_exactly_one_note_per_inbox_row(h: Harness) -> None:
    for text in ("鼓楼医院检验科的发票上周五开了，月底前打款，我月底再跟进确认。", "湘雅二院心内科要换一批监护仪，下周二去拜访主任。"):
        await h.say("yangfan", text)
    async with h.app.sessions() as s:
        counts = (await s.execute(select(Note.inbox_id, func.count()).group_by(Note.inbox_id))).all()
    assert len(counts) == 2 and all(n == 1 for _, n in counts)
