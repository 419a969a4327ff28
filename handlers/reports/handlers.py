"""``#团队`` ``#漏斗`` ``#健康`` ``#审计`` ``#看板``, and questions typed in plain words.

Routed before the notes feature: a question to the bot ("哪些单子卡住了？", "有没有逾期回款？")
is answered with the matching view, or with ``#帮助`` when no view matches — never filed as
a note. A question is a message that ends like one (？, 吗, 呢) and asks (哪些, 有没有,
多少 …) without reporting what a customer said (a rep's "主任问有没有优惠？" is a note).
"""

from __future__ import annotations

import re

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import (
    SKIP,
    HandlerContext,
    HandlerResult,
    Router,
    kind,
    matches,
    with_text,
)
from cards.model import Button, Card
from handlers.reports import views
from handlers.reports.links import LinkError, issue_link
from storage.scope import scope_for

TEAM_RX = r"^[#＃]\s*(?:团队|周报)\s*$"
FUNNEL_RX = r"^[#＃]\s*漏斗\s*$"
HEALTH_RX = r"^[#＃]\s*健康\s*(.*)$"
AUDIT_RX = r"^[#＃]\s*审计\s*(.*)$"
DASH_RX = r"^[#＃]\s*看板\s*$"

QUESTION_END = re.compile(r"(?:[?？]|吗|呢|么)\s*[?？]?\s*$")
ASKS = re.compile(r"哪些|哪个|哪几|有没有|有多少|多少|几个|几单|怎么样|如何|什么|谁|是否|还有")
REPORTED = re.compile(r"(?:主任|科长|院长|老师|客户|医生|护士长|采购|他|她|对方)[^，。]{0,4}(?:问|说|提|表示|反馈|希望|要求|担心|关心)")
TOPICS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"卡住|卡着|停滞|没动|没进展|不动|风险|危险"), "stalled"),
    (re.compile(r"逾期|回款|欠款|应收|没付|未付"), "receivables"),
    (re.compile(r"漏斗|阶段|转化"), "funnel"),
    (re.compile(r"团队|本周|这周|这礼拜|线索|跟进了|周报"), "team"),
)


def is_question(text: str) -> bool:
    text = text.strip()
    if not text or len(text) > 60 or text.startswith(("#", "＃")):
        return False
    if REPORTED.search(text):
        return False
    return bool(QUESTION_END.search(text)) and bool(ASKS.search(text))


def topic_of(text: str) -> str | None:
    for rx, topic in TOPICS:
        if rx.search(text):
            return topic
    return None


async def dashboard_reply(app: AppContext, hc: HandlerContext) -> Reply:
    cfg = app.config.dashboard
    if not cfg.secret:
        return Reply(text="看板尚未开通（需要在配置里设置 [dashboard] secret）。")
    try:
        issued = await issue_link(hc.session, cfg.secret, hc.person.id, hc.now, cfg.link_minutes)
    except LinkError as exc:
        return Reply(text=str(exc))
    base = cfg.base_url.rstrip("/") or f"http://{app.config.server.host}:{app.config.server.port}"
    url = f"{base}/dash/login?t={issued.token}"
    card = Card(title="数据看板", kind="report.dashboard", subtitle=f"链接{int(cfg.link_minutes)}分钟内有效，仅限打开一次",
                blocks=("漏斗、预警、回款、线索时效、商机列表与健康度",), buttons=(Button("打开看板", url=url, primary=True),))
    return Reply(card=card, tag="report.dashboard")


def router(app: AppContext) -> Router:
    r = Router("reports")

    async def answer(topic: str, hc: HandlerContext) -> Reply:
        scope = await scope_for(hc.session, hc.person)
        if topic == "team":
            return Reply(card=await views.team_card(app, hc.session, scope, hc.person, hc.now), tag="report.team")
        if topic == "funnel":
            return await views.funnel_reply(app, hc.session, scope, hc.person, hc.now)
        if topic == "stalled":
            return await views.stalled_reply(app, hc.session, scope, hc.now)
        if topic == "receivables":
            return await views.receivables_reply(app, hc.session, scope, hc.now)
        raise ValueError(topic)

    @r.on(matches(TEAM_RX))
    async def team(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        return await answer("team", hc)

    @r.on(matches(FUNNEL_RX))
    async def funnel(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        return await answer("funnel", hc)

    @r.on(matches(HEALTH_RX))
    async def health(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        scope = await scope_for(hc.session, hc.person)
        return await views.health_reply(app, hc.session, scope, match.group(1), hc.now)

    @r.on(matches(AUDIT_RX))
    async def audit(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        scope = await scope_for(hc.session, hc.person)
        return await views.audit_reply(app, hc.session, scope, match.group(1), hc.now)

    @r.on(matches(DASH_RX))
    async def dashboard(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        return await dashboard_reply(app, hc)

    @r.on(kind(Kind.TEXT))
    async def question(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        text = msg.text.strip()
        if not is_question(text):
            return SKIP
        topic = topic_of(text)
        if topic is not None:
            return await answer(topic, hc)
        replies = await hc.redispatch(with_text(msg, "#帮助"))
        return replies or Reply(text="我可以回答：#团队 #漏斗 #健康 医院名 #审计 医院名 #看板")

    return r
