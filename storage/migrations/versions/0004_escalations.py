"""escalations evolved (episodes, handling, holds, snoozes); payment plans, installments, receipts

Revision ID: 0004
Revises: 0002 (the leads branch adds 0003; whoever merges second re-points this to "0003")
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
OPEN_ONLY = sa.text("closed_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_escalations_kind_subject_type_subject_id", type_="unique")
        batch_op.add_column(sa.Column("owner_id", PK, nullable=True))
        batch_op.add_column(sa.Column("team_id", PK, nullable=True))
        batch_op.add_column(sa.Column("timer_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("level", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("since_at", TS, nullable=True))
        batch_op.add_column(sa.Column("handled_by_id", PK, nullable=True))
        batch_op.add_column(sa.Column("handled_action", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("handled_level", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("handled_at", TS, nullable=True))
        batch_op.add_column(sa.Column("hold_until", TS, nullable=True))
        batch_op.add_column(sa.Column("snoozes", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("snooze_until", TS, nullable=True))
        batch_op.add_column(sa.Column("awaiting_person_id", PK, nullable=True))
        batch_op.add_column(sa.Column("awaiting_action", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("awaiting_until", TS, nullable=True))
        batch_op.add_column(sa.Column("closed_at", TS, nullable=True))
        batch_op.add_column(sa.Column("closed_by_id", PK, nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        for column in ("owner_id", "handled_by_id", "awaiting_person_id", "closed_by_id"):
            batch_op.create_foreign_key(f"fk_escalations_{column}_people", "people", [column], ["id"])
        batch_op.create_foreign_key("fk_escalations_team_id_teams", "teams", ["team_id"], ["id"])
        batch_op.create_index("ix_escalations_team", ["team_id", "closed_at"], unique=False)
        batch_op.create_index("ix_escalations_owner", ["owner_id", "closed_at"], unique=False)
        batch_op.create_index("ix_escalations_snooze", ["snooze_until"], unique=False)
    op.create_index("uq_escalations_open", "escalations", ["kind", "subject_type", "subject_id"], unique=True,
                    sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY)

    op.create_table(
        "payment_plans",
        sa.Column("id", PK, nullable=False),
        sa.Column("opportunity_id", PK, nullable=True),
        sa.Column("account_id", PK, nullable=True),
        sa.Column("owner_id", PK, nullable=True),
        sa.Column("contract_no", sa.String(length=64), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("note_id", PK, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], name=op.f("fk_payment_plans_opportunity_id_opportunities")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_payment_plans_account_id_accounts")),
        sa.ForeignKeyConstraint(["owner_id"], ["people.id"], name=op.f("fk_payment_plans_owner_id_people")),
        sa.ForeignKeyConstraint(["note_id"], ["notes.id"], name=op.f("fk_payment_plans_note_id_notes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plans")),
    )
    op.create_index(op.f("ix_payment_plans_opportunity_id"), "payment_plans", ["opportunity_id"], unique=False)
    op.create_index(op.f("ix_payment_plans_account_id"), "payment_plans", ["account_id"], unique=False)
    op.create_table(
        "installments",
        sa.Column("id", PK, nullable=False),
        sa.Column("plan_id", PK, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("percent", sa.Double(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("trigger_days", sa.Integer(), nullable=False),
        sa.Column("received_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("invoice_no", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["payment_plans.id"], name=op.f("fk_installments_plan_id_payment_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installments")),
        sa.UniqueConstraint("invoice_no", name=op.f("uq_installments_invoice_no")),
    )
    op.create_index(op.f("ix_installments_plan_id"), "installments", ["plan_id"], unique=False)
    op.create_index("ix_installments_open", "installments", ["status", "due_date"], unique=False)
    op.create_table(
        "payment_receipts",
        sa.Column("id", PK, nullable=False),
        sa.Column("installment_id", PK, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=96), nullable=True),
        sa.Column("actor_id", PK, nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["installment_id"], ["installments.id"], name=op.f("fk_payment_receipts_installment_id_installments")),
        sa.ForeignKeyConstraint(["actor_id"], ["people.id"], name=op.f("fk_payment_receipts_actor_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_receipts")),
        sa.UniqueConstraint("reference", name=op.f("uq_payment_receipts_reference")),
    )
    op.create_index(op.f("ix_payment_receipts_installment_id"), "payment_receipts", ["installment_id"], unique=False)


def downgrade() -> None:
    op.drop_table("payment_receipts")
    op.drop_table("installments")
    op.drop_table("payment_plans")
    op.drop_index("uq_escalations_open", table_name="escalations")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_escalations_snooze")
        batch_op.drop_index("ix_escalations_owner")
        batch_op.drop_index("ix_escalations_team")
        batch_op.drop_constraint("fk_escalations_team_id_teams", type_="foreignkey")
        for column in ("owner_id", "handled_by_id", "awaiting_person_id", "closed_by_id"):
            batch_op.drop_constraint(f"fk_escalations_{column}_people", type_="foreignkey")
        for column in ("version", "closed_by_id", "closed_at", "awaiting_until", "awaiting_action", "awaiting_person_id",
                       "snooze_until", "snoozes", "hold_until", "handled_at", "handled_level", "handled_action",
                       "handled_by_id", "since_at", "amount", "level", "timer_id", "team_id", "owner_id"):
            batch_op.drop_column(column)
        batch_op.create_unique_constraint("uq_escalations_kind_subject_type_subject_id", ["kind", "subject_type", "subject_id"])
