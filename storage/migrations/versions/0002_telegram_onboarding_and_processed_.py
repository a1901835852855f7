"""telegram onboarding and processed updates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:47:38.467756
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processed_updates")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_processed_updates_source_external_id")),
    )
    op.create_table(
        "telegram_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_attempts")),
    )
    with op.batch_alter_table("telegram_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_telegram_attempts_user_at", ["user_id", "at"], unique=False)

    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_invites_cadre_id_cadres")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_invites_code_hash")),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invites_cadre_id"), ["cadre_id"], unique=False)

    op.create_table(
        "telegram_accounts",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cadre_id"], ["cadres.id"], name=op.f("fk_telegram_accounts_cadre_id_cadres")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_telegram_accounts")),
        sa.UniqueConstraint("cadre_id", name=op.f("uq_telegram_accounts_cadre_id")),
    )


def downgrade() -> None:
    op.drop_table("telegram_accounts")
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invites_cadre_id"))

    op.drop_table("invites")
    with op.batch_alter_table("telegram_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_telegram_attempts_user_at")

    op.drop_table("telegram_attempts")
    op.drop_table("processed_updates")
