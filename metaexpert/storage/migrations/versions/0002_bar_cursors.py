"""Bar cursors (the last bar each expert processed, per stream) for restart recovery, and an
index for time-range queries of an expert's fills.

Revision ID: 0002_bar_cursors
Revises: 0001_initial_schema
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_bar_cursors"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

IDENTIFIER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bar_cursors",
        sa.Column(
            "expert_id",
            IDENTIFIER,
            sa.ForeignKey("experts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("stream", sa.String(128), primary_key=True),
        sa.Column("last_bar_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_trades_expert_id_timestamp_ms", "trades", ["expert_id", "timestamp_ms"])


def downgrade() -> None:
    op.drop_index("ix_trades_expert_id_timestamp_ms", table_name="trades")
    op.drop_table("bar_cursors")
