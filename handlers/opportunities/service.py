"""Opportunities: one open deal per rep and hospital, its stage and amount, and their rules.

Why here and not in the note handlers: leads, escalations and corrections move deals
too, and the same rules must hold for all of them — a stage only moves forward unless
corrected, ``lost`` closes the deal, every change is audited, and undo reverts only what
still holds the value it set. The stage order is the one in the lexicon's
``stages.toml`` (passed in), so a stage sales ops add there works everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import deferred
from storage.audit import audit, stored_value
from storage.models import AuditLog, Note, Opportunity, Task

OPEN = "open"
LOST = "lost"


def stage_index(stages: Sequence[str], stage: str | None) -> int:
    return stages.index(stage) if stage in stages else -1


async def open_opportunity(
    session: AsyncSession, owner_id: int, account_id: int, *, actor_id: int | None, note_id: int | None, now: datetime
) -> Opportunity:
    """The rep's open opportunity at this hospital, created on first mention."""
    opp = await find_open_opportunity(session, owner_id, account_id)
    if opp is None:
        opp = await create_opportunity(session, owner_id, account_id, actor_id=actor_id, note_id=note_id, now=now)
    return opp


OPEN_DEAL_LOOKUP = (  # built once: every note about a hospital asks it (binds owner_id, account_id)
    select(Opportunity)
    .where(Opportunity.owner_id == bindparam("owner_id"), Opportunity.account_id == bindparam("account_id"),
           Opportunity.status == OPEN)
    .order_by(Opportunity.id.desc())
    .limit(1)
)


async def find_open_opportunity(session: AsyncSession, owner_id: int, account_id: int) -> Opportunity | None:
    return await session.scalar(OPEN_DEAL_LOOKUP, {"owner_id": owner_id, "account_id": account_id})


async def create_opportunity(
    session: AsyncSession, owner_id: int, account_id: int, *, actor_id: int | None, note_id: int | None, now: datetime,
    audited: bool = True,
) -> Opportunity:
    """A new open opportunity, audited as created by ``note_id``.

    ``audited=False``: the caller audits it with :func:`audit_created` once the note that
    creates it has its id (a note inserted already linked to its new deal needs no UPDATE).
    """
    opp = Opportunity(
        account_id=account_id, owner_id=owner_id, stage=None, status=OPEN,
        stage_changed_at=now, last_activity_at=now, created_at=now,
    )
    session.add(opp)
    await session.flush()
    if audited:
        await audit_created(session, opp, actor_id=actor_id, note_id=note_id, now=now)
    return opp


async def audit_created(session: AsyncSession, opp: Opportunity, *, actor_id: int | None, note_id: int | None,
                        now: datetime) -> None:
    """The "created" audit row undo looks for (an opportunity only its note created goes with it)."""
    await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name="created",
                old=None, new=str(opp.account_id), note_id=note_id, now=now)

async def set_stage(
    session: AsyncSession,
    opp: Opportunity,
    stage: str,
    *,
    actor_id: int | None,
    note_id: int | None,
    now: datetime,
    stages: Sequence[str],
    explicit: bool = False,
) -> bool:
    """Move the opportunity's stage; returns whether it changed.

    A note only moves a deal forward (a rep mentioning the earlier demo must not undo the
    tender); ``lost`` always applies and closes the opportunity; an explicit correction
    ("阶段改成商务谈判") may move it anywhere, including reopening a lost deal.
    """
    if stage not in stages or stage == opp.stage:
        return False
    forward = stage_index(stages, stage) > stage_index(stages, opp.stage)
    if not (explicit or forward or stage == LOST):
        return False
    if opp.stage == LOST and not explicit:
        return False
    await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name="stage",
                old=opp.stage, new=stage, note_id=note_id, now=now)
    opp.stage = stage
    opp.stage_changed_at = now
    status = LOST if stage == LOST else OPEN
    if status != opp.status:
        await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name="status",
                    old=opp.status, new=status, note_id=note_id, now=now)
        opp.status = status
    return True

async def set_amount(
    session: AsyncSession, opp: Opportunity, amount: int, *, actor_id: int | None, note_id: int | None, now: datetime
) -> bool:
    if amount == opp.amount:
        return False
    await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name="amount",
                old=opp.amount, new=amount, note_id=note_id, now=now)
    opp.amount = amount
    return True

async def apply_to_opportunity(
    session: AsyncSession,
    opp: Opportunity,
    *,
    stage: str | None,
    amount: int | None,
    stages: Sequence[str],
    actor_id: int,
    note_id: int,
    now: datetime,
) -> tuple[bool, str | None]:
    """Stage and amount from a note (a counting activity); returns (stage changed, the later stage that was kept)."""
    changed = False
    kept: str | None = None
    if stage:
        changed = await set_stage(session, opp, stage, stages=stages, actor_id=actor_id, note_id=note_id, now=now)
        if not changed and opp.stage and opp.stage != stage:
            kept = opp.stage
    if amount:
        await set_amount(session, opp, amount, actor_id=actor_id, note_id=note_id, now=now)
    # Every note touches its deal: written at commit, a batch's touches in one statement. An
    # ORM read of deals in the transaction writes them first; a plain join in it (a report
    # run in the same batch) may see the time before this batch's notes.
    deferred.set_later(opp, {"last_activity_at": now}, table=_DEALS)
    return changed, kept


_DEALS = Opportunity.__table__

_REVERTIBLE = {"stage", "amount", "status"}

async def revert_opportunity_changes(
    session: AsyncSession, note: Note, *, actor_id: int, now: datetime, opportunity_id: int | None = None
) -> list[str]:
    """Put back the opportunity fields ``note`` changed, where they still hold its values."""
    reverted: list[str] = []
    stmt = (
        select(AuditLog)
        .where(AuditLog.note_id == note.id, AuditLog.entity == "opportunity", AuditLog.field.in_(_REVERTIBLE))
        .order_by(AuditLog.id.desc())
    )
    if opportunity_id is not None:
        stmt = stmt.where(AuditLog.entity_id == opportunity_id)
    seen: set[tuple[int, str]] = set()
    for row in (await session.scalars(stmt)).all():
        if (row.entity_id, row.field) in seen:
            continue  # only the note's latest change to a field counts
        seen.add((row.entity_id, row.field))
        opp = await session.get(Opportunity, row.entity_id)
        if opp is None:
            continue
        current = getattr(opp, row.field)
        if stored_value(current) != row.new:
            continue
        old: Any = row.old
        if row.field == "amount" and old is not None:
            old = int(old)
        if row.field == "status" and old is None:
            old = OPEN
        await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name=row.field,
                    old=current, new=old, note_id=note.id, now=now)
        setattr(opp, row.field, old)
        if row.field == "stage":
            opp.stage_changed_at = now
        reverted.append(row.field)
    return reverted

async def drop_if_orphan(session: AsyncSession, opp_id: int, note: Note, *, actor_id: int, now: datetime) -> None:
    """Delete an opportunity that only existed because of ``note`` (now filed elsewhere)."""
    await session.flush()
    created_here = await session.scalar(
        select(func.count(AuditLog.id)).where(
            AuditLog.entity == "opportunity", AuditLog.entity_id == opp_id,
            AuditLog.field == "created", AuditLog.note_id == note.id,
        )
    )
    others = await session.scalar(select(func.count(Note.id)).where(Note.opportunity_id == opp_id))
    tasks = await session.scalar(select(func.count(Task.id)).where(Task.opportunity_id == opp_id))
    if not created_here or others or tasks:
        return
    opp = await session.get(Opportunity, opp_id)
    if opp is None:
        return
    await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp_id, field_name="deleted",
                old=str(opp.account_id), new=None, note_id=note.id, now=now)
    await session.delete(opp)
    await session.flush()
