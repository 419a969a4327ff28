"""What every benchmark needs, once: a configured runtime with the demo org, and a stand-in WeCom.

Benchmarks import the product, never ``tests/``: the stand-in here answers only what a
benchmark run needs (a token, message sends, card updates) and signs callbacks the way
WeCom does, with wechatpy's own crypto.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import secrets
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402
from wechatpy.enterprise.crypto import WeChatCrypto  # noqa: E402

from bot.app import build_runtime  # noqa: E402
from bot.cli import configure_logging  # noqa: E402
from bot.config import Config, parse_config  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from storage.db import transaction  # noqa: E402
from storage.org import OrgSpec, PersonSpec, TeamSpec, import_org, parse_org_file  # noqa: E402

DEMO_ORG = ROOT / "bot" / "demo" / "org.toml"


#: The demo org's reps and the texts every benchmark has sent them (``--reps 6``: today's setup).
DEMO_REPS = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
DEMO_TEXTS = [
    "今天拜访了华山医院设备科张科长，下周三前把报价单发给他",
    "王主任说下个月招标，重点推二代导管，价格可以谈",
    "瑞金医院的合同已经盖章了，总金额一百二十万，下周安排装机",
    "收到",
]
#: The same four shapes of message, about a hospital in the rep's own region.
TEAM_TEXTS = [
    "今天拜访了{hospital}设备科张科长，下周三前把报价单发给他",
    "{hospital}王主任说下个月招标，重点推二代导管，价格可以谈",
    "{hospital}的合同已经盖章了，总金额一百二十万，下周安排装机",
    "收到",
]
CITIES = ["上海", "南京", "苏州", "杭州", "宁波", "合肥", "福州", "厦门", "济南", "青岛", "郑州", "武汉", "长沙", "广州",
          "深圳", "南宁", "成都", "重庆", "西安", "兰州", "北京", "天津", "石家庄", "太原", "沈阳", "长春", "哈尔滨", "昆明"]
ORDINALS = "一二三四五六七八九"
TEAM_SIZE = 10  # reps per team, each team with its manager and one city as its region
HOSPITALS_PER_CITY = 5


@dataclass(frozen=True)
class Sender:
    """One rep who writes during the benchmark: the id they write from and what they write."""

    key: str
    wecom_userid: str
    texts: tuple[str, ...]

    def id_on(self, platform: str) -> str:
        """The id a channel of ``platform`` gives as the message's sender (WeCom's userid; the key elsewhere)."""
        return self.wecom_userid if platform == "wecom" else self.key


def message(senders: list[Sender], i: int, platform: str = "local") -> tuple[str, str]:
    """Who sends the ``i``-th message of a run (the id they write from on ``platform``) and what: the senders take
    turns, each going through their texts.

    With the demo senders the text is the ``i``-th of four, as every earlier run had it.
    """
    sender = senders[i % len(senders)]
    demo = len(senders) == len(DEMO_REPS) and all(s.key == key for s, key in zip(senders, DEMO_REPS))
    turn = i if demo else i // len(senders)
    return sender.id_on(platform), sender.texts[turn % len(sender.texts)]


def senders_to_json(senders: list[Sender]) -> str:
    """One line, so a client process can read the senders from its stdin before anything else."""
    return json.dumps([[s.key, s.wecom_userid, list(s.texts)] for s in senders], ensure_ascii=False)


def senders_from_json(line: str) -> list[Sender]:
    return [Sender(key, wecom_userid, tuple(texts)) for key, wecom_userid, texts in json.loads(line)]


def team_spec(reps: int) -> tuple[OrgSpec, dict[str, str]]:
    """A sales org of ``reps`` reps in teams of ``TEAM_SIZE``, each team led by a manager and covering one city.

    Returns the org and each rep's city. Keys are ``bench-…`` so they never meet the demo org's.
    """
    teams: list[TeamSpec] = []
    people: list[PersonSpec] = []
    city_of: dict[str, str] = {}
    for t in range((reps + TEAM_SIZE - 1) // TEAM_SIZE):
        city = CITIES[t % len(CITIES)]
        team, manager = f"bench-team-{t:03d}", f"bench-mgr-{t:03d}"
        teams.append(TeamSpec(key=team, name=f"{city}{t // len(CITIES) + 1}组", region=city, manager=manager))
        people.append(PersonSpec(key=manager, name=f"经理{t:03d}", role="manager", team=team, wecom_userid=f"BenchMgr{t:03d}",
                                 regions=[city], product_lines=["心血管"]))
        for r in range(t * TEAM_SIZE, min(reps, (t + 1) * TEAM_SIZE)):
            key = f"bench-rep-{r:04d}"
            people.append(PersonSpec(key=key, name=f"代表{r:04d}", role="rep", team=team, manager=manager,
                                     wecom_userid=f"BenchRep{r:04d}", regions=[city], product_lines=["心血管"]))
            city_of[key] = city
    return OrgSpec(teams=teams, people=people), city_of


def hospitals(city: str) -> list[str]:
    return [f"{city}市第{ORDINALS[k]}人民医院" for k in range(HOSPITALS_PER_CITY)]


async def seed_senders(session: AsyncSession, reps: int, lexicon: Any) -> list[Sender]:
    """The reps a benchmark's messages are spread over, seeded through the product's own org import and accounts.

    ``reps == 6`` is the demo org's six reps (with their WeCom ids) and texts (the setup every
    earlier local-platform figure used; the WeCom benchmarks sent as four of them). Otherwise a
    morning standup of a larger team (:func:`team_spec`): the reps are imported like an org file,
    and the hospitals of each team's city exist already as accounts (created with the notes
    feature's own ``resolve_account``), so the run measures the steady state, not the first
    mention of every hospital. Runs inside the caller's transaction.
    """
    if reps == len(DEMO_REPS):
        wecom_ids = {p.key: p.wecom_userid for p in parse_org_file(DEMO_ORG).people}
        return [Sender(key, wecom_ids[key], tuple(DEMO_TEXTS)) for key in DEMO_REPS]
    from handlers.accounts.service import resolve_account

    spec, city_of = team_spec(reps)
    await import_org(session, spec)
    now = datetime.now(timezone.utc)
    for city in sorted(set(city_of.values())):
        for name in hospitals(city):
            account, _ = await resolve_account(session, name, lexicon.canonical_account, actor_id=None, now=now)
            account.region = city
    senders: list[Sender] = []
    for p in spec.people:
        if p.role != "rep":
            continue
        own, n = hospitals(city_of[p.key]), len(senders)
        # each rep starts at a different text and hospital, so a batch holds every kind of message
        texts = tuple(TEAM_TEXTS[(n + k) % len(TEAM_TEXTS)].format(hospital=own[(n + k) % len(own)]) for k in range(len(TEAM_TEXTS)))
        senders.append(Sender(p.key, p.wecom_userid, texts))
    return senders


async def seed(runtime: Runtime, reps: int) -> list[Sender]:
    """:func:`seed_senders` in a started runtime, in one transaction of its own."""
    async with transaction(runtime.app.sessions) as session:
        return await seed_senders(session, reps, runtime.app.services.lexicon)


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


def wecom_bench_config(db_url: str, wecom: StandInWeCom, workers: int) -> Config:
    """:func:`bench_config` with WeCom the only platform: its API is the stand-in, callbacks are signed with the
    stand-in's token and key, and no per-member send limit gets in the way of a burst."""
    return bench_config(
        db_url,
        pipeline={"workers": workers, "outbox_workers": 1 if workers else 0, "poll_interval": 0.05},
        local={"enabled": False},
        wecom={
            "enabled": True, "corp_id": wecom.corp_id, "agent_id": wecom.agent_id, "secret": wecom.secret,
            "token": wecom.token, "encoding_aes_key": wecom.aes_key, "api_base": wecom.base_url, "per_member_per_minute": 100_000,
        },
    )


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
    token = "BenchToken"  # the callback token

    def __init__(self) -> None:
        self.aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")  # the callbacks' EncodingAESKey
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
