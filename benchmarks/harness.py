"""What every benchmark needs, once: a configured runtime with the demo org, and a stand-in WeCom.

Benchmarks import the product, never ``tests/``: the stand-in here answers only what a
benchmark run needs (a token, message sends, card updates) and signs callbacks the way
WeCom does, with wechatpy's own crypto.
"""

from __future__ import annotations

import itertools
import re
import secrets
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from wechatpy.enterprise.crypto import WeChatCrypto  # noqa: E402

from bot.app import build_runtime  # noqa: E402
from bot.cli import configure_logging  # noqa: E402
from bot.config import Config, parse_config  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from storage.db import transaction  # noqa: E402
from storage.org import import_org, parse_org_file  # noqa: E402

DEMO_ORG = ROOT / "bot" / "demo" / "org.toml"


def bench_config(db_url: str, **sections: dict[str, Any]) -> Config:
    """A quiet config for benchmarks: the given database, no playbook watching, warnings only."""
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "WARNING"},
        "playbook": {"watch": False},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return parse_config(data, "benchmark", env={})


@asynccontextmanager
async def running(config: Config, *, http: bool = False, workers: bool = True, org: Path | None = DEMO_ORG) -> AsyncIterator[Runtime]:
    """A started runtime (migrated, demo org imported), stopped on exit."""
    configure_logging("WARNING", "console")
    runtime = build_runtime(config)
    await runtime.start(http=http, workers=workers)
    try:
        if org is not None:
            async with transaction(runtime.app.sessions) as session:
                await import_org(session, parse_org_file(org))
        yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def fresh_postgres(base_url: str) -> AsyncIterator[str]:
    """A new empty database next to ``base_url``'s (dropped on exit), so counts are this run's alone."""
    import asyncpg

    url = make_url(base_url)
    name = f"{url.database or 'genjin'}_bench_{uuid.uuid4().hex[:8]}"
    admin = dict(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres", password=url.password)
    conn = await asyncpg.connect(database="postgres", **admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(database="postgres", **admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class StandInWeCom:
    """A loopback WeCom API that accepts every send (gettoken, message/send, update_template_card)."""

    corp_id = "wwbench0000000001"
    agent_id = "1000002"
    secret = "bench-secret"

    def __init__(self) -> None:
        self.sends = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _token(self, request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": "bench-token", "expires_in": 7200})

    async def _ok(self, request: web.Request) -> web.Response:
        self.sends += 1
        await request.read()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"m{self.sends}"})

    async def __aenter__(self) -> StandInWeCom:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._token)
        app.router.add_post("/cgi-bin/message/send", self._ok)
        app.router.add_post("/cgi-bin/message/update_template_card", self._ok)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class CallbackSigner:
    """Encrypts and signs callback XML as WeCom does (the platform's cost, paid before a burst)."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str, agent_id: str) -> None:
        self._crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
        self.corp_id, self.agent_id = corp_id, agent_id
        self._ids = itertools.count(7_000_000_000_000_000_000)

    def text(self, user: str, content: str) -> tuple[dict[str, str], str]:
        def cdata(value: str) -> str:
            return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"

        plaintext = (
            f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName><FromUserName>{cdata(user)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{next(self._ids)}</MsgId>"
            f"<AgentID>{escape(self.agent_id)}</AgentID></xml>"
        )
        nonce, timestamp = str(secrets.randbelow(10**10)), str(int(time.time()))
        signed = self._crypto.encrypt_message(plaintext, nonce, timestamp)
        fields = {m.group(1): m.group(2) for m in re.finditer(r"<(\w+)>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</\1>", signed)}
        body = (
            f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName><Encrypt>{cdata(fields['Encrypt'])}</Encrypt>"
            f"<AgentID>{cdata(self.agent_id)}</AgentID></xml>"
        )
        return {"msg_signature": fields["MsgSignature"], "timestamp": timestamp, "nonce": nonce}, body
