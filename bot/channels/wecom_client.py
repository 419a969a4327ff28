"""An async client for the WeCom server API (qyapi): access token, messages, media, robots.

It speaks HTTP and WeCom's ``errcode`` convention and nothing else: which errors are
worth retrying is the adapter's decision (:mod:`bot.channels.wecom`). The access token
is cached per app and refreshed before it expires or when WeCom says it is stale
(40001/40014/42001, one retry); concurrent callers wait for a single refresh instead
of each fetching their own, because WeCom rate-limits ``gettoken`` too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.redact import redact

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
GETTOKEN = "/cgi-bin/gettoken"

Now = Callable[[], float]


class WeComApiError(Exception):
    """WeCom answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path


class WeComTransportError(Exception):
    """No usable answer: network error, timeout, 5xx or a body that is not WeCom's JSON."""

    def __init__(self, reason: str) -> None:
        reason = redact(reason)  # aiohttp's texts carry the URL, and with it corpsecret/access_token
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str
    filename: str


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window`` seconds per key (WeCom's per-member quotas).

    ``acquire`` records the event and returns 0 when allowed, otherwise the seconds
    until a slot frees up (and records nothing), which the outbox uses as retry_after.
    """

    def __init__(self, limit: int, window: float = 60.0, now: Now = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._events: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> float:
        now = self._now()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return max(0.01, events[0] + self.window - now)
        events.append(now)
        if len(self._events) > 10_000:  # forget idle keys so memory stays bounded
            for idle in [k for k, q in self._events.items() if not q or q[-1] <= now - self.window]:
                del self._events[idle]
        return 0.0


class WeComClient:
    """One WeCom app (corp id + secret) against ``api_base``; one ClientSession, opened in start()."""

    def __init__(
        self,
        api_base: str,
        corp_id: str,
        secret: str,
        *,
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        now: Now = time.monotonic,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret
        self._timeout = timeout
        self._margin = refresh_margin
        self._now = now
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.token_fetches = 0

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise WeComTransportError("WeCom client is not started")
        return self._session

    # ---- access token -----------------------------------------------------------

    async def access_token(self) -> str:
        token = self._token
        if token is not None and self._now() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token  # someone else may have refreshed while we waited
            if token is not None and self._now() < token.refresh_at:
                return token.value
            self._token = await self._fetch_token()
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` if it is still the cached token (not a newer one)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch_token(self) -> _Token:
        self.token_fetches += 1
        data = await self._request("GET", GETTOKEN, params={"corpid": self.corp_id, "corpsecret": self._secret})
        code = _errcode(data)
        if code != 0:
            raise WeComApiError(code, str(data.get("errmsg", "")), GETTOKEN)
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise WeComTransportError("gettoken answered without access_token")
        try:
            expires_in = float(data.get("expires_in", 7200))
        except (TypeError, ValueError):
            expires_in = 7200.0
        margin = min(self._margin, expires_in * 0.1)
        return _Token(value, self._now() + max(0.0, expires_in - margin))

    # ---- requests -----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        payload: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        url = self.api_base + path
        body_args: dict[str, Any] = {"data": form()} if form is not None else {"json": payload}  # a form is consumed by sending
        try:
            async with self.session.request(method, url, params=params, **body_args) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise WeComTransportError(f"{path}: {type(exc).__name__}: {exc}") from None
        if status >= 500:
            raise WeComTransportError(f"{path}: HTTP {status}")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WeComTransportError(f"{path}: HTTP {status}, body is not JSON") from None
        if not isinstance(data, dict):
            raise WeComTransportError(f"{path}: HTTP {status}, unexpected JSON")
        if status >= 400 and "errcode" not in data:
            raise WeComTransportError(f"{path}: HTTP {status}")
        return data

    async def call(
        self,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        method: str = "POST",
        params: dict[str, str] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        """Call an access-token API; a stale token is refreshed and the call retried once."""
        for attempt in range(2):
            token = await self.access_token()
            data = await self._request(method, path, params={"access_token": token, **(params or {})}, payload=payload, form=form)
            code = _errcode(data)
            if code in TOKEN_ERRORS and attempt == 0:
                self.invalidate(token)
                continue
            if code != 0:
                raise WeComApiError(code, str(data.get("errmsg", "")), path)
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.call("/cgi-bin/message/send", payload)

    async def update_template_card(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.call("/cgi-bin/message/update_template_card", payload)

    async def upload_media(self, data: bytes, *, kind: str, filename: str) -> str:
        """Upload temporary media (``media/upload``, multipart field ``media``); returns its media_id."""

        def form() -> aiohttp.FormData:
            built = aiohttp.FormData()
            built.add_field("media", data, filename=filename, content_type="application/octet-stream")
            return built

        answer = await self.call("/cgi-bin/media/upload", params={"type": kind}, form=form)
        return str(answer["media_id"])

    async def get_media(self, media_id: str) -> Media:
        """Download temporary media. WeCom answers errors as JSON with HTTP 200, so look."""
        path = "/cgi-bin/media/get"
        for attempt in range(2):
            token = await self.access_token()
            try:
                async with self.session.get(
                    self.api_base + path, params={"access_token": token, "media_id": media_id}
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    content_type = resp.headers.get("Content-Type", "")
                    disposition = resp.headers.get("Content-Disposition", "")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise WeComTransportError(f"{path}: {type(exc).__name__}: {exc}") from None
            if status >= 500:
                raise WeComTransportError(f"{path}: HTTP {status}")
            looks_json = "json" in content_type.lower() or body[:1] == b"{"
            if looks_json:
                try:
                    data = json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    data = None
                if isinstance(data, dict) and "errcode" in data:
                    code = _errcode(data)
                    if code in TOKEN_ERRORS and attempt == 0:
                        self.invalidate(token)
                        continue
                    raise WeComApiError(code, str(data.get("errmsg", "")), path)
            if status >= 400:
                raise WeComTransportError(f"{path}: HTTP {status}")
            return Media(body, content_type, _filename(disposition))
        raise AssertionError("unreachable")  # pragma: no cover

    async def robot_send(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Group robot webhook: authenticated by its key, no access token."""
        path = "/cgi-bin/webhook/send"
        data = await self._request("POST", path, params={"key": key}, payload=payload)
        code = _errcode(data)
        if code != 0:
            raise WeComApiError(code, str(data.get("errmsg", "")), path)
        return data


def _errcode(data: dict[str, Any]) -> int:
    try:
        return int(data.get("errcode", 0))
    except (TypeError, ValueError):
        return -1


def _filename(disposition: str) -> str:
    for part in disposition.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "filename":
            return value.strip().strip('"')
    return ""
