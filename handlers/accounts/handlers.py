"""``#客户 华山医院``: one hospital at a glance — stage, amount, latest notes, open to-dos.

Alias-aware ("市一院" finds 市第一人民医院). What the asker sees comes from their
:class:`storage.scope.Scope`: reps their own deals and notes, managers their team and
sub-teams, directors/sales ops/admins everyone's, finance the deals with receivables.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import HandlerContext, HandlerResult, Router, hashtag, matches
from cards.model import Card, CardField
from handlers.accounts.service import (
    account_notes,
    account_opportunities,
    find_account,
    search_accounts,
)
from handlers.common.dates import local_now
from handlers.common.format import money, stage_label
from handlers.tasks.service import OPEN
from storage.models import Account, Opportunity, Person, Task
from storage.scope import scope_for

ACCOUNT_RX = r"^[#＃]\s*(?:客户|医院)\s*(.*)$"



def _hospital_named_in(app: AppContext, text: str, now: datetime) -> str | None:
    """The hospital a short text names, as the extractor reads it ("去市一院" → "市一院")."""
    account = app.services.extractor.extract(text, local_now(app, now)).account
    if isinstance(account, (list, tuple)):
        account = account[0] if account else None
    return account or None


async def _my_accounts(app: AppContext, hc: HandlerContext) -> Reply:
    rows = (
        await hc.session.execute(
            select(Opportunity, Account)
            .join(Account, Account.id == Opportunity.account_id)
            .where(Opportunity.owner_id == hc.person.id, Opportunity.status == OPEN)
            .order_by(Opportunity.last_activity_at.desc())
            .limit(20)
        )
    ).all()
    if not rows:
        return Reply(text="还没有客户记录。发一条跟进（例如“今天去华山医院做了演示”）就会自动建立。")
    tz = app.config.tz
    lines = []
    for opp, account in rows:
        last = opp.last_activity_at.astimezone(tz)
        stage = stage_label(app, opp.stage) or "未定阶段"
        lines.append(f"{account.name} · {stage} · 最近 {last.month}月{last.day}日")
    return Reply(card=Card(title="我的客户", kind="accounts", blocks=tuple(lines),
                           subtitle="发 #客户 医院名 查看详情"), tag="account.list")


async def account_card(app: AppContext, hc: HandlerContext, account: Account) -> Card:
    scope = await scope_for(hc.session, hc.person)
    own_only = scope.people == frozenset({hc.person.id})
    tz = app.config.tz
    fields: list[CardField] = []
    opps = await account_opportunities(hc.session, account.id, scope=scope)
    for opp in opps[:3]:
        owner = await hc.session.get(Person, opp.owner_id) if not own_only else None
        label = stage_label(app, opp.stage) or "未定阶段"
        if opp.status != OPEN:
            label += "（已关闭）"
        extra = f" · {money(opp.amount)}" if opp.amount else ""
        who = f"（{owner.name}）" if owner is not None else ""
        fields.append(CardField("阶段" + who, label + extra))
    if not opps:
        fields.append(CardField("阶段", "暂无商机"))
    if account.aliases:
        fields.append(CardField("别名", "、".join(account.aliases)))
    blocks: list[str] = []
    notes = await account_notes(hc.session, account.id, scope=scope, limit=3)
    if notes:
        blocks.append("最近跟进：")
    for note in notes:
        at = note.created_at.astimezone(tz)
        author = await hc.session.get(Person, note.author_id) if not own_only else None
        text = (note.raw_text or note.transcript or "").strip().replace("\n", " ")
        if len(text) > 40:
            text = text[:40] + "…"
        by = f"{author.name}：" if author is not None else ""
        blocks.append(f"· {at.month}月{at.day}日 {by}{text}")
    opp_ids = [o.id for o in opps if o.status == OPEN]
    if opp_ids:
        tasks = (
            await hc.session.scalars(
                select(Task).where(Task.opportunity_id.in_(opp_ids), Task.status == OPEN).order_by(Task.due_date, Task.id).limit(3)
            )
        ).all()
        today = local_now(app, hc.now).date()
        for task in tasks:
            when = f"{task.due_date.month}月{task.due_date.day}日" if task.due_date else "未定日期"
            late = "⚠️" if task.due_date is not None and task.due_date < today else ""
            blocks.append(f"☐ {late}{when} {task.text}")
    if not notes:
        blocks.append("还没有跟进记录。")
    return Card(title=account.name, kind="account", fields=tuple(fields), blocks=tuple(blocks),
                meta={"account_id": str(account.id)})


def router(app: AppContext) -> Router:
    r = Router("accounts")

    @r.on(hashtag(), matches(ACCOUNT_RX))
    async def account(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        name = match.group(1).strip(" ，。,.")
        if not name:
            return await _my_accounts(app, hc)
        canonical = app.services.lexicon.canonical_account
        found = await find_account(hc.session, name, canonical)
        if found is None:
            written = _hospital_named_in(app, name, hc.now)
            if written:
                found = await find_account(hc.session, written, canonical)
        if found is None:
            candidates = await search_accounts(hc.session, name)
            if len(candidates) == 1:
                found = candidates[0]
            elif candidates:
                names = "、".join(a.name for a in candidates)
                return Reply(text=f"“{name}”对应多家医院：{names}。请写全称再查。")
        if found is None or not await (await scope_for(hc.session, hc.person)).can_see_account(hc.session, found.id):
            return Reply(text=f"没有找到“{name}”的跟进记录。")  # another team's hospital is not revealed either
        return Reply(card=await account_card(app, hc, found), tag="account")

    return r
