"""early_statuses: delivery callbacks that arrive before the sender has stored the message's sid

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_statuses",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("early_statuses")
