"""Follow-up notes in the database: accounts, contacts, opportunities, tasks and their audit trail.

Why a separate module: the chat handlers decide *what* a rep meant; this module decides
*how* that lands in the tables, so the same rules (a stage only moves forward unless
corrected, every changed field is audited, one open opportunity per rep and hospital)
hold for every entry point. Nothing here commits: callers pass the open transaction,
so a note, its task, its audit rows and the bot's reply commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Account, AuditLog, Contact, Note, Opportunity, Person, Task

STAGE_ORDER: tuple[str, ...] = (
    "first_contact",
    "needs",
    "demo",
    "trial",
    "tender",
    "negotiation",
    "contract",
    "delivery",
    "payment",
    "lost",
)

OPEN = "open"
DONE = "done"
CANCELLED = "cancelled"


@dataclass
class NoteDraft:
    """What one rep message says, independent of the extractor's classes.

    ``action_text``/``due``/``due_at``/``past`` describe the next action (if any);
    ``missing`` lists the required fields the extractor found absent; ``extracted`` is the
    extractor's own dump, stored verbatim in ``Note.fields`` for later analysis.
    """

    text: str
    source: str = "text"
    transcript: str = ""
    stage: str | None = None
    concerns: list[str] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    account: str | None = None
    departments: list[str] = field(default_factory=list)
    amount: int | None = None
    competitors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    action_text: str | None = None
    due: date | None = None
    due_at: datetime | None = None
    past: bool = False
    missing: list[str] = field(default_factory=list)
    extracted: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorded:
    """The outcome of storing a note: the rows touched and what still needs the rep."""

    note: Note
    account: Account | None
    contact: Contact | None
    opportunity: Opportunity | None
    task: Task | None
    stage_changed: bool = False
    stage_kept: str | None = None  # the opportunity's later stage when the note's signal was older
    past_due: date | None = None


@dataclass(frozen=True)
class ReminderPolicy:
    """When a task's reminder fires: at the given time, else ``hour`` o'clock local on the due day."""

    tz: tzinfo
    hour: int


# ---- small helpers ----------------------------------------------------------------------


def _s(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def stage_index(stage: str | None) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else -1


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
            old=_s(old),
            new=_s(new),
            note_id=note_id,
            at=now,
        )
    )


def reminder_time(due: date | None, due_at: datetime | None, policy: ReminderPolicy, now: datetime) -> datetime | None:
    """When to remind: the stated time, else ``policy.hour`` local on the due day.

    A reminder is never scheduled in the past: for a task due later today whose default
    hour has gone by, it fires two hours from now if that is still the same local day,
    otherwise there is no reminder (the rep has just written it down; it is on their mind).
    """
    if due is None:
        return None
    if due_at is not None:
        at = due_at if due_at.tzinfo is not None else due_at.replace(tzinfo=policy.tz)
        at = at.astimezone(timezone.utc)
        return at if at > now else None
    at = datetime.combine(due, time(policy.hour), tzinfo=policy.tz).astimezone(timezone.utc)
    if at > now:
        return at
    local_now = now.astimezone(policy.tz)
    if due == local_now.date():
        later = now + timedelta(hours=2)
        if later.astimezone(policy.tz).date() == due:
            return later
    return None


# ---- accounts, contacts, opportunities ----------------------------------------------------


async def _insert_unique(session: AsyncSession, row: Any, refind: Callable[[], Any]) -> tuple[Any, bool]:
    """Insert ``row``, or return the one a concurrent transaction inserted first.

    Two workers on PostgreSQL can both miss a hospital and both create it; the unique
    constraint rejects the second, and a savepoint keeps our transaction usable.
    """
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
        return row, True
    except IntegrityError:
        existing = await refind()
        if existing is None:
            raise
        return existing, False


async def find_account(session: AsyncSession, written: str, canonical: Callable[[str], str]) -> Account | None:
    """The account a rep means by ``written``: canonical name first, then stored aliases."""
    written = written.strip()
    if not written:
        return None
    canon = canonical(written)
    names = {canon, written}
    found = await session.scalar(select(Account).where(Account.name.in_(names)).order_by(Account.id).limit(1))
    if found is not None:
        return found
    # Aliases learned from reps live in a JSON list; a portable JSON "contains" does not
    # exist across SQLite and PostgreSQL, so scan (accounts number in the thousands at most).
    for account in (await session.scalars(select(Account).order_by(Account.id))).all():
        aliases = set(account.aliases or [])
        if names & aliases:
            return account
    return None


async def search_accounts(session: AsyncSession, query: str, limit: int = 10) -> list[Account]:
    """Accounts whose name or an alias contains ``query`` ("华山" → 复旦大学附属华山医院)."""
    query = query.strip()
    if not query:
        return []
    found: list[Account] = []
    for account in (await session.scalars(select(Account).order_by(Account.id))).all():
        if query in account.name or any(query in alias for alias in (account.aliases or [])):
            found.append(account)
            if len(found) >= limit:
                break
    return found


async def resolve_account(
    session: AsyncSession,
    written: str,
    canonical: Callable[[str], str],
    *,
    actor_id: int | None,
    now: datetime,
) -> tuple[Account, bool]:
    """Find or create the account; remember a new way of writing it as an alias."""
    written = written.strip()
    account = await find_account(session, written, canonical)
    if account is None:
        canon = canonical(written)
        new = Account(name=canon[:128], aliases=[written] if written != canon else [], created_at=now)
        account, created = await _insert_unique(session, new, lambda: find_account(session, written, canonical))
        if not created:
            return account, False
        await audit(session, actor_id=actor_id, entity="account", entity_id=account.id, field_name="created",
                    old=None, new=account.name, note_id=None, now=now)
        return account, True
    if written != account.name and written not in (account.aliases or []):
        old = list(account.aliases or [])
        account.aliases = [*old, written]
        await audit(session, actor_id=actor_id, entity="account", entity_id=account.id, field_name="aliases",
                    old=",".join(old), new=",".join(account.aliases), note_id=None, now=now)
    return account, False


async def account_from_contacts(session: AsyncSession, author_id: int, names: Sequence[str]) -> Account | None:
    """Guess the hospital from a contact the rep has written about before, if that is unambiguous."""
    if not names:
        return None
    rows = (
        await session.execute(
            select(Contact.account_id)
            .join(Note, Note.contact_id == Contact.id)
            .where(
                Contact.name.in_(list(names)),
                Contact.account_id.is_not(None),
                Note.author_id == author_id,
                Note.deleted_at.is_(None),
            )
            .distinct()
        )
    ).all()
    ids = {r[0] for r in rows}
    if len(ids) != 1:
        return None
    return await session.get(Account, ids.pop())


async def resolve_contact(
    session: AsyncSession, account_id: int | None, name: str, department: str, *, now: datetime
) -> Contact:
    stmt = select(Contact).where(Contact.name == name[:64])
    stmt = stmt.where(Contact.account_id == account_id) if account_id is not None else stmt.where(Contact.account_id.is_(None))
    contact = await session.scalar(stmt.order_by(Contact.id).limit(1))
    if contact is None:
        new = Contact(account_id=account_id, name=name[:64], department=department[:64], created_at=now)
        contact, _ = await _insert_unique(session, new, lambda: session.scalar(stmt.order_by(Contact.id).limit(1)))
    elif department and not contact.department:
        contact.department = department[:64]
    return contact


async def open_opportunity(
    session: AsyncSession, owner_id: int, account_id: int, *, actor_id: int | None, note_id: int | None, now: datetime
) -> Opportunity:
    """The rep's open opportunity at this hospital, created on first mention."""
    opp = await session.scalar(
        select(Opportunity)
        .where(Opportunity.owner_id == owner_id, Opportunity.account_id == account_id, Opportunity.status == OPEN)
        .order_by(Opportunity.id.desc())
        .limit(1)
    )
    if opp is None:
        opp = Opportunity(
            account_id=account_id, owner_id=owner_id, stage=None, status=OPEN,
            stage_changed_at=now, last_activity_at=now, created_at=now,
        )
        session.add(opp)
        await session.flush()
        await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name="created",
                    old=None, new=str(account_id), note_id=note_id, now=now)
    return opp


async def set_stage(
    session: AsyncSession,
    opp: Opportunity,
    stage: str,
    *,
    actor_id: int | None,
    note_id: int | None,
    now: datetime,
    explicit: bool = False,
) -> bool:
    """Move the opportunity's stage; returns whether it changed.

    A note only moves a deal forward (a rep mentioning the earlier demo must not undo the
    tender); ``lost`` always applies and closes the opportunity; an explicit correction
    ("阶段改成商务谈判") may move it anywhere, including reopening a lost deal.
    """
    if stage not in STAGE_ORDER or stage == opp.stage:
        return False
    forward = stage_index(stage) > stage_index(opp.stage)
    if not (explicit or forward or stage == "lost"):
        return False
    if opp.stage == "lost" and not explicit:
        return False
    await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp.id, field_name="stage",
                old=opp.stage, new=stage, note_id=note_id, now=now)
    opp.stage = stage
    opp.stage_changed_at = now
    status = "lost" if stage == "lost" else OPEN
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
    session: AsyncSession, opp: Opportunity, draft: NoteDraft, *, actor_id: int, note_id: int, now: datetime
) -> tuple[bool, str | None]:
    """Stage and amount from a note; returns (stage changed, the later stage that was kept)."""
    changed = False
    kept: str | None = None
    if draft.stage:
        changed = await set_stage(session, opp, draft.stage, actor_id=actor_id, note_id=note_id, now=now)
        if not changed and opp.stage and opp.stage != draft.stage:
            kept = opp.stage
    if draft.amount:
        await set_amount(session, opp, draft.amount, actor_id=actor_id, note_id=note_id, now=now)
    opp.last_activity_at = now
    return changed, kept


# ---- tasks ---------------------------------------------------------------------------------


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


async def task_for_note(session: AsyncSession, note_id: int) -> Task | None:
    return await session.scalar(
        select(Task).where(Task.note_id == note_id).order_by(Task.id.desc()).limit(1)
    )


async def latest_reminded_task(session: AsyncSession, owner_id: int) -> Task | None:
    return await session.scalar(
        select(Task)
        .where(Task.owner_id == owner_id, Task.status == OPEN, Task.reminded_at.is_not(None))
        .order_by(Task.reminded_at.desc(), Task.id.desc())
        .limit(1)
    )


# ---- notes ---------------------------------------------------------------------------------


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
    canonical: Callable[[str], str],
    policy: ReminderPolicy,
    now: datetime,
) -> Recorded:
    """Store one note and everything it implies, in the caller's transaction."""
    account: Account | None = None
    inferred = False
    if draft.account:
        account, _ = await resolve_account(session, draft.account, canonical, actor_id=person.id, now=now)
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
        changed, kept = await apply_to_opportunity(session, opp, draft, actor_id=person.id, note_id=note.id, now=now)

    task: Task | None = None
    past_due: date | None = None
    if draft.action_text:
        in_past = draft.due is not None and (draft.past or draft.due < now.astimezone(policy.tz).date())
        if in_past:
            past_due = draft.due
        task = await create_task(
            session, owner_id=person.id, note=note, opportunity_id=opp.id if opp else None,
            text=draft.action_text, due=draft.due, due_at=draft.due_at, remind=not in_past,
            policy=policy, now=now,
        )
    return Recorded(note, account, contact, opp, task, changed, kept, past_due)


async def attach_account(
    session: AsyncSession,
    note: Note,
    written: str,
    *,
    actor_id: int,
    canonical: Callable[[str], str],
    now: datetime,
) -> tuple[Account, Opportunity]:
    """The rep named (or corrected) the hospital: relink the note, its contact and task, apply the note.

    When the note had been filed under another hospital, what it changed there is reverted
    and an opportunity it alone created is removed, so a typo leaves no phantom deal.
    """
    account, _ = await resolve_account(session, written, canonical, actor_id=actor_id, now=now)
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
    draft = NoteDraft(text=note.raw_text, stage=fields.get("stage"), amount=fields.get("amount"))
    await apply_to_opportunity(session, opp, draft, actor_id=actor_id, note_id=note.id, now=now)
    await session.execute(update(Task).where(Task.note_id == note.id).values(opportunity_id=opp.id))
    if old_opp_id is not None and old_opp_id != opp.id:
        await revert_opportunity_changes(session, note, actor_id=actor_id, now=now, opportunity_id=old_opp_id)
        await _drop_if_orphan(session, old_opp_id, note, actor_id=actor_id, now=now)
    return account, opp


async def _drop_if_orphan(session: AsyncSession, opp_id: int, note: Note, *, actor_id: int, now: datetime) -> None:
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


def update_fields(note: Note, **changes: Any) -> None:
    """JSON columns only notice reassignment, so copy, change, reassign."""
    fields = dict(note.fields or {})
    fields.update(changes)
    note.fields = fields


_REVERTIBLE = {"stage", "amount", "status"}


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
        if _s(current) != row.new:
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


async def account_notes(
    session: AsyncSession, account_id: int, *, author_id: int | None, limit: int = 3
) -> list[Note]:
    stmt = select(Note).where(Note.account_id == account_id, Note.deleted_at.is_(None))
    if author_id is not None:
        stmt = stmt.where(Note.author_id == author_id)
    return list((await session.scalars(stmt.order_by(Note.id.desc()).limit(limit))).all())


async def account_opportunities(session: AsyncSession, account_id: int, *, owner_id: int | None) -> list[Opportunity]:
    stmt = select(Opportunity).where(Opportunity.account_id == account_id)
    if owner_id is not None:
        stmt = stmt.where(Opportunity.owner_id == owner_id)
    return list((await session.scalars(stmt.order_by(Opportunity.status != OPEN, Opportunity.id.desc()))).all())


async def count_notes(session: AsyncSession, author_id: int) -> int:
    return int(await session.scalar(select(func.count(Note.id)).where(Note.author_id == author_id)) or 0)
