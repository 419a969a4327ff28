"""Lead commands in chat: ``#线索``, 认领 / 转派 / 退回 / 详情 / 指派 N, ``#请假 到周五`` / ``#销假``.

Who may do what is decided here, on the server, for every command — a card click is just
the typed command, so a forged or forwarded click for someone else's lead is refused
(and logged) exactly like typing it.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from sqlalchemy import select

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import SKIP, HandlerContext, HandlerResult, Router, matches
from handlers.common.dates import local_now, parse_answer_date
from handlers.leads import cards, commands, service
from handlers.leads.intake import CHAT_TAG, LeadInput, parse_chat_lead, quality_problems
from handlers.notes.dialog_state import clear_pending, load_pending, set_pending
from storage.models import Lead, LeadOffer, Person

CLAIM_RX = r"^认领\s*(\d{1,18})\s*$"
TRANSFER_RX = r"^转派\s*(\d{1,18})\s*(?:给|to)?\s*(.*)$"
RETURN_RX = r"^退回\s*(\d{1,18})\s*(.*)$"
DETAIL_RX = r"^详情\s*(\d{1,18})\s*$"
ASSIGN_RX = r"^指派\s*(\d{1,18})\s*(?:给|to)?\s*(.*)$"
LEADS_RX = r"^[#＃]\s*线索(?:\s|$|[:：])"
CONFIRM_RX = r"^(确认|取消)(?:线索)?\s*[。!！]*$"
AWAY_RX = r"^[#＃]\s*请假\s*(.*)$"
BACK_RX = r"^[#＃]\s*销假\s*$"

CONFIRM_KIND = "lead_confirm"  # dialog_state kind: a chat lead waiting for 确认/取消


def _number(raw: str) -> int:
    return int(raw)


def _answer(outcome: service.Outcome) -> Reply:
    if outcome.card is not None:
        return Reply(card=outcome.card, tag=f"lead.{outcome.status}")
    return Reply(text=outcome.message or "好的。", tag=f"lead.{outcome.status}")


async def _product_lines_and_regions(hc: HandlerContext) -> tuple[set[str], set[str]]:
    rows = (await hc.session.execute(select(Person.product_lines, Person.regions))).all()
    lines = {p for row in rows for p in (row[0] or [])}
    regions = {r for row in rows for r in (row[1] or [])}
    return lines, regions


def router(app: AppContext) -> Router:
    r = Router("leads")

    @r.on(matches(LEADS_RX))
    async def leads_tag(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        body = match.string[match.end():].strip(" :：")
        person = hc.person
        if body and person.role in service.INTAKE_ROLES:
            return await _start_intake(app, msg, hc)
        if body:
            return Reply(text="录入线索请联系市场部或销售运营。发 #线索 查看派给你的线索。")
        return await _list(app, hc)

    @r.on(matches(CONFIRM_RX))
    async def confirm(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        state = await load_pending(hc.session, hc.person.id, hc.now)
        if state is None or state.get("kind") != CONFIRM_KIND:
            return SKIP
        await clear_pending(hc.session, hc.person.id)
        if match.group(1) == "取消":
            return Reply(text="已取消，这条线索没有录入。", tag="lead.cancelled")
        data = dict(state.get("lead") or {})
        data.pop("created_at", None)
        lead_in = LeadInput(**data)
        outcome = await service.intake(app, hc.session, lead_in, now=hc.now, actor=hc.person)
        return Reply(text=await _intake_text(hc, outcome), tag=f"lead.intake.{outcome.status}")

    @r.on(matches(CLAIM_RX))
    async def claim(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        return _answer(await commands.claim(app, hc.session, _number(match.group(1)), hc.person, now=hc.now))

    @r.on(matches(TRANSFER_RX))
    async def transfer(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        number, target = _number(match.group(1)), match.group(2).strip()
        if not target:
            lead = await hc.session.get(Lead, number)
            if lead is None or lead.assignee_id != hc.person.id:
                return _answer(await commands.transfer(app, hc.session, number, hc.person, "", now=hc.now))
            return Reply(text=f"转派给谁？请回复“转派 {number} 给 姓名”。")
        return _answer(await commands.transfer(app, hc.session, number, hc.person, target, now=hc.now))

    @r.on(matches(RETURN_RX))
    async def give_back(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        return _answer(await commands.return_lead(app, hc.session, _number(match.group(1)), hc.person, match.group(2), now=hc.now))

    @r.on(matches(ASSIGN_RX))
    async def assign(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        number, target = _number(match.group(1)), match.group(2).strip()
        if not target:
            return Reply(text=f"指派给谁？请回复“指派 {number} 给 姓名”。")
        return _answer(await commands.assign(app, hc.session, number, hc.person, target, now=hc.now))

    @r.on(matches(DETAIL_RX))
    async def detail(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        lead = await hc.session.get(Lead, _number(match.group(1)))
        if lead is None:
            return Reply(text=f"没有找到线索 {match.group(1)}。")
        if not await commands.can_see(hc.session, hc.person, lead):
            return _answer(await commands.refuse(app, hc.session, lead, hc.person, "详情", hc.now))
        holder = await commands.name_of(hc.session, lead.assignee_id) if lead.assignee_id else ""
        offers = (await hc.session.execute(
            select(LeadOffer, Person.name).join(Person, Person.id == LeadOffer.rep_id)
            .where(LeadOffer.lead_id == lead.id).order_by(LeadOffer.id))).all()
        history = [f"{o.offered_at.astimezone(app.config.tz):%m-%d %H:%M} {name}：{cards.OFFER_LABELS.get(o.status, o.status)}"
                   + (f"（{o.reason}）" if o.reason and o.status != "offered" else "") for o, name in offers]
        return Reply(card=cards.detail_card(lead, holder, history), tag="lead.detail")

    @r.on(matches(AWAY_RX))
    async def away(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        raw = match.group(1).strip()
        today = local_now(app, hc.now).date()
        parsed = parse_answer_date(app, raw, hc.now, base=today) if raw else None
        if parsed is None or parsed.due < today:
            return Reply(text="请假到哪天？例如“#请假 到周五”。")
        until = datetime.combine(parsed.due + timedelta(days=1), time(), tzinfo=app.config.tz)
        await commands.set_away(hc.session, hc.person, until, now=hc.now)
        return Reply(text=f"已登记请假至 {parsed.due.month}月{parsed.due.day}日，期间不给你派新线索。回来后发 #销假。",
                     tag="lead.away")

    @r.on(matches(BACK_RX))
    async def back(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        await commands.set_away(hc.session, hc.person, None, now=hc.now)
        return Reply(text="欢迎回来，已恢复派发线索。", tag="lead.back")

    return r


async def _start_intake(app: AppContext, msg: Inbound, hc: HandlerContext) -> HandlerResult:
    if not app.config.leads.enabled:
        return Reply(text="线索录入已关闭（[leads] enabled = false）。")
    lines, regions = await _product_lines_and_regions(hc)
    now = hc.now
    lead = parse_chat_lead(msg.text.strip().replace("＃", "#", 1), lambda body: app.services.extractor.extract(body, now),
                           lines, now)
    if lead is None:
        return Reply(text=f"格式：{CHAT_TAG} 医院 科室 联系人 电话 产品线 等级 来源，或直接描述线索。")
    if not lead.region:
        found = next((r for r in sorted(regions, key=len, reverse=True) if r and r in msg.text), "")
        if not found and len(hc.person.regions or []) == 1:
            found = hc.person.regions[0]
        if found:
            lead = LeadInput(**{**lead.to_dict(), "region": found, "created_at": lead.created_at}).normalized()
    problems = quality_problems(lead, service.lead_rules(app).settings.required)
    await set_pending(hc.session, hc.person.id, {"kind": CONFIRM_KIND, "lead": lead.to_dict()}, now=now,
                      window_minutes=app.config.notes.question_window_minutes)
    return Reply(card=cards.confirm_card(lead, problems), tag="lead.confirm")


async def _intake_text(hc: HandlerContext, outcome: service.Outcome) -> str:
    lead = outcome.lead
    assert lead is not None
    if outcome.status == service.OFFERED:
        return f"✅ 线索 #{lead.id} 已录入，派给{await commands.name_of(hc.session, lead.assignee_id)}。"
    if outcome.status == service.MANAGER_QUEUE:
        return f"✅ 线索 #{lead.id} 已录入，暂无可派的销售，已转经理分配。"
    if outcome.status == service.MERGED:
        return f"线索 #{lead.id} 与已有线索 #{lead.merged_into_id} 重复，已合并并通知负责人。"
    if outcome.status == service.QUARANTINED:
        return f"⚠️ 线索 #{lead.id} 信息不全（{'；'.join(lead.problems)}），已转销售运营补全。"
    return f"线索 #{lead.id} 已存在。"


async def _list(app: AppContext, hc: HandlerContext) -> HandlerResult:
    person = hc.person
    if person.role == "rep":
        card = cards.rep_list_card(await commands.offers_of(hc.session, person), await commands.untouched_of(hc.session, person))
    elif person.role == "manager" and person.team_id is not None:
        leads = await commands.team_open_leads(hc.session, person.team_id)
        card = cards.team_list_card("团队线索", [(lead, await _holder(hc, lead)) for lead in leads])
    elif person.role in service.OPS_ROLES:
        leads = await commands.team_open_leads(hc.session, None)
        card = cards.team_list_card("全部未处理线索", [(lead, await _holder(hc, lead)) for lead in leads])
    else:
        return Reply(text=f"录入线索：{CHAT_TAG} 医院 科室 联系人 电话 产品线 等级 来源，或直接描述。")
    return Reply(text=card, tag="lead.list") if isinstance(card, str) else Reply(card=card, tag="lead.list")


async def _holder(hc: HandlerContext, lead: Lead) -> str:
    return await commands.name_of(hc.session, lead.assignee_id) if lead.assignee_id else ""
