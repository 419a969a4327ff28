"""WeCom group robots (群机器人): webhook pushes to a team chat, no callbacks.

Kept apart from the app channel because it shares nothing on the receiving side and
only the send loop (:mod:`bot.channels.wecom_send`) on the sending side.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from aiohttp import web

from bot.channels.base import ChannelHealth, MediaError, PermanentFailure
from bot.channels.wecom_client import SlidingWindowLimiter, WeComClient
from bot.channels.wecom_send import (
    ApiHealth,
    PartSender,
    TaskIds,
    text_messages,
)
from bot.context import AppContext
from bot.messages import Ingest, Outbound
from cards.render_wecom import split_markdown, wecom_markdown, wecom_messages

ROBOT_PLATFORM = "wecom_robot"
ROBOT_MARKDOWN_MAX_BYTES = 4096


class WeComRobotChannel:
    """Group robot (群机器人) webhooks for team-channel pushes.

    The recipient is the webhook key (``default`` = ``[wecom] robot_webhook_key``; a
    full webhook URL is accepted too). Robots cannot call the bot back, so cards go out
    as markdown with their commands listed, or as a text_notice when they have a link.
    """

    platform = ROBOT_PLATFORM

    def __init__(self, app: AppContext, ingest: Ingest) -> None:
        """``ingest`` is unused: a group robot receives nothing."""
        cfg = app.config.wecom
        self._app = app
        self._cfg = cfg
        self._log = app.log.bind(channel=self.platform)
        self.client = WeComClient(cfg.api_base, cfg.corp_id, cfg.secret, timeout=cfg.request_timeout)
        self.limiter = SlidingWindowLimiter(cfg.robot_per_minute)
        self._health = ApiHealth()
        self._parts = PartSender(self.limiter, self._health, self._log, "群机器人")
        self._task_ids = TaskIds(cfg.task_id_prefix)

    def setup_routes(self, app: web.Application) -> None:
        return None

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        await self.client.close()

    def health(self) -> ChannelHealth:
        detail = "default robot configured" if self._cfg.robot_webhook_key else "no default robot key"
        return self._health.report(detail)

    async def fetch_media(self, ref: str, fmt: str) -> bytes:
        raise MediaError("group robots receive no media")

    def webhook_key(self, recipient: str) -> str:
        if recipient in ("", "default"):
            key = self._cfg.robot_webhook_key
            if not key:
                raise PermanentFailure("no [wecom] robot_webhook_key configured for the default team robot")
            return key
        if recipient.startswith(("http://", "https://")):
            keys = parse_qs(urlparse(recipient).query).get("key")
            if not keys:
                raise PermanentFailure("robot webhook URL without key=")
            return keys[0]
        return recipient

    def render(self, out: Outbound) -> list[dict[str, Any]]:
        reply = out.reply
        bodies: list[dict[str, Any]] = []
        if reply.text.strip():
            bodies.extend(text_messages(reply.text))
        card = reply.card
        if card is not None:
            if card.link and not any(b.command for b in card.buttons):
                for body in wecom_messages(card, task_id=self._task_ids.get(out)):
                    if body.get("msgtype") == "template_card" and body["template_card"].get("card_type") != "text_notice":
                        continue
                    bodies.append(body)
            else:
                bodies.extend(
                    {"msgtype": "markdown", "markdown": {"content": part}}
                    for part in split_markdown(wecom_markdown(card), ROBOT_MARKDOWN_MAX_BYTES)
                )
        return bodies

    async def send(self, out: Outbound) -> None:
        key = self.webhook_key(out.recipient)

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            return await self.client.robot_send(key, body)

        await self._parts.send(out.id, self.render(out), key, post, limit_label="per robot")
