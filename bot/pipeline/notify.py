"""The one way anything reaches a person: ``notify(to=…, reply)``.

Handlers' replies, pushes to other people, reminders, lead offers and escalations all
come through here, so identity resolution (which platform and id reach this person),
the outbox write and the record of what could not be delivered live in one place.
A recipient that cannot be reached (inactive, no platform id on any enabled channel, an
unknown key) still gets an outbox row, with status ``unroutable`` and the reason, so
nothing is silently dropped and ``/healthz`` and the audit trail can show it.

Alerts (a ``klass`` is given: escalations, SLA reminders, digests) are also kept from
flooding people ([alerts] in the config):

* alerts of one class to one person within ``merge_minutes`` become one card listing the
  items (the first is held that long, later ones join it while it waits);
* outside working hours they wait for the next opening of the sales calendar, spread over
  ``quiet_jitter_minutes`` so a team does not get fifty cards at 09:00:00;
* after ``daily_cap`` alert cards in a day, the rest of that day go into one summary card;
* ``urgent_classes`` (lead offers: a 15-minute claim SLA) go out at once and are never merged;
* ``dedupe_key`` makes an effect idempotent (a timer level fires once however often it runs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Union

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.outbox import enqueue, row_values
from cards.model import Card
from storage.models import OutboxRow, Person, Team
from storage.people import person_by_key, route_to

UNROUTABLE = "unroutable"
MERGED = "merged"  # an alert carried by another row's card
SUMMARY = "summary"  # the merge class of the day's overflow


@dataclass(frozen=True)
class InPlace:
    """Answer in the conversation a message came from (with what the channel needs to reply there)."""

    platform: str
    recipient: str
    conversation: str = ""
    context: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ToTeam:
    """Everyone active in a team (by team key); ``role`` narrows it (e.g. the team's managers)."""

    key: str
    role: str | None = None


@dataclass(frozen=True)
class ToRole:
    """Everyone active with a role (e.g. ``sales_ops`` for data-quality alerts)."""

    role: str


Recipient = Union[Person, str, InPlace, ToTeam, ToRole]
"""A person, a person's org key, a conversation, a team or a role."""


def in_place(to: InPlace, reply: Reply, *, now: datetime, inbox_id: int | None = None) -> dict[str, object]:
    """The outbox row of ``notify(to=InPlace…)`` as values, for a caller that inserts several at once
    (the dispatcher: a batch of messages' answers in one statement, :func:`bot.pipeline.outbox.enqueue_many`)."""
    return row_values(platform=to.platform, recipient=to.recipient, conversation=to.conversation,
                      reply=reply, inbox_id=inbox_id, context=dict(to.context), now=now)


async def _people(session: AsyncSession, to: Recipient) -> list[Person] | str:
    """The people ``to`` stands for, or why nobody could be found."""
    if isinstance(to, Person):
        return [to]
    if isinstance(to, str):
        person = await person_by_key(session, to)
        return [person] if person is not None else f"unknown person {to!r}"
    if isinstance(to, ToTeam):
        team = await session.scalar(select(Team).where(Team.key == to.key))
        if team is None:
            return f"unknown team {to.key!r}"
        stmt = select(Person).where(Person.team_id == team.id, Person.active.is_(True))
        if to.role is not None:
            stmt = stmt.where(Person.role == to.role)
        people = list((await session.scalars(stmt.order_by(Person.id))).all())
        return people or f"nobody active in team {to.key!r}"
    if isinstance(to, ToRole):
        people = list(
            (await session.scalars(select(Person).where(Person.role == to.role, Person.active.is_(True)).order_by(Person.id))).all()
        )
        return people or f"nobody active with role {to.role!r}"
    raise TypeError(f"not a recipient: {to!r}")


async def notify(
    app: AppContext,
    session: AsyncSession,
    to: Recipient,
    reply: Reply,
    *,
    now: datetime,
    inbox_id: int | None = None,
    klass: str | None = None,
    dedupe_key: str | None = None,
) -> list[OutboxRow]:
    """Queue ``reply`` for ``to`` in the caller's transaction; returns the outbox rows written (or joined).

    ``klass`` marks an alert (see the module docstring); ``dedupe_key`` (with ``klass``)
    makes it once-only per recipient.
    """
    if isinstance(to, InPlace):
        return [enqueue(session, in_place(to, reply, now=now, inbox_id=inbox_id))]
    people = await _people(session, to)
    if isinstance(people, str):
        return [_unroutable(app, session, str(getattr(to, "key", to)), reply, people, inbox_id=inbox_id, now=now)]
    rows: list[OutboxRow] = []
    for person in people:
        where = route_to(person, app.channels) if person.active else None
        if where is None:
            why = "inactive" if not person.active else "no id on any enabled channel"
            rows.append(_unroutable(app, session, person.key, reply, why, inbox_id=inbox_id, now=now))
            continue
        if klass is None:
            rows.append(enqueue(session, row_values(platform=where[0], recipient=where[1], reply=reply, inbox_id=inbox_id, now=now)))
        else:
            key = f"{dedupe_key}:{person.key}" if dedupe_key else None
            row = await _alert(app, session, person, where, reply, klass=klass, key=key, inbox_id=inbox_id, now=now)
            if row is not None:
                rows.append(row)
    return rows


async def _alert(
    app: AppContext,
    session: AsyncSession,
    person: Person,
    where: tuple[str, str],
    reply: Reply,
    *,
    klass: str,
    key: str | None,
    inbox_id: int | None,
    now: datetime,
) -> OutboxRow | None:
    if key is not None and await session.scalar(select(OutboxRow.id).where(OutboxRow.dedupe_key == key)) is not None:
        return None  # this effect was already produced
    cfg = app.config.alerts
    platform, recipient = where
    if klass in cfg.urgent_classes:
        row = enqueue(session, row_values(platform=platform, recipient=recipient, reply=reply, inbox_id=inbox_id, now=now))
        row.push, row.dedupe_key = True, key
        return row
    opening = _opening(app, person.key, now)
    merge_key = klass
    if await _sent_today(app, session, recipient, now) >= cfg.daily_cap:
        merge_key = SUMMARY
    held = await session.scalar(
        select(OutboxRow)
        .where(
            OutboxRow.platform == platform,
            OutboxRow.recipient == recipient,
            OutboxRow.merge_key == merge_key,
            OutboxRow.status == "pending",
            OutboxRow.next_attempt_at > now,
        )
        .order_by(OutboxRow.id)
        .limit(1)
    )
    if held is not None:
        _join(held, reply, merge_key)
        # every alert keeps a row of its own (status "merged", never sent) for the trail and the dedupe key
        marker = enqueue(session, row_values(platform=platform, recipient=recipient, reply=reply, inbox_id=inbox_id, now=now,
                                            status=MERGED, context={"into": held.id}))
        marker.merge_key, marker.dedupe_key = merge_key, key
        return held
    row = enqueue(session, row_values(platform=platform, recipient=recipient, reply=reply, inbox_id=inbox_id, now=now,
                                     context={"lines": [_line(reply)]}))
    row.push, row.merge_key, row.dedupe_key = True, merge_key, key
    if merge_key == SUMMARY:
        # the day's overflow: one card at the next day's opening
        local = now.astimezone(app.config.tz)
        tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        row.next_attempt_at = _opening(app, person.key, tomorrow)
        row.payload = Reply(card=_digest([_line(reply)], merge_key), tag="alert.summary").to_payload()
    else:
        row.next_attempt_at = max(opening, now + timedelta(minutes=cfg.merge_minutes))
    return row




def _opening(app: AppContext, who: str, now: datetime) -> datetime:
    """Now during working time; otherwise the next opening plus this person's fixed jitter."""
    opening = app.calendar.next_working_moment(now)
    if opening <= now:
        return now
    spread = app.config.alerts.quiet_jitter_minutes * 60
    jitter = int(hashlib.sha256(who.encode()).hexdigest(), 16) % int(spread) if spread >= 1 else 0
    return opening + timedelta(seconds=jitter)


async def _sent_today(app: AppContext, session: AsyncSession, recipient: str, now: datetime) -> int:
    """Alert cards to ``recipient`` created since local midnight (merged items count once: one card)."""
    local = now.astimezone(app.config.tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(
        await session.scalar(
            select(func.count(OutboxRow.id)).where(
                OutboxRow.recipient == recipient, OutboxRow.push.is_(True), OutboxRow.created_at >= midnight
            )
        )
        or 0
    )


def _join(row: OutboxRow, reply: Reply, merge_key: str) -> None:
    lines = [*row.context.get("lines", []), _line(reply)]
    row.context = {**row.context, "lines": lines}
    row.payload = Reply(card=_digest(lines, merge_key), tag=f"alert.{merge_key}").to_payload()


def _line(reply: Reply) -> str:
    """One alert as a line of a digest: its title and first facts."""
    card = reply.card
    if card is None:
        return f"• {reply.text}"
    facts = "，".join(f"{f.label}：{f.value}" for f in card.fields[:3])
    return f"• {card.title}" + (f"（{facts}）" if facts else "")


DIGEST_LINES = 20  # a card stays readable on a phone; the rest is counted


def _digest(lines: list[str], merge_key: str) -> Card:
    """One card listing several alerts."""
    shown = list(lines[:DIGEST_LINES])
    if len(lines) > DIGEST_LINES:
        shown.append(f"…及其他 {len(lines) - DIGEST_LINES} 条")
    title = "今日其余提醒汇总" if merge_key == SUMMARY else "提醒汇总"
    return Card(title=f"{title}（{len(lines)}条）", kind="digest", blocks=tuple(shown),
                subtitle="逐条处理请回复卡片里的指令，或发 #预警 查看")


def _unroutable(
    app: AppContext, session: AsyncSession, who: str, reply: Reply, why: str, *, inbox_id: int | None, now: datetime
) -> OutboxRow:
    app.log.warning("notify.unroutable", to=who, reason=why)
    app.metrics.outbound.labels("", UNROUTABLE).inc()
    return enqueue(session, row_values(platform="", recipient=who[:128], reply=reply, inbox_id=inbox_id, now=now,
                                      status=UNROUTABLE, last_error=why))
