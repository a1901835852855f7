"""report columns: visits' answer digest, problems' decision time, polls by creation time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 01:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

from survey.integrity import answers_digest

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answers_digest", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_visits_answers_digest"), ["answers_digest"], unique=False)
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_polls_created_at"), ["created_at"], unique=False)
    _backfill_digests()


def _backfill_digests() -> None:
    """Submitted visits keep their answers in the session JSON: fingerprint them like new submissions."""
    bind = op.get_bind()
    visits = sa.table(
        "visits",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("session", sa.Text),
        sa.column("answers_digest", sa.String),
    )
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(visits.c.id, visits.c.session)
            .where(visits.c.status == "submitted", visits.c.id > last_id)
            .order_by(visits.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        updates = [{"b_id": id_, "digest": answers_digest(json.loads(text)["answers"])} for id_, text in rows]
        bind.execute(
            visits.update()
            .where(visits.c.id == sa.bindparam("b_id"))
            .values(answers_digest=sa.bindparam("digest")),
            updates,
        )
        last_id = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_polls_created_at"))
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_column("decided_at")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_answers_digest"))
        batch_op.drop_column("answers_digest")
