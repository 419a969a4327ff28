"""The catch-all: anything no feature claimed gets a short, honest answer."""

from __future__ import annotations

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import HandlerContext, Router, kind

ACK = "收到。"


def router(app: AppContext) -> Router:
    r = Router("fallback")

    @r.on(kind(Kind.TEXT))
    async def text(msg: Inbound, hc: HandlerContext) -> Reply:
        return Reply(text=ACK)

    @r.on(kind(Kind.IMAGE))
    async def image(msg: Inbound, hc: HandlerContext) -> Reply:
        return Reply(text="收到图片。图片暂不识别，请用文字或语音补充要点。")

    @r.on(kind(Kind.EVENT))
    async def event(msg: Inbound, hc: HandlerContext) -> None:
        return None

    return r
