"""visit indexes for reports: by period, and a household's latest visit before a time

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 02:40:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_household_status")
        batch_op.create_index(
            "ix_visits_household_status_submitted", ["household_id", "status", "submitted_at"], unique=False
        )
        batch_op.create_index("ix_visits_status_submitted_at", ["status", "submitted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_status_submitted_at")
        batch_op.drop_index("ix_visits_household_status_submitted")
        batch_op.create_index("ix_visits_household_status", ["household_id", "status"], unique=False)
