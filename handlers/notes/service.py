"""Recording a note and everything it implies; relinking, correcting and undoing it.

Why a service apart from the chat handlers: the handlers decide *what* a rep meant; this
module decides *how* that lands in the tables (through the accounts, opportunities and
tasks services), so the same rules hold for every entry point. Nothing here commits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, literal, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handlers.accounts.service import (
    account_from_contacts,
    find_account,
    learn_alias,
    resolve_account,
    resolve_contact,
)
from handlers.common.memo import memo
from handlers.notes.models import NoteDraft, Recorded
from handlers.opportunities.service import (
    OPEN_DEAL_LOOKUP,
    apply_to_opportunity,
    audit_created,
    create_opportunity,
    drop_if_orphan,
    find_open_opportunity,
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
from storage.lookups import Lookups
from storage.models import Account, AuditLog, Contact, Note, Opportunity, Person, Task

if TYPE_CHECKING:
    from bot.context import AppContext
    from handlers.escalations.hooks import DealHooks


@dataclass(frozen=True)
class NoteRules:
    """What recording a note depends on beyond the message: hospital names, stage order, reminder times.

    ``known`` says whether the lexicon knows a hospital name (an alias or a canonical name);
    ``shaped`` whether an unknown name at least looks like a hospital ("阳光医院", not "XX医院").
    """

    canonical: Callable[[str], str]
    stages: Sequence[str]
    policy: ReminderPolicy
    deals: DealHooks | None = None  # escalations: a note is a counting activity on its deal
    known: Callable[[str], bool] = lambda _name: True
    shaped: Callable[[str], bool] = lambda _name: True
    lookups: Lookups | None = None  # the app's per-process cache of hospitals by written name


@dataclass(frozen=True)
class PlannedTask:
    """The task a note is about to get (for :func:`record_note`'s ``before_insert``)."""

    exists: bool  # the note names a next action
    due: date | None
    past: bool  # its date has already gone by (the rep is asked to confirm it)


_NOTED = "notes.inbox_ids"  # memo: inbox rows this transaction made a note of
_EN_HOSPITAL_SUFFIX = re.compile(r"(?i)\s+(?:hospital|medical center|hosp\.?)$")
_PLACEHOLDER = re.compile(r"(?i)[xX×*＊?？某]|^(?:那|这|哪|那个|这个|一|一家|某个)$")
_SHORT_ANCHOR_OK = re.compile(r"[一二三四五六七八九十]{1,2}(?:附属?)?院$|附院$")


def canonical_hospital(lexicon: Any, written: str) -> str:
    """The lexicon's canonical name; "Zhongshan Hospital" is looked up as "Zhongshan" too."""
    name = written.strip()
    canon = lexicon.canonical_account(name)
    if canon == name:
        bare = _EN_HOSPITAL_SUFFIX.sub("", name)
        if bare != name:
            alt = lexicon.canonical_account(bare)
            if alt != bare:
                return alt
    return canon


def known_hospital(lexicon: Any, written: str) -> bool:
    name = written.strip()
    hosp = lexicon.hospitals
    return canonical_hospital(lexicon, name) != name or name in set(hosp.aliases.values())


def hospital_shaped(lexicon: Any, written: str) -> bool:
    """Has the shape of a hospital name: a real-looking name before a hospital ending."""
    name = written.strip()
    if not name or len(name) > 40:
        return False
    bare = _EN_HOSPITAL_SUFFIX.sub("", name)
    if bare != name:  # "Zhongshan Hospital": a capitalised word before "Hospital"
        return bool(re.fullmatch(r"(?:[A-Z][A-Za-z'.-]+\s?){1,4}", bare)) and not _PLACEHOLDER.search(bare)
    anchors = sorted(lexicon.hospitals.anchors, key=len, reverse=True)
    prefix = next((name[: -len(a)] for a in anchors if name.endswith(a)), None)
    if prefix is None:
        return bool(_SHORT_ANCHOR_OK.search(name)) and not _PLACEHOLDER.search(name) and len(name) >= 3
    if _PLACEHOLDER.search(prefix) or prefix in lexicon.hospitals.generic_prefixes:
        return False
    cjk = sum(1 for ch in prefix if "\u4e00" <= ch <= "\u9fff")
    return cjk >= 2 or (cjk == 0 and len(prefix) >= 2 and not prefix.isdigit())


def note_rules(app: AppContext) -> NoteRules:
    """The rules as configured for this app: the lexicon's hospital names and stage order, the reminder policy."""
    from handlers.escalations.hooks import deal_hooks

    lexicon = app.services.lexicon
    return NoteRules(
        canonical=lambda name: canonical_hospital(lexicon, name), stages=lexicon.stage_order, policy=policy(app),
        known=lambda name: known_hospital(lexicon, name), shaped=lambda name: hospital_shaped(lexicon, name),
        deals=deal_hooks(app), lookups=app.lookups,
    )


_LAST_NOTE = (  # built once: every hospital-less message asks it (is it a follow-up?)
    select(Note).where(Note.author_id == bindparam("author_id"), Note.deleted_at.is_(None)).order_by(Note.id.desc()).limit(1)
)


async def last_note(session: AsyncSession, author_id: int) -> Note | None:
    return await session.scalar(_LAST_NOTE, {"author_id": author_id})

async def recent_notes(session: AsyncSession, author_id: int, *, limit: int) -> list[Note]:
    return list((await session.scalars(
        select(Note).where(Note.author_id == author_id, Note.deleted_at.is_(None)).order_by(Note.id.desc()).limit(limit)
    )).all())


def noted(session: AsyncSession, inbox_id: int) -> bool:
    """Whether this transaction already made a note of inbox row ``inbox_id`` (a message redispatched within it).

    Only this transaction can have: the note commits together with the row's done mark, so
    a row whose note was committed is never processed again (and ``notes.inbox_id`` is
    unique besides). No query needed.
    """
    return inbox_id in memo(session).get(_NOTED, ())


# A contact at an account and the rep's open deal there, in one statement (record_note needs both).
_ONE = select(literal(1).label("one")).subquery("one")
_CONTACT = (select(Contact).where(Contact.account_id == bindparam("account_id"), Contact.name == bindparam("name"))
            .order_by(Contact.id).limit(1).subquery("contact"))
_DEAL = OPEN_DEAL_LOOKUP.subquery("deal")  # find_open_opportunity's own statement (same bind names)
_CONTACT_AND_DEAL = (select(aliased(Contact, _CONTACT), aliased(Opportunity, _DEAL))
                     .select_from(_ONE).outerjoin(_CONTACT, true()).outerjoin(_DEAL, true()))


async def _contact_and_deal(
    session: AsyncSession, account_id: int, name: str, owner_id: int
) -> tuple[Contact | None, Opportunity | None]:
    """What :func:`resolve_contact` and :func:`find_open_opportunity` would read, read together."""
    row = (await session.execute(_CONTACT_AND_DEAL, {"account_id": account_id, "name": name[:64], "owner_id": owner_id})).one()
    return row[0], row[1]


async def record_note(
    session: AsyncSession,
    person: Person,
    draft: NoteDraft,
    *,
    inbox_id: int | None,
    rules: NoteRules,
    now: datetime,
    before_insert: Callable[[Note, PlannedTask], None] | None = None,
) -> Recorded:
    """Store one note and everything it implies, in the caller's transaction.

    ``before_insert`` sees the note (with everything but its id) and the task it will get, just
    before the note is inserted: what it changes on the note is stored with the insert.
    """
    account: Account | None = None
    inferred = False
    pending: str | None = None  # an unknown hospital: stored on the note, an account only once the rep confirms
    rejected: str | None = None  # not a hospital name at all ("XX医院")
    unsure = "account" in draft.unsure  # heard unsure in a voice memo: pending like a new hospital, known or not
    if draft.account:
        account = await find_account(session, draft.account, rules.canonical, rules.lookups)
        real = account is not None or rules.known(draft.account)
        if real and not unsure:
            if account is not None:
                await learn_alias(session, account, draft.account, actor_id=person.id, now=now)
            else:
                account, _ = await resolve_account(
                    session, draft.account, rules.canonical, actor_id=person.id, now=now, lookups=rules.lookups
                )
        elif real or rules.shaped(draft.account):
            account = None
            pending = draft.account.strip()
        else:
            rejected = draft.account.strip()
    if account is None and pending is None and draft.contacts:
        account = await account_from_contacts(session, person.id, draft.contacts)
        inferred = account is not None

    contact: Contact | None = None
    existing: Opportunity | None = None  # the rep's deal there, looked up before the note is written (it is inserted linked)
    if draft.contacts:
        department = draft.departments[0] if draft.departments else ""
        if account is not None:  # the contact and the deal: one round trip
            found, existing = await _contact_and_deal(session, account.id, draft.contacts[0], person.id)
            contact = await resolve_contact(session, account.id, draft.contacts[0], department, now=now, found=found)
        else:
            contact = await resolve_contact(session, None, draft.contacts[0], department, now=now)
        for other in draft.contacts[1:]:
            await resolve_contact(session, account.id if account else None, other, "", now=now)
    elif account is not None:
        existing = await find_open_opportunity(session, person.id, account.id)

    created: Opportunity | None = None  # the rep's first note there: its deal, so the note is inserted linked to it
    if account is not None and existing is None:
        created = await create_opportunity(session, person.id, account.id, actor_id=person.id, note_id=None, now=now,
                                           audited=False)
    deal = existing or created

    fields = dict(draft.extracted)
    fields.setdefault("stage", draft.stage)
    fields["asked"] = []
    if inferred and account is not None:
        fields["account_inferred"] = account.name
    if pending:
        fields["account_pending"] = pending
    if draft.unsure:
        fields["unsure"] = dict(draft.unsure)  # held until the rep confirms (handlers.notes.unsure)
    if rejected:
        fields["account_rejected"] = rejected
        fields["missing"] = [*(fields.get("missing") or []), "account"]
    note = Note(
        inbox_id=inbox_id,
        author_id=person.id,
        account_id=account.id if account else None,
        contact_id=contact.id if contact else None,
        opportunity_id=deal.id if deal is not None else None,
        source=draft.source,
        raw_text=draft.text,
        transcript=draft.transcript,
        fields=fields,
        created_at=now,
    )
    in_past = draft.due is not None and (draft.past or draft.due < now.astimezone(rules.policy.tz).date())
    if before_insert is not None:
        before_insert(note, PlannedTask(bool(draft.action_text), draft.due, in_past))
    session.add(note)
    await session.flush()
    if inbox_id is not None:
        memo(session).setdefault(_NOTED, set()).add(inbox_id)

    opp = deal
    changed, kept = False, None
    if opp is not None:
        if created is not None:
            await audit_created(session, created, actor_id=person.id, note_id=note.id, now=now)
        changed, kept = await apply_to_opportunity(session, opp, stage=draft.stage, amount=draft.amount, stages=rules.stages,
                                                   actor_id=person.id, note_id=note.id, now=now)
        if rules.deals is not None:
            await rules.deals.activity(session, opp, note, now)

    task: Task | None = None
    past_due: date | None = None
    if draft.action_text and in_past:
        past_due = draft.due
    # (audit rows are written at commit, the transaction's together: storage.deferred)
    await audit(session, actor_id=person.id, entity="note", entity_id=note.id, field_name="created",
                old=None, new=draft.source, note_id=note.id, now=now)
    if draft.action_text:
        task = await create_task(
            session, owner_id=person.id, note=note, opportunity_id=opp.id if opp else None,
            text=draft.action_text, due=draft.due, due_at=draft.due_at, remind=not in_past,
            policy=rules.policy, now=now,
        )
    return Recorded(note, account, contact, opp, task, changed, kept, past_due, account_pending=pending)

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
    account, _ = await resolve_account(session, written, rules.canonical, actor_id=actor_id, now=now, lookups=rules.lookups)
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
    reverted = await revert_opportunity_changes(session, note, actor_id=actor_id, now=now)
    await _drop_what_only_it_created(session, note, actor_id=actor_id, now=now)
    return reverted


async def _drop_what_only_it_created(session: AsyncSession, note: Note, *, actor_id: int, now: datetime) -> None:
    """The opportunity, contact and hospital that exist only because of ``note`` go with it.

    Anything another note, task or opportunity refers to stays: undo never takes away
    what the rep wrote elsewhere. The note keeps its text (soft-deleted) but no links.
    """
    await session.flush()
    opp_id, account_id, contact_id = note.opportunity_id, note.account_id, note.contact_id
    if opp_id is not None:
        created_here = await session.scalar(
            select(func.count(AuditLog.id)).where(
                AuditLog.entity == "opportunity", AuditLog.entity_id == opp_id,
                AuditLog.field == "created", AuditLog.note_id == note.id,
            )
        )
        others = await session.scalar(select(func.count(Note.id)).where(Note.opportunity_id == opp_id, Note.id != note.id))
        foreign_tasks = await session.scalar(select(func.count(Task.id)).where(
            Task.opportunity_id == opp_id, (Task.note_id.is_(None)) | (Task.note_id != note.id)))
        if created_here and not others and not foreign_tasks:
            await session.execute(update(Task).where(Task.note_id == note.id).values(opportunity_id=None))
            note.opportunity_id = None
            opp = await session.get(Opportunity, opp_id)
            if opp is not None:
                await audit(session, actor_id=actor_id, entity="opportunity", entity_id=opp_id, field_name="deleted",
                            old=str(opp.account_id), new=None, note_id=note.id, now=now)
                await session.delete(opp)
            await session.flush()
    contacts = [contact_id] if contact_id is not None else []
    if account_id is not None:
        contacts += list((await session.scalars(select(Contact.id).where(Contact.account_id == account_id))).all())
    for cid in dict.fromkeys(contacts):
        contact = await session.get(Contact, cid)
        if contact is None or contact.created_at < note.created_at:
            continue
        used = await session.scalar(select(func.count(Note.id)).where(Note.contact_id == cid, Note.id != note.id))
        if used:
            continue
        if note.contact_id == cid:
            note.contact_id = None
        await audit(session, actor_id=actor_id, entity="contact", entity_id=cid, field_name="deleted",
                    old=contact.name, new=None, note_id=note.id, now=now)
        await session.delete(contact)
    await session.flush()
    if account_id is None:
        return
    account = await session.get(Account, account_id)
    if account is None or account.created_at < note.created_at:
        return
    notes = await session.scalar(select(func.count(Note.id)).where(Note.account_id == account_id, Note.id != note.id))
    opps = await session.scalar(select(func.count(Opportunity.id)).where(Opportunity.account_id == account_id))
    people = await session.scalar(select(func.count(Contact.id)).where(Contact.account_id == account_id))
    if notes or opps or people:
        return
    note.account_id = None
    await audit(session, actor_id=actor_id, entity="account", entity_id=account_id, field_name="deleted",
                old=account.name, new=None, note_id=note.id, now=now)
    await session.delete(account)
    await session.flush()

async def count_notes(session: AsyncSession, author_id: int) -> int:
    return int(await session.scalar(select(func.count(Note.id)).where(Note.author_id == author_id)) or 0)
