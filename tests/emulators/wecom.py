"""A WeCom server on loopback, and a player that sends callbacks the way WeCom does.

:class:`WeComEmulator` implements the parts of ``qyapi.weixin.qq.com`` Genjin uses, with
the documented payloads and error codes: ``gettoken`` (tokens really expire; a test can
expire or revoke them), ``message/send`` (text, markdown, template_card, with WeCom's
validation of task_id, buttons, agentid and recipients), ``message/update_template_card``
(one-time response codes), ``media/get`` (binary on success, JSON errcode on failure,
both with HTTP 200) and the group-robot ``webhook/send``. Failures can be injected for
the next N calls (45009, 60020, 5xx …). Everything accepted is recorded.

:class:`WeComPlayer` plays WeCom towards Genjin: it builds the plaintext XML for each
message type, encrypts and signs it with wechatpy's crypto exactly as WeCom does, and
posts it to the callback URL (or sends the GET URL verification).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wecom"
VOICE_AMR = FIXTURES / "voice.amr"

TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 2048
ROBOT_MARKDOWN_MAX_BYTES = 4096
_TASK_ID = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
CARD_TYPES = {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
INTERACTIVE = {"button_interaction", "vote_interaction", "multiple_interaction"}

ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40007: "invalid media_id",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    42001: "access_token expired",
    44004: "empty content",
    45009: "api freq out of limit",
    60020: "not allow to access from your ip",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}


@dataclass
class Injected:
    remaining: int
    errcode: int | None
    status: int | None
    errmsg: str
    path: str | None
    after: int = 0


@dataclass
class Call:
    path: str
    errcode: int
    at: float


@dataclass
class ResponseCode:
    userid: str
    task_id: str
    used: bool = False


class WeComEmulator:
    """The WeCom server API on 127.0.0.1 (port 0). Use as ``async with WeComEmulator() as emu``."""

    def __init__(
        self,
        *,
        corp_id: str = "ww0123456789abcdef",
        secret: str = "emulator-app-secret",
        agent_id: str = "1000002",
        users: set[str] | None = None,
        token_ttl: float = 7200,
        robot_keys: set[str] | None = None,
        per_member_per_minute: int | None = None,
        robot_per_minute: int = 20,
        client_ip: str = "203.0.113.7",
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.users = users  # None: every userid exists
        self.token_ttl = token_ttl
        self.robot_keys = robot_keys if robot_keys is not None else {"robot-key-east"}
        self.per_member_per_minute = per_member_per_minute
        self.robot_per_minute = robot_per_minute
        self.client_ip = client_ip
        self.tokens: dict[str, float] = {}
        self.gettoken_calls = 0
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []
        self.uploads: dict[str, bytes] = {}
        self.updates: list[dict[str, Any]] = []
        self.robot_sent: list[tuple[str, dict[str, Any]]] = []
        self.response_codes: dict[str, ResponseCode] = {}
        self.task_ids: set[str] = set()
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_downloads: list[str] = []
        self._injected: list[Injected] = []
        self._member_window: dict[str, deque[float]] = {}
        self._robot_window: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._message_send)
        app.router.add_post("/cgi-bin/message/update_template_card", self._update_card)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        app.router.add_post("/cgi-bin/media/upload", self._media_upload)
        app.router.add_post("/cgi-bin/webhook/send", self._webhook_send)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WeComEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test controls -----------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001 (access_token expired)."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    def revoke_tokens(self) -> None:
        """Forget every token: they now answer 40014 (invalid access_token)."""
        self.tokens.clear()

    def fail_next(
        self,
        n: int = 1,
        *,
        errcode: int | None = None,
        status: int | None = None,
        errmsg: str = "",
        path: str | None = None,
        after: int = 0,
    ) -> None:
        """The next ``n`` calls (to ``path``, default: any API except gettoken) fail, after ``after`` pass."""
        if (errcode is None) == (status is None):
            raise ValueError("give exactly one of errcode or status")
        if errcode == 60020 and not errmsg:
            errmsg = (
                "not allow to access from your ip, hint: [1700000000_99_emulator], "
                f"from ip: {self.client_ip}, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
            )
        self._injected.append(Injected(n, errcode, status, errmsg or ERRMSG.get(errcode or 0, "error"), path, after))

    def add_media(self, data: bytes, content_type: str = "audio/amr", media_id: str | None = None) -> str:
        media_id = media_id or "MEDIA_" + secrets.token_urlsafe(24)
        self.media[media_id] = (data, content_type)
        return media_id

    def add_voice(self) -> str:
        return self.add_media(VOICE_AMR.read_bytes(), "audio/amr")

    def click(self, task_id: str, userid: str) -> str:
        """A user clicks a button of the card ``task_id``: the fresh response code WeCom would send."""
        code = "RC_" + secrets.token_urlsafe(18)
        self.response_codes[code] = ResponseCode(userid, task_id)
        return code

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def sent_to(self, userid: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if userid in str(m.get("touser", "")).split("|")]

    # ---- plumbing ----------------------------------------------------------------------

    def _answer(self, path: str, errcode: int, errmsg: str = "", **extra: Any) -> web.Response:
        self.calls.append(Call(path, errcode, time.monotonic()))
        body = {"errcode": errcode, "errmsg": errmsg or ("ok" if errcode == 0 else ERRMSG.get(errcode, "error")), **extra}
        return web.json_response(body)

    def _injection(self, path: str) -> Injected | None:
        for inj in self._injected:
            if inj.remaining > 0 and (inj.path == path or (inj.path is None and path != "/cgi-bin/gettoken")):
                if inj.after > 0:
                    inj.after -= 1
                    return None
                inj.remaining -= 1
                return inj
        return None

    def _injected_response(self, path: str) -> web.Response | None:
        inj = self._injection(path)
        if inj is None:
            return None
        if inj.status is not None:
            self.calls.append(Call(path, -inj.status, time.monotonic()))
            return web.Response(status=inj.status, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        assert inj.errcode is not None
        return self._answer(path, inj.errcode, inj.errmsg)

    def _check_token(self, request: web.Request) -> int:
        token = request.query.get("access_token", "")
        if not token:
            return 41001
        expires = self.tokens.get(token)
        if expires is None:
            return 40014
        if time.monotonic() >= expires:
            return 42001
        return 0

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    # ---- endpoints ---------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/gettoken"
        self.gettoken_calls += 1
        injected = self._injected_response(path)
        if injected is not None:
            return injected
        if request.query.get("corpid") != self.corp_id:
            return self._answer(path, 40013)
        if request.query.get("corpsecret") != self.secret:
            return self._answer(path, 40001)
        token = "TOKEN_" + secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + self.token_ttl
        return self._answer(path, 0, access_token=token, expires_in=int(self.token_ttl) if self.token_ttl >= 1 else self.token_ttl)

    def _member_limited(self, userid: str) -> bool:
        if self.per_member_per_minute is None:
            return False
        now = time.monotonic()
        window = self._member_window.setdefault(userid, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.per_member_per_minute:
            return True
        window.append(now)
        return False

    def _validate_card(self, card: Any, *, for_update: bool = False) -> str:
        """WeCom's checks on a template_card; returns a problem or ''."""
        if not isinstance(card, dict):
            return "template_card must be an object"
        card_type = card.get("card_type")
        if card_type not in CARD_TYPES:
            return f"invalid card_type {card_type!r}"
        title = (card.get("main_title") or {}).get("title")
        if card_type in ("text_notice", "button_interaction") and not (title or card.get("sub_title_text")):
            return "main_title.title or sub_title_text required"
        if card_type == "text_notice" and not isinstance(card.get("card_action"), dict):
            return "card_action required for text_notice"
        if card_type in INTERACTIVE:
            task_id = card.get("task_id")
            if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
                return "invalid task_id"
            if not for_update and task_id in self.task_ids:
                return "task_id already used"
        if card_type == "button_interaction":
            buttons = card.get("button_list")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
                return "button_list must hold 1 to 6 buttons"
            keys = set()
            for button in buttons:
                if not isinstance(button, dict) or not button.get("text"):
                    return "button text required"
                if button.get("type", 0) == 1:
                    if not button.get("url"):
                        return "button url required"
                else:
                    key = button.get("key")
                    if not key or len(str(key).encode()) > 1024 or key in keys:
                        return "button key missing, too long or duplicated"
                    keys.add(key)
        return ""

    async def _message_send(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/message/send"
        injected = self._injected_response(path)
        if injected is not None:
            return injected
        code = self._check_token(request)
        if code:
            return self._answer(path, code)
        data = await self._json(request)
        if data is None:
            return self._answer(path, 40058, "invalid json")
        if str(data.get("agentid")) != self.agent_id:
            return self._answer(path, 40056)
        users = [u for u in str(data.get("touser", "")).split("|") if u]
        if not users:
            return self._answer(path, 40058, "touser required")
        invalid = [u for u in users if self.users is not None and u not in self.users]
        valid = [u for u in users if u not in invalid]
        if not valid:
            return self._answer(path, 81013)
        if any(self._member_limited(u) for u in valid):
            return self._answer(path, 45009)
        msgtype = data.get("msgtype")
        record = dict(data)
        extra: dict[str, Any] = {"invaliduser": "|".join(invalid), "msgid": uuid.uuid4().hex}
        if msgtype == "text":
            content = (data.get("text") or {}).get("content")
            if not content:
                return self._answer(path, 44004)
            if len(content.encode()) > TEXT_MAX_BYTES:  # WeCom truncates; tests check this never happens
                record["_truncated"] = True
        elif msgtype == "markdown":
            content = (data.get("markdown") or {}).get("content")
            if not content:
                return self._answer(path, 44004)
            if len(content.encode()) > MARKDOWN_MAX_BYTES:
                record["_truncated"] = True
        elif msgtype == "image":
            media_id = (data.get("image") or {}).get("media_id")
            if media_id not in self.uploads:
                return self._answer(path, 40007, "invalid media_id")
        elif msgtype == "template_card":
            card = data.get("template_card")
            problem = self._validate_card(card)
            if problem:
                return self._answer(path, 40058, problem)
            if card.get("card_type") in INTERACTIVE:
                self.task_ids.add(card["task_id"])
                rc = "RC_" + secrets.token_urlsafe(18)
                self.response_codes[rc] = ResponseCode(valid[0], card["task_id"])
                extra["response_code"] = rc
        else:
            return self._answer(path, 40058, f"unsupported msgtype {msgtype!r}")
        self.sent.append(record)
        return self._answer(path, 0, **extra)

    async def _media_upload(self, request: web.Request) -> web.Response:
        """``media/upload?type=image``: multipart field ``media``; answers a temporary media_id (3 days)."""
        path = "/cgi-bin/media/upload"
        injected = self._injected_response(path)
        if injected is not None:
            return injected
        code = self._check_token(request)
        if code:
            return self._answer(path, code)
        kind = request.query.get("type", "")
        if kind not in ("image", "voice", "video", "file"):
            return self._answer(path, 40004, "invalid media type")
        try:
            form = await request.post()
        except ValueError:
            return self._answer(path, 41006, "media data missing")
        field = form.get("media")
        if field is None or not hasattr(field, "file"):
            return self._answer(path, 41006, "media data missing")
        data = field.file.read()
        if kind == "image" and (len(data) < 5 or len(data) > 2 * 1024 * 1024):
            return self._answer(path, 40009, "invalid image size")
        media_id = "3" + secrets.token_urlsafe(24)
        self.uploads[media_id] = data
        return self._answer(path, 0, type=kind, media_id=media_id, created_at=str(int(time.time())))

    async def _update_card(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/message/update_template_card"
        injected = self._injected_response(path)
        if injected is not None:
            return injected
        code = self._check_token(request)
        if code:
            return self._answer(path, code)
        data = await self._json(request)
        if data is None:
            return self._answer(path, 40058, "invalid json")
        if str(data.get("agentid")) != self.agent_id:
            return self._answer(path, 40056)
        rc = self.response_codes.get(str(data.get("response_code", "")))
        if rc is None or rc.used:
            return self._answer(path, 40058, "invalid response_code")
        if "button" in data:
            name = (data.get("button") or {}).get("replace_name")
            if not name:
                return self._answer(path, 40058, "button.replace_name required")
        elif "template_card" in data:
            problem = self._validate_card(data["template_card"], for_update=True)
            if problem:
                return self._answer(path, 40058, problem)
        else:
            return self._answer(path, 40058, "button or template_card required")
        rc.used = True
        self.updates.append(dict(data, _task_id=rc.task_id))
        return self._answer(path, 0, invaliduser=[])

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        path = "/cgi-bin/media/get"
        injected = self._injected_response(path)
        if injected is not None:
            return injected
        code = self._check_token(request)
        if code:
            return self._answer(path, code)
        media_id = request.query.get("media_id", "")
        found = self.media.get(media_id)
        if found is None:
            return self._answer(path, 40007)
        self.calls.append(Call(path, 0, time.monotonic()))
        self.media_downloads.append(media_id)
        data, content_type = found
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{media_id[:16]}.amr"', "Cache-Control": "no-cache"},
        )

    async def _webhook_send(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/webhook/send"
        injected = self._injected_response(path)
        if injected is not None:
            return injected
        key = request.query.get("key", "")
        if key not in self.robot_keys:
            return self._answer(path, 93000)
        now = time.monotonic()
        window = self._robot_window.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.robot_per_minute:
            return self._answer(path, 45009)
        data = await self._json(request)
        if data is None:
            return self._answer(path, 40058, "invalid json")
        msgtype = data.get("msgtype")
        record = dict(data)
        if msgtype == "text":
            content = (data.get("text") or {}).get("content")
            if not content:
                return self._answer(path, 44004)
            if len(content.encode()) > TEXT_MAX_BYTES:
                record["_truncated"] = True
        elif msgtype == "markdown":
            content = (data.get("markdown") or {}).get("content")
            if not content:
                return self._answer(path, 44004)
            if len(content.encode()) > ROBOT_MARKDOWN_MAX_BYTES:
                record["_truncated"] = True
        elif msgtype == "image":
            media_id = (data.get("image") or {}).get("media_id")
            if media_id not in self.uploads:
                return self._answer(path, 40007, "invalid media_id")
        elif msgtype == "template_card":
            card = data.get("template_card") or {}
            if card.get("card_type") not in ("text_notice", "news_notice"):
                return self._answer(path, 40058, "robots send text_notice or news_notice cards")
            problem = self._validate_card(card)
            if problem:
                return self._answer(path, 40058, problem)
        else:
            return self._answer(path, 40058, f"unsupported msgtype {msgtype!r}")
        window.append(now)
        self.robot_sent.append((key, record))
        return self._answer(path, 0)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class WeComPlayer:
    """Plays WeCom towards Genjin's callback URL, with the app's Token/EncodingAESKey/CorpID."""

    def __init__(
        self,
        url: str,
        *,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        agent_id: str = "1000002",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._session = session
        self._crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
        self._clock = int(time.time())

    async def __aenter__(self) -> WeComPlayer:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use `async with WeComPlayer(...)`"
        return self._session

    def _now(self) -> int:
        self._clock += 1  # distinct CreateTime per event, like a person clicking twice
        return self._clock

    # ---- plaintext XML, as WeCom documents it ------------------------------------------

    def _xml(self, user: str, msg_type: str, body: str, *, create_time: int | None = None) -> str:
        return (
            "<xml>"
            f"<ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(user)}</FromUserName>"
            f"<CreateTime>{create_time or self._now()}</CreateTime>"
            f"<MsgType>{_cdata(msg_type)}</MsgType>"
            f"{body}"
            f"<AgentID>{escape(self.agent_id)}</AgentID>"
            "</xml>"
        )

    @staticmethod
    def new_msg_id() -> str:
        return str(secrets.randbits(63))

    def text_xml(self, user: str, content: str, *, msg_id: str | None = None, create_time: int | None = None) -> str:
        body = f"<Content>{_cdata(content)}</Content><MsgId>{escape(msg_id or self.new_msg_id())}</MsgId>"
        return self._xml(user, "text", body, create_time=create_time)

    def voice_xml(self, user: str, media_id: str, *, msg_id: str | None = None) -> str:
        body = f"<MediaId>{_cdata(media_id)}</MediaId><Format>{_cdata('amr')}</Format><MsgId>{escape(msg_id or self.new_msg_id())}</MsgId>"
        return self._xml(user, "voice", body)

    def image_xml(self, user: str, media_id: str, *, pic_url: str = "https://wework.qpic.cn/emulator/0", msg_id: str | None = None) -> str:
        body = f"<PicUrl>{_cdata(pic_url)}</PicUrl><MediaId>{_cdata(media_id)}</MediaId><MsgId>{escape(msg_id or self.new_msg_id())}</MsgId>"
        return self._xml(user, "image", body)

    def location_xml(self, user: str, lat: float, lng: float, label: str, *, msg_id: str | None = None) -> str:
        body = (
            f"<Location_X>{lat}</Location_X><Location_Y>{lng}</Location_Y><Scale>15</Scale>"
            f"<Label>{_cdata(label)}</Label><MsgId>{escape(msg_id or self.new_msg_id())}</MsgId>"
        )
        return self._xml(user, "location", body)

    def enter_agent_xml(self, user: str, *, create_time: int | None = None) -> str:
        body = f"<Event>{_cdata('enter_agent')}</Event><EventKey>{_cdata('')}</EventKey>"
        return self._xml(user, "event", body, create_time=create_time)

    def card_click_xml(
        self,
        user: str,
        event_key: str,
        task_id: str,
        response_code: str,
        *,
        card_type: str = "button_interaction",
        create_time: int | None = None,
    ) -> str:
        body = (
            f"<Event>{_cdata('template_card_event')}</Event>"
            f"<EventKey>{_cdata(event_key)}</EventKey>"
            f"<TaskId>{_cdata(task_id)}</TaskId>"
            f"<CardType>{_cdata(card_type)}</CardType>"
            f"<ResponseCode>{_cdata(response_code)}</ResponseCode>"
        )
        return self._xml(user, "event", body, create_time=create_time)

    # ---- encryption and delivery ------------------------------------------------------

    def encrypt(
        self, plaintext: str, *, corp_id: str | None = None, nonce: str | None = None, timestamp: str | None = None
    ) -> tuple[dict[str, str], str]:
        """The query parameters and the body WeCom would POST for ``plaintext``."""
        crypto = self._crypto if corp_id is None else WeChatCrypto(self.token, self.encoding_aes_key, corp_id)
        nonce = nonce or str(secrets.randbelow(10**10))
        timestamp = timestamp or str(int(time.time()))
        signed = crypto.encrypt_message(plaintext, nonce, timestamp)
        fields = {m.group(1): m.group(2) for m in re.finditer(r"<(\w+)>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</\1>", signed)}
        body = (
            "<xml>"
            f"<ToUserName>{_cdata(corp_id or self.corp_id)}</ToUserName>"
            f"<Encrypt>{_cdata(fields['Encrypt'])}</Encrypt>"
            f"<AgentID>{_cdata(self.agent_id)}</AgentID>"
            "</xml>"
        )
        params = {"msg_signature": fields["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        return params, body

    async def post_raw(self, params: dict[str, str], body: bytes | str) -> tuple[int, str]:
        data = body.encode("utf-8") if isinstance(body, str) else body
        async with self.session.post(self.url, params=params, data=data, headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text()

    async def post(self, plaintext: str, *, corp_id: str | None = None, forge: bool = False) -> tuple[int, str]:
        """Encrypt, sign and POST; ``forge`` flips the signature, ``corp_id`` encrypts for another corp."""
        params, body = self.encrypt(plaintext, corp_id=corp_id)
        if forge:
            sig = params["msg_signature"]
            params["msg_signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
        return await self.post_raw(params, body)

    def verification(self, echo: str | None = None) -> tuple[dict[str, str], str]:
        """Query parameters of the admin console's GET URL check, and the expected plaintext."""
        plain = echo or str(secrets.randbits(63))
        nonce, timestamp = str(secrets.randbelow(10**10)), str(int(time.time()))
        signed = self._crypto.encrypt_message(plain, nonce, timestamp)
        encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", signed)
        signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", signed)
        assert encrypt and signature
        params = {"msg_signature": signature.group(1), "timestamp": timestamp, "nonce": nonce, "echostr": encrypt.group(1)}
        return params, plain

    async def verify(self, echo: str | None = None, *, forge: bool = False) -> tuple[int, str, str]:
        params, plain = self.verification(echo)
        if forge:
            params["msg_signature"] = "f" * 40
        async with self.session.get(self.url, params=params) as resp:
            return resp.status, await resp.text(), plain
