"""Orders the engine keeps itself in live mode (trailing stops, a spot target beside a venue
stop that holds the coin) are marked, so that a restart hands them back to the engine instead
of looking for them at the venue, which never knew them.

Revision ID: 0003_engine_managed_orders
Revises: 0002_bar_cursors
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_engine_managed_orders"
down_revision = "0002_bar_cursors"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both backends: SQLite's batch mode would copy and drop ``orders``, and
# the drop cascades to the status history that references it.
def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("engine_managed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("orders", "engine_managed")
