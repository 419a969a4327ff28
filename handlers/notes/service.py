"""Recording a note and everything it implies; relinking, correcting and undoing it.

Why a service apart from the chat handlers: the handlers decide *what* a rep meant; this
module decides *how* that lands in the tables (through the accounts, opportunities and
tasks services), so the same rules hold for every entry point. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.accounts.service import (
    account_from_contacts,
    resolve_account,
    resolve_contact,
)
from handlers.notes.models import NoteDraft, Recorded
from handlers.opportunities.service import (
    apply_to_opportunity,
    drop_if_orphan,
    open_opportunity,
    revert_opportunity_changes,
)
from handlers.tasks.service import (
    CANCELLED,
    OPEN,
    ReminderPolicy,
    create_task,
    policy,
    set_task_status,
)
from storage.audit import audit
from storage.models import Account, Contact, Note, Opportunity, Person, Task

if TYPE_CHECKING:
    from bot.context import AppContext
    from handlers.escalations.hooks import DealHooks


@dataclass(frozen=True)
class NoteRules:
    """What recording a note depends on beyond the message: hospital names, stage order, reminder times."""

    canonical: Callable[[str], str]
    stages: Sequence[str]
    policy: ReminderPolicy
    deals: DealHooks | None = None  # escalations: a note is a counting activity on its deal


def note_rules(app: AppContext) -> NoteRules:
    """The rules as configured for this app: the lexicon's hospital names and stage order, the reminder policy."""
    from handlers.escalations.hooks import deal_hooks

    lexicon = app.services.lexicon
    return NoteRules(canonical=lexicon.canonical_account, stages=lexicon.stage_order, policy=policy(app),
                     deals=deal_hooks(app))


async def last_note(session: AsyncSession, author_id: int) -> Note | None:
    return await session.scalar(
        select(Note)
        .where(Note.author_id == author_id, Note.deleted_at.is_(None))
        .order_by(Note.id.desc())
        .limit(1)
    )

async def note_for_inbox(session: AsyncSession, inbox_id: int) -> Note | None:
    return await session.scalar(select(Note).where(Note.inbox_id == inbox_id))

async def record_note(
    session: AsyncSession,
    person: Person,
    draft: NoteDraft,
    *,
    inbox_id: int | None,
    rules: NoteRules,
    now: datetime,
) -> Recorded:
    """Store one note and everything it implies, in the caller's transaction."""
    account: Account | None = None
    inferred = False
    if draft.account:
        account, _ = await resolve_account(session, draft.account, rules.canonical, actor_id=person.id, now=now)
    else:
        account = await account_from_contacts(session, person.id, draft.contacts)
        inferred = account is not None

    contact: Contact | None = None
    if draft.contacts:
        department = draft.departments[0] if draft.departments else ""
        contact = await resolve_contact(session, account.id if account else None, draft.contacts[0], department, now=now)
        for other in draft.contacts[1:]:
            await resolve_contact(session, account.id if account else None, other, "", now=now)

    fields = dict(draft.extracted)
    fields.setdefault("stage", draft.stage)
    fields["asked"] = []
    if inferred and account is not None:
        fields["account_inferred"] = account.name
    note = Note(
        inbox_id=inbox_id,
        author_id=person.id,
        account_id=account.id if account else None,
        contact_id=contact.id if contact else None,
        source=draft.source,
        raw_text=draft.text,
        transcript=draft.transcript,
        fields=fields,
        created_at=now,
    )
    session.add(note)
    await session.flush()
    await audit(session, actor_id=person.id, entity="note", entity_id=note.id, field_name="created",
                old=None, new=draft.source, note_id=note.id, now=now)

    opp: Opportunity | None = None
    changed, kept = False, None
    if account is not None:
        opp = await open_opportunity(session, person.id, account.id, actor_id=person.id, note_id=note.id, now=now)
        note.opportunity_id = opp.id
        changed, kept = await apply_to_opportunity(session, opp, stage=draft.stage, amount=draft.amount, stages=rules.stages,
                                                   actor_id=person.id, note_id=note.id, now=now)
        if rules.deals is not None:
            await rules.deals.activity(session, opp, note, now)

    task: Task | None = None
    past_due: date | None = None
    if draft.action_text:
        in_past = draft.due is not None and (draft.past or draft.due < now.astimezone(rules.policy.tz).date())
        if in_past:
            past_due = draft.due
        task = await create_task(
            session, owner_id=person.id, note=note, opportunity_id=opp.id if opp else None,
            text=draft.action_text, due=draft.due, due_at=draft.due_at, remind=not in_past,
            policy=rules.policy, now=now,
        )
    return Recorded(note, account, contact, opp, task, changed, kept, past_due)

async def attach_account(
    session: AsyncSession,
    note: Note,
    written: str,
    *,
    actor_id: int,
    rules: NoteRules,
    now: datetime,
) -> tuple[Account, Opportunity]:
    """The rep named (or corrected) the hospital: relink the note, its contact and task, apply the note.

    When the note had been filed under another hospital, what it changed there is reverted
    and an opportunity it alone created is removed, so a typo leaves no phantom deal.
    """
    account, _ = await resolve_account(session, written, rules.canonical, actor_id=actor_id, now=now)
    old_opp_id = note.opportunity_id
    if note.account_id == account.id and old_opp_id is not None:
        opp = await session.get(Opportunity, old_opp_id)
        if opp is not None:
            return account, opp
    await audit(session, actor_id=actor_id, entity="note", entity_id=note.id, field_name="account_id",
                old=note.account_id, new=account.id, note_id=note.id, now=now)
    note.account_id = account.id
    if note.contact_id is not None:
        contact = await session.get(Contact, note.contact_id)
        if contact is not None and contact.account_id != account.id:
            clash = await session.scalar(
                select(Contact).where(Contact.account_id == account.id, Contact.name == contact.name)
            )
            if clash is not None:
                note.contact_id = clash.id
            elif contact.account_id is None:
                contact.account_id = account.id
            else:
                moved = await resolve_contact(session, account.id, contact.name, contact.department, now=now)
                note.contact_id = moved.id
    opp = await open_opportunity(session, note.author_id, account.id, actor_id=actor_id, note_id=note.id, now=now)
    note.opportunity_id = opp.id
    fields = note.fields or {}
    await apply_to_opportunity(session, opp, stage=fields.get("stage"), amount=fields.get("amount"), stages=rules.stages,
                               actor_id=actor_id, note_id=note.id, now=now)
    await session.execute(update(Task).where(Task.note_id == note.id).values(opportunity_id=opp.id))
    if rules.deals is not None:
        if old_opp_id is None:  # the note's hospital was missing: filing it now is the note's activity
            await rules.deals.activity(session, opp, note, now)
        else:  # a correction moves the note, it is no new activity
            await rules.deals.changed(session, opp, now, actor_id)
    if old_opp_id is not None and old_opp_id != opp.id:
        await revert_opportunity_changes(session, note, actor_id=actor_id, now=now, opportunity_id=old_opp_id)
        await drop_if_orphan(session, old_opp_id, note, actor_id=actor_id, now=now)
        old_opp = await session.get(Opportunity, old_opp_id)
        if rules.deals is not None and old_opp is not None:
            await rules.deals.changed(session, old_opp, now, actor_id)
    return account, opp

def update_fields(note: Note, **changes: Any) -> None:
    """JSON columns only notice reassignment, so copy, change, reassign."""
    fields = dict(note.fields or {})
    fields.update(changes)
    note.fields = fields

async def undo_note(session: AsyncSession, note: Note, *, actor_id: int, now: datetime) -> list[str]:
    """Soft-delete a note, cancel its tasks and revert what it changed on the opportunity.

    A field is reverted only if it still holds the value this note set, so undoing an old
    note never clobbers what a later note changed. Returns the reverted field names.
    """
    await audit(session, actor_id=actor_id, entity="note", entity_id=note.id, field_name="deleted_at",
                old=None, new=now, note_id=note.id, now=now)
    note.deleted_at = now
    for task in (await session.scalars(select(Task).where(Task.note_id == note.id, Task.status == OPEN))).all():
        await set_task_status(session, task, CANCELLED, actor_id=actor_id, now=now)
    return await revert_opportunity_changes(session, note, actor_id=actor_id, now=now)

async def count_notes(session: AsyncSession, author_id: int) -> int:
    return int(await session.scalar(select(func.count(Note.id)).where(Note.author_id == author_id)) or 0)
