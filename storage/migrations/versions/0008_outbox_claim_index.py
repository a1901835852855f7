"""outbox claim index: (status, channel, next_attempt_at, id), so a sender's claim reads the first due row of
its channel straight from the index instead of sorting every row due at that moment

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 02:00:00
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_messages_claim", ["status", "channel", "next_attempt_at", "id"], unique=False
        )
        batch_op.drop_index("ix_outbox_messages_due")


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_messages_due", ["status", "next_attempt_at"], unique=False)
        batch_op.drop_index("ix_outbox_messages_claim")
