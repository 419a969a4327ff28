"""The weekly digest: managers get their team's, directors a company roll-up, once per person and week.

Sent on the first working day of each ISO week at ``[reports] digest_at`` (08:45): the sales
calendar decides, so a Monday holiday moves it to Tuesday. Every node runs the job; a
``digest_marks`` row (key ``digest:<week>:<person>``) is inserted ON CONFLICT DO NOTHING in
the same transaction as the digest's outbox rows, so only the node whose insert wins sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Image, Reply
from bot.pipeline.notify import notify
from cards.model import Button, Card, CardField
from handlers.common.format import money
from handlers.reports import charts
from handlers.reports import queries as q
from handlers.reports.views import minutes, pct, scope_title
from storage.db import insert_for
from storage.models import DigestMark, Person
from storage.scope import scope_for

DIGEST_ROLES = ("manager", "director")


def first_working_day(app: AppContext, day: date) -> date | None:
    """The first working day of ``day``'s ISO week (None if the week has none)."""
    monday = day - timedelta(days=day.weekday())
    for offset in range(7):
        candidate = monday + timedelta(days=offset)
        if app.calendar.is_working_day(candidate):
            return candidate
    return None


def digest_due(app: AppContext, now: datetime) -> bool:
    local = now.astimezone(app.config.tz)
    hour, minute = (int(x) for x in app.config.reports.digest_at.split(":"))
    return first_working_day(app, local.date()) == local.date() and local.time() >= time(hour, minute)


@dataclass(frozen=True)
class Digest:
    week: str
    card: Card
    images: tuple[Image, ...]

    def replies(self) -> list[Reply]:
        first = Reply(card=self.card, image=self.images[0] if self.images else None, tag="digest")
        return [first, *(Reply(image=img, tag="digest.chart") for img in self.images[1:])]


async def build_digest(app: AppContext, session: AsyncSession, person: Person, now: datetime) -> Digest:
    """Last ISO week for ``person``'s scope: funnel with changes, speed-to-lead, SLA breaches, five most
    stalled deals with why, receivables by overdue bucket, biggest health drops, a per-rep table."""
    scope = await scope_for(session, person)
    this_week = q.week_start(app, now)
    since = this_week - timedelta(days=7)
    today = now.astimezone(app.config.tz).date()
    week = q.iso_week(app, since)
    who = await scope_title(session, scope, person)

    funnel = await q.funnel(app, session, scope, now)
    leads = await q.lead_speed(session, scope, since, this_week, now)
    breaches = await q.sla_breaches(session, scope, since, this_week)
    stalled = await q.stalled_deals(app, session, scope, now)
    receivables = await q.overdue_receivables(session, scope, today, app.config.tz)
    buckets = q.bucketed(receivables)
    drops = await q.health_drops(app, session, scope, now)
    reps = await q.rep_table(app, session, scope, since, this_week)

    fields = [
        CardField("线索认领", f"分配{leads.offered} · 认领{leads.claimed} · 中位{minutes(leads.median_minutes)} · 15分钟内{pct(leads.within_sla)}"),
        CardField("超时/预警", f"{leads.breaches}条线索超时 · {breaches}条新预警"),
        CardField("逾期回款", " · ".join(f"{label}{n}笔{money(a) if a else ''}" for label, n, a in buckets)),
    ]
    blocks = ["【漏斗】" + "；".join(f"{r.label}{r.count}({r.change:+d})" for r in funnel)]
    if stalled:
        blocks.append("【最卡的商机】")
        blocks.extend(f"#{d.opp.id} {d.account}·{d.stage}·{d.owner}：{h.penalties[0].text}（健康{h.score}）" for d, h in stalled)
    if drops:
        blocks.append("【健康度下降最多】")
        blocks.extend(f"#{d.opp.id} {d.account}·{d.owner}：{then}→{score}" for d, then, score in drops)
    if reps:
        blocks.append("【每人】跟进/商机/金额/线索(分配-认领)/逾期待办")
        blocks.extend(f"{r.person.name}：{r.notes}/{r.open_deals}/{money(r.pipeline) or '0'}/{r.leads_offered}-{r.leads_claimed}/{r.overdue_tasks}" for r in reps)
    card = Card(title=f"周报 {week} · {who}", kind="digest", subtitle=f"{since.astimezone(app.config.tz):%m-%d} 至 {(this_week - timedelta(days=1)).astimezone(app.config.tz):%m-%d}",
                fields=tuple(fields), blocks=tuple(blocks), buttons=(Button("看板", command="#看板"), Button("漏斗", command="#漏斗")))
    images = (
        Image(charts.funnel_png(f"销售漏斗 · {who}", [r.label for r in funnel], [r.count for r in funnel],
                                [f"{r.change:+d} · {money(r.amount) or '0'}" for r in funnel]), name=f"funnel-{week}.png",
              alt="漏斗图：" + "，".join(f"{r.label}{r.count}" for r in funnel)),
        Image(charts.bars_png("逾期回款（万元）", [b[0] for b in buckets], [round(b[2] / 10_000, 1) for b in buckets]),
              name=f"receivables-{week}.png", alt="逾期回款：" + "，".join(f"{b[0]}{b[1]}笔" for b in buckets)),
    )
    return Digest(week, card, images)


async def send_one(app: AppContext, person_id: int, now: datetime) -> bool:
    """Mark and send one person's digest in one transaction; False if this week's was already produced."""
    async with app.sessions() as session:
        async with session.begin():
            person = await session.get(Person, person_id)
            if person is None:
                return False
            week = q.iso_week(app, q.week_start(app, now) - timedelta(days=7))
            insert = insert_for(session.bind.dialect.name)  # type: ignore[union-attr]
            marked = await session.execute(
                insert(DigestMark).values(key=f"digest:{week}:{person.key}", person_id=person.id, week=week, created_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            if marked.rowcount != 1:  # type: ignore[attr-defined]
                return False
            digest = await build_digest(app, session, person, now)
            for reply in digest.replies():
                await notify(app, session, person, reply, now=now)
    return True


async def send_weekly_digests(app: AppContext) -> int:
    """The job: on the first working day of the ISO week after ``digest_at``, each manager and director once."""
    now = app.clock.now()
    if not digest_due(app, now):
        return 0
    async with app.sessions() as session:
        ids = list((await session.scalars(select(Person.id).where(Person.active.is_(True), Person.role.in_(DIGEST_ROLES)).order_by(Person.id))).all())
    sent = 0
    for person_id in ids:
        try:
            sent += await send_one(app, person_id, now)
        except Exception:  # noqa: BLE001 - one person's failure must not stop the others
            app.log.exception("digest.failed", person_id=person_id)
    if sent:
        app.log.info("digest.sent", count=sent)
        app.outbox_wakeup.set()
    return sent
