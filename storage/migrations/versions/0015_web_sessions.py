"""web_links, web_sessions, web_keys: the dashboard's one-time sign-in links, its server-side sessions, and the
cookie-signing key made once when ZOUFANG_WEB_SECRET is not set

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 12:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _token_table(name: str, closed: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(closed, sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f(f"fk_{name}_cadre_id_cadres")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("token_hash", name=op.f(f"uq_{name}_token_hash")),
    )
    op.create_index(op.f(f"ix_{name}_cadre_id"), name, ["cadre_id"])


def upgrade() -> None:
    _token_table("web_links", "used_at")
    _token_table("web_sessions", "revoked_at")
    op.create_table(
        "web_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_keys")),
    )


def downgrade() -> None:
    op.drop_table("web_keys")
    for name in ("web_sessions", "web_links"):
        op.drop_index(op.f(f"ix_{name}_cadre_id"), table_name=name)
        op.drop_table(name)
