"""What the bot is waiting for from a rep, persisted in ``dialog_state``.

Why in the database: the answer may arrive on another node, after a restart, or after a
redelivery; an in-memory dict would forget the question and the rep's "周四" would turn
into a nonsense note. One row per person: a new question replaces the old one, so the bot
never has two questions open at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from handlers.common.waiting import known_question, remember_question, waiting_for
from storage import deferred
from storage.db import insert_for
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
        _drop(session, person_id)
        return None
    return dict(row.state)


async def set_pending(
    session: AsyncSession, person_id: int, state: dict[str, Any], *, now: datetime, window_minutes: int
) -> None:
    """Replace the person's question; written when the transaction commits.

    The row is written at commit (:mod:`storage.deferred`), one upsert for all the batch's
    questions; this transaction reads it from the memo (:mod:`handlers.common.waiting`), and
    a question cleared later in the same transaction turns the write into its DELETE.
    """
    row = DialogState(person_id=person_id, state=dict(state), expires_at=now + timedelta(minutes=window_minutes),
                      updated_at=now)  # never added to the session: the deferred upsert writes it
    remember_question(session, person_id, row)
    deferred.later(session, _upsert(session), {"person_id": person_id, "state": row.state, "expires_at": row.expires_at,
                                              "updated_at": now}, table=None, key=(_TABLE, person_id))


async def clear_pending(session: AsyncSession, person_id: int) -> None:
    row = await _row(session, person_id)
    if row is not None:
        _drop(session, person_id)


async def _row(session: AsyncSession, person_id: int) -> DialogState | None:
    """The person's row as this transaction knows it (read only if it was never looked at)."""
    known, row = known_question(session, person_id)
    if not known:
        row = await session.get(DialogState, person_id)
        remember_question(session, person_id, row)
    return row


def _drop(session: AsyncSession, person_id: int) -> None:
    """Forget the row: deleted when the transaction commits (replacing a write made earlier in it)."""
    deferred.later(session, _DELETE, {"pid": person_id}, table=None, key=(_TABLE, person_id))
    remember_question(session, person_id, None)


_TABLE = DialogState.__table__
_DELETE = delete(_TABLE).where(_TABLE.c.person_id == bindparam("pid"))


def _upsert_for(dialect: str) -> Executable:
    stmt = insert_for(dialect)(_TABLE)
    return stmt.on_conflict_do_update(index_elements=[_TABLE.c.person_id],
                                      set_={name: stmt.excluded[name] for name in ("state", "expires_at", "updated_at")})


_UPSERT = {dialect: _upsert_for(dialect) for dialect in ("sqlite", "postgresql")}


def _upsert(session: AsyncSession) -> Executable:
    return _UPSERT[session.get_bind().dialect.name]
