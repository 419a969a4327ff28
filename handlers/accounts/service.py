"""Hospitals (accounts) and the people there (contacts): finding, creating and remembering aliases.

Alias-aware throughout: "市一院" and "市第一人民医院" are one account, and a new way a
rep writes a hospital is remembered as an alias. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import audit
from storage.db import insert_unique
from storage.lookups import Lookups, attach
from storage.models import Account, Contact, Note, Opportunity
from storage.scope import Scope

OPEN = "open"


async def find_account(
    session: AsyncSession, written: str, canonical: Callable[[str], str], lookups: Lookups | None = None
) -> Account | None:
    """The account a rep means by ``written``: canonical name first, then stored aliases.

    With ``lookups`` (the app's per-process cache) a name resolved before costs no query;
    a miss reads the database and the answer is cached once this transaction commits.
    """
    written = written.strip()
    if not written:
        return None
    if lookups is not None:
        cached = lookups.account(written)
        if cached is not None:
            return attach(session, Account, cached)
    found = await _find_account(session, written, canonical)
    if found is not None and lookups is not None:
        lookups.remember_account(session, written, found)
    return found


async def get_account(session: AsyncSession, account_id: int, lookups: Lookups | None = None) -> Account | None:
    """Account ``account_id``, from the per-process cache when it holds it (same staleness bound as :func:`find_account`)."""
    if lookups is not None:
        cached = lookups.account_by_id(account_id)
        if cached is not None:
            return attach(session, Account, cached)
    found = await session.get(Account, account_id)
    if found is not None and lookups is not None:
        lookups.remember_account(session, None, found)
    return found


async def _find_account(session: AsyncSession, written: str, canonical: Callable[[str], str]) -> Account | None:
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
    lookups: Lookups | None = None,
) -> tuple[Account, bool]:
    """Find or create the account; remember a new way of writing it as an alias."""
    written = written.strip()
    account = await find_account(session, written, canonical, lookups)
    if account is None:
        canon = canonical(written)
        new = Account(name=canon[:128], aliases=[written] if written != canon else [], created_at=now)
        account, created = await insert_unique(session, new, lambda: find_account(session, written, canonical))
        if not created:
            return account, False
        await audit(session, actor_id=actor_id, entity="account", entity_id=account.id, field_name="created",
                    old=None, new=account.name, note_id=None, now=now)
        return account, True
    await learn_alias(session, account, written, actor_id=actor_id, now=now)
    return account, False


async def learn_alias(session: AsyncSession, account: Account, written: str, *, actor_id: int | None, now: datetime) -> None:
    """Remember ``written`` as a way of writing ``account`` if it is a new one.

    The account is re-read before it changes: it may come from the per-process cache, and
    appending to an old copy of the list would drop an alias another node added.
    """
    written = written.strip()
    if written == account.name or written in (account.aliases or []):
        return
    if not session.is_modified(account):  # unflushed changes of this transaction are newer than any re-read
        await session.refresh(account)
    if written == account.name or written in (account.aliases or []):
        return
    old = list(account.aliases or [])
    account.aliases = [*old, written]
    await audit(session, actor_id=actor_id, entity="account", entity_id=account.id, field_name="aliases",
                old=",".join(old), new=",".join(account.aliases), note_id=None, now=now)

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

_UNREAD: Any = object()


async def resolve_contact(
    session: AsyncSession, account_id: int | None, name: str, department: str, *, now: datetime,
    found: Contact | None = _UNREAD,
) -> Contact:
    """The contact ``name`` at the account (created if new); ``found``: the caller already looked it up."""

    async def look() -> Contact | None:
        stmt = select(Contact).where(Contact.name == name[:64])
        stmt = stmt.where(Contact.account_id == account_id) if account_id is not None else stmt.where(Contact.account_id.is_(None))
        return await session.scalar(stmt.order_by(Contact.id).limit(1))

    contact = await look() if found is _UNREAD else found
    if contact is None:
        new = Contact(account_id=account_id, name=name[:64], department=department[:64], created_at=now)
        contact, _ = await insert_unique(session, new, look)
    elif department and not contact.department:
        contact.department = department[:64]
    return contact

async def account_notes(session: AsyncSession, account_id: int, *, scope: Scope, limit: int = 3) -> list[Note]:
    """The latest notes on an account that ``scope`` may read (storage-level: others are never loaded)."""
    stmt = select(Note).where(Note.account_id == account_id, Note.deleted_at.is_(None), scope.notes())
    return list((await session.scalars(stmt.order_by(Note.id.desc()).limit(limit))).all())

async def account_opportunities(session: AsyncSession, account_id: int, *, scope: Scope) -> list[Opportunity]:
    stmt = select(Opportunity).where(Opportunity.account_id == account_id, scope.opportunities())
    return list((await session.scalars(stmt.order_by(Opportunity.status != OPEN, Opportunity.id.desc()))).all())
