"""The local chat channel: a terminal (``genjin chat``) or plain HTTP instead of a platform.

It goes through the same inbox → dispatcher → outbox path as WeCom and DingTalk; only
the edges differ. Local people are addressed by their org key.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.channels.base import ChannelHealth, MediaError, PermanentFailure
from bot.channels.limits import BodyError, load_json
from bot.config import ConfigError, LocalChannelConfig
from bot.context import AppContext
from bot.messages import Inbound, Ingest, Kind, Outbound, Platform
from cards.render_text import render_text

MAX_TEXT = 4000
LOOPBACK = frozenset({"127.0.0.1", "::1"})
_ID = re.compile(r"^[\w.@:-]{1,128}$")

Listener = Callable[[Outbound, str], None]


def render_reply(out: Outbound) -> str:
    parts = []
    if out.reply.text:
        parts.append(out.reply.text)
    if out.reply.card is not None:
        parts.append(render_text(out.reply.card))
    if out.reply.image is not None:
        parts.append(f"[图片 {out.reply.image.name}] {out.reply.image.alt}".rstrip())
    return "\n".join(parts)


class LocalChannel:
    platform = Platform.LOCAL.value

    def __init__(self, app: AppContext, ingest: Ingest) -> None:
        check_config(app.config.local)
        self._app = app
        self._ingest = ingest
        self._listeners: list[Listener] = []
        self.holder = ""  # the session this process holds conversations for ("" = none)
        transcript = app.config.local.transcript
        self._transcript = Path(transcript) if transcript else None

    def hold(self, session: str) -> str:
        """Claim the conversations marked with ``session``: their replies are delivered here only."""
        self.holder = session
        return session

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def setup_routes(self, app: web.Application) -> None:
        if self._app.config.local.http:
            app.router.add_post("/local/messages", self._post_message)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, out: Outbound) -> None:
        text = render_reply(out)
        if not text:
            raise PermanentFailure("empty reply")
        if self._transcript is not None:
            line = {"id": out.id, "to": out.recipient, "text": text, "at": datetime.now(timezone.utc).isoformat()}
            with self._transcript.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        for listener in list(self._listeners):
            listener(out, text)

    async def fetch_media(self, ref: str, fmt: str) -> bytes:
        path = Path(ref)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read {path}: {exc.strerror}") from None

    def health(self) -> ChannelHealth:
        return ChannelHealth(ok=True, detail="local")

    def _refuse(self, request: web.Request) -> web.Response | None:
        """Anyone who can post here can speak as any rep: loopback only and a bearer token."""
        cfg = self._app.config.local
        if not cfg.http_remote and request.remote not in LOOPBACK:
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        if not is_trusted_token(request, cfg.token):
            return web.json_response(
                {"ok": False, "error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return None

    async def _post_message(self, request: web.Request) -> web.Response:
        """``POST /local/messages`` {"user", "text", "id"?} → stored (or duplicate), 200."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            data: Any = load_json(await request.read())
        except BodyError:
            return _bad("body must be a JSON object")
        if not isinstance(data, dict):
            return _bad("body must be a JSON object")
        user, text, msg_id = data.get("user"), data.get("text"), data.get("id") or uuid.uuid4().hex
        if not isinstance(user, str) or not _ID.match(user):
            return _bad("user must be an org person key")
        if not isinstance(text, str) or not text.strip():
            return _bad("text must be a non-empty string")
        if len(text) > MAX_TEXT:
            return _bad(f"text longer than {MAX_TEXT} characters")
        if not isinstance(msg_id, str) or not _ID.match(msg_id):
            return _bad("id must be a short string")
        msg = Inbound(
            platform=self.platform,
            message_id=msg_id,
            sender=user,
            kind=Kind.TEXT,
            conversation=user,
            text=text,
            sent_at=datetime.now(timezone.utc),
        )
        result = await self._ingest(msg)
        return web.json_response({"ok": True, "duplicate": result.duplicate, "inbox_id": result.inbox_id})


def check_config(cfg: LocalChannelConfig) -> None:
    """The HTTP endpoint is off unless configured, and never on without a token."""
    if cfg.http and not cfg.token:
        raise ConfigError(["[local] token: required when [local] http = true (set it or GENJIN_LOCAL_TOKEN)"])


def is_trusted_token(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _bad(reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=400)
