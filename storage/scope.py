"""Who may see what: one :class:`Scope` per asking person, turned into SQL filters.

Every surface (chat commands, cards and their callbacks, digests, dashboard pages, exports)
builds its queries through these filters, so a record outside the scope is never loaded —
not merely hidden when rendered. Rules:

* rep → their own records;
* manager → their team and sub-teams: people whose manager chain leads to them, and the
  members of teams whose ``manager_key`` is theirs (repeated, so a manager of managers
  sees the whole tree);
* director, sales_ops, admin → everything;
* finance → receivables (escalations of kind ``overdue_payment``) and the deals they belong to;
* anyone else (marketing, unknown roles) → their own records.

Receivables are installments of payment plans (``installments``/``payment_plans``); a row with
``kind = 'overdue_payment'`` and ``subject_type = 'opportunity'`` (``subject_id`` is the deal;
``detail`` carries ``amount`` and ``due_date``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Account,
    AuditLog,
    Escalation,
    Lead,
    LeadOffer,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
    Task,
    Team,
)

SEES_ALL = frozenset({"director", "sales_ops", "admin"})
RECEIVABLE = "overdue_payment"


@dataclass(frozen=True)
class Scope:
    person_id: int
    role: str
    people: frozenset[int] | None  # whose records; None = everyone's
    finance: bool = False

    @property
    def everything(self) -> bool:
        return self.people is None and not self.finance

    def sees_person(self, person_id: int | None) -> bool:
        if self.finance:
            return False
        return self.people is None or person_id in self.people

    # ---- SQL filters ---------------------------------------------------------------

    def _people_in(self, column: Any) -> ColumnElement[bool]:
        if self.people is None:
            return true()
        if not self.people:
            return false()
        return column.in_(sorted(self.people))

    def receivables(self) -> ColumnElement[bool]:
        """Payment plans (and so their installments) this person may see: their owners' in scope; finance sees all."""
        return self._people_in(PaymentPlan.owner_id)

    def opportunities(self) -> ColumnElement[bool]:
        if self.finance:  # the deals money is owed on
            return Opportunity.id.in_(select(PaymentPlan.opportunity_id).where(PaymentPlan.opportunity_id.is_not(None)))
        return self._people_in(Opportunity.owner_id)

    def notes(self) -> ColumnElement[bool]:
        if self.finance:
            return Note.opportunity_id.in_(select(Opportunity.id).where(self.opportunities()))
        return self._people_in(Note.author_id)

    def tasks(self) -> ColumnElement[bool]:
        if self.finance:
            return Task.opportunity_id.in_(select(Opportunity.id).where(self.opportunities()))
        return self._people_in(Task.owner_id)

    def leads(self) -> ColumnElement[bool]:
        if self.finance:
            return false()
        return self._people_in(Lead.assignee_id)

    def lead_offers(self) -> ColumnElement[bool]:
        if self.finance:
            return false()
        return self._people_in(LeadOffer.rep_id)

    def escalations(self) -> ColumnElement[bool]:
        if self.finance:
            return Escalation.kind == RECEIVABLE
        return self._people_in(Escalation.owner_id)

    def accounts(self) -> ColumnElement[bool]:
        """Accounts with a deal or a note in scope."""
        if self.everything:
            return true()
        with_deal = select(Opportunity.account_id).where(self.opportunities(), Opportunity.account_id.is_not(None))
        if self.finance:
            return Account.id.in_(with_deal)
        with_note = select(Note.account_id).where(self.notes(), Note.account_id.is_not(None))
        return or_(Account.id.in_(with_deal), Account.id.in_(with_note))

    def audit(self) -> ColumnElement[bool]:
        """Audit rows about deals, tasks, notes and accounts in scope."""
        if self.everything:
            return true()
        parts = [
            and_(AuditLog.entity == "opportunity", AuditLog.entity_id.in_(select(Opportunity.id).where(self.opportunities()))),
            and_(AuditLog.entity == "task", AuditLog.entity_id.in_(select(Task.id).where(self.tasks()))),
            and_(AuditLog.entity == "note", AuditLog.entity_id.in_(select(Note.id).where(self.notes()))),
        ]
        return or_(*parts)

    # ---- single records (ids from URLs and card callbacks) -------------------------

    async def can_see_opportunity(self, session: AsyncSession, opp_id: int) -> bool:
        found = await session.scalar(select(Opportunity.id).where(Opportunity.id == opp_id, self.opportunities()))
        return found is not None

    async def can_see_account(self, session: AsyncSession, account_id: int) -> bool:
        found = await session.scalar(select(Account.id).where(Account.id == account_id, self.accounts()))
        return found is not None


async def team_tree(session: AsyncSession, person: Person) -> frozenset[int]:
    """``person`` and everyone whose manager chain or team's manager leads to them."""
    people = (await session.execute(select(Person.id, Person.key, Person.manager_id, Person.team_id))).all()
    teams = (await session.execute(select(Team.id, Team.manager_key))).all()
    key_of = {pid: key for pid, key, _m, _t in people}
    seen = {person.id}
    changed = True
    while changed:
        changed = False
        keys = {key_of[p] for p in seen if p in key_of}
        managed_teams = {tid for tid, manager_key in teams if manager_key and manager_key in keys}
        for pid, _key, manager_id, team_id in people:
            if pid in seen:
                continue
            if manager_id in seen or (team_id is not None and team_id in managed_teams):
                seen.add(pid)
                changed = True
    return frozenset(seen)


async def scope_for(session: AsyncSession, person: Person) -> Scope:
    """The scope of what ``person`` may see (see the module docstring)."""
    if person.role in SEES_ALL:
        return Scope(person.id, person.role, None)
    if person.role == "finance":
        return Scope(person.id, person.role, None, finance=True)
    if person.role == "manager":
        return Scope(person.id, person.role, await team_tree(session, person))
    return Scope(person.id, person.role, frozenset({person.id}))
