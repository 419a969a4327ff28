"""An async client for the DingTalk APIs the bot uses, with errors the outbox understands.

Everything here is non-blocking (aiohttp): the official SDK's ``requests`` calls would
stall the event loop — and with it every other callback — for as long as DingTalk takes
to answer. Failures are classified once, here: network trouble, 429 and 5xx are
:class:`TemporaryFailure` (the outbox retries), an expired access token is refreshed and
the call repeated once, anything else DingTalk rejects is a :class:`PermanentFailure`
carrying DingTalk's own message so sales ops can see what to fix.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.channels.base import MediaError, PermanentFailure, TemporaryFailure
from bot.channels.dingtalk_parse import signed_webhook_url
from bot.config import DingTalkConfig

TOKEN_PATH = "/v1.0/oauth2/accessToken"
STREAM_OPEN_PATH = "/v1.0/gateway/connections/open"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
GROUP_SEND_PATH = "/v1.0/robot/groupMessages/send"
DOWNLOAD_PATH = "/v1.0/robot/messageFiles/download"

ERRCODE_TOO_FAST = 130101  # custom robot: more than 20 messages a minute
_AUTH_CODES = {"InvalidAuthentication", "InvalidAccessToken", "InvalidAuthentication.AccessToken"}
_THROTTLE_MARKERS = ("Throttling", "QpsLimit", "FlowControl")


class WebhookRejected(PermanentFailure):
    """A sessionWebhook/robot webhook refused the message (expired session, bad sign …)."""


@dataclass(frozen=True)
class _Response:
    status: int
    data: dict[str, Any]
    text: str
    retry_after: float | None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _describe(what: str, resp: _Response) -> str:
    code = resp.data.get("code") or resp.data.get("errcode") or ""
    message = resp.data.get("message") or resp.data.get("errmsg") or resp.text[:200]
    return f"{what}: HTTP {resp.status} {code} {message}".strip()


def _is_auth_failure(resp: _Response) -> bool:
    return resp.status == 401 or str(resp.data.get("code", "")) in _AUTH_CODES


def _is_throttled(resp: _Response) -> bool:
    code = str(resp.data.get("code", ""))
    return resp.status == 429 or any(marker in code for marker in _THROTTLE_MARKERS)


class DingTalkClient:
    """OpenAPI (api.dingtalk.com) and webhook calls for one DingTalk app."""

    def __init__(self, cfg: DingTalkConfig) -> None:
        self._cfg = cfg
        self._http: aiohttp.ClientSession | None = None
        self._token = ""
        self._token_expires = 0.0  # time.monotonic()
        self._token_lock = asyncio.Lock()
        self.token_fetches = 0

    @property
    def robot_code(self) -> str:
        """For an internal app the robotCode is the AppKey unless configured otherwise."""
        return self._cfg.robot_code or self._cfg.client_id

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            timeout = aiohttp.ClientTimeout(total=self._cfg.http_timeout_seconds)
            self._http = aiohttp.ClientSession(timeout=timeout, headers={"Accept": "application/json"})
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    async def _post(self, what: str, url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> _Response:
        try:
            async with self._session().post(url, json=body, headers=dict(headers or {})) as resp:
                raw = await resp.read()
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryFailure(f"{what}: network error {type(exc).__name__}: {exc}") from None
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = {}
        data = parsed if isinstance(parsed, dict) else {}
        return _Response(status, data, text, retry_after)

    # -- access token ---------------------------------------------------------------

    async def access_token(self, *, force: bool = False) -> str:
        """The app's access token, cached and refreshed before it expires."""
        async with self._token_lock:
            if not force and self._token and time.monotonic() < self._token_expires:
                return self._token
            body = {"appKey": self._cfg.client_id, "appSecret": self._cfg.client_secret}
            resp = await self._post("accessToken", self._cfg.api_base + TOKEN_PATH, body)
            if resp.status >= 500 or resp.status == 429:
                raise TemporaryFailure(_describe("accessToken", resp), resp.retry_after)
            token, expire_in = resp.data.get("accessToken"), resp.data.get("expireIn")
            if resp.status >= 400 or not isinstance(token, str) or not token:
                raise PermanentFailure(_describe("accessToken (check dingtalk.client_id / client_secret)", resp))
            ttl = float(expire_in) if isinstance(expire_in, (int, float)) and expire_in > 0 else 7200.0
            margin = min(self._cfg.token_refresh_margin_seconds, ttl / 2)
            self._token, self._token_expires = token, time.monotonic() + ttl - margin
            self.token_fetches += 1
            return token

    async def _openapi(self, what: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST with the access token; an auth failure refreshes the token and retries once."""
        resp: _Response | None = None
        for attempt in (1, 2):
            token = await self.access_token(force=attempt == 2)
            resp = await self._post(what, self._cfg.api_base + path, body, {"x-acs-dingtalk-access-token": token})
            if not _is_auth_failure(resp):
                break
        assert resp is not None
        if _is_throttled(resp) or resp.status >= 500:
            raise TemporaryFailure(_describe(what, resp), resp.retry_after)
        if resp.status >= 400:
            raise PermanentFailure(_describe(what, resp))
        return resp.data

    # -- stream ---------------------------------------------------------------------

    async def open_stream(self, subscriptions: list[dict[str, str]], ua: str) -> tuple[str, str]:
        """Register a Stream connection; returns (websocket endpoint, ticket)."""
        base = self._cfg.gateway_base or self._cfg.api_base
        body = {
            "clientId": self._cfg.client_id,
            "clientSecret": self._cfg.client_secret,
            "subscriptions": subscriptions,
            "ua": ua,
            "localIp": "",
        }
        resp = await self._post("stream open", base + STREAM_OPEN_PATH, body)
        if resp.status >= 500 or resp.status == 429:
            raise TemporaryFailure(_describe("stream open", resp), resp.retry_after)
        endpoint, ticket = resp.data.get("endpoint"), resp.data.get("ticket")
        if resp.status >= 400 or not isinstance(endpoint, str) or not isinstance(ticket, str):
            raise PermanentFailure(_describe("stream open (check dingtalk.client_id / client_secret)", resp))
        return endpoint, ticket

    # -- sending --------------------------------------------------------------------

    async def post_webhook(self, what: str, url: str, payload: Mapping[str, Any]) -> tuple[int, str]:
        """POST to a sessionWebhook or robot webhook; returns (errcode, errmsg).

        Network trouble, 429 and 5xx raise :class:`TemporaryFailure`; other HTTP errors
        raise :class:`WebhookRejected`.
        """
        resp = await self._post(what, url, payload)
        if resp.status == 429 or resp.status >= 500:
            raise TemporaryFailure(_describe(what, resp), resp.retry_after)
        if resp.status >= 400:
            raise WebhookRejected(_describe(what, resp))
        code = resp.data.get("errcode", 0)
        return (code if isinstance(code, int) else -1), str(resp.data.get("errmsg", ""))

    async def send_session_webhook(self, url: str, payload: Mapping[str, Any]) -> None:
        errcode, errmsg = await self.post_webhook("sessionWebhook", url, payload)
        if errcode == ERRCODE_TOO_FAST:
            raise TemporaryFailure(f"sessionWebhook: errcode {errcode} {errmsg}")
        if errcode != 0:
            raise WebhookRejected(f"sessionWebhook: errcode {errcode} {errmsg}")

    async def send_to_users(self, user_ids: list[str], msg_key: str, msg_param: Mapping[str, Any]) -> None:
        body = {
            "robotCode": self.robot_code,
            "userIds": user_ids,
            "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False),
        }
        data = await self._openapi("batchSend", BATCH_SEND_PATH, body)
        invalid = data.get("invalidStaffIdList") or []
        if any(uid in invalid for uid in user_ids):
            raise PermanentFailure(f"batchSend: DingTalk does not know staff id(s) {invalid}")
        limited = data.get("flowControlledStaffIdList") or []
        if any(uid in limited for uid in user_ids):
            raise TemporaryFailure(f"batchSend: flow-controlled for {limited}")

    async def send_to_group(self, open_conversation_id: str, msg_key: str, msg_param: Mapping[str, Any]) -> None:
        body = {
            "robotCode": self.robot_code,
            "openConversationId": open_conversation_id,
            "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False),
        }
        await self._openapi("groupMessages/send", GROUP_SEND_PATH, body)

    # -- media ----------------------------------------------------------------------

    async def upload_media(self, data: bytes, *, kind: str, filename: str) -> str:
        """Upload media for a message (``oapi /media/upload``, multipart field ``media``); returns its media_id."""
        what = "media/upload"
        for attempt in (1, 2):
            token = await self.access_token(force=attempt == 2)
            form = aiohttp.FormData()
            form.add_field("media", data, filename=filename, content_type="application/octet-stream")
            try:
                async with self._session().post(
                    self._cfg.oapi_base + "/media/upload", params={"access_token": token, "type": kind}, data=form
                ) as resp:
                    status, raw = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TemporaryFailure(f"{what}: network error {type(exc).__name__}: {exc}") from None
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {}
            code = answer.get("errcode") if isinstance(answer, dict) else None
            if code in (40014, 42001) and attempt == 1:
                continue  # a stale token: fetch a new one and try once more
            if status >= 500:
                raise TemporaryFailure(f"{what}: HTTP {status}")
            if code != 0 or not answer.get("media_id"):
                raise PermanentFailure(f"{what}: HTTP {status} errcode {code} {answer.get('errmsg', '') if isinstance(answer, dict) else ''}")
            return str(answer["media_id"])
        raise AssertionError("unreachable")  # pragma: no cover

    async def download(self, download_code: str, robot_code: str = "") -> bytes:
        """Exchange a message's downloadCode for its bytes (via the temporary downloadUrl)."""
        body = {"downloadCode": download_code, "robotCode": robot_code or self.robot_code}
        try:
            data = await self._openapi("messageFiles/download", DOWNLOAD_PATH, body)
        except (TemporaryFailure, PermanentFailure) as exc:
            raise MediaError(exc.reason) from None
        url = data.get("downloadUrl")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MediaError("messageFiles/download returned no downloadUrl")
        limit = self._cfg.max_media_bytes
        try:
            async with self._session().get(url) as resp:
                if resp.status != 200:
                    raise MediaError(f"downloadUrl: HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > limit:
                    raise MediaError(f"media larger than {limit} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > limit:
                        raise MediaError(f"media larger than {limit} bytes")
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaError(f"downloadUrl: network error {type(exc).__name__}: {exc}") from None
        content = b"".join(chunks)
        if not content:
            raise MediaError("downloadUrl returned an empty file")
        return content


class RobotWebhook:
    """A custom group robot ("自定义机器人") with 加签 signing and its 20-a-minute limit.

    DingTalk throttles a robot that sends more than 20 messages a minute for about ten
    minutes (errcode 130101); the local sliding window keeps us under the limit and a
    130101 pauses the webhook so queued rows wait instead of burning their attempts.
    """

    def __init__(self, client: DingTalkClient, *, per_minute: int, throttle_seconds: float) -> None:
        self._client = client
        self._per_minute = per_minute
        self._throttle = throttle_seconds
        self._sent: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}

    async def send(self, url: str, secret: str, payload: Mapping[str, Any], *, timestamp_ms: int) -> None:
        now = time.monotonic()
        paused = self._paused_until.get(url, 0.0)
        if now < paused:
            raise TemporaryFailure("robot webhook throttled by DingTalk (130101)", retry_after=paused - now)
        window = self._sent.setdefault(url, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self._per_minute:
            raise TemporaryFailure(
                f"robot webhook: local limit of {self._per_minute} messages a minute",
                retry_after=60.0 - (now - window[0]) + 0.01,
            )
        window.append(now)
        errcode, errmsg = await self._client.post_webhook("robot webhook", signed_webhook_url(url, secret, timestamp_ms), payload)
        if errcode == ERRCODE_TOO_FAST:
            self._paused_until[url] = time.monotonic() + self._throttle
            raise TemporaryFailure(f"robot webhook: errcode {errcode} {errmsg}", retry_after=self._throttle)
        if errcode != 0:
            raise WebhookRejected(f"robot webhook: errcode {errcode} {errmsg}")
