"""The one way anything reaches a person: ``notify(to=…, reply)``.

Handlers' replies, pushes to other people, reminders, lead offers and escalations all
come through here, so identity resolution (which platform and id reach this person),
the outbox write and the record of what could not be delivered live in one place.
A recipient that cannot be reached (inactive, no platform id on any enabled channel, an
unknown key) still gets an outbox row, with status ``unroutable`` and the reason, so
nothing is silently dropped and ``/healthz`` and the audit trail can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.outbox import enqueue
from storage.models import OutboxRow, Person, Team
from storage.people import person_by_key, route_to

UNROUTABLE = "unroutable"


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
) -> list[OutboxRow]:
    """Queue ``reply`` for ``to`` in the caller's transaction; returns the outbox rows written."""
    if isinstance(to, InPlace):
        return [
            enqueue(session, platform=to.platform, recipient=to.recipient, conversation=to.conversation,
                    reply=reply, inbox_id=inbox_id, context=dict(to.context), now=now)
        ]
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
        rows.append(enqueue(session, platform=where[0], recipient=where[1], reply=reply, inbox_id=inbox_id, now=now))
    return rows


def _unroutable(
    app: AppContext, session: AsyncSession, who: str, reply: Reply, why: str, *, inbox_id: int | None, now: datetime
) -> OutboxRow:
    app.log.warning("notify.unroutable", to=who, reason=why)
    app.metrics.outbound.labels("", UNROUTABLE).inc()
    return enqueue(session, platform="", recipient=who[:128], reply=reply, inbox_id=inbox_id, now=now,
                   status=UNROUTABLE, last_error=why)
