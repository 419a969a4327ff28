"""The catch-all: anything no feature claimed gets a short, honest answer (for text: what the bot can do)."""

from __future__ import annotations

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import HandlerContext, Router, kind
from handlers.common.format import AFTER_TAG

HELP = "我是跟进助手：直接发拜访情况（文字或语音）就能记录，发 #帮助 查看全部命令和话术。"


def router(app: AppContext) -> Router:
    r = Router("fallback")

    @r.on(kind(Kind.TEXT))
    async def text(msg: Inbound, hc: HandlerContext) -> Reply | None:
        """Questions about the bot ("你能干啥？", "help") and anything else unclaimed: the help card."""
        if msg.extra.get(AFTER_TAG):
            return None  # the text after a #tag: the talk track already answered
        playbook = hc.app.services.playbook
        try:
            card = playbook.help_card(hc.person.role) if playbook is not None else None
        except Exception:  # noqa: BLE001 - a broken playbook must not leave the rep unanswered
            app.log.warning("fallback.help_failed", exc_info=True)
            card = None
        if card is None:
            return Reply(text=HELP, tag="help")
        return Reply(card=card, tag="help")

    @r.on(kind(Kind.IMAGE))
    async def image(msg: Inbound, hc: HandlerContext) -> Reply:
        return Reply(text="收到图片。图片暂不识别，请用文字或语音补充要点。")

    @r.on(kind(Kind.EVENT))
    async def event(msg: Inbound, hc: HandlerContext) -> None:
        return None

    return r
