"""The audit trail: one row per changed field, written in the caller's transaction.

Every feature records its changes here, so a manager can see who changed what and when,
and undo can revert exactly what one note changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import deferred
from storage.models import AuditLog


def stored_value(value: object) -> str | None:
    """How a field's value is written in the trail (dates as ISO text)."""
    if value is None:
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def audit_row(
    *,
    actor_id: int | None,
    entity: str,
    entity_id: int,
    field_name: str,
    old: object,
    new: object,
    note_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The values of one audit row, for :func:`audit_many`."""
    return {"actor_id": actor_id, "entity": entity, "entity_id": entity_id, "field": field_name,
            "old": stored_value(old), "new": stored_value(new), "note_id": note_id, "at": now}


async def audit_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Several audit rows (see :func:`audit`)."""
    for row in rows:
        deferred.later(session, _INSERT, row, table=_TABLE)


_TABLE = AuditLog.__table__
_INSERT = insert(_TABLE)  # Core: no identity map, no ids fetched back (nobody reads an audit row's id)


async def audit(
    session: AsyncSession,
    *,
    actor_id: int | None,
    entity: str,
    entity_id: int,
    field_name: str,
    old: object,
    new: object,
    note_id: int | None,
    now: datetime,
) -> None:
    """One row per changed field, so a manager can see who changed what and undo can revert it.

    Written when the transaction commits, with every other audit row of it in one statement
    (:mod:`storage.deferred`; an audit query in the same transaction writes them first).
    """
    await audit_many(session, [audit_row(actor_id=actor_id, entity=entity, entity_id=entity_id, field_name=field_name,
                                         old=old, new=new, note_id=note_id, now=now)])
