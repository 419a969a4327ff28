"""The WeCom (企业微信) self-built app channel, and its group-robot sibling.

Receiving: WeCom POSTs encrypted XML to the callback URL and gives up after 5 s,
retrying up to three times. So the adapter verifies the signature, decrypts, stores the
message in the inbox and answers an empty 200 at once; workers do the rest. Forged or
foreign (wrong corp id) callbacks are refused with 403 before anything is stored.

Sending: replies are rendered to ``message/send`` bodies (text, markdown, template
cards); a reply carrying ``update_token`` updates the clicked card instead. WeCom's
errors are sorted into "try later" (rate limits, 5xx, network) and "retrying will not
help" (configuration, bad recipient); an IP allow-list problem (60020) is shown on
``/healthz`` because only an administrator can fix it.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import struct
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.base import (
    ChannelHealth,
    DeliveryError,
    MediaError,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.wecom_client import (
    GETTOKEN,
    TOKEN_ERRORS,
    SlidingWindowLimiter,
    WeComApiError,
    WeComClient,
    WeComTransportError,
)
from bot.channels.wecom_parse import ParseError, envelope, parse_xml, to_inbound
from bot.config import ConfigError, WeComConfig
from bot.context import AppContext
from bot.messages import Ingest, Outbound, Platform
from cards.render_wecom import (
    split_markdown,
    wecom_markdown,
    wecom_messages,
    wecom_task_id,
)
from cards.textutil import clip, single_line

ROBOT_PLATFORM = "wecom_robot"
TEXT_MAX_BYTES = 2048
ROBOT_MARKDOWN_MAX_BYTES = 4096
REPLACE_NAME_MAX = 10
AMR_MAGIC = b"#!AMR\n"

#: errcodes that mean "later": system busy, API frequency limits.
RETRYABLE = frozenset({-1, 45009, 45033, 45011})
#: gettoken errors that only an administrator can fix.
CREDENTIAL_ERRORS = frozenset({40001, 40013, 40091, 41002, 41004})
IP_NOT_TRUSTED = 60020
_FROM_IP = re.compile(r"from ip:?\s*([0-9a-fA-F.:]+)")

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


def template_task_id(prefix: str, out: Outbound) -> str:
    """Unique per app and stable across retries of the same outbox row.

    The payload digest keeps ids unique if the database (and its ids) is ever reset.
    """
    digest = hashlib.sha1(json.dumps(out.reply.to_payload(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return wecom_task_id(f"{prefix}_{out.id}_{digest[:10]}")


def text_messages(text: str, limit: int = TEXT_MAX_BYTES) -> list[dict[str, Any]]:
    return [{"msgtype": "text", "text": {"content": part}} for part in split_markdown(text, limit)]


def _ip_hint(errmsg: str) -> str:
    match = _FROM_IP.search(errmsg)
    return match.group(1) if match else ""


class _Progress:
    """Which parts of a multi-message reply already went out, so a retry resends only the rest.

    In memory only: after a restart a retry may repeat earlier parts (duplicates, never loss).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._done: OrderedDict[int, int] = OrderedDict()
        self._limit = limit

    def get(self, outbox_id: int) -> int:
        return self._done.get(outbox_id, 0)

    def set(self, outbox_id: int, parts: int) -> None:
        self._done[outbox_id] = parts
        self._done.move_to_end(outbox_id)
        while len(self._done) > self._limit:
            self._done.popitem(last=False)

    def forget(self, outbox_id: int) -> None:
        self._done.pop(outbox_id, None)


class _ApiHealth:
    """Remembers the last configuration problem (60020, bad secret) until a call succeeds."""

    def __init__(self) -> None:
        self.problem = ""
        self.errcode = 0

    def failed(self, errcode: int, problem: str) -> None:
        self.problem, self.errcode = problem, errcode

    def succeeded(self) -> None:
        self.problem, self.errcode = "", 0

    def report(self, detail: str) -> ChannelHealth:
        if self.problem:
            return ChannelHealth(ok=False, detail=self.problem, extra={"errcode": self.errcode})
        return ChannelHealth(ok=True, detail=detail)


def classify(exc: WeComApiError | WeComTransportError, health: _ApiHealth, log: Any, where: str) -> DeliveryError:
    """Turn a client error into what the outbox should do (and remember config problems)."""
    if isinstance(exc, WeComTransportError):
        return TemporaryFailure(f"WeCom unreachable: {exc.reason}")
    code, msg = exc.errcode, exc.errmsg
    if code == IP_NOT_TRUSTED:
        ip = _ip_hint(msg) or "this server's public IP"
        problem = (
            f"WeCom refuses calls from {ip} (errcode 60020): add {ip} to the app's trusted IPs — "
            f"admin console 管理后台 → 应用管理 → {where} → 企业可信IP — then resend the failed messages"
        )
        log.error("wecom.ip_not_trusted", ip=ip, errmsg=msg)
        health.failed(code, problem)
        return PermanentFailure(problem)
    if code in RETRYABLE:
        return TemporaryFailure(f"WeCom busy or rate-limited (errcode {code}: {msg})")
    if exc.path == GETTOKEN and code in CREDENTIAL_ERRORS:
        problem = f"WeCom gettoken failed (errcode {code}: {msg}): check [wecom] corp_id and secret (GENJIN_WECOM_SECRET)"
        log.error("wecom.credentials", errcode=code, errmsg=msg)
        health.failed(code, problem)
        return PermanentFailure(problem)
    if code in TOKEN_ERRORS:
        return TemporaryFailure(f"WeCom access token rejected twice (errcode {code}: {msg})")
    return PermanentFailure(f"WeCom errcode {code}: {msg}")


class WeComChannel:
    """A WeCom self-built app (自建应用): callbacks in, ``message/send`` out."""

    platform = Platform.WECOM.value

    def __init__(self, app: AppContext, ingest: Ingest) -> None:
        self._ingest = ingest
        cfg = app.config.wecom
        check_config(cfg)
        self._app = app
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
        self._progress = _Progress()
        self._health = _ApiHealth()
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

    # ---- sending --------------------------------------------------------------------

    def render(self, out: Outbound) -> list[dict[str, Any]]:
        """``message/send`` bodies (without touser/agentid) for one outbox row."""
        reply = out.reply
        bodies: list[dict[str, Any]] = []
        if reply.text.strip():
            bodies.extend(text_messages(reply.text))
        if reply.card is not None:
            bodies.extend(wecom_messages(reply.card, task_id=template_task_id(self._cfg.task_id_prefix, out)))
        return bodies

    def _failure(self, exc: WeComApiError | WeComTransportError) -> DeliveryError:
        return classify(exc, self._health, self._log, f"the app (AgentId {self._cfg.agent_id})")

    async def send(self, out: Outbound) -> None:
        if out.reply.update_token:
            await self._update_card(out)
            return
        bodies = self.render(out)
        if not bodies:
            raise PermanentFailure("empty reply")
        start = self._progress.get(out.id)
        for index in range(start, len(bodies)):
            wait = self.limiter.acquire(out.recipient)
            if wait:
                raise TemporaryFailure(
                    f"local limit of {self.limiter.limit} messages/min to {out.recipient}", retry_after=wait
                )
            payload = {"touser": out.recipient, "agentid": self._agent, **bodies[index]}
            try:
                data = await self.client.send_message(payload)
            except (WeComApiError, WeComTransportError) as exc:
                failure = self._failure(exc)
                if isinstance(failure, PermanentFailure):
                    self._progress.forget(out.id)
                raise failure from None
            self._health.succeeded()
            invalid = str(data.get("invaliduser") or "")
            if out.recipient in invalid.split("|"):
                self._progress.forget(out.id)
                raise PermanentFailure(f"WeCom says {out.recipient!r} is not a member the app can reach (invaliduser)")
            self._progress.set(out.id, index + 1)
        self._progress.forget(out.id)

    async def _update_card(self, out: Outbound) -> None:
        """Consume the one-time response_code: replace the clicked button's text, or the card."""
        reply = out.reply
        payload: dict[str, Any] = {
            "userids": [out.recipient],
            "agentid": self._agent,
            "response_code": reply.update_token,
        }
        if reply.card is not None:
            bodies = wecom_messages(reply.card, task_id=template_task_id(self._cfg.task_id_prefix, out))
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


class WeComRobotChannel:
    """Group robot (群机器人) webhooks for team-channel pushes.

    The recipient is the webhook key (``default`` = ``[wecom] robot_webhook_key``; a
    full webhook URL is accepted too). Robots cannot call the bot back, so cards go out
    as markdown with their commands listed, or as a text_notice when they have a link.
    """

    platform = ROBOT_PLATFORM

    def __init__(self, app: AppContext) -> None:
        cfg = app.config.wecom
        self._app = app
        self._cfg = cfg
        self._log = app.log.bind(channel=self.platform)
        self.client = WeComClient(cfg.api_base, cfg.corp_id, cfg.secret, timeout=cfg.request_timeout)
        self.limiter = SlidingWindowLimiter(cfg.robot_per_minute)
        self._progress = _Progress()
        self._health = _ApiHealth()

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
                for body in wecom_messages(card, task_id=template_task_id(self._cfg.task_id_prefix, out)):
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
        bodies = self.render(out)
        if not bodies:
            raise PermanentFailure("empty reply")
        start = self._progress.get(out.id)
        for index in range(start, len(bodies)):
            wait = self.limiter.acquire(key)
            if wait:
                raise TemporaryFailure(f"local limit of {self.limiter.limit} messages/min per robot", retry_after=wait)
            try:
                await self.client.robot_send(key, bodies[index])
            except (WeComApiError, WeComTransportError) as exc:
                failure = classify(exc, self._health, self._log, "群机器人")
                if isinstance(failure, PermanentFailure):
                    self._progress.forget(out.id)
                raise failure from None
            self._health.succeeded()
            self._progress.set(out.id, index + 1)
        self._progress.forget(out.id)
