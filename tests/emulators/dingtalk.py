"""A DingTalk server on loopback: the OpenAPI, webhooks and the Stream gateway Genjin uses.

:class:`DingTalkEmulator` serves, on ``127.0.0.1`` and a free port:

* ``POST /v1.0/oauth2/accessToken`` — tokens that really expire (``token_ttl``) and can be
  revoked, so refresh paths run for real;
* ``POST /v1.0/robot/oToMessages/batchSend`` and ``/v1.0/robot/groupMessages/send`` —
  checking the token header, robotCode, msgKey and that ``msgParam`` is a JSON *string*
  with the fields its msgKey needs;
* ``POST /v1.0/robot/messageFiles/download`` → a temporary ``downloadUrl`` served here
  with the real AMR bytes of ``tests/fixtures/dingtalk/voice-short.amr``;
* per-message ``sessionWebhook`` URLs that expire, and a custom group robot webhook that
  checks the 加签 signature and answers 130101 when sent more than 20 a minute (or when
  told to);
* the Stream gateway: ``POST /v1.0/gateway/connections/open`` (endpoint + one-time
  ticket) and a websocket speaking the Stream frames the official SDK parses — CALLBACK
  frames with headers topic/messageId/contentType/time and a JSON ``data`` string,
  SYSTEM ping/disconnect — with ack bookkeeping and redelivery of frames whose ack does
  not arrive within ``ack_timeout`` or is not code 200.

Every request is recorded in :attr:`DingTalkEmulator.requests`; failures can be injected
per path for the next N calls.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dingtalk"
VOICE_AMR = FIXTURES / "voice-short.amr"

BOT_TOPIC = "/v1.0/im/bot/messages/get"
ERRCODE_SESSION_EXPIRED = 300001  # emulator's choice; Genjin treats any non-zero errcode as "use the OpenAPI"
ERRCODE_SIGN_MISMATCH = 310000
ERRCODE_TOO_FAST = 130101
MSG_PARAM_FIELDS = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleImageMsg": ("photoURL",),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    **{f"sampleActionCard{n}": ("title", "text", *[f"action{k}{i}" for i in range(1, n + 1) for k in ("Title", "URL")]) for n in range(2, 6)},
}
BODY = web.RequestKey("dingtalk_emulator_body", object)
WEBHOOK_TYPES = {"text": ("content",), "markdown": ("title", "text"), "actionCard": ("title", "text")}


def _multipart_field(content_type: str, body: bytes, name: str) -> bytes | None:
    """The bytes of one form field of a multipart body (the body was already read by the middleware)."""
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


def _sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Request:
    path: str
    body: Any
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    response: Any = None
    status: int = 200


@dataclass
class Frame:
    """A Stream frame the emulator pushed (possibly several times) and its acks."""

    message_id: str
    payload: dict[str, Any]
    sent_at: list[float] = field(default_factory=list)
    acks: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lost_acks: int = 0

    @property
    def acked(self) -> bool:
        """Acknowledged with code 200; any other code asks DingTalk to deliver again."""
        return any(ack.get("code") == 200 for _, ack in self.acks)


@dataclass
class _Injected:
    remaining: int
    status: int
    body: dict[str, Any]


class DingTalkEmulator:
    def __init__(
        self,
        *,
        app_key: str = "dingemu-app-key",
        app_secret: str = "dingemu-app-secret",
        robot_code: str = "dingemu-robot",
        token_ttl: float = 7200.0,
        ack_timeout: float | None = None,
        max_redeliveries: int = 3,
        robot_token: str = "robot-token-1",
        robot_secret: str = "SECdingemu-robot-secret",
        robot_per_minute: int = 20,
        known_staff: set[str] | None = None,
    ) -> None:
        self.app_key, self.app_secret, self.robot_code = app_key, app_secret, robot_code
        self.token_ttl = token_ttl
        self.ack_timeout = ack_timeout
        self.max_redeliveries = max_redeliveries
        self.robot_token, self.robot_secret = robot_token, robot_secret
        self.robot_per_minute = robot_per_minute
        self.known_staff = known_staff
        self.requests: list[Request] = []
        self.tokens: dict[str, float] = {}
        self.uploads: dict[str, bytes] = {}
        self.fail_uploads = 0
        self.sessions: dict[str, int] = {}  # session key → expiry (ms since the epoch)
        self.files: dict[str, bytes] = {}
        self.download_urls: dict[str, tuple[bytes, float]] = {}
        self.frames: dict[str, Frame] = {}
        self.events: list[tuple[str, str, float]] = []  # ("frame"|"ack"|"connect"|"close", id, monotonic time)
        self.open_requests: list[dict[str, Any]] = []
        self.connections: list[web.WebSocketResponse] = []
        self.drop_acks = 0
        self.fail_opens = 0
        self.throttle_robot = 0
        self._tickets: dict[str, list[dict[str, str]]] = {}
        self._subscriptions: dict[int, list[dict[str, str]]] = {}
        self._robot_sent: deque[float] = deque()
        self._injected: dict[str, list[_Injected]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> DingTalkEmulator:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1.0/oauth2/accessToken", self._token)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        app.router.add_post("/v1.0/robot/messageFiles/download", self._download)
        app.router.add_get("/files/{key}", self._file)
        app.router.add_post("/robot/sendBySession", self._session_send)
        app.router.add_post("/robot/send", self._robot_send)
        app.router.add_post("/media/upload", self._media_upload)
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/stream", self._stream)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ws in list(self.connections):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def robot_webhook(self) -> str:
        return f"{self.base_url}/robot/send?access_token={self.robot_token}"

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The ``[dingtalk]`` section pointing Genjin at this emulator."""
        cfg: dict[str, Any] = {
            "enabled": True,
            "mode": "stream",
            "client_id": self.app_key,
            "client_secret": self.app_secret,
            "robot_code": self.robot_code,
            "api_base": self.base_url,
            "oapi_base": self.base_url,
            "session_webhook_hosts": [self.base_url],
            "robot_webhook": self.robot_webhook,
            "robot_secret": self.robot_secret,
            "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.5,
            "http_timeout_seconds": 5,
        }
        cfg.update(overrides)
        return cfg

    # -- failure injection & helpers ------------------------------------------------

    def inject(self, path: str, status: int, body: dict[str, Any] | None = None, *, times: int = 1) -> None:
        """Make the next ``times`` calls to ``path`` answer ``status`` with ``body``."""
        self._injected.setdefault(path, []).append(_Injected(times, status, body or {"code": "InjectedError", "message": "injected"}))

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def expire_sessions(self) -> None:
        for key in self.sessions:
            self.sessions[key] = 0

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def accepted(self, path: str) -> list[Request]:
        """Calls to ``path`` that succeeded (HTTP 200 and errcode 0 where there is one)."""
        return [
            r
            for r in self.calls(path)
            if r.status == 200 and not (isinstance(r.response, dict) and r.response.get("errcode", 0) != 0)
        ]

    def session_messages(self) -> list[dict[str, Any]]:
        return [r.body for r in self.accepted("/robot/sendBySession")]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"emulator: condition not met within {timeout}s")
            await asyncio.sleep(0.01)

    def add_file(self, content: bytes) -> str:
        code = "dlcode-" + secrets.token_urlsafe(12)
        self.files[code] = content
        return code

    def new_session_webhook(self, expires_in: float = 5400.0) -> tuple[str, int]:
        key = secrets.token_urlsafe(16)
        expires = int((time.time() + expires_in) * 1000)
        self.sessions[key] = expires
        return f"{self.base_url}/robot/sendBySession?session={key}", expires

    def bot_message(
        self,
        staff_id: str,
        *,
        text: str | None = None,
        msgtype: str = "text",
        content: dict[str, Any] | None = None,
        group: bool = False,
        at_bot: bool = True,
        msg_id: str | None = None,
        webhook_expires_in: float = 5400.0,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """A robot message body exactly as DingTalk sends it (Stream ``data`` / HTTP body)."""
        webhook, expires = self.new_session_webhook(webhook_expires_in)
        data: dict[str, Any] = {
            "conversationId": conversation_id or (f"cidGroup{uuid.uuid4().hex[:12]}" if group else f"cid{staff_id}"),
            "chatbotCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$bot",
            "msgId": msg_id or f"msg{uuid.uuid4().hex}",
            "senderNick": staff_id,
            "isAdmin": False,
            "senderStaffId": staff_id,
            "sessionWebhookExpiredTime": expires,
            "createAt": int(time.time() * 1000),
            "senderCorpId": "dingcorp",
            "conversationType": "2" if group else "1",
            "senderId": f"$:LWCP_v1:${staff_id}",
            "sessionWebhook": webhook,
            "robotCode": self.robot_code,
            "msgtype": msgtype,
        }
        if group:
            data["isInAtList"] = at_bot
            data["conversationTitle"] = "华东心血管组"
            data["atUsers"] = [{"dingtalkId": "$:LWCP_v1:$bot"}] if at_bot else []
        if msgtype == "text":
            data["text"] = {"content": (" @跟进助手 " if group else "") + (text or "")}
        elif content is not None:
            data["content"] = content
        return data

    def audio_message(self, staff_id: str, recognition: str, *, duration_ms: int = 2760, **kw: Any) -> dict[str, Any]:
        code = self.add_file(VOICE_AMR.read_bytes())
        content = {"duration": duration_ms, "downloadCode": code, "recognition": recognition}
        return self.bot_message(staff_id, msgtype="audio", content=content, **kw)

    # -- HTTP endpoints ----------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        body: Any = None
        if request.method == "POST":
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        entry = Request(request.path, body, dict(request.query), dict(request.headers), time.monotonic())
        if request.path != "/stream":
            self.requests.append(entry)
        queue = self._injected.get(request.path)
        if queue:
            injected = queue[0]
            injected.remaining -= 1
            if injected.remaining <= 0:
                queue.pop(0)
            entry.status, entry.response = injected.status, injected.body
            return web.json_response(injected.body, status=injected.status)
        request[BODY] = body
        response = await handler(request)
        entry.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
            entry.response = json.loads(response.body)  # type: ignore[arg-type]
        return response

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "requestid": uuid.uuid4().hex}, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        body = request[BODY]
        if not isinstance(body, dict) or body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return self._error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = secrets.token_hex(16)
        self.tokens[token] = time.monotonic() + self.token_ttl
        return web.json_response({"accessToken": token, "expireIn": int(self.token_ttl)})

    async def _media_upload(self, request: web.Request) -> web.Response:
        """oapi ``media/upload?access_token=…&type=image``: multipart ``media`` → a media_id usable as photoURL."""
        expires = self.tokens.get(request.query.get("access_token", ""))
        if expires is None or time.monotonic() >= expires:
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        if request.query.get("type") not in ("image", "voice", "file", "video"):
            return web.json_response({"errcode": 40004, "errmsg": "不合法的媒体文件类型"})
        if self.fail_uploads:
            self.fail_uploads -= 1
            return web.json_response({"errcode": 40009, "errmsg": "不合法的图片文件大小"})
        data = _multipart_field(request.headers.get("Content-Type", ""), await request.read(), "media")
        if data is None:
            return web.json_response({"errcode": 41006, "errmsg": "缺少media参数"})
        media_id = "@lA" + uuid.uuid4().hex
        self.uploads[media_id] = data
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": request.query["type"], "media_id": media_id,
                                  "created_at": int(time.time() * 1000)})

    def _authorised(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        expires = self.tokens.get(token)
        if expires is None or time.monotonic() >= expires:
            return self._error(401, "InvalidAuthentication", "不合法的access_token")
        return None

    def _check_message(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict) or body.get("robotCode") != self.robot_code:
            return self._error(400, "resource.not.found", "robot 不存在")
        key, param = body.get("msgKey"), body.get("msgParam")
        if key not in MSG_PARAM_FIELDS:
            return self._error(400, "invalidParameter.msgKey", f"msgKey {key!r} 不合法")
        if not isinstance(param, str):
            return self._error(400, "invalidParameter.msgParam", "msgParam 必须是 JSON 字符串")
        try:
            parsed = json.loads(param)
        except ValueError:
            return self._error(400, "invalidParameter.msgParam", "msgParam 不是合法 JSON")
        missing = [f for f in MSG_PARAM_FIELDS[key] if not isinstance(parsed.get(f), str) or not parsed[f]]
        if missing:
            return self._error(400, "invalidParameter.msgParam", f"msgParam 缺少 {missing}")
        return None

    async def _batch_send(self, request: web.Request) -> web.Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = request[BODY]
        if (bad := self._check_message(body)) is not None:
            return bad
        users = body.get("userIds")
        if not isinstance(users, list) or not users or not all(isinstance(u, str) for u in users):
            return self._error(400, "invalidParameter.userIds", "userIds 不能为空")
        invalid = [u for u in users if self.known_staff is not None and u not in self.known_staff]
        return web.json_response(
            {"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": invalid, "flowControlledStaffIdList": []}
        )

    async def _group_send(self, request: web.Request) -> web.Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = request[BODY]
        if (bad := self._check_message(body)) is not None:
            return bad
        cid = body.get("openConversationId")
        if not isinstance(cid, str) or not cid.startswith("cid"):
            return self._error(400, "invalidParameter.openConversationId", "openConversationId 不合法")
        return web.json_response({"processQueryKey": uuid.uuid4().hex})

    async def _download(self, request: web.Request) -> web.Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = request[BODY]
        if not isinstance(body, dict) or body.get("robotCode") != self.robot_code:
            return self._error(400, "resource.not.found", "robot 不存在")
        content = self.files.get(body.get("downloadCode", ""))
        if content is None:
            return self._error(400, "invalidParameter.downloadCode", "downloadCode 无效或已过期")
        key = secrets.token_urlsafe(16)
        self.download_urls[key] = (content, time.monotonic() + 3600)
        return web.json_response({"downloadUrl": f"{self.base_url}/files/{key}"})

    async def _file(self, request: web.Request) -> web.Response:
        entry = self.download_urls.get(request.match_info["key"])
        if entry is None or time.monotonic() > entry[1]:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>", content_type="application/xml")
        return web.Response(body=entry[0], content_type="application/octet-stream")

    @staticmethod
    def _webhook_problem(body: Any) -> str | None:
        if not isinstance(body, dict) or body.get("msgtype") not in WEBHOOK_TYPES:
            return "msgtype 不合法"
        section = body.get(body["msgtype"])
        if not isinstance(section, dict):
            return "缺少消息体"
        missing = [f for f in WEBHOOK_TYPES[body["msgtype"]] if not isinstance(section.get(f), str) or not section[f]]
        if missing:
            return f"缺少参数 {missing}"
        return None

    async def _session_send(self, request: web.Request) -> web.Response:
        expires = self.sessions.get(request.query.get("session", ""))
        if expires is None or time.time() * 1000 >= expires:
            return web.json_response({"errcode": ERRCODE_SESSION_EXPIRED, "errmsg": "session 已过期"})
        if (problem := self._webhook_problem(request[BODY])) is not None:
            return web.json_response({"errcode": 40035, "errmsg": problem})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _robot_send(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("access_token") != self.robot_token:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        if self.robot_secret:
            ts, sign = q.get("timestamp", ""), q.get("sign", "")
            if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3600_000:
                return web.json_response({"errcode": ERRCODE_SIGN_MISMATCH, "errmsg": "timestamp invalid"})
            if not hmac.compare_digest(_sign(ts, self.robot_secret), sign):
                return web.json_response({"errcode": ERRCODE_SIGN_MISMATCH, "errmsg": "sign not match"})
        now = time.monotonic()
        while self._robot_sent and now - self._robot_sent[0] >= 60:
            self._robot_sent.popleft()
        if self.throttle_robot > 0 or len(self._robot_sent) >= self.robot_per_minute:
            self.throttle_robot = max(0, self.throttle_robot - 1)
            return web.json_response({"errcode": ERRCODE_TOO_FAST, "errmsg": "send too fast, exceed 20 times per minute"})
        if (problem := self._webhook_problem(request[BODY])) is not None:
            return web.json_response({"errcode": 40035, "errmsg": problem})
        self._robot_sent.append(now)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # -- Stream gateway -----------------------------------------------------------------

    async def _open(self, request: web.Request) -> web.Response:
        body = request[BODY]
        self.open_requests.append(body if isinstance(body, dict) else {})
        if self.fail_opens > 0:
            self.fail_opens -= 1
            return self._error(503, "ServiceUnavailable", "gateway busy")
        if not isinstance(body, dict) or body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return self._error(401, "InvalidAuthentication", "clientId/clientSecret 不正确")
        subs = body.get("subscriptions")
        if not isinstance(subs, list) or not subs:
            return self._error(400, "invalidParameter.subscriptions", "subscriptions 不能为空")
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = subs
        return web.json_response({"endpoint": f"ws://127.0.0.1:{self.port}/stream", "ticket": ticket})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        subs = self._tickets.pop(request.query.get("ticket", ""), None)
        if subs is None:
            return web.json_response({"code": "InvalidTicket", "message": "ticket 无效"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self._subscriptions[id(ws)] = subs
        self.events.append(("connect", str(len(self.connections)), time.monotonic()))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                self._on_client_frame(msg.data)
        finally:
            self.events.append(("close", str(len(self.connections)), time.monotonic()))
            self._subscriptions.pop(id(ws), None)
        return ws

    def _on_client_frame(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
            message_id = ack["headers"]["messageId"]
        except (ValueError, KeyError, TypeError):
            self.events.append(("garbage", raw[:50], time.monotonic()))
            return
        frame = self.frames.get(message_id)
        if frame is None:
            self.events.append(("ack", message_id, time.monotonic()))
            return
        if self.drop_acks > 0:
            self.drop_acks -= 1
            frame.lost_acks += 1
            self.events.append(("lost_ack", message_id, time.monotonic()))
            return
        frame.acks.append((time.monotonic(), ack))
        self.events.append(("ack", message_id, time.monotonic()))

    @property
    def live(self) -> web.WebSocketResponse | None:
        for ws in reversed(self.connections):
            if not ws.closed:
                return ws
        return None

    async def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: len(self.connections) >= count and self.live is not None, timeout)

    async def _send_frame(self, frame: Frame) -> None:
        ws = self.live
        if ws is None:
            raise AssertionError("no Stream connection")
        frame.sent_at.append(time.monotonic())
        self.events.append(("frame", frame.message_id, time.monotonic()))
        await ws.send_str(json.dumps(frame.payload))

    async def push(self, data: dict[str, Any], *, topic: str = BOT_TOPIC, frame_id: str | None = None) -> Frame:
        """Deliver a CALLBACK frame carrying ``data``; redelivered while its ack is missing."""
        ws = self.live
        if ws is None:
            raise AssertionError("no Stream connection")
        if not any(s.get("topic") == topic and s.get("type") == "CALLBACK" for s in self._subscriptions.get(id(ws), [])):
            raise AssertionError(f"the client did not subscribe to {topic}")
        message_id = frame_id or uuid.uuid4().hex
        headers = {
            "appId": self.app_key,
            "connectionId": str(len(self.connections)),
            "contentType": "application/json",
            "messageId": message_id,
            "time": str(int(time.time() * 1000)),
            "topic": topic,
        }
        frame = Frame(message_id, {"specVersion": "1.0", "type": "CALLBACK", "headers": headers, "data": json.dumps(data, ensure_ascii=False)})
        self.frames[message_id] = frame
        await self._send_frame(frame)
        if self.ack_timeout is not None:
            task = asyncio.create_task(self._redeliver(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return frame

    async def _redeliver(self, frame: Frame) -> None:
        assert self.ack_timeout is not None
        for _ in range(self.max_redeliveries):
            await asyncio.sleep(self.ack_timeout)
            if frame.acked or self.live is None:
                return
            await self._send_frame(frame)

    async def system(self, topic: str, data: dict[str, Any] | None = None) -> str:
        ws = self.live
        if ws is None:
            raise AssertionError("no Stream connection")
        message_id = uuid.uuid4().hex
        payload = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {"contentType": "application/json", "messageId": message_id, "time": str(int(time.time() * 1000)), "topic": topic},
            "data": json.dumps(data or {}),
        }
        self.frames[message_id] = Frame(message_id, payload)
        self.events.append(("frame", message_id, time.monotonic()))
        await ws.send_str(json.dumps(payload))
        return message_id

    async def ping(self) -> str:
        return await self.system("ping", {"opaque": secrets.token_hex(8)})

    async def disconnect(self) -> str:
        """Ask the client to reconnect, as DingTalk does before maintenance."""
        return await self.system("disconnect", {"reason": "gateway maintenance"})

    async def drop(self) -> None:
        """Cut the live connection abruptly (code 1011), like a network failure."""
        ws = self.live
        if ws is not None:
            await ws.close(code=1011, message=b"gateway crashed")
