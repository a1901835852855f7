"""initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-22 22:23:35.390382
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("income_line", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("monitoring_line", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("count_guaranteed", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counties")),
        sa.UniqueConstraint("name", name=op.f("uq_counties_name")),
    )
    op.create_table(
        "townships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("county_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["county_id"], ["counties.id"], name=op.f("fk_townships_county_id_counties")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_townships")),
        sa.UniqueConstraint("county_id", "name", name=op.f("uq_townships_county_id_name")),
    )
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_townships_county_id"), ["county_id"], unique=False)

    op.create_table(
        "cadres",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("township_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["township_id"], ["townships.id"], name=op.f("fk_cadres_township_id_townships")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadres")),
        sa.UniqueConstraint("code", name=op.f("uq_cadres_code")),
    )
    with op.batch_alter_table("cadres", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cadres_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_cadres_role"), ["role"], unique=False)
        batch_op.create_index(batch_op.f("ix_cadres_township_id"), ["township_id"], unique=False)

    op.create_table(
        "villages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("township_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["township_id"], ["townships.id"], name=op.f("fk_villages_township_id_townships")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_villages")),
        sa.UniqueConstraint("township_id", "name", name=op.f("uq_villages_township_id_name")),
    )
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_villages_township_id"), ["township_id"], unique=False)

    op.create_table(
        "cadre_villages",
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cadre_id"], ["cadres.id"], name=op.f("fk_cadre_villages_cadre_id_cadres"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["village_id"],
            ["villages.id"],
            name=op.f("fk_cadre_villages_village_id_villages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cadre_id", "village_id", name=op.f("pk_cadre_villages")),
    )
    op.create_table(
        "households",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("hamlet", sa.String(length=64), nullable=True),
        sa.Column("head_name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("helper_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["helper_id"], ["cadres.id"], name=op.f("fk_households_helper_id_cadres")),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_households_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint("code", name=op.f("uq_households_code")),
    )
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_households_helper_id"), ["helper_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_households_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_households_village_id"), ["village_id"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.String(length=64), nullable=False),
        sa.Column("script_version", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("session", sa.Text(), nullable=False),
        sa.Column("counted_income", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("per_capita_net", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("household_group", sa.String(length=16), nullable=True),
        sa.Column("warnings", sa.String(length=128), nullable=True),
        sa.Column("unmet", sa.String(length=128), nullable=True),
        sa.Column("satisfaction", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_visits_cadre_id_cadres")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_visits_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_cadre_id"), ["cadre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_household_group"), ["household_group"], unique=False)
        batch_op.create_index("ix_visits_household_status", ["household_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_satisfaction"), ["satisfaction"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_submitted_at"), ["submitted_at"], unique=False)

    op.create_table(
        "answers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("value_int", sa.BigInteger(), nullable=True),
        sa.Column("value_real", sa.Float(), nullable=True),
        sa.Column("value_bool", sa.Boolean(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_answers_visit_id_visits"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
        sa.UniqueConstraint(
            "visit_id", "field", "item", "seq", name=op.f("uq_answers_visit_id_field_item_seq")
        ),
    )
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.create_index("ix_answers_field_text", ["field", "value_text"], unique=False)

    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("raised_by_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("resolved_on_site", sa.Boolean(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_problems_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["raised_by_id"], ["cadres.id"], name=op.f("fk_problems_raised_by_id_cadres")
        ),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_problems_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
    )
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problems_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_raised_by_id"), ["raised_by_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_problems_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "work_log_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("problem_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cadre_id"], ["cadres.id"], name=op.f("fk_work_log_entries_cadre_id_cadres")
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name=op.f("fk_work_log_entries_problem_id_problems")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_work_log_entries_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_log_entries")),
    )
    with op.batch_alter_table("work_log_entries", schema=None) as batch_op:
        batch_op.create_index("ix_work_log_entries_cadre_day", ["cadre_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("work_log_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_work_log_entries_cadre_day")

    op.drop_table("work_log_entries")
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problems_visit_id"))
        batch_op.drop_index(batch_op.f("ix_problems_status"))
        batch_op.drop_index(batch_op.f("ix_problems_raised_by_id"))
        batch_op.drop_index(batch_op.f("ix_problems_household_id"))

    op.drop_table("problems")
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_index("ix_answers_field_text")

    op.drop_table("answers")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_submitted_at"))
        batch_op.drop_index(batch_op.f("ix_visits_status"))
        batch_op.drop_index(batch_op.f("ix_visits_satisfaction"))
        batch_op.drop_index("ix_visits_household_status")
        batch_op.drop_index(batch_op.f("ix_visits_household_group"))
        batch_op.drop_index(batch_op.f("ix_visits_cadre_id"))

    op.drop_table("visits")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_households_village_id"))
        batch_op.drop_index(batch_op.f("ix_households_phone"))
        batch_op.drop_index(batch_op.f("ix_households_helper_id"))

    op.drop_table("households")
    op.drop_table("cadre_villages")
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_villages_township_id"))

    op.drop_table("villages")
    with op.batch_alter_table("cadres", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cadres_township_id"))
        batch_op.drop_index(batch_op.f("ix_cadres_role"))
        batch_op.drop_index(batch_op.f("ix_cadres_phone"))

    op.drop_table("cadres")
    with op.batch_alter_table("townships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_townships_county_id"))

    op.drop_table("townships")
    op.drop_table("counties")
