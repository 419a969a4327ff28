"""Card buttons: a click is the same as typing the button's command.

A button carries a command ("接单", "完成 12", "#价格"); the channel reports the click
as an EVENT ``card_click`` with the command in ``event_key``. Re-dispatching it as a
text message means every feature handles clicks and typed commands with one code
path. When the platform lets us update the clicked card (WeCom's one-time
``reply_response_code``), the button is replaced by a short outcome so it cannot be
clicked twice by mistake.
"""

from __future__ import annotations

from dataclasses import replace

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import HandlerContext, Router, event
from handlers.common.format import outcome_label

STALE_REPLY = "这个按钮已失效，请直接发送文字指令。"
UNSUPPORTED_REPLY = "暂时只能处理文字、语音和图片消息。请把要点用文字或语音发给我。"


def click_as_text(msg: Inbound) -> Inbound:
    """The click as if the person had typed the button's command."""
    return replace(msg, kind=Kind.TEXT, text=msg.event_key.strip(), event="", event_key="")


def router(app: AppContext) -> Router:
    r = Router("actions")

    @r.on(event("card_click"))
    async def card_click(msg: Inbound, hc: HandlerContext) -> list[Reply]:
        code = str(msg.extra.get("reply_response_code") or "")
        if not msg.event_key.strip():
            replies = [Reply(text=STALE_REPLY)]
        else:
            replies = await hc.redispatch(click_as_text(msg))
        if not code:
            return replies
        return [Reply(text=outcome_label(replies), update_token=code), *replies]

    @r.on(event("unsupported_message", "file_received", "video_received"))
    async def unsupported(msg: Inbound, hc: HandlerContext) -> Reply:
        return Reply(text=UNSUPPORTED_REPLY)

    return r
