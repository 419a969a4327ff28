"""reports: health snapshots, weekly digest marks, one-use dashboard link nonces

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "health_snapshots",
        sa.Column("id", PK, nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=8), nullable=False),
        sa.Column("penalties", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_snapshots")),
        sa.UniqueConstraint("subject_type", "subject_id", "day",
                            name=op.f("uq_health_snapshots_subject_type_subject_id_day")),
    )
    op.create_index("ix_health_snapshots_day", "health_snapshots", ["day", "subject_type"], unique=False)
    op.create_table(
        "digest_marks",
        sa.Column("id", PK, nullable=False),
        sa.Column("key", sa.String(length=191), nullable=False),
        sa.Column("person_id", PK, nullable=True),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_digest_marks_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_marks")),
        sa.UniqueConstraint("key", name=op.f("uq_digest_marks_key")),
    )
    op.create_table(
        "dashboard_links",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("person_id", PK, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_dashboard_links_person_id_people")),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_dashboard_links")),
    )
    # the views filter notes by author and time, opportunities by owner and status
    op.create_index("ix_notes_author_created", "notes", ["author_id", "created_at"], unique=False)
    op.create_index("ix_opportunities_status_owner", "opportunities", ["status", "owner_id"], unique=False)
    op.create_index("ix_audit_at", "audit_log", ["entity", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_at", table_name="audit_log")
    op.drop_index("ix_opportunities_status_owner", table_name="opportunities")
    op.drop_index("ix_notes_author_created", table_name="notes")
    op.drop_table("dashboard_links")
    op.drop_table("digest_marks")
    op.drop_index("ix_health_snapshots_day", table_name="health_snapshots")
    op.drop_table("health_snapshots")
