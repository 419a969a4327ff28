"""escalations: index on the person an escalation awaits an answer from

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 06:00:00

Every inbound message asks whether an escalation awaits its sender's answer
(handlers.common.waiting: EXISTS on awaiting_person_id = me AND awaiting_until > now AND
closed_at IS NULL); without an index that is a scan of the escalations table per message.
awaiting_until comes second so the same index also serves the escalations handler's
latest-open-question read (ORDER BY awaiting_until DESC LIMIT 1).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_escalations_awaiting", "escalations", ["awaiting_person_id", "awaiting_until"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_escalations_awaiting", table_name="escalations")
