"""households: the village-and-户编号 index also carries the 户主 name, so who is left is read from the index

The coverage report names the first households each cadre has still to visit, in 户编号 order, up to 1,000 a
cadre in its CSV (200,000 names on a county database). With (village_id, code) alone each name was one more
table lookup; with head_name and id in the index the read stays in the index (SQLite covering index,
PostgreSQL index-only scan). The old index is a prefix of the new one, so it goes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 16:40:00
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("households") as batch_op:
        batch_op.create_index(
            "ix_households_village_names", ["village_id", "code", "head_name", "id"], unique=False
        )
        batch_op.drop_index("ix_households_village_code")


def downgrade() -> None:
    with op.batch_alter_table("households") as batch_op:
        batch_op.create_index("ix_households_village_code", ["village_id", "code"], unique=False)
        batch_op.drop_index("ix_households_village_names")
