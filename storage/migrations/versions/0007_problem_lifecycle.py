"""problem lifecycle: meeting calendars, decisions, problem events, scheduled jobs, Telegram outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("meeting_days", sa.String(length=32), nullable=True))
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("responsible_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("due_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("meeting_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("overdue_on", sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f("ix_problems_responsible_id"), ["responsible_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_problems_responsible_id_cadres"), "cadres", ["responsible_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_problems_merged_into_id_problems"), "problems", ["merged_into_id"], ["id"]
        )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=8), server_default="sms", nullable=False))
    op.create_table(
        "problem_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=False),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("meeting_on", sa.Date(), nullable=True),
        sa.Column("responsible_id", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["cadres.id"], name=op.f("fk_problem_events_actor_id_cadres")),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name=op.f("fk_problem_events_problem_id_problems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["responsible_id"], ["cadres.id"], name=op.f("fk_problem_events_responsible_id_cadres")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_events")),
    )
    with op.batch_alter_table("problem_events", schema=None) as batch_op:
        batch_op.create_index("ix_problem_events_action_meeting", ["action", "meeting_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_problem_events_problem_id"), ["problem_id"], unique=False)
    op.create_table(
        "scheduled_jobs",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_scheduled_jobs")),
    )
    _backfill()


def _backfill() -> None:
    """Problems stored before this revision: queued since they were raised, and their creation recorded."""
    problems = sa.table(
        "problems",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("escalated_at", sa.DateTime),
        sa.column("raised_by_id", sa.Integer),
        sa.column("resolved_on_site", sa.Boolean),
        sa.column("resolution", sa.Text),
    )
    events = sa.table(
        "problem_events",
        sa.column("problem_id", sa.Integer),
        sa.column("at", sa.DateTime),
        sa.column("actor_id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("from_state", sa.String),
        sa.column("to_state", sa.String),
        sa.column("note", sa.Text),
    )
    op.execute(
        problems.update().where(problems.c.status != "closed").values(escalated_at=problems.c.created_at)
    )
    on_site = problems.c.resolved_on_site.is_(True)
    op.execute(
        events.insert().from_select(
            ["problem_id", "at", "actor_id", "action", "from_state", "to_state", "note"],
            sa.select(
                problems.c.id,
                problems.c.created_at,
                problems.c.raised_by_id,
                sa.case((on_site, "resolve_on_site"), else_="escalate"),
                sa.literal("raised"),
                sa.case((on_site, "closed"), else_="escalated"),
                sa.case((on_site, problems.c.resolution), else_=None),
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("scheduled_jobs")
    with op.batch_alter_table("problem_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problem_events_problem_id"))
        batch_op.drop_index("ix_problem_events_action_meeting")
    op.drop_table("problem_events")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("channel")
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_problems_merged_into_id_problems"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_problems_responsible_id_cadres"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_problems_responsible_id"))
        for column in (
            "overdue_on",
            "merged_into_id",
            "meeting_on",
            "due_on",
            "responsible_id",
            "escalated_at",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.drop_column("meeting_days")
