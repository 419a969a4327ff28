"""The WeCom (企业微信) self-built app channel: callbacks in, ``message/send`` out.

Receiving: WeCom POSTs encrypted XML to the callback URL and gives up after 5 s,
retrying up to three times. So the adapter verifies the signature, decrypts, stores the
message in the inbox and answers an empty 200 at once; workers do the rest. Forged or
foreign (wrong corp id) callbacks are refused with 403 before anything is stored.

Sending: replies are rendered to ``message/send`` bodies (text, markdown, template
cards); a reply carrying ``update_token`` updates the clicked card instead. WeCom's
errors are sorted into "try later" (rate limits, 5xx, network) and "retrying will not
help" (configuration, bad recipient); an IP allow-list problem (60020) is shown on
``/healthz`` because only an administrator can fix it. The group robot lives in
:mod:`bot.channels.wecom_robot`; what both send paths share is in
:mod:`bot.channels.wecom_send`.
"""

from __future__ import annotations

import binascii
import struct
import time
from typing import Any

from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.base import ChannelHealth, DeliveryError, MediaError, PermanentFailure
from bot.channels.wecom_client import (
    SlidingWindowLimiter,
    WeComApiError,
    WeComClient,
    WeComTransportError,
)
from bot.channels.wecom_parse import (
    ParseError,
    check_envelope_size,
    envelope,
    parse_xml,
    to_inbound,
)
from bot.channels.wecom_send import (
    TASK_ID_TAKEN,
    ApiHealth,
    PartSender,
    TaskIds,
    text_messages,
)
from bot.config import ConfigError, WeComConfig
from bot.context import AppContext
from bot.messages import Ingest, Outbound, Platform
from cards.render_wecom import wecom_messages
from cards.textutil import clip, single_line

REPLACE_NAME_MAX = 10
AMR_MAGIC = b"#!AMR\n"

_DECRYPT_ERRORS = (ValueError, TypeError, KeyError, IndexError, struct.error, binascii.Error, UnicodeDecodeError)


def check_config(cfg: WeComConfig) -> None:
    """An enabled WeCom channel needs all its credentials; say which are missing."""
    problems = [
        f"[wecom] {key}: required when [wecom] enabled = true (set it in the config file or GENJIN_WECOM_{key.upper()})"
        for key in ("corp_id", "agent_id", "secret", "token", "encoding_aes_key")
        if not getattr(cfg, key)
    ]
    if problems:
        raise ConfigError(problems)


def agent_id_value(agent_id: str) -> int | str:
    """WeCom wants agentid as a JSON number; Python ints have no 32-bit limit."""
    return int(agent_id) if agent_id.isdigit() else agent_id


class WeComChannel:
    """A WeCom self-built app (自建应用): callbacks in, ``message/send`` out."""

    platform = Platform.WECOM.value

    def __init__(self, app: AppContext, ingest: Ingest) -> None:
        cfg = app.config.wecom
        check_config(cfg)
        self._app = app
        self._ingest = ingest
        self._cfg = cfg
        self._log = app.log.bind(channel=self.platform)
        self._crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.corp_id)
        self.client = WeComClient(
            cfg.api_base,
            cfg.corp_id,
            cfg.secret,
            timeout=cfg.request_timeout,
            refresh_margin=cfg.token_refresh_margin,
        )
        self.limiter = SlidingWindowLimiter(cfg.per_member_per_minute)
        self._health = ApiHealth()
        self._parts = PartSender(self.limiter, self._health, self._log, f"the app (AgentId {cfg.agent_id})")
        self._task_ids = TaskIds(cfg.task_id_prefix)
        self._agent = agent_id_value(cfg.agent_id)

    # ---- lifecycle ------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get(self._cfg.callback_path, self._verify_url)
        app.router.add_post(self._cfg.callback_path, self._receive)

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        await self.client.close()

    def health(self) -> ChannelHealth:
        return self._health.report(f"agent {self._cfg.agent_id}")

    # ---- receiving ------------------------------------------------------------------

    def _reject(self, reason: str, status: int, text: str) -> web.Response:
        self._app.metrics.rejected.labels(self.platform, reason).inc()
        self._log.warning("wecom.callback_rejected", reason=reason, status=status)
        return web.Response(status=status, text=text)

    async def _verify_url(self, request: web.Request) -> web.Response:
        """``GET`` from the admin console when the callback URL is saved: echo the plaintext."""
        q = request.query
        signature, timestamp, nonce, echostr = (q.get(k, "") for k in ("msg_signature", "timestamp", "nonce", "echostr"))
        if not (signature and timestamp and nonce and echostr):
            return self._reject("missing_params", 400, "missing msg_signature/timestamp/nonce/echostr")
        try:
            plain = self._crypto.check_signature(signature, timestamp, nonce, echostr)
        except InvalidSignatureException:
            return self._reject("bad_signature", 403, "invalid signature")
        except InvalidCorpIdException:
            return self._reject("bad_corp_id", 403, "invalid corp id")
        except _DECRYPT_ERRORS:
            return self._reject("bad_echostr", 400, "echostr cannot be decrypted")
        return web.Response(body=plain.encode("utf-8"), content_type="text/plain")

    async def _receive(self, request: web.Request) -> web.Response:
        """``POST``: verify, decrypt, store, and only then acknowledge (empty 200)."""
        limit = self._app.config.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._reject("too_large", 413, f"body larger than {limit} bytes")
        q = request.query
        signature, timestamp, nonce = (q.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject("too_large", 413, f"body larger than {limit} bytes")
        if len(body) > limit:
            return self._reject("too_large", 413, f"body larger than {limit} bytes")
        if not (signature and timestamp and nonce):
            return self._reject("missing_params", 400, "missing msg_signature/timestamp/nonce")
        if not self._fresh(timestamp):
            return self._reject("stale", 403, "timestamp outside the allowed window")
        try:
            outer = envelope(body)
        except ParseError as exc:
            return self._reject("malformed", 400, str(exc))
        try:
            plain = self._crypto.decrypt_message(outer, signature, timestamp, nonce)
        except InvalidSignatureException:
            return self._reject("bad_signature", 403, "invalid signature")
        except InvalidCorpIdException:
            return self._reject("bad_corp_id", 403, "invalid corp id")
        except _DECRYPT_ERRORS:
            return self._reject("undecryptable", 400, "Encrypt cannot be decrypted")
        try:
            check_envelope_size(body)
            msg = to_inbound(parse_xml(plain))
        except ParseError as exc:
            return self._reject("malformed", 400, str(exc))

        try:
            result = await self._ingest(msg)
        except Exception:  # noqa: BLE001 - not stored: let WeCom retry instead of acking
            self._log.exception("wecom.store_failed", message_id=msg.message_id)
            return web.Response(status=503, text="temporarily unavailable")
        if result.duplicate:
            self._log.debug("wecom.duplicate", message_id=msg.message_id)
        return web.Response(status=200, text="")

    def _fresh(self, timestamp: str) -> bool:
        """A captured callback replayed later is refused; the window is wall-clock time (transport, not business time)."""
        try:
            sent = int(timestamp)
        except ValueError:
            return False
        return abs(time.time() - sent) <= self._app.config.wecom.callback_max_skew_seconds

    # ---- sending --------------------------------------------------------------------

    def render(self, out: Outbound) -> list[dict[str, Any]]:
        """``message/send`` bodies (without touser/agentid) for one outbox row."""
        reply = out.reply
        bodies: list[dict[str, Any]] = []
        if reply.text.strip():
            bodies.extend(text_messages(reply.text))
        if reply.card is not None:
            bodies.extend(wecom_messages(reply.card, task_id=self._task_ids.get(out)))
        return bodies

    def _failure(self, exc: WeComApiError | WeComTransportError) -> DeliveryError:
        return self._parts.failure(exc)

    async def send(self, out: Outbound) -> None:
        if out.reply.update_token:
            await self._update_card(out)
            return

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            payload = {"touser": out.recipient, "agentid": self._agent, **body}
            try:
                return await self.client.send_message(payload)
            except WeComApiError as exc:
                if exc.errcode != TASK_ID_TAKEN or body.get("msgtype") != "template_card":
                    raise
                # The id was used before (a reset database, another node): re-issue once with a new one.
                self._log.warning("wecom.task_id_taken", outbox_id=out.id)
                card = {**body["template_card"], "task_id": self._task_ids.renew(out)}
                return await self.client.send_message({**payload, "template_card": card})

        def check(data: dict[str, Any]) -> None:
            if out.recipient in str(data.get("invaliduser") or "").split("|"):
                raise PermanentFailure(f"WeCom says {out.recipient!r} is not a member the app can reach (invaliduser)")

        bodies = self.render(out)
        if out.reply.image is not None:
            bodies.append(await self._image_body(out))
        await self._parts.send(out.id, bodies, out.recipient, post, check)

    async def _image_body(self, out: Outbound) -> dict[str, Any]:
        """Upload the chart and send it as an image message; if the upload fails, its text instead."""
        image = out.reply.image
        assert image is not None
        try:
            media_id = await self.client.upload_media(image.data, kind="image", filename=image.name)
        except (WeComApiError, WeComTransportError) as exc:
            self._log.warning("wecom.image_upload_failed", outbox_id=out.id, reason=str(exc))
            return text_messages(image.alt or "（图表暂时无法显示）")[0]
        return {"msgtype": "image", "image": {"media_id": media_id}}

    async def _update_card(self, out: Outbound) -> None:
        """Consume the one-time response_code: replace the clicked button's text, or the card."""
        reply = out.reply
        payload: dict[str, Any] = {
            "userids": [out.recipient],
            "agentid": self._agent,
            "response_code": reply.update_token,
        }
        if reply.card is not None:
            bodies = wecom_messages(reply.card, task_id=self._task_ids.get(out))
            cards = [b["template_card"] for b in bodies if b.get("msgtype") == "template_card"]
            if not cards:
                raise PermanentFailure("card update needs a card that renders as a template card")
            payload["template_card"] = cards[-1]
        else:
            payload["button"] = {"replace_name": clip(single_line(reply.text), REPLACE_NAME_MAX) or "已处理"}
        try:
            await self.client.update_template_card(payload)
        except (WeComApiError, WeComTransportError) as exc:
            raise self._failure(exc) from None
        self._health.succeeded()

    async def fetch_media(self, ref: str, fmt: str) -> bytes:
        """Download a voice memo (``media/get``); only AMR voice is accepted."""
        if not ref:
            raise MediaError("no media id")
        try:
            media = await self.client.get_media(ref)
        except WeComApiError as exc:
            self._failure(exc)  # records configuration problems for /healthz
            raise MediaError(f"media/get errcode {exc.errcode}: {exc.errmsg}") from None
        except WeComTransportError as exc:
            raise MediaError(f"media/get failed: {exc.reason}") from None
        self._health.succeeded()
        if (fmt or "amr").lower() == "amr" and not media.data.startswith(AMR_MAGIC):
            raise MediaError(
                f"media/get returned {len(media.data)} bytes of {media.content_type or 'unknown type'}, not AMR audio"
            )
        if not media.data:
            raise MediaError("media/get returned an empty body")
        return media.data
