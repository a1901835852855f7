"""unknown sms senders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 23:43:56.444283
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unknown_senders",
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("last_reply_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_unknown_senders")),
    )


def downgrade() -> None:
    op.drop_table("unknown_senders")
