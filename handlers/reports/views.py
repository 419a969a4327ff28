"""The chat views: team card, funnel (with a chart), health, audit trail. All scoped to the asker."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Image, Reply
from cards.model import Button, Card, CardField
from handlers.common.format import money, stage_label
from handlers.reports import charts
from handlers.reports import health as hp
from handlers.reports import queries as q
from storage.models import Account, Opportunity, Person, Team
from storage.scope import Scope

FIELD_LABELS = {"stage": "阶段", "amount": "金额", "status": "状态", "due_date": "截止日期", "created": "创建",
                "deleted": "删除", "text": "内容", "owner_id": "负责人"}
ESCALATION_LABELS = {"unclaimed_lead": "线索未认领", "stalled_deal": "商机停滞", "overdue_payment": "回款逾期"}


def _day(app: AppContext, at: datetime) -> str:
    local = at.astimezone(app.config.tz)
    return f"{local.month}月{local.day}日"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def minutes(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}分钟" if value < 120 else f"{value / 60:.1f}小时"


async def scope_title(session: AsyncSession, scope: Scope, person: Person) -> str:
    if scope.people is None:
        return "全公司"
    if scope.people == frozenset({person.id}):
        return f"{person.name}的"
    names = (await session.scalars(select(Team.name).where(Team.manager_key == person.key).order_by(Team.id))).all()
    return "、".join(names) or f"{person.name}团队"


async def team_card(app: AppContext, session: AsyncSession, scope: Scope, person: Person, now: datetime) -> Card:
    """This week: notes per rep, lead speed, open escalations, overdue receivables, top 5 deals."""
    since = q.week_start(app, now)
    today = now.astimezone(app.config.tz).date()
    notes = await q.notes_per_person(session, scope, since, now)
    people = await q.people_in(session, scope)
    leads = await q.lead_speed(session, scope, since, now, now)
    escalations = await q.open_escalations(session, scope)
    receivables = await q.overdue_receivables(session, scope, today, app.config.tz)
    top = await q.deals(app, session, scope, order="amount", limit=5)
    fields = [
        CardField("本周跟进", f"{sum(notes.values())}条"),
        CardField("线索", f"分配{leads.offered} · 认领{leads.claimed}"),
        CardField("认领用时", f"中位{minutes(leads.median_minutes)} · 15分钟内{pct(leads.within_sla)}"),
        CardField("未结预警", f"{sum(escalations.values())}条" + (
            "（" + "，".join(f"{ESCALATION_LABELS.get(k, k)}{n}" for k, n in sorted(escalations.items())) + "）" if escalations else "")),
        CardField("逾期回款", f"{len(receivables)}笔 · {money(sum(r.amount for r in receivables)) or '0'}"),
    ]
    blocks = []
    reps = [p for p in people if p.role == "rep"]
    if reps:
        blocks.append("跟进条数：" + " · ".join(f"{p.name} {notes.get(p.id, 0)}" for p in reps))
    if top:
        blocks.append("金额前五：")
    for d in top:
        blocks.append(f"{d.account} · {d.stage} · {money(d.opp.amount) or '金额未定'} · {d.owner} · 最近{_day(app, d.opp.last_activity_at)}")
    start = since.astimezone(app.config.tz)
    return Card(
        title=f"本周团队 · {await scope_title(session, scope, person)}",
        kind="report.team",
        subtitle=f"{start.month}月{start.day}日起 · 截至{_day(app, now)}",
        fields=tuple(fields),
        blocks=tuple(blocks),
        buttons=(Button("漏斗", command="#漏斗"), Button("看板", command="#看板")),
    )


async def funnel_reply(app: AppContext, session: AsyncSession, scope: Scope, person: Person, now: datetime) -> Reply:
    rows = await q.funnel(app, session, scope, now)
    fields = []
    for r in rows:
        change = f"{r.change:+d}" if r.change else "±0"
        conv = f" · 转化{pct(r.conversion)}" if r.conversion is not None else ""
        fields.append(CardField(r.label, f"{r.count}单 · {money(r.amount) or '0'} · 较上周{change}{conv}"))
    title = f"销售漏斗 · {await scope_title(session, scope, person)}"
    image = charts.funnel_png(title, [r.label for r in rows], [r.count for r in rows],
                              [f"{r.change:+d} · {money(r.amount) or '0'}" for r in rows])
    card = Card(title=title, kind="report.funnel", subtitle=f"进行中商机 · 截至{_day(app, now)} · 较上周为单数变化",
                fields=tuple(fields), buttons=(Button("团队", command="#团队"), Button("看板", command="#看板")))
    return Reply(card=card, image=Image(image, name="funnel.png", alt="漏斗图：" + "，".join(f"{r.label}{r.count}" for r in rows)),
                 tag="report.funnel")


def penalty_lines(health: hp.Health) -> list[str]:
    return [p.line() for p in health.top]


async def health_reply(app: AppContext, session: AsyncSession, scope: Scope, what: str, now: datetime) -> Reply:
    """``#健康 医院或商机``: a deal id, or a hospital name (the account and its deals)."""
    what = what.strip()
    opps: list[Opportunity] = []
    account: Account | None = None
    if what.isdigit():
        opp = await q.visible_opportunity(session, scope, int(what))
        if opp is not None:
            opps = [opp]
            account = await session.get(Account, opp.account_id) if opp.account_id else None
    elif what:
        account = await _visible_account(app, session, scope, what)
        if account is not None:
            opps = list((await session.scalars(select(Opportunity).where(
                Opportunity.account_id == account.id, Opportunity.status == q.OPEN, scope.opportunities()).order_by(Opportunity.id))).all())
    if not opps:
        return Reply(text=f"没有找到“{what}”的进行中商机。发 #健康 医院名 或 #健康 商机编号。" if what else "发 #健康 医院名 或 #健康 商机编号。")
    scored = await q.deal_health(app, session, opps, now)
    today = now.astimezone(app.config.tz).date()
    before = await hp.previous_scores(session, "opportunity", [o.id for o in opps], today - timedelta(days=7))
    rules = hp.load_rules()
    blocks: list[str] = []
    fields: list[CardField] = []
    if len(opps) > 1:
        acc = hp.account_health([(o, scored[o.id]) for o in opps], rules)
        if acc is not None:
            fields.append(CardField("医院健康度", f"{acc.score}（{hp.BAND_LABEL[acc.band]}）"))
    for opp in opps[:5]:
        h = scored[opp.id]
        change = f" · 较上周{h.score - before[opp.id]:+d}" if opp.id in before else ""
        fields.append(CardField(f"商机#{opp.id} {stage_label(app, opp.stage) or '未定阶段'}",
                                f"{h.score}（{hp.BAND_LABEL[h.band]}）{money(opp.amount)}{change}"))
        blocks.extend(f"#{opp.id} {line}" for line in penalty_lines(h))
    if not blocks:
        blocks.append("没有扣分项。")
    name = account.name if account else f"商机#{opps[0].id}"
    return Reply(card=Card(title=f"健康度 · {name}", kind="report.health", fields=tuple(fields), blocks=tuple(blocks),
                           subtitle="≥80 健康 · 60–79 关注 · <60 风险"), tag="report.health")


async def _visible_account(app: AppContext, session: AsyncSession, scope: Scope, name: str) -> Account | None:
    canonical = app.services.lexicon.canonical_account(name)
    found = await session.scalar(select(Account).where(Account.name.in_({name, canonical}), scope.accounts()).limit(1))
    if found is not None:
        return found
    for account in (await session.scalars(select(Account).where(scope.accounts()).order_by(Account.id))).all():
        if name in account.name or name in (account.aliases or []):
            return account
    return None


async def audit_reply(app: AppContext, session: AsyncSession, scope: Scope, what: str, now: datetime) -> Reply:
    """``#审计 商机编号/医院``: who changed which field when (only deals the asker may see)."""
    what = what.strip()
    ids: list[int] = []
    title = what
    if what.isdigit():
        ids = [int(what)]
        title = f"商机#{what}"
    elif what:
        account = await _visible_account(app, session, scope, what)
        if account is not None:
            title = account.name
            ids = list((await session.scalars(select(Opportunity.id).where(Opportunity.account_id == account.id, scope.opportunities()))).all())
    lines = await q.audit_trail(session, scope, opportunity_ids=ids, limit=15)
    if not lines:
        return Reply(text=f"没有找到“{what}”的修改记录。发 #审计 医院名 或 #审计 商机编号。")
    blocks = []
    for line in lines:
        fld = FIELD_LABELS.get(line.field, line.field)
        old = stage_label(app, line.old) if line.field == "stage" else (line.old or "空")
        new = stage_label(app, line.new) if line.field == "stage" else (line.new or "空")
        what_changed = f"{'任务' if line.entity == 'task' else '商机'}#{line.entity_id} {fld}：{old or '空'} → {new or '空'}"
        local = line.at.astimezone(app.config.tz)
        blocks.append(f"{local:%m-%d %H:%M} {line.actor} {what_changed}")
    return Reply(card=Card(title=f"修改记录 · {title}", kind="report.audit", blocks=tuple(blocks)), tag="report.audit")


async def stalled_reply(app: AppContext, session: AsyncSession, scope: Scope, now: datetime) -> Reply:
    stalled = await q.stalled_deals(app, session, scope, now)
    if not stalled:
        return Reply(text="目前没有卡住的商机。")
    blocks = []
    for d, h in stalled:
        why = h.penalties[0].text if h.penalties else ""
        blocks.append(f"#{d.opp.id} {d.account} · {d.stage} · {d.owner} · 健康{h.score} · {why}")
    return Reply(card=Card(title="卡住的商机", kind="report.stalled", blocks=tuple(blocks),
                           subtitle="按健康度从低到高", buttons=(Button("漏斗", command="#漏斗"),)), tag="report.stalled")


async def receivables_reply(app: AppContext, session: AsyncSession, scope: Scope, now: datetime) -> Reply:
    today = now.astimezone(app.config.tz).date()
    items = await q.overdue_receivables(session, scope, today, app.config.tz)
    if not items:
        return Reply(text="目前没有逾期回款。")
    fields = tuple(CardField(label, f"{n}笔 · {money(amount) or '0'}") for label, n, amount in q.bucketed(items))
    return Reply(card=Card(title="逾期回款", kind="report.receivables", fields=fields,
                           blocks=tuple(f"商机#{r.opportunity_id} · {money(r.amount)} · 逾期{r.days_overdue}天" for r in items[:8])),
                 tag="report.receivables")
