"""Escalation commands: the card buttons (跟进中 / 稍后提醒 / 改派 / 暂停 + id), their answers, the lists, #回款 到账.

Every command is checked on the server (role and team), whatever card it came from: a
forged click for another team is refused and logged. Buttons carry the escalation id, so
a click on a card whose episode is over answers who took care of it; a repeated click
does nothing.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.pipeline.notify import notify
from bot.router import (
    SKIP,
    HandlerContext,
    HandlerResult,
    Router,
    hashtag,
    matches,
    text,
)
from cards.model import Button, Card
from handlers.common.dates import local_now, parse_answer_date
from handlers.common.format import day_text, money
from handlers.common.waiting import escalations_changed, waiting_for
from handlers.escalations.cards import list_card
from handlers.escalations.payments import (
    PROPOSAL,
    confirm_proposal,
    describe,
    open_installments,
    record_receipt,
)
from handlers.escalations.service import (
    ACTIONS,
    DEAL,
    OVERDUE,
    STALLED,
    handled_label,
    hold,
    installment_due,
    local_day_start,
    managed_team_ids,
    mark_handled,
    reassign,
    refusal,
    refuse,
    subject_timer,
)
from nlp.amounts import find_amount
from storage.audit import audit
from storage.models import (
    Account,
    Escalation,
    Installment,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
)

ACT_RX = r"^(跟进中|稍后提醒|改派|暂停)\s*[Ee](\d{1,18})\s*(.*)$"
VERBS = {label: action for action, label in ACTIONS.items()}
RECEIPT_RX = r"^回款到账\s+(.+)$"
PROPOSAL_RX = r"^(确认|修改)回款计划\s*[Nn](\d{1,18})\s*$"
LIST_RX = r"^[#＃]\s*(预警|我的预警|卡单|停滞商机|逾期|逾期回款)\s*$"
_PAID = re.compile(r"^[#＃]回款\s+(.+?)\s*(?:已到账|到账了?|已回款|已收到|收到了?|已付)\s*[。!！]*$")

FOLLOW_Q = "下一步做什么、哪天做？（{n}个工作日内）例如：周四 约主任看方案"
PAUSE_Q = "暂停到哪天、为什么？例如：3月20日 等院长出差回来"


async def received_preprocessor(app: AppContext, msg: Inbound) -> Inbound:
    """"#回款 仁济医院 30万 已到账" is a payment, not the 回款 talk track: route it to the receipt command."""
    if msg.kind != Kind.TEXT:
        return msg
    m = _PAID.match(msg.text.strip())
    if m is None or find_amount(m.group(1)) is None:
        return msg
    return replace(msg, text=f"回款到账 {m.group(1)}")


def _follow_date(app: AppContext, hc: HandlerContext, raw: str) -> tuple[datetime, str, str] | str:
    """(hold until, step, date text) from "周四 约主任看方案", or why not."""
    parsed = parse_answer_date(app, raw, hc.now)
    if parsed is None:
        return FOLLOW_Q.format(n=app.config.escalations.follow_up_max_workdays)
    today = local_now(app, hc.now).date()
    if parsed.due < today:
        return f"{parsed.due.month}月{parsed.due.day}日 已经过了，请给一个今天以后的日期。"
    limit = app.config.escalations.follow_up_max_workdays
    if app.calendar.working_days_between(today + timedelta(days=1), parsed.due + timedelta(days=1)) > limit:
        return f"跟进日期最多在{limit}个工作日内。如需更久，请用“暂停”并说明原因。"
    step = (raw[: parsed.span[0]] + raw[parsed.span[1]:]).strip(" ，,。")
    if not step:
        return "请同时说明下一步做什么，例如：周四 约主任看方案"
    until = app.calendar.next_working_moment(local_day_start(app, parsed.due + timedelta(days=1)))
    return until, step, day_text(parsed.due)


async def _follow(app: AppContext, hc: HandlerContext, esc: Escalation, raw: str) -> Reply:
    if not raw.strip():
        esc.awaiting_person_id, esc.awaiting_action = hc.person.id, "follow"
        escalations_changed(hc.session)
        esc.awaiting_until = hc.now + timedelta(minutes=app.config.escalations.answer_minutes)
        return Reply(text=FOLLOW_Q.format(n=app.config.escalations.follow_up_max_workdays), tag="escalation.ask")
    got = _follow_date(app, hc, raw)
    if isinstance(got, str):
        return Reply(text=got)
    until, step, day = got
    timer = await subject_timer(app, hc.session, esc)
    if timer is not None:
        await hold(app, hc.session, timer, until, now=hc.now)
    await mark_handled(hc.session, esc, hc.person, "follow", f"{day} {step}", hc.now)
    esc.status, esc.hold_until = "following", until
    return Reply(text=f"👌 已记下：{day} {step}。在此之前不再升级；到期仍无新跟进会通知上一级。", tag="escalation.follow")


async def _pause(app: AppContext, hc: HandlerContext, esc: Escalation, raw: str) -> Reply:
    parsed = parse_answer_date(app, raw, hc.now) if raw.strip() else None
    reason = (raw[: parsed.span[0]] + raw[parsed.span[1]:]).strip(" ，,。") if parsed else ""
    if parsed is None or not reason:
        esc.awaiting_person_id, esc.awaiting_action = hc.person.id, "pause"
        escalations_changed(hc.session)
        esc.awaiting_until = hc.now + timedelta(minutes=app.config.escalations.answer_minutes)
        return Reply(text=PAUSE_Q, tag="escalation.ask")
    if parsed.due <= local_now(app, hc.now).date():
        return Reply(text="暂停的日期要在今天以后。")
    timer = await subject_timer(app, hc.session, esc)
    until = local_day_start(app, parsed.due)
    if timer is not None:
        await app.timers.pause(hc.session, timer, at=max(hc.now, timer.anchor_at), until=until)
    await mark_handled(hc.session, esc, hc.person, "pause", f"{parsed.due.isoformat()} {reason}", hc.now)
    esc.status, esc.hold_until = "paused", until
    return Reply(text=f"⏸ 已暂停到 {day_text(parsed.due)}（{reason}），之后自动恢复计时。", tag="escalation.pause")


async def _snooze(app: AppContext, hc: HandlerContext, esc: Escalation) -> Reply | None:
    cfg = app.config.escalations
    if esc.snooze_until is not None and esc.snooze_until > hc.now and (esc.detail or {}).get("snoozed_by") == hc.person.key:
        return None  # the same click again
    if esc.snoozes >= cfg.max_snoozes:
        return Reply(text=f"这条预警已经稍后提醒过{cfg.max_snoozes}次，请直接处理（跟进中 / 暂停）。", tag="escalation.snooze_refused")
    later = app.calendar.add(hc.now, timedelta(hours=cfg.snooze_hours))
    await audit(hc.session, actor_id=hc.person.id, entity="escalation", entity_id=esc.id, field_name="snooze",
                old=esc.snoozes, new=esc.snoozes + 1, note_id=None, now=hc.now)
    esc.snoozes += 1
    esc.snooze_until = later
    esc.detail = {**(esc.detail or {}), "snoozed_by": hc.person.key}
    esc.version += 1
    local = later.astimezone(app.config.tz)
    return Reply(text=f"⏰ {local:%m月%d日 %H:%M} 再提醒你（不影响下一级升级时间）。", tag="escalation.snooze")


async def _team_reps(hc: HandlerContext, esc: Escalation) -> list[Person]:
    teams = {esc.team_id} if esc.team_id is not None else set()
    if hc.person.role == "manager":
        teams &= await managed_team_ids(hc.session, hc.person)
    if not teams:
        return []
    return list((await hc.session.scalars(
        select(Person).where(Person.team_id.in_(teams), Person.role == "rep", Person.active.is_(True)).order_by(Person.id)
    )).all())


async def _reassign(app: AppContext, hc: HandlerContext, esc: Escalation, raw: str) -> Reply:
    reps = [p for p in await _team_reps(hc, esc) if p.id != esc.owner_id]
    wanted = raw.strip()
    if not wanted:
        if not reps:
            return Reply(text="团队里没有可以改派的同事。")
        buttons = tuple(Button(p.name, command=f"改派 E{esc.id} {p.key}") for p in reps[:6])
        return Reply(card=Card(title="改派给谁？", kind="question", buttons=buttons), tag="escalation.ask")
    target = next((p for p in reps if wanted in (p.key, p.name)), None)
    if target is None:
        await refuse(app, hc.session, hc.person, esc, "reassign", f"target {wanted!r} not a rep of the team", hc.now)
        return Reply(text=f"“{wanted}”不是本团队可改派的销售。")
    old = await reassign(app, hc.session, esc, hc.person, target, now=hc.now)
    what = await _subject_name(hc, esc)
    msg = f"{hc.person.name} 把「{what}」从 {old.name if old else '—'} 改派给了 {target.name}。"
    await notify(app, hc.session, target, Reply(text=f"📌 {msg}相关待办和提醒已转给你。", tag="escalation.reassigned"), now=hc.now)
    if old is not None:
        await notify(app, hc.session, old, Reply(text=f"📌 {msg}", tag="escalation.reassigned"), now=hc.now)
    return Reply(text=f"✅ 已改派给 {target.name}，双方都已通知。", tag="escalation.reassign")


async def act(app: AppContext, hc: HandlerContext, esc_id: int, action: str, raw: str) -> HandlerResult:
    esc = await hc.session.get(Escalation, esc_id)
    if esc is None:
        return Reply(text=f"没有找到预警 E{esc_id}。")
    why = await refusal(hc.session, hc.person, esc, action)
    if why is not None:
        await refuse(app, hc.session, hc.person, esc, action, why, hc.now)
        return Reply(text=why, tag="escalation.refused")
    if esc.closed_at is not None:
        if esc.closed_by_id == hc.person.id and (esc.detail or {}).get("closed_reason") == action:
            return None  # repeated click
        return Reply(text=await handled_label(hc.session, esc), tag="escalation.outdated")
    if action == "snooze":
        return await _snooze(app, hc, esc)
    if action != "reassign" and esc.handled_action and esc.handled_level >= esc.level:
        if esc.handled_by_id == hc.person.id and esc.handled_action == action and not raw:
            return None  # repeated click
        if esc.handled_by_id != hc.person.id:
            return Reply(text=await handled_label(hc.session, esc), tag="escalation.outdated")
    if action == "follow":
        return await _follow(app, hc, esc, raw)
    if action == "pause":
        return await _pause(app, hc, esc, raw)
    return await _reassign(app, hc, esc, raw)


async def _subject_name(hc: HandlerContext, esc: Escalation) -> str:
    account_id = None
    if esc.subject_type == DEAL:
        opp = await hc.session.get(Opportunity, esc.subject_id)
        account_id = opp.account_id if opp else None
    else:
        inst = await hc.session.get(Installment, esc.subject_id)
        plan = await hc.session.get(PaymentPlan, inst.plan_id) if inst else None
        account_id = plan.account_id if plan else None
    account = await hc.session.get(Account, account_id) if account_id else None
    return account.name if account else f"E{esc.id}"


async def _lines(app: AppContext, hc: HandlerContext, rows: list[Escalation]) -> list[str]:
    today = local_now(app, hc.now).date()
    out = []
    for esc in sorted(rows, key=lambda e: (-(e.amount or 0), e.id)):
        age = (today - esc.since_at.astimezone(app.config.tz).date()).days if esc.since_at else 0
        owner = await hc.session.get(Person, esc.owner_id) if esc.owner_id else None
        kind = "停滞" if esc.kind == STALLED else "逾期"
        state = {"following": " · 跟进中", "paused": " · 暂停"}.get(esc.status, "")
        out.append(f"E{esc.id} {await _subject_name(hc, esc)} · {kind}{age}天 · {money(esc.amount) or '金额未填'}"
                   f" · {owner.name if owner else ''} · 第{esc.level}级{state}")
    return out


def router(app: AppContext) -> Router:
    r = Router("escalations")

    @r.on(matches(ACT_RX))
    async def button(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        return await act(app, hc, int(match.group(2)), VERBS[match.group(1)], match.group(3).strip())

    @r.on(hashtag(), matches(LIST_RX))
    async def listing(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        which = match.group(1)
        stmt = select(Escalation).where(Escalation.closed_at.is_(None))
        if which in ("预警", "我的预警"):
            rows = list((await hc.session.scalars(stmt.where(Escalation.owner_id == hc.person.id))).all())
            return Reply(card=list_card("我的预警", await _lines(app, hc, rows), "没有未处理的预警 👍"), tag="escalation.list")
        if hc.person.role not in ("manager", "director", "admin", "finance"):
            return Reply(text="#卡单 和 #逾期 是经理查看团队的命令；看自己的请发 #预警。")
        kind = STALLED if which in ("卡单", "停滞商机") else OVERDUE
        stmt = stmt.where(Escalation.kind == kind)
        if hc.person.role == "manager":
            stmt = stmt.where(Escalation.team_id.in_(await managed_team_ids(hc.session, hc.person)))
        rows = list((await hc.session.scalars(stmt)).all())
        title = "团队停滞商机" if kind == STALLED else "团队逾期回款"
        return Reply(card=list_card(title, await _lines(app, hc, rows), "没有 👍"), tag="escalation.list")

    @r.on(matches(RECEIPT_RX))
    async def received(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        body = match.group(1)
        found = find_amount(body)
        if found is None:
            return Reply(text="到账多少？例如：#回款 仁济医院 30万 已到账")
        amount, span = found
        name = (body[: span[0]] + body[span[1]:]).strip(" ，,。")
        account = await hc.session.scalar(select(Account).where(Account.name == app.services.lexicon.canonical_account(name)))
        if account is None:
            return Reply(text=f"没有找到医院“{name}”。")
        owners: list[int] | None = [hc.person.id]
        if hc.person.role == "manager":
            teams = await managed_team_ids(hc.session, hc.person)
            owners = list((await hc.session.scalars(select(Person.id).where(Person.team_id.in_(teams)))).all())
        elif hc.person.role in ("finance", "director", "admin"):
            owners = None
        installments = await open_installments(hc.session, account.id, owners)
        if not installments:
            return Reply(text=f"{account.name} 没有待收的款项。")
        applied = await record_receipt(app, hc.session, installments, amount, actor_id=hc.person.id, now=hc.now)
        lines = []
        for inst, part in applied:
            plan = await hc.session.get(PaymentPlan, inst.plan_id)
            due = installment_due(inst, plan) if plan else None
            state = "✅ 已收齐" if inst.status == "paid" else f"已收 {money(inst.received_amount)}/{money(due) or '?'}"
            lines.append(f"{inst.label or '款项'} +{money(part)} · {state}")
        return Reply(text=f"💰 已记录 {account.name} 到账 {money(amount)}\n" + "\n".join(lines), tag="payments.received")

    @r.on(matches(PROPOSAL_RX))
    async def proposal(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        note = await hc.session.get(Note, int(match.group(2)))
        if note is None or note.author_id != hc.person.id or not (note.fields or {}).get(PROPOSAL):
            return Reply(text="没有找到这条回款计划。")
        if (note.fields or {}).get("payment_plan_id"):
            return None  # already confirmed: a repeated tap does nothing
        if match.group(1) == "修改":
            return Reply(text="请直接发正确的付款条件，例如：首付款30% 3月1日前，余款验收后30天。", tag="payments.edit")
        plan = await confirm_proposal(app, hc.session, note, hc.person, now=hc.now)
        if plan is None:
            return Reply(text="这条记录还没有关联到医院的商机，暂时不能建立回款计划。")
        items = (note.fields or {}).get(PROPOSAL) or []
        return Reply(text="✅ 回款计划已建立：\n" + "\n".join(f"• {describe(i)}" for i in items), tag="payments.confirmed")

    @r.on(text())
    async def answer(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        """The answer to a 跟进中 / 暂停 question asked by this feature (else: not ours)."""
        if (await waiting_for(hc.session, hc.person.id, hc.now)).escalation is False:
            return SKIP  # nothing of ours awaits this person (read together with the notes dialog's question)
        esc = await hc.session.scalar(
            select(Escalation).where(Escalation.awaiting_person_id == hc.person.id, Escalation.awaiting_until > hc.now,
                                     Escalation.closed_at.is_(None)).order_by(Escalation.awaiting_until.desc()).limit(1)
        )
        if esc is None or esc.awaiting_action not in ("follow", "pause"):
            return SKIP
        raw = msg.text.strip()
        if parse_answer_date(app, raw, hc.now) is None:
            return SKIP  # not an answer (a note, a question): let the others have it
        # a valid answer clears the question (mark_handled); a wrong one is answered and the question stays open
        return await (_follow if esc.awaiting_action == "follow" else _pause)(app, hc, esc, raw)

    return r
