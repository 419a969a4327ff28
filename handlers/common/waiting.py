"""What the bot is waiting for from a person, read in one round trip per message.

Two features ask a person questions whose answer is an ordinary-looking message: the notes
dialog (a missing field, a confirmation; one ``dialog_state`` row per person) and the
escalations (a 跟进中/暂停 date; ``escalations.awaiting_person_id``). Each used to look for
its own question on every message, and the notes dialog also loaded the note the question
is about and looked for the row again before replacing or clearing it. This module reads
all three at once — the row, the note it names and whether an escalation awaits an answer —
and keeps them in the transaction's memo (:mod:`handlers.common.memo`):

* the dialog row changes only through :mod:`handlers.notes.dialog_state`, which keeps the
  memo current (:func:`remember_question`), so a second look costs nothing;
* an escalation's ``awaiting_*`` fields change only in the escalations feature, which calls
  :func:`escalations_changed`; the flag is then unknown and the escalations handler reads
  the table again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common.memo import memo
from storage.models import DialogState, Escalation, Note

_KEY = "waiting"

# Anchored on a one-row select of the person's id, so the escalation flag comes back even
# when no dialog row does. ``note_id`` in a dialog state is always a Note.id (an int).
_ME = select(bindparam("person_id", type_=BigInteger).label("person_id")).subquery("me")
_WAITING = (
    select(
        DialogState,
        Note,
        exists()
        .where(Escalation.awaiting_person_id == _ME.c.person_id, Escalation.awaiting_until > bindparam("now"),
               Escalation.closed_at.is_(None))
        .label("escalation"),
    )
    .select_from(_ME)
    .outerjoin(DialogState, DialogState.person_id == _ME.c.person_id)
    .outerjoin(Note, Note.id == DialogState.state["note_id"].as_integer())
    .execution_options(populate_existing=True)  # the dialog row as stored now, as load_pending always read it
)


@dataclass
class Waiting:
    """One person's open questions as this transaction knows them."""

    question: DialogState | None  # the notes dialog row (None: there is none)
    note: Note | None  # the note that row names, loaded with it (held here so session.get finds it)
    escalation: bool | None  # an escalation awaits this person's answer; None: changed here, look again
    at: datetime | None  # the moment ``escalation`` was read for (the handlers' ``now``)


def _entries(session: AsyncSession) -> dict[int, Waiting]:
    return memo(session).setdefault(_KEY, {})  # type: ignore[no-any-return]


async def waiting_for(session: AsyncSession, person_id: int, now: datetime) -> Waiting:
    """The person's dialog row, the note it is about and the escalation flag; one statement the first time."""
    entries = _entries(session)
    known = entries.get(person_id)
    if known is not None and (known.at == now or known.escalation is None):
        return known
    row = (await session.execute(_WAITING, {"person_id": person_id, "now": now})).one()
    if known is not None:  # only the flag was out of date: the dialog row we hold is newer than any read
        known.escalation, known.at = bool(row.escalation), now
        return known
    waiting = Waiting(question=row.DialogState, note=row.Note, escalation=bool(row.escalation), at=now)
    entries[person_id] = waiting
    return waiting


def known_question(session: AsyncSession, person_id: int) -> tuple[bool, DialogState | None]:
    """(whether this transaction knows the person's dialog row, the row or None)."""
    known = _entries(session).get(person_id)
    return (False, None) if known is None else (True, known.question)


def remember_question(session: AsyncSession, person_id: int, row: DialogState | None) -> None:
    """The dialog row was replaced or cleared in this transaction."""
    entries = _entries(session)
    known = entries.get(person_id)
    if known is None:
        entries[person_id] = Waiting(question=row, note=None, escalation=None, at=None)
    else:
        known.question = row


def escalations_changed(session: AsyncSession) -> None:
    """An escalation's awaiting question was set or cleared: every flag of this transaction is unknown now."""
    for known in _entries(session).values():
        known.escalation = None
