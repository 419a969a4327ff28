"""What the bot is waiting for from a rep, persisted in ``dialog_state``.

Why in the database: the answer may arrive on another node, after a restart, or after a
redelivery; an in-memory dict would forget the question and the rep's "周四" would turn
into a nonsense note. One row per person: a new question replaces the old one, so the bot
never has two questions open at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DialogState

# state["kind"] values
MISSING = "missing"  # a required field of a note: state["field"], state["note_id"]
PAST_DUE = "past_due"  # confirm a date that already passed: state["note_id"], state["task_id"], state["due"]
# what a note holds back until the rep's yes: a hospital nobody has named before (state["name"], "" if none)
# and/or voice-memo fields heard unsure (Note.fields["unsure"], see handlers.notes.unsure); state["note_id"]
CONFIRM_ACCOUNT = "confirm_account"
UNFILED = "unfiled"  # a message with no customer and no action, not stored: state["text"], state["source"]


async def load_pending(session: AsyncSession, person_id: int, now: datetime) -> dict[str, Any] | None:
    """The open question for this person, or None if there is none or it has expired."""
    row = await session.get(DialogState, person_id, populate_existing=True)
    if row is None:
        return None
    if row.expires_at <= now or not row.state:
        await session.delete(row)
        await session.flush()
        return None
    return dict(row.state)


async def set_pending(
    session: AsyncSession, person_id: int, state: dict[str, Any], *, now: datetime, window_minutes: int
) -> None:
    row = await session.get(DialogState, person_id)
    expires = now + timedelta(minutes=window_minutes)
    if row is None:
        session.add(DialogState(person_id=person_id, state=dict(state), expires_at=expires, updated_at=now))
    else:
        row.state = dict(state)
        row.expires_at = expires
        row.updated_at = now
    await session.flush()


async def clear_pending(session: AsyncSession, person_id: int) -> None:
    row = await session.get(DialogState, person_id)
    if row is not None:
        await session.delete(row)
        await session.flush()
