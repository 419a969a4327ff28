"""Tasks (a rep's next actions) and when they remind.

Nothing here commits: callers pass the open transaction, so a task, its audit rows and
the bot's reply commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import audit
from storage.models import Note, Task

if TYPE_CHECKING:
    from bot.context import AppContext

OPEN = "open"
DONE = "done"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ReminderPolicy:
    """When a task's reminder fires: at the given time, else ``hour`` o'clock local on the due day."""

    tz: tzinfo
    hour: int


def policy(app: AppContext) -> ReminderPolicy:
    return ReminderPolicy(tz=app.config.tz, hour=app.config.notes.reminder_hour)


def reminder_time(due: date | None, due_at: datetime | None, policy: ReminderPolicy, now: datetime) -> datetime | None:
    """When to remind: the stated time, else ``policy.hour`` local on the due day.

    A reminder is never scheduled in the past, and a dated task always gets one: for a task
    due later today whose default hour has gone by, it fires two hours from now if that is
    still the same local day; a task whose due time has already passed (it is late the
    moment it is written or redated) is reminded at once, by the next reminder-job tick.
    """
    if due is None:
        return None
    if due_at is not None:
        at = due_at if due_at.tzinfo is not None else due_at.replace(tzinfo=policy.tz)
        at = at.astimezone(timezone.utc)
        return at if at > now else now
    at = datetime.combine(due, time(policy.hour), tzinfo=policy.tz).astimezone(timezone.utc)
    if at > now:
        return at
    local_now = now.astimezone(policy.tz)
    if due == local_now.date():
        later = now + timedelta(hours=2)
        if later.astimezone(policy.tz).date() == due:
            return later
    return now


def is_overdue(task: Task, now: datetime, tz: tzinfo) -> bool:
    """Past its due time (when one was given) or its due day; open tasks only."""
    if task.status != OPEN or task.due_date is None:
        return False
    if task.due_at is not None:
        at = task.due_at if task.due_at.tzinfo is not None else task.due_at.replace(tzinfo=timezone.utc)
        return at <= now
    return task.due_date < now.astimezone(tz).date()

async def create_task(
    session: AsyncSession,
    *,
    owner_id: int,
    note: Note | None,
    opportunity_id: int | None,
    text: str,
    due: date | None,
    due_at: datetime | None,
    remind: bool,
    policy: ReminderPolicy,
    now: datetime,
) -> Task:
    """A new open task (flushed: its id is known), audited as created."""
    task = Task(
        owner_id=owner_id,
        note_id=note.id if note is not None else None,
        opportunity_id=opportunity_id,
        text=text[:2000],
        due_date=due,
        due_at=due_at.astimezone(timezone.utc) if due_at is not None else None,
        remind_at=reminder_time(due, due_at, policy, now) if remind else None,
        status=OPEN,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    await audit(session, actor_id=owner_id, entity="task", entity_id=task.id, field_name="created",
                old=None, new=task.text, note_id=task.note_id, now=now)
    return task

async def redate_task(
    session: AsyncSession,
    task: Task,
    due: date,
    due_at: datetime | None,
    *,
    actor_id: int | None,
    policy: ReminderPolicy,
    now: datetime,
) -> None:
    """Give a task a new date: the reminder is rescheduled and may fire again."""
    await audit(session, actor_id=actor_id, entity="task", entity_id=task.id, field_name="due_date",
                old=task.due_date, new=due, note_id=task.note_id, now=now)
    task.due_date = due
    task.due_at = due_at.astimezone(timezone.utc) if due_at is not None else None
    task.remind_at = reminder_time(due, due_at, policy, now)
    task.reminded_at = None

async def set_task_status(
    session: AsyncSession, task: Task, status: str, *, actor_id: int | None, now: datetime
) -> bool:
    if task.status == status:
        return False
    await audit(session, actor_id=actor_id, entity="task", entity_id=task.id, field_name="status",
                old=task.status, new=status, note_id=task.note_id, now=now)
    task.status = status
    task.done_at = now if status == DONE else None
    return True

async def open_tasks(session: AsyncSession, owner_id: int, limit: int = 30) -> list[Task]:
    """Open tasks, dated ones first by date, undated ones last."""
    rows = (
        await session.scalars(
            select(Task)
            .where(Task.owner_id == owner_id, Task.status == OPEN)
            .order_by(Task.due_date.is_(None), Task.due_date, Task.id)
            .limit(limit)
        )
    ).all()
    return list(rows)

_TASK_FOR_NOTE = select(Task).where(Task.note_id == bindparam("note_id")).order_by(Task.id.desc()).limit(1)


async def task_for_note(session: AsyncSession, note_id: int) -> Task | None:
    return await session.scalar(_TASK_FOR_NOTE, {"note_id": note_id})

async def latest_reminded_task(session: AsyncSession, owner_id: int) -> Task | None:
    return await session.scalar(
        select(Task)
        .where(Task.owner_id == owner_id, Task.status == OPEN, Task.reminded_at.is_not(None))
        .order_by(Task.reminded_at.desc(), Task.id.desc())
        .limit(1)
    )
