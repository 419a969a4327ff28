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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from handlers.common.memo import memo
from storage.models import DialogState, Escalation, Note, Person

_KEY = "waiting"

# Anchored on the people asked about (one, or a batch's senders: :func:`prefetch_waiting`), so the
# escalation flag comes back when no dialog row does. ``note_id`` in a dialog state is always a Note.id.
_THEM = select(Person.id.label("person_id")).where(Person.id.in_(bindparam("ids", expanding=True))).subquery("them")
_WAITING = (
    select(
        _THEM.c.person_id,
        DialogState,
        Note,
        exists()
        .where(Escalation.awaiting_person_id == _THEM.c.person_id, Escalation.awaiting_until > bindparam("now"),
               Escalation.closed_at.is_(None))
        .label("escalation"),
    )
    .select_from(_THEM)
    .outerjoin(DialogState, DialogState.person_id == _THEM.c.person_id)
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
    row = (await session.execute(_WAITING, {"ids": [person_id], "now": now})).one_or_none()
    # (no row: the person left the org since the sender was cached, so nothing waits for them)
    if known is not None:  # only the flag was out of date: the dialog row we hold is newer than any read
        known.escalation, known.at = row is not None and bool(row.escalation), now
        return known
    waiting = _waiting(row, now) if row is not None else Waiting(question=None, note=None, escalation=False, at=now)
    entries[person_id] = waiting
    return waiting


def _waiting(row: Any, now: datetime) -> Waiting:
    """A person's :class:`Waiting` from their row of :data:`_WAITING`."""
    return Waiting(question=row.DialogState, note=row.Note, escalation=bool(row.escalation), at=now)


async def prefetch_waiting(_app: AppContext, session: AsyncSession, person_ids: Sequence[int], now: datetime) -> None:
    """:func:`waiting_for` of several people in one statement (a batch's senders, see :data:`bot.pipeline.dispatcher.Prefetcher`)."""
    entries = _entries(session)
    wanted = [pid for pid in dict.fromkeys(person_ids) if pid not in entries]
    if not wanted:
        return
    for row in (await session.execute(_WAITING, {"ids": wanted, "now": now})).all():
        entries[row.person_id] = _waiting(row, now)


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
