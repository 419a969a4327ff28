"""#tags through the real pipeline (local channel, SQLite and PostgreSQL): the card, the
note that still gets recorded, suggestions, #帮助, other features' tags, hot reload, usage."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from bot.messages import Kind
from cards.playbook import PACKAGED_DIR
from storage.models import Note, PlaybookUsage
from tests.conftest import RuntimeFactory
from tests.harness import Harness

PRICE_TITLE = "价格异议：客户说太贵了"


async def usage(h: Harness, tag: str, via: str | None = None) -> int:
    query = select(func.count(PlaybookUsage.id)).where(PlaybookUsage.tag == tag)
    if via:
        query = query.where(PlaybookUsage.via == via)
    async with h.app.sessions() as session:
        return int(await session.scalar(query) or 0)


async def notes(h: Harness) -> list[str]:
    async with h.app.sessions() as session:
        return list(await session.scalars(select(Note.raw_text).order_by(Note.id)))


async def test_price_tag_and_alias_give_the_same_card(harness: Harness) -> None:
    first = await harness.say("zhangwei", "#价格")
    second = await harness.say("zhangwei", "#price")
    third = await harness.say("zhangwei", "＃报价")
    assert len(first) == 1 and PRICE_TITLE in first[0] and "【怎么做】" in first[0]
    assert second == first and third == first
    assert await usage(harness, "价格", "hashtag") == 3
    assert await notes(harness) == []  # a bare tag is not a note


async def test_unknown_tag_suggests_closest(harness: Harness) -> None:
    [reply] = await harness.say("zhangwei", "#价钱")
    assert "没有找到 #价钱" in reply and "您是不是想找：#价格" in reply
    assert "回复「#价格」" in reply  # tappable on platforms, typeable locally
    assert await usage(harness, "价格") == 0


async def test_tag_inside_a_note_sends_card_and_records_note(harness: Harness) -> None:
    replies = await harness.say("zhangwei", "华山医院王主任说我们的彩超太贵了 #价格")
    assert len(replies) >= 2
    assert PRICE_TITLE in replies[0]
    assert any(PRICE_TITLE not in r and "华山" in r for r in replies[1:]), replies
    assert await notes(harness) == ["华山医院王主任说我们的彩超太贵了"]
    assert await usage(harness, "价格") == 1


async def test_tag_typed_without_space(harness: Harness) -> None:
    replies = await harness.say("zhangwei", "#价格华山医院王主任嫌贵")
    assert PRICE_TITLE in replies[0]
    assert await notes(harness) == ["华山医院王主任嫌贵"]


async def test_help_lists_commands_for_the_role(harness: Harness) -> None:
    [reply] = await harness.say("zhangwei", "#帮助")
    assert "#待办" in reply and "#客户 医院名" in reply and "#价格" in reply and "销售代表" in reply
    [manager] = await harness.say("wang_jl", "#help")
    assert "经理" in manager


async def test_other_features_tags_are_not_swallowed(harness: Harness) -> None:
    [todo] = await harness.say("zhangwei", "#待办")
    assert "没有找到" not in todo and "跟进助手能做什么" not in todo
    [account] = await harness.say("zhangwei", "#客户 华山医院")
    assert "没有找到 #客户" not in account and "您是不是想找" not in account


async def test_button_click_serves_card_and_counts_as_button(harness: Harness) -> None:
    msg = harness.message("zhangwei", kind=Kind.EVENT, event="card_click", event_key="#竞品")
    out = await harness.send(msg)
    assert [d.text for d in out if d.recipient == "zhangwei"][0].startswith("【竞品对比")
    assert await usage(harness, "竞品", "button") == 1
    assert await usage(harness, "竞品", "hashtag") == 0


async def test_editing_the_toml_changes_the_next_answer(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    directory = tmp_path / "playbook"
    shutil.copytree(PACKAGED_DIR, directory)
    h = Harness(await make_runtime({"playbook": {"dir": str(directory), "watch": True}}))
    [before] = await h.say("zhangwei", "#价格")
    assert PRICE_TITLE in before

    price = directory / "10-price.toml"
    edited = price.read_text(encoding="utf-8").replace(PRICE_TITLE, "价格：先问清和谁比")
    price.write_text(edited, encoding="utf-8")
    [after] = await h.say("zhangwei", "#价格")
    assert "价格：先问清和谁比" in after and PRICE_TITLE not in after

    # a broken edit is rejected with a clear message; the last good playbook keeps serving
    price.write_text(edited.replace("title =", "titel =", 1), encoding="utf-8")
    [still] = await h.say("zhangwei", "#价格")
    assert "价格：先问清和谁比" in still
    problems = h.app.services.playbook_service.problems
    assert any("10-price.toml" in p and "#价格" in p and "unknown key 'titel'" in p for p in problems), problems

    # new entries become available without a restart
    (directory / "95-new.toml").write_text(
        '[[entry]]\ntag = "学术会"\ntitle = "学术会议：合规邀请"\nwhen = "科室想办学术活动时"\n'
        'steps = ["走公司合规审批。"]\n',
        encoding="utf-8",
    )
    price.write_text(edited, encoding="utf-8")
    [new] = await h.say("zhangwei", "#学术会")
    assert "学术会议：合规邀请" in new
