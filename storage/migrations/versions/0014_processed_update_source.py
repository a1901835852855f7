"""processed_updates.source: 40 characters ("telegram:<bot id>" is 19 for a real bot's 10-digit id; it was 16)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite keeps any length anyway, but its schema should say what the models say: batch mode copies the table
    with op.batch_alter_table("processed_updates") as batch:
        batch.alter_column(
            "source", existing_type=sa.String(16), type_=sa.String(40), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("processed_updates") as batch:
        batch.alter_column(
            "source", existing_type=sa.String(40), type_=sa.String(16), existing_nullable=False
        )
