"""leads as routed by the lead service; lead_offers; people.away_until

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 10:00:00

The 0001 ``leads`` table was a placeholder no code path ever wrote to; it is replaced by
the real shape rather than altered column by column (SQLite would rebuild it anyway).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE = sa.text("status = 'offered'")


def upgrade() -> None:
    op.drop_table("leads")
    op.create_table(
        "leads",
        sa.Column("id", PK, nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("hospital", sa.String(length=128), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("product_line", sa.String(length=64), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", PK, nullable=True),
        sa.Column("team_id", PK, nullable=True),
        sa.Column("created_by_id", PK, nullable=True),
        sa.Column("merged_into_id", PK, nullable=True),
        sa.Column("account_id", PK, nullable=True),
        sa.Column("opportunity_id", PK, nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("pool", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignee_id"], ["people.id"], name=op.f("fk_leads_assignee_id_people")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_leads_team_id_teams")),
        sa.ForeignKeyConstraint(["created_by_id"], ["people.id"], name=op.f("fk_leads_created_by_id_people")),
        sa.ForeignKeyConstraint(["merged_into_id"], ["leads.id"], name=op.f("fk_leads_merged_into_id_leads")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_leads_account_id_accounts")),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], name=op.f("fk_leads_opportunity_id_opportunities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("external_id", name=op.f("uq_leads_external_id")),
    )
    op.create_index("ix_leads_status_created", "leads", ["status", "created_at"])
    op.create_index("ix_leads_phone", "leads", ["phone"])
    op.create_index("ix_leads_contact", "leads", ["contact"])
    op.create_index("ix_leads_assignee", "leads", ["assignee_id", "status"])
    op.create_table(
        "lead_offers",
        sa.Column("id", PK, nullable=False),
        sa.Column("lead_id", PK, nullable=False),
        sa.Column("rep_id", PK, nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_lead_offers_lead_id_leads")),
        sa.ForeignKeyConstraint(["rep_id"], ["people.id"], name=op.f("fk_lead_offers_rep_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_offers")),
    )
    op.create_index("ix_lead_offers_lead", "lead_offers", ["lead_id", "status"])
    op.create_index("ix_lead_offers_rep", "lead_offers", ["rep_id", "offered_at"])
    # no lead ever has two live offers, whatever the code above it does
    op.create_index("uq_lead_offers_live", "lead_offers", ["lead_id"], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("away_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("away_until")
    op.drop_index("uq_lead_offers_live", table_name="lead_offers")
    op.drop_index("ix_lead_offers_rep", table_name="lead_offers")
    op.drop_index("ix_lead_offers_lead", table_name="lead_offers")
    op.drop_table("lead_offers")
    for name in ("ix_leads_assignee", "ix_leads_contact", "ix_leads_phone", "ix_leads_status_created"):
        op.drop_index(name, table_name="leads")
    op.drop_table("leads")
    op.create_table(
        "leads",
        sa.Column("id", PK, nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("hospital", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("product_line", sa.String(length=64), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", PK, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["assigned_to"], ["people.id"], name=op.f("fk_leads_assigned_to_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("external_id", name=op.f("uq_leads_external_id")),
    )
