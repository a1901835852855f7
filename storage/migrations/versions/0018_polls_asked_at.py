"""polls.asked_at: when the poll's question SMS actually left; outbox_messages.poll_id: the poll an SMS is for

A poll's `sent_at` is the time its question is due (the reminder and expiry clocks start then), set when the poll
is queued: polls queued for the morning, or waiting behind a 100,000-household round at one SMS a second, counted
as asked, and the response rate read low. Now the outbox row of a poll's question carries the poll's id, the
sender stamps `polls.asked_at` in the transaction that marks the SMS sent, and the reports count a poll as asked
when its question left (or it was answered however early). The report indexes carry `asked_at` instead of
`sent_at`. Existing polls: asked when their due time has passed (their question's row is not linked to them).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 18:45:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COVERED = ("ix_polls_village_created", "village_id"), ("ix_polls_visit_created", "visit_id")


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch_op:
        batch_op.add_column(sa.Column("poll_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("polls") as batch_op:
        batch_op.add_column(sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True))
    polls = sa.table(
        "polls",
        sa.column("sent_at", sa.DateTime(timezone=True)),
        sa.column("asked_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        polls.update()
        .where(polls.c.sent_at.is_not(None), polls.c.sent_at <= datetime.now(UTC))
        .values(asked_at=polls.c.sent_at)
    )
    with op.batch_alter_table("polls") as batch_op:
        for name, first in COVERED:
            batch_op.drop_index(name)
            batch_op.create_index(name, [first, "created_at", "asked_at", "rating"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("polls") as batch_op:
        for name, first in COVERED:
            batch_op.drop_index(name)
            batch_op.create_index(name, [first, "created_at", "sent_at", "rating"], unique=False)
        batch_op.drop_column("asked_at")
    with op.batch_alter_table("outbox_messages") as batch_op:
        batch_op.drop_column("poll_id")
