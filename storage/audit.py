"""The audit trail: one row per changed field, written in the caller's transaction.

Every feature records its changes here, so a manager can see who changed what and when,
and undo can revert exactly what one note changed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


def stored_value(value: object) -> str | None:
    """How a field's value is written in the trail (dates as ISO text)."""
    if value is None:
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


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
    """One row per changed field, so a manager can see who changed what and undo can revert it."""
    session.add(
        AuditLog(
            actor_id=actor_id,
            entity=entity,
            entity_id=entity_id,
            field=field_name,
            old=stored_value(old),
            new=stored_value(new),
            note_id=note_id,
            at=now,
        )
    )
