"""What the bot is waiting for from a rep, persisted in ``dialog_state``.

Why in the database: the answer may arrive on another node, after a restart, or after a
redelivery; an in-memory dict would forget the question and the rep's "周四" would turn
into a nonsense note. One row per person: a new question replaces the old one, so the bot
never has two questions open at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common.waiting import known_question, remember_question, waiting_for
from storage.models import DialogState

# state["kind"] values
MISSING = "missing"  # a required field of a note: state["field"], state["note_id"]
PAST_DUE = "past_due"  # confirm a date that already passed: state["note_id"], state["task_id"], state["due"]
# what a note holds back until the rep's yes: a hospital nobody has named before (state["name"], "" if none)
# and/or voice-memo fields heard unsure (Note.fields["unsure"], see handlers.notes.unsure); state["note_id"]
CONFIRM_ACCOUNT = "confirm_account"
UNFILED = "unfiled"  # a message with no customer and no action, not stored: state["text"], state["source"]


async def load_pending(session: AsyncSession, person_id: int, now: datetime) -> dict[str, Any] | None:
    """The open question for this person, or None if there is none or it has expired.

    Read once per transaction (with the note it names, see :mod:`handlers.common.waiting`);
    later calls and the writers below use that row instead of asking the database again.
    """
    row = (await waiting_for(session, person_id, now)).question
    if row is None:
        return None
    if row.expires_at <= now or not row.state:
        _drop(session, person_id, row)
        return None
    return dict(row.state)


async def set_pending(
    session: AsyncSession, person_id: int, state: dict[str, Any], *, now: datetime, window_minutes: int
) -> None:
    """Replace the person's question; written with the transaction's next flush.

    A row cleared earlier in the same transaction is taken over by the new one (SQLAlchemy
    turns the DELETE and INSERT of one key into an UPDATE), so asking again costs one write.
    """
    row = await _row(session, person_id)
    expires = now + timedelta(minutes=window_minutes)
    if row is None:
        row = DialogState(person_id=person_id, state=dict(state), expires_at=expires, updated_at=now)
        session.add(row)
    else:
        row.state = dict(state)
        row.expires_at = expires
        row.updated_at = now
    remember_question(session, person_id, row)


async def clear_pending(session: AsyncSession, person_id: int) -> None:
    row = await _row(session, person_id)
    if row is not None:
        _drop(session, person_id, row)


async def _row(session: AsyncSession, person_id: int) -> DialogState | None:
    """The person's row as this transaction knows it (read only if it was never looked at)."""
    known, row = known_question(session, person_id)
    if not known:
        row = await session.get(DialogState, person_id)
        remember_question(session, person_id, row)
    return row


def _drop(session: AsyncSession, person_id: int, row: DialogState) -> None:
    """Forget the row: deleted at the next flush (a row added in this transaction is simply taken back)."""
    if inspect(row).pending:
        session.expunge(row)
    else:
        session.sync_session.delete(row)
    remember_question(session, person_id, None)
