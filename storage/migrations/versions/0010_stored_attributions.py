"""what the reports kept recomputing, stored: each poll's village and rated visit, each household's latest visit

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # ADD COLUMN … REFERENCES in place: batch mode would copy households, and dropping the old copy trips
        # the foreign keys of every visit, poll and problem that refers to it.
        op.execute(
            "ALTER TABLE households ADD COLUMN latest_visit_id INTEGER "
            "CONSTRAINT fk_households_latest_visit_id_visits REFERENCES visits (id)"
        )
    else:
        op.add_column("households", sa.Column("latest_visit_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_households_latest_visit_id_visits", "households", "visits", ["latest_visit_id"], ["id"]
        )
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("village_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("visit_id", sa.Integer(), nullable=True))
    _backfill()
    # polls refer to nothing that refers back, so on SQLite this copy (for NOT NULL and the keys) is safe
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.alter_column("village_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key("fk_polls_village_id_villages", "villages", ["village_id"], ["id"])
        batch_op.create_foreign_key("fk_polls_visit_id_visits", "visits", ["visit_id"], ["id"])
    _indexes()


def _backfill() -> None:
    """The same definitions as the write paths (storage.visits, storage.polls), as three set-wise UPDATEs."""
    households = sa.table(
        "households", sa.column("id"), sa.column("village_id"), sa.column("latest_visit_id")
    )
    visits = sa.table(
        "visits", sa.column("id"), sa.column("household_id"), sa.column("status"), sa.column("submitted_at")
    )
    polls = sa.table(
        "polls",
        sa.column("household_id"),
        sa.column("created_at"),
        sa.column("village_id"),
        sa.column("visit_id"),
    )

    def latest(household_id: sa.ColumnElement, at: sa.ColumnElement | None = None) -> sa.ScalarSelect:
        query = sa.select(visits.c.id).where(
            visits.c.household_id == household_id, visits.c.status == "submitted"
        )
        if at is not None:
            query = query.where(visits.c.submitted_at <= at)
        return query.order_by(visits.c.submitted_at.desc(), visits.c.id.desc()).limit(1).scalar_subquery()

    op.execute(households.update().values(latest_visit_id=latest(households.c.id)))
    # Polls stored before now take the household's village as it is: the only one known.
    village = sa.select(households.c.village_id).where(households.c.id == polls.c.household_id)
    rated = latest(polls.c.household_id, polls.c.created_at)
    op.execute(polls.update().values(village_id=village.scalar_subquery(), visit_id=rated))


def _indexes() -> None:
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_index("ix_households_village_id")
        batch_op.create_index("ix_households_village_code", ["village_id", "code"], unique=False)
        batch_op.create_index("ix_households_latest_visit_id", ["latest_visit_id"], unique=False)
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.drop_index("ix_polls_created_at")
        batch_op.create_index(
            "ix_polls_village_created", ["village_id", "created_at", "sent_at", "rating"], unique=False
        )
        batch_op.create_index(
            "ix_polls_visit_created", ["visit_id", "created_at", "sent_at", "rating"], unique=False
        )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_cadre_id")
        batch_op.drop_index("ix_visits_status_submitted_at")
        batch_op.drop_index("ix_visits_answers_digest")
        batch_op.create_index(
            "ix_visits_digest_period",
            ["answers_digest", "status", "submitted_at", "household_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_visits_in_period",
            ["status", "submitted_at", "household_id", "cadre_id", "satisfaction", "answers_digest"],
            unique=False,
        )
        batch_op.create_index(
            "ix_visits_cadre_household",
            ["cadre_id", "household_id", "status", "submitted_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_cadre_household")
        batch_op.drop_index("ix_visits_in_period")
        batch_op.drop_index("ix_visits_digest_period")
        batch_op.create_index("ix_visits_answers_digest", ["answers_digest"], unique=False)
        batch_op.create_index("ix_visits_status_submitted_at", ["status", "submitted_at"], unique=False)
        batch_op.create_index("ix_visits_cadre_id", ["cadre_id"], unique=False)
    with op.batch_alter_table("polls", schema=None) as batch_op:  # on SQLite a copy: nothing refers to polls
        batch_op.drop_index("ix_polls_visit_created")
        batch_op.drop_index("ix_polls_village_created")
        batch_op.create_index("ix_polls_created_at", ["created_at"], unique=False)
        batch_op.drop_constraint("fk_polls_visit_id_visits", type_="foreignkey")
        batch_op.drop_constraint("fk_polls_village_id_villages", type_="foreignkey")
        batch_op.drop_column("visit_id")
        batch_op.drop_column("village_id")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_index("ix_households_latest_visit_id")
        batch_op.drop_index("ix_households_village_code")
        batch_op.create_index("ix_households_village_id", ["village_id"], unique=False)
        if not sqlite:
            batch_op.drop_constraint("fk_households_latest_visit_id_visits", type_="foreignkey")
            batch_op.drop_column("latest_visit_id")
    if sqlite:  # in place, as it was added (its key goes with it): a copy would trip the keys of its children
        op.execute("ALTER TABLE households DROP COLUMN latest_visit_id")
