"""polls: drop the indexes every reply had to update and no query uses

A reply changes a poll's state, rating and deadline; each index on those columns is one more B-tree page to
rewrite in every commit. households_id is covered by the (household_id, period) unique index, the waiting
poll is found by phone, the reports read ratings from the covering indexes of 0010.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:20:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DROPPED = {"ix_polls_household_id": "household_id", "ix_polls_state": "state", "ix_polls_rating": "rating"}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="polls")


def downgrade() -> None:
    for name, column in DROPPED.items():
        op.create_index(name, "polls", [column], unique=False)
