"""SQLAlchemy 2 typed models.

Every table works on SQLite and PostgreSQL alike: JSON columns use the generic
``JSON`` type, timestamps are stored timezone-aware in UTC, and platform ids
(WeCom MsgId, AgentID, DingTalk msgId) are text because they may be non-numeric
or exceed 64 bits.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both backends (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


PK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(64), default="")
    manager_key: Mapped[str] = mapped_column(String(64), default="")
    robot_webhook: Mapped[str] = mapped_column(Text, default="")


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # rep | manager | sales_ops | admin
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    dingtalk_staff_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    regions: Mapped[list[str]] = mapped_column(default=list)
    product_lines: Mapped[list[str]] = mapped_column(default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=20)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_platform: Mapped[str] = mapped_column(String(16), default="")
    away_until: Mapped[datetime | None] = mapped_column()  # #请假: no lead offers until then
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Account(Base):
    """A customer hospital. ``name`` is canonical; ``aliases`` are what reps write."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    aliases: Mapped[list[str]] = mapped_column(default=list)
    region: Mapped[str] = mapped_column(String(64), default="")
    grade: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Opportunity(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        Index("ix_opportunities_owner_account", "owner_id", "account_id"),
        Index("ix_opportunities_status_owner", "status", "owner_id"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    stage: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | won | lost
    stage_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Note(Base):
    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_author_created", "author_id", "created_at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"))
    source: Mapped[str] = mapped_column(String(8), default="text")  # text | voice
    raw_text: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Task(Base):
    """A next action. ``remind_at`` is when the reminder fires; claimed once via ``reminded_at``."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_due", "status", "remind_at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("notes.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"))
    text: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date | None] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column()
    remind_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done | cancelled
    reminded_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lead(Base):
    """A sales lead from a file, the API or chat, and where it stands.

    ``status``: quarantined (a person must fix it) | offered (one live offer) | claimed |
    merged (``merged_into_id``) | manager_queue | returned (waiting for ops). ``team_id`` is
    the team whose manager answers for it (the offered rep's team, or the pool's).
    """

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_status_created", "status", "created_at"),
        Index("ix_leads_phone", "phone"),
        Index("ix_leads_contact", "contact"),
        Index("ix_leads_assignee", "assignee_id", "status"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(64), default="")
    hospital: Mapped[str] = mapped_column(String(128), default="")
    department: Mapped[str] = mapped_column(String(64), default="")
    contact: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")  # normalised (intake.normalize_phone)
    region: Mapped[str] = mapped_column(String(64), default="")
    product_line: Mapped[str] = mapped_column(String(64), default="")
    grade: Mapped[str] = mapped_column(String(16), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"))
    rule: Mapped[str | None] = mapped_column(String(64))
    pool: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)  # reason, skipped
    problems: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LeadOffer(Base):
    """One offer of a lead to one rep. At most one row per lead is ``offered`` (a partial unique index)."""

    __tablename__ = "lead_offers"
    __table_args__ = (
        Index("ix_lead_offers_lead", "lead_id", "status"),
        Index("ix_lead_offers_rep", "rep_id", "offered_at"),
        Index("uq_lead_offers_live", "lead_id", unique=True,
              sqlite_where=text("status = 'offered'"), postgresql_where=text("status = 'offered'")),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    rep_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    offered_at: Mapped[datetime] = mapped_column()
    # offered | claimed | expired | returned | reassigned | lost_race
    status: Mapped[str] = mapped_column(String(16), default="offered")
    closed_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")


class Escalation(Base):
    """One episode of a subject needing attention (a stalled deal, an overdue installment).

    Opened by the first level of its ladder, moved up by later levels, closed by counting
    activity, payment, closing the deal or a reassignment. At most one open episode per
    subject and kind (partial unique index on ``closed_at IS NULL``); cards and buttons
    carry its id, so a click on an old episode's card is recognised as outdated.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        Index("uq_escalations_open", "kind", "subject_type", "subject_id", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        Index("ix_escalations_team", "team_id", "closed_at"),
        Index("ix_escalations_owner", "owner_id", "closed_at"),
        Index("ix_escalations_snooze", "snooze_until"),
        Index("ix_escalations_awaiting", "awaiting_person_id", "awaiting_until"),  # read on every message
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # unclaimed_lead | stalled_deal | overdue_payment
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | following | paused | resolved | reassigned
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    timer_id: Mapped[int | None] = mapped_column(BigInteger)
    level: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    since_at: Mapped[datetime | None] = mapped_column()  # last counting activity / due date
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    handled_action: Mapped[str | None] = mapped_column(String(16))
    handled_level: Mapped[int] = mapped_column(Integer, default=0)
    handled_at: Mapped[datetime | None] = mapped_column()
    hold_until: Mapped[datetime | None] = mapped_column()
    snoozes: Mapped[int] = mapped_column(Integer, default=0)
    snooze_until: Mapped[datetime | None] = mapped_column()
    awaiting_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    awaiting_action: Mapped[str | None] = mapped_column(String(16))
    awaiting_until: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)


class PaymentPlan(Base):
    """A contract's payment terms: the installments a deal is paid in."""

    __tablename__ = "payment_plans"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    contract_no: Mapped[str] = mapped_column(String(64), default="")
    total_amount: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="note")  # note | import
    note_id: Mapped[int | None] = mapped_column(ForeignKey("notes.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Installment(Base):
    """One installment: an amount (or a percentage of the plan) due on a date or after a trigger."""

    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("invoice_no"),
        Index("ix_installments_open", "status", "due_date"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    label: Mapped[str] = mapped_column(String(32), default="")
    amount: Mapped[int | None] = mapped_column(BigInteger)
    percent: Mapped[float | None] = mapped_column()
    due_date: Mapped[date | None] = mapped_column(Date)
    trigger: Mapped[str] = mapped_column(String(16), default="")  # "" | acceptance | delivery | contract
    trigger_days: Mapped[int] = mapped_column(Integer, default=0)
    received_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | partial | paid | cancelled
    invoice_no: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PaymentReceipt(Base):
    """Money received against an installment (chat ``#回款 … 已到账`` or the finance import)."""

    __tablename__ = "payment_receipts"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    installment_id: Mapped[int] = mapped_column(ForeignKey("installments.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="chat")  # chat | import
    reference: Mapped[str | None] = mapped_column(String(96), unique=True)  # import: invoice + received total
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxRow(Base):
    """Every inbound message, written before the platform is acknowledged."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "message_id"),
        Index("ix_inbox_claim", "status", "lease_until"),
        Index("ix_inbox_sender", "platform", "sender", "status"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(191))
    sender: Mapped[str] = mapped_column(String(128))
    conversation: Mapped[str] = mapped_column(String(191), default="")
    kind: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|processing|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column()
    error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()


class OutboxRow(Base):
    """Every outbound message; senders deliver with retries and record the outcome."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_claim", "status", "next_attempt_at"),
        Index("ix_outbox_recipient", "platform", "recipient", "status"),
        Index("ix_outbox_merge", "recipient", "merge_key", "status"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(128))
    conversation: Mapped[str] = mapped_column(String(191), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    # pushes (reminders, offers, alerts) as opposed to replies: they count against the daily cap
    push: Mapped[bool] = mapped_column(Boolean, default=False)
    # alerts of one class to one person within the merge window become one card
    merge_key: Mapped[str | None] = mapped_column(String(64))
    # an effect that must happen once however often it is produced (timer:ID:LEVEL:VERSION)
    dedupe_key: Mapped[str | None] = mapped_column(String(191), unique=True)


class Timer(Base):
    """One escalation ladder running for one subject (a lead, a deal, an installment).

    The due moment is stored so any node's sweep finds due timers with one indexed query;
    ``version`` makes every state change a compare-and-set, so two nodes, a crash or a
    retry never fire a level twice. See :mod:`reminders.timers` for the semantics.
    """

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "ladder"),
        Index("ix_timers_due", "state", "due_at"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    ladder: Mapped[str] = mapped_column(String(64))
    clock: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer, default=0)  # highest level fired or superseded
    consumed_seconds: Mapped[float] = mapped_column(default=0.0)  # budget used before anchor_at
    anchor_at: Mapped[datetime] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()
    paused_until: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    state: Mapped[str] = mapped_column(String(12), default="running")  # running|paused|done|cancelled
    version: Mapped[int] = mapped_column(Integer, default=1)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # for level conditions (amount …)
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"), Index("ix_audit_at", "entity", "at"))
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("notes.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class HealthSnapshot(Base):
    """One day's health score of an opportunity or an account (``subject_type``), with its penalties.

    Written by the nightly job and whenever a deal's inputs changed since its last snapshot;
    "change since last week" compares with the latest snapshot at least seven days older.
    ``stage``/``status``/``amount``/``owner_id`` are copied so week-over-week figures need no replay.
    """

    __tablename__ = "health_snapshots"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "day"),
        Index("ix_health_snapshots_day", "day", "subject_type"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # opportunity | account
    subject_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(8))  # good | watch | risk
    penalties: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{code, points, text}]
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    stage: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    amount: Mapped[int | None] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DigestMark(Base):
    """That one person's weekly digest was produced (``key`` = digest:<ISO week>:<person key>).

    Inserted ON CONFLICT DO NOTHING in the transaction that writes the digest's outbox rows, so
    however many nodes run the job, each person gets one digest per week.
    """

    __tablename__ = "digest_marks"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    key: Mapped[str] = mapped_column(String(191), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    week: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DashboardLink(Base):
    """A signed dashboard link's nonce: one use across all nodes (``used_at`` set by a conditional UPDATE)."""

    __tablename__ = "dashboard_links"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DialogState(Base):
    """What the bot is waiting for from a person (a missing-field answer, a confirmation)."""

    __tablename__ = "dialog_state"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlaybookUsage(Base):
    __tablename__ = "playbook_usage"
    __table_args__ = (Index("ix_playbook_usage_tag", "tag", "at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    tag: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16), default="hashtag")  # hashtag | button | suggestion
    at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyValue(Base):
    """Small shared state across nodes (channel health, tokens are per-process)."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
