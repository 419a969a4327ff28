"""Card clicks (platform-neutral): a click does what typing the button's command does."""

from __future__ import annotations

from bot.messages import Inbound, Kind, Reply
from bot.router import HandlerContext, Router, matches
from cards.model import Card
from handlers.buttons import handlers as buttons
from handlers.buttons.handlers import STALE_REPLY, UNSUPPORTED_REPLY
from handlers.common.format import DONE_LABEL, outcome_label
from tests.harness import Harness


def click(h: Harness, user: str, command: str, code: str = "") -> Inbound:
    extra = {"reply_response_code": code, "task_id": "t1"} if code else {}
    return h.message(user, kind=Kind.EVENT, event="card_click", event_key=command, extra=extra)


async def test_click_is_routed_as_the_typed_command(harness: Harness) -> None:
    seen: list[Inbound] = []
    probe = Router("probe")

    @probe.on(matches(r"^完成\s*\d+$"))
    async def done(msg: Inbound, hc: HandlerContext) -> Reply:
        seen.append(msg)
        return Reply(text=f"已完成：任务 {msg.text.split()[-1]}，做得好！")

    root = Router("root")
    root.include(buttons.router(harness.app))
    root.include(probe)
    harness.runtime.dispatcher.router = root

    out = await harness.send(click(harness, "zhangwei", "完成 12", code="RC_1"))
    assert [m.kind for m in seen] == [Kind.TEXT] and seen[0].text == "完成 12" and seen[0].event == ""
    assert [d.out.reply.update_token for d in out] == ["RC_1", ""]
    assert out[0].text == "已完成" and out[1].text == "已完成：任务 12，做得好！"
    assert all(d.recipient == "zhangwei" for d in out)


async def test_click_answers_like_typing(harness: Harness) -> None:
    typed = await harness.say("lina", "你好")
    clicked = await harness.send(click(harness, "zhangwei", "你好"))
    assert [d.text for d in clicked] == typed  # no response code: no card update
    assert all(not d.out.reply.update_token for d in clicked)


async def test_click_without_command_is_answered_politely(harness: Harness) -> None:
    out = await harness.send(click(harness, "zhangwei", "  ", code="RC_2"))
    assert [d.text for d in out] == ["这个按钮已失效", STALE_REPLY]
    assert out[0].out.reply.update_token == "RC_2"


async def test_unsupported_message_gets_a_polite_reply(harness: Harness) -> None:
    msg = harness.message("zhangwei", kind=Kind.EVENT, event="unsupported_message", extra={"msg_type": "video"})
    assert [d.text for d in await harness.send(msg)] == [UNSUPPORTED_REPLY]


def test_outcome_label() -> None:
    assert outcome_label([Reply(text="已接单：华山医院心内科线索已分配给您")]) == "已接单"
    assert outcome_label([Reply(text="好的")]) == "好的"
    assert outcome_label([Reply(text="这是一条很长很长的没有标点的说明文字超过十个字")]) == DONE_LABEL
    assert outcome_label([Reply(text="通知经理", to="wang_jl"), Reply(text="已转交。")]) == "已转交"
    assert outcome_label([Reply(card=Card(title="已完成"))]) == "已完成"
    assert outcome_label([]) == DONE_LABEL
