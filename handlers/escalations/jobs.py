"""The snooze job: a 稍后提醒 card comes back once, to whoever snoozed it, on any one node."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import notify
from cards.model import Card
from reminders.jobs import JobQueue
from storage.models import Escalation

JOB = "escalations.snoozes"


async def resend_snoozed(app: AppContext) -> int:
    now = app.clock.now()
    sent = 0
    async with app.sessions() as session:
        async with session.begin():
            due = list((await session.scalars(
                select(Escalation).where(Escalation.snooze_until <= now, Escalation.closed_at.is_(None)).limit(500)
            )).all())
            for esc in due:
                taken = await session.execute(
                    update(Escalation).where(Escalation.id == esc.id, Escalation.version == esc.version)
                    .values(snooze_until=None, version=esc.version + 1).execution_options(synchronize_session=False)
                )
                if taken.rowcount != 1:
                    continue  # another node took it
                card = (esc.detail or {}).get("card")
                who = (esc.detail or {}).get("snoozed_by")
                if not card or not who:
                    continue
                reply = Reply(card=Card.from_dict(card), tag="escalation.snoozed")
                # the reminder the person asked for, in working time: sent as is (the version check makes it once)
                await notify(app, session, who, reply, now=now)
                sent += 1
    if sent:
        app.outbox_wakeup.set()
    return sent


def register_jobs(queue: JobQueue, app: AppContext) -> None:
    queue.run_repeating(JOB, resend_snoozed, seconds=app.config.escalations.snooze_tick_seconds)
