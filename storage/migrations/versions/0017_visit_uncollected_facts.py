"""visits: the derived facts a visit's script did not collect (未采集), so reports say so instead of 0

A county's script may lack the questions a fact needs (issue 17: facts follow the script's roles). Such a
visit's income, per-capita net, group or a 两不愁三保障 item is not known, and a report must say 未采集 rather
than count it as met or as zero income. The codes (survey.facts: counted_income, per_capita_net, food, …,
group, below_monitoring_line, …) are joined by ","; NULL or empty for a visit whose facts were all collected
(every visit before this revision: the built-in script collects them all).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch_op:
        batch_op.add_column(sa.Column("uncollected", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch_op:
        batch_op.drop_column("uncollected")
