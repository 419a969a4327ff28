"""The reminder job: find due tasks in the database, claim each atomically, push a card.

Why claim with a conditional UPDATE: several nodes run this job against one database.
``UPDATE tasks SET reminded_at = now WHERE id = ? AND reminded_at IS NULL`` succeeds for
exactly one of them (PostgreSQL re-checks the condition after the row lock; SQLite
serialises writers), and the outbox row is written in the same transaction, so a reminder
is neither lost (crash before commit → claimed again next run) nor sent twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import notify
from handlers.tasks.cards import reminder_card
from handlers.tasks.service import is_overdue
from storage.models import Account, Opportunity, Person, Task

if TYPE_CHECKING:
    from reminders.jobs import JobQueue

BATCH = 200
JOB_NAME = "tasks.reminders"


async def due_task_ids(app: AppContext, limit: int = BATCH) -> list[int]:
    now = app.clock.now()
    async with app.sessions() as session:
        rows = await session.scalars(
            select(Task.id)
            .where(Task.status == "open", Task.remind_at.is_not(None), Task.remind_at <= now, Task.reminded_at.is_(None))
            .order_by(Task.remind_at, Task.id)
            .limit(limit)
        )
        return list(rows.all())


async def _remind_one(app: AppContext, task_id: int) -> bool:
    """Claim and push one task; False if another node (or an earlier run) got it first."""
    now = app.clock.now()
    async with app.sessions() as session:
        async with session.begin():
            claimed = await session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    Task.reminded_at.is_(None),
                    Task.status == "open",
                    Task.remind_at.is_not(None),
                    Task.remind_at <= now,
                )
                .values(reminded_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return False
            task = await session.get(Task, task_id, populate_existing=True)
            assert task is not None
            owner = await session.get(Person, task.owner_id)
            if owner is None:
                app.log.warning("reminders.no_owner", task_id=task_id)
                return True
            account = None
            if task.opportunity_id is not None:
                opp = await session.get(Opportunity, task.opportunity_id)
                if opp is not None and opp.account_id is not None:
                    account = await session.get(Account, opp.account_id)
            today = now.astimezone(app.config.tz).date()
            card = reminder_card(app, task, account, today, late=is_overdue(task, now, app.config.tz))
            await notify(app, session, owner, Reply(card=card, tag="reminder"), now=now)
    return True


async def send_due_reminders(app: AppContext) -> int:
    """Remind every due task not yet reminded; returns how many this call claimed."""
    sent = 0
    for task_id in await due_task_ids(app):
        try:
            if await _remind_one(app, task_id):
                sent += 1
        except Exception:  # noqa: BLE001 - one broken task must not block the others
            app.log.exception("reminders.task_failed", task_id=task_id)
    if sent:
        app.metrics.reminders.inc(sent)
        app.log.info("reminders.sent", count=sent)
        app.outbox_wakeup.set()
    return sent


def register_jobs(jobs: JobQueue, app: AppContext) -> None:
    jobs.run_repeating(JOB_NAME, send_due_reminders, seconds=app.config.notes.reminder_tick_seconds)
