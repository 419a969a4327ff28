"""The DingTalk (钉钉) channel: robot messages in (Stream or HTTP callback), replies out.

Receiving: Stream mode (default; the bot dials out, no public URL) or HTTP callbacks
signed with the AppSecret. Either way a message is parsed into an
:class:`~bot.messages.Inbound` and stored in the inbox before DingTalk gets its
acknowledgement; the ``msgId`` makes redeliveries no-ops.

Sending: a reply goes through the message's ``sessionWebhook`` while it is valid (it is
free and answers in the same conversation, group or 1:1); afterwards — reminders,
pushes, late retries — through the robot OpenAPI (1:1 ``batchSend`` or
``groupMessages/send``). Team-channel pushes use a custom group robot webhook, exposed
as a second channel, :class:`DingTalkRobotChannel` (platform ``dingtalk_robot``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels.base import ChannelHealth, DeliveryError, MediaError, PermanentFailure
from bot.channels.dingtalk_client import DingTalkClient, RobotWebhook, WebhookRejected
from bot.channels.dingtalk_parse import (
    CONVERSATION_GROUP,
    REPLY_CONVERSATION_TYPE,
    REPLY_OPEN_CONVERSATION,
    REPLY_WEBHOOK,
    REPLY_WEBHOOK_EXPIRES,
    ParseError,
    parse_message,
    sniff_format,
    verify_callback,
)
from bot.channels.limits import BodyError, load_json
from bot.config import ConfigError, DingTalkConfig
from bot.context import AppContext
from bot.messages import Accepted, Ingest, Outbound, Platform, Reply
from cards.model import Card
from cards.render_dingtalk import (
    dingtalk_message,
    dingtalk_text,
    dingtalk_webhook_payload,
)

if TYPE_CHECKING:
    from bot.channels.dingtalk_stream import StreamRunner

ROBOT_PLATFORM = "dingtalk_robot"
DEFAULT_ROBOT = "default"
DEFAULT_PORTS = {"https": 443, "http": 80}


def check_config(cfg: DingTalkConfig) -> None:
    """Fail at start-up, naming the key, rather than at the first message."""
    problems: list[str] = []
    for key in ("client_id", "client_secret"):
        if not getattr(cfg, key):
            problems.append(
                f"dingtalk.{key}: required when dingtalk.enabled = true "
                f"(set it in the config file or GENJIN_DINGTALK_{key.upper()})"
            )
    for key in ("api_base", "oapi_base", "gateway_base"):
        value = getattr(cfg, key)
        if value and not value.startswith(("https://", "http://")):
            problems.append(f"dingtalk.{key}: must be an http(s) URL (got {value!r})")
    if cfg.mode == "http" and not cfg.callback_path.startswith("/"):
        problems.append(f"dingtalk.callback_path: must start with / (got {cfg.callback_path!r})")
    if cfg.reconnect_max_seconds < cfg.reconnect_min_seconds:
        problems.append("dingtalk.reconnect_max_seconds: must not be smaller than reconnect_min_seconds")
    if problems:
        raise ConfigError(problems)


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None for a non-http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def webhook_allowed(url: str, allowed: list[str]) -> bool:
    """A sessionWebhook comes from the callback body: send there only if it is DingTalk's.

    Otherwise a forged (or replayed) callback could make the bot post replies — with
    whatever they contain — to any URL it names.
    """
    found = origin(url)
    return found is not None and found in {origin(entry) for entry in allowed}


class ReplayCache:
    """Which message a (timestamp, sign) pair was first seen with, for the skew window.

    DingTalk's HTTP signature covers only the timestamp, so a captured pair is valid for
    any body until it is ``max_skew`` old. One pair is accepted for one msgId (the
    platform's redelivery of that msgId still passes). In memory and per node: with
    several nodes behind a balancer a replay sent to another node within the window
    passes; closing that needs the pair stored with the inbox row (see the report).
    """

    def __init__(self, max_skew_ms: int, limit: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()
        self._max_skew_ms = max_skew_ms
        self._limit = limit

    def admit(self, timestamp: str, sign: str, msg_id: str, now_ms: int) -> bool:
        self._expire(now_ms)
        key = (timestamp, sign)
        seen = self._seen.get(key)
        if seen is not None:
            return seen[0] == msg_id
        self._seen[key] = (msg_id, int(timestamp))
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return True

    def _expire(self, now_ms: int) -> None:
        while self._seen:
            key, (_, stamp) = next(iter(self._seen.items()))
            if abs(now_ms - stamp) <= self._max_skew_ms:
                return
            self._seen.popitem(last=False)


def _with_text(reply: Reply) -> Card:
    """A card with the reply's text as its first block, so both go out as one message."""
    assert reply.card is not None
    if not reply.text.strip():
        return reply.card
    return replace(reply.card, blocks=(reply.text, *reply.card.blocks))


def webhook_payload(reply: Reply) -> dict[str, Any]:
    """Body for a sessionWebhook or custom robot webhook."""
    if reply.card is not None:
        return dingtalk_webhook_payload(_with_text(reply))
    _, param = dingtalk_text(reply.text)
    return {"msgtype": "text", "text": {"content": param["content"]}}


def openapi_message(reply: Reply) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) for batchSend / groupMessages/send."""
    if reply.card is not None:
        return dingtalk_message(_with_text(reply))
    return dingtalk_text(reply.text)


class DingTalkChannel:
    platform = Platform.DINGTALK.value

    def __init__(self, app: AppContext, ingest: Ingest) -> None:
        cfg = app.config.dingtalk
        check_config(cfg)
        self._app = app
        self._ingest = ingest
        self._cfg = cfg
        self._log = app.log.bind(channel=self.platform)
        self.client = DingTalkClient(cfg)
        self._replays = ReplayCache(cfg.callback_max_skew_seconds * 1000)
        self.stream: StreamRunner | None = None
        if cfg.mode == "stream":  # imported only here: HTTP mode works without the SDK
            from bot.channels.dingtalk_stream import StreamRunner

            self.stream = StreamRunner(cfg, self.client, self.ingest, self._log)

    # -- receiving ------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        if self._cfg.mode == "http":
            app.router.add_post(self._cfg.callback_path, self._callback)

    async def start(self) -> None:
        if self.stream is not None:
            await self.stream.start()

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        await self.client.close()

    async def ingest(self, data: Any) -> Accepted | None:
        """Parse one robot message body and store it; None when it is not for the bot.

        Raises :class:`ParseError` for a body that is not a robot message.
        """
        try:
            msg = parse_message(data)
        except ParseError:
            self._app.metrics.rejected.labels(self.platform, "malformed").inc()
            raise
        if msg is None:
            return None
        return await self._ingest(msg)

    async def _callback(self, request: web.Request) -> web.Response:
        """HTTP callback mode: verify the signature, store, then answer 200."""
        now_ms = int(self._app.clock.now().timestamp() * 1000)
        problem = verify_callback(
            request.headers.get("timestamp", ""),
            request.headers.get("sign", ""),
            self._cfg.client_secret,
            now_ms,
            self._cfg.callback_max_skew_seconds,
        )
        if problem is not None:
            self._app.metrics.rejected.labels(self.platform, "signature").inc()
            self._log.warning("dingtalk.callback.rejected", reason=problem, remote=request.remote)
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        limit = self._app.config.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return web.json_response({"ok": False, "error": f"body larger than {limit} bytes"}, status=413)
        body = await request.read()  # aiohttp answers 413 itself beyond client_max_size
        try:
            data = load_json(body)
        except BodyError as exc:
            self._app.metrics.rejected.labels(self.platform, "malformed").inc()
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        msg_id = data.get("msgId") if isinstance(data, dict) else None
        if not self._replays.admit(request.headers["timestamp"], request.headers["sign"], str(msg_id), now_ms):
            self._app.metrics.rejected.labels(self.platform, "replay").inc()
            self._log.warning("dingtalk.callback.rejected", reason="signature replayed for another message", remote=request.remote)
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        try:
            result = await self.ingest(data)
        except ParseError as exc:
            return web.json_response({"ok": False, "error": exc.reason}, status=400)
        except Exception:  # noqa: BLE001 - not stored: ask DingTalk to try again
            self._log.exception("dingtalk.callback.store_failed")
            return web.json_response({"ok": False, "error": "temporarily unavailable"}, status=503)
        if result is None:
            return web.json_response({"ok": True, "ignored": True})
        return web.json_response({"ok": True, "duplicate": result.duplicate})

    # -- sending --------------------------------------------------------------------

    def _session_webhook(self, out: Outbound) -> str | None:
        url, expires = out.context.get(REPLY_WEBHOOK), out.context.get(REPLY_WEBHOOK_EXPIRES)
        if not isinstance(url, str) or not isinstance(expires, int):
            return None
        if not webhook_allowed(url, self._cfg.session_webhook_hosts):
            self._log.warning("dingtalk.session_webhook_refused", outbox_id=out.id, origin=origin(url))
            return None
        now_ms = int(self._app.clock.now().timestamp() * 1000)
        if now_ms >= expires - int(self._cfg.session_webhook_margin_seconds * 1000):
            return None
        return url

    async def send(self, out: Outbound) -> None:
        if out.reply.text.strip() or out.reply.card is not None:
            await self._send_reply(out, out.reply)
        if out.reply.image is not None:
            await self._send_image(out)

    async def _send_image(self, out: Outbound) -> None:
        """A chart: uploaded, then an image message; when the upload fails, its text instead."""
        image = out.reply.image
        assert image is not None
        try:
            media_id = await self.client.upload_media(image.data, kind="image", filename=image.name)
        except DeliveryError as exc:
            self._log.warning("dingtalk.image_upload_failed", outbox_id=out.id, reason=exc.reason)
            await self._send_reply(out, Reply(text=image.alt or "（图表暂时无法显示）"))
            return
        msg_param = {"photoURL": media_id}
        conversation_id = out.context.get(REPLY_OPEN_CONVERSATION)
        if out.context.get(REPLY_CONVERSATION_TYPE) == CONVERSATION_GROUP and isinstance(conversation_id, str):
            await self.client.send_to_group(conversation_id, "sampleImageMsg", msg_param)
        elif out.recipient and not out.recipient.startswith("external:"):
            await self.client.send_to_users([out.recipient], "sampleImageMsg", msg_param)
        else:
            await self._send_reply(out, Reply(text=image.alt or "（图表暂时无法显示）"))

    async def _send_reply(self, out: Outbound, reply: Reply) -> None:
        webhook = self._session_webhook(out)
        if webhook is not None:
            try:
                await self.client.send_session_webhook(webhook, webhook_payload(reply))
                return
            except WebhookRejected as exc:
                self._log.info("dingtalk.session_webhook_rejected", outbox_id=out.id, reason=exc.reason)
        msg_key, msg_param = openapi_message(reply)
        conversation_id = out.context.get(REPLY_OPEN_CONVERSATION)
        if out.context.get(REPLY_CONVERSATION_TYPE) == CONVERSATION_GROUP and isinstance(conversation_id, str):
            await self.client.send_to_group(conversation_id, msg_key, msg_param)
            return
        if not out.recipient or out.recipient.startswith("external:"):
            raise PermanentFailure("recipient has no DingTalk staff id and the sessionWebhook has expired")
        await self.client.send_to_users([out.recipient], msg_key, msg_param)

    async def fetch_media(self, ref: str, fmt: str) -> bytes:
        """Download an audio/picture by its downloadCode; the bytes' format is checked."""
        if not ref:
            raise MediaError("no downloadCode")
        data = await self.client.download(ref)
        found = sniff_format(data[:64])
        if not found:
            raise MediaError(f"downloaded file is not a known audio/image format (expected {fmt or 'audio'})")
        return data

    def health(self) -> ChannelHealth:
        if self.stream is None:
            return ChannelHealth(ok=True, detail="http callbacks", extra={"mode": "http"})
        s = self.stream
        extra = {"mode": "stream", "connects": s.connects, "failures": s.failures}
        if s.connected:
            return ChannelHealth(ok=True, detail="stream connected", extra=extra)
        return ChannelHealth(ok=False, detail=f"stream not connected: {s.last_error or 'connecting'}", extra=extra)


class DingTalkRobotChannel:
    """Team-channel pushes through a custom group robot webhook (加签 signing, 20/min).

    The recipient is ``"default"`` (``[dingtalk] robot_webhook``/``robot_secret``) or a
    webhook URL; a URL's signing secret, if any, comes in the outbox context as
    ``robot_secret``.
    """

    platform = ROBOT_PLATFORM

    def __init__(self, app: AppContext, ingest: Ingest) -> None:
        self._app = app
        self._cfg = app.config.dingtalk
        self.client = DingTalkClient(self._cfg)
        self.webhook = RobotWebhook(
            self.client, per_minute=self._cfg.robot_per_minute, throttle_seconds=self._cfg.robot_throttle_seconds
        )

    def setup_routes(self, app: web.Application) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.close()

    async def send(self, out: Outbound) -> None:
        if out.recipient == DEFAULT_ROBOT:
            url, secret = self._cfg.robot_webhook, self._cfg.robot_secret
            if not url:
                raise PermanentFailure("dingtalk.robot_webhook is not configured")
        else:
            url = out.recipient
            secret_value = out.context.get("robot_secret", "")
            secret = secret_value if isinstance(secret_value, str) else ""
        if not url.startswith(("https://", "http://")):
            raise PermanentFailure(f"robot recipient is not a webhook URL: {url[:80]!r}")
        timestamp_ms = int(self._app.clock.now().timestamp() * 1000)
        await self.webhook.send(url, secret, webhook_payload(out.reply), timestamp_ms=timestamp_ms)

    async def fetch_media(self, ref: str, fmt: str) -> bytes:
        raise MediaError("the group robot receives no messages")

    def health(self) -> ChannelHealth:
        configured = bool(self._cfg.robot_webhook)
        return ChannelHealth(ok=True, detail="robot webhook" if configured else "no default robot webhook configured")
