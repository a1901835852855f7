"""satisfaction polls

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:54:33.872698
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clarified", sa.Boolean(), nullable=False),
        sa.Column("clarified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("asked_reason_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rating", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("callback", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("problem_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_polls_household_id_households")
        ),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"], name=op.f("fk_polls_problem_id_problems")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polls")),
        sa.UniqueConstraint("household_id", "period", name=op.f("uq_polls_household_id_period")),
    )
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_polls_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_polls_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_polls_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_polls_rating"), ["rating"], unique=False)
        batch_op.create_index(batch_op.f("ix_polls_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_polls_state"))
        batch_op.drop_index(batch_op.f("ix_polls_rating"))
        batch_op.drop_index(batch_op.f("ix_polls_phone"))
        batch_op.drop_index(batch_op.f("ix_polls_household_id"))
        batch_op.drop_index(batch_op.f("ix_polls_due_at"))

    op.drop_table("polls")
