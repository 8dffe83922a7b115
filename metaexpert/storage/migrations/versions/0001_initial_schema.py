"""Initial schema: experts, orders and their status history, trades, position and account
snapshots, expert key/value state, decisions, errors, backtest runs, the append-only audit
trail and the archive manifests.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None

IDENTIFIER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
UID = sa.String(64)

_APPEND_ONLY = "audit_events is append-only"
_DELETE_REFUSED = (
    f"{_APPEND_ONLY}: DELETE refused (only rows of a verified archive batch recorded "
    "in archive_manifests may be removed, by metaexpert.storage.Archiver)"
)


def _id() -> sa.Column:
    return sa.Column("id", IDENTIFIER, primary_key=True)


def _expert_fk(nullable: bool = False, cascade: bool = True) -> sa.Column:
    return sa.Column(
        "expert_id",
        IDENTIFIER,
        sa.ForeignKey("experts.id", ondelete="CASCADE" if cascade else None),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "experts",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trade_mode", sa.String(16), nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("market_type", sa.String(16), nullable=False),
        sa.Column("configuration", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("name", "trade_mode", name="uq_experts_name_trade_mode"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "orders",
        _id(),
        _expert_fk(),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("exchange_order_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("position_side", sa.String(8), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expire_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("average_price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("fee_currency", sa.String(32), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("triggered", sa.Boolean(), nullable=False),
        sa.Column("trailing_pct", sa.Float(), nullable=True),
        sa.Column("activation_price", sa.Float(), nullable=True),
        sa.Column("oco_group", sa.String(64), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=False),
        sa.Column("tag", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.UniqueConstraint(
            "expert_id", "client_order_id", name="uq_orders_expert_id_client_order_id"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_orders_expert_id_status", "orders", ["expert_id", "status"])
    op.create_table(
        "order_status_history",
        _id(),
        sa.Column(
            "order_id", IDENTIFIER, sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "order_id", "sequence", name="uq_order_status_history_order_id_sequence"
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "trades",
        _id(),
        _expert_fk(),
        sa.Column("trade_id", sa.String(128), nullable=False),
        sa.Column("exchange_order_id", sa.String(128), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("fee_currency", sa.String(32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("position_side", sa.String(8), nullable=True),
        sa.Column("realized_pnl", sa.Float(), nullable=False),
        sa.UniqueConstraint("expert_id", "trade_id", name="uq_trades_expert_id_trade_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_trades_expert_id_client_order_id", "trades", ["expert_id", "client_order_id"]
    )
    op.create_table(
        "position_snapshots",
        _id(),
        sa.Column("record_uid", UID, nullable=False),
        _expert_fk(),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("leverage", sa.Float(), nullable=False),
        sa.Column("margin_mode", sa.String(16), nullable=False),
        sa.Column("inverse", sa.Boolean(), nullable=False),
        sa.Column("contract_size", sa.Float(), nullable=False),
        sa.Column("maintenance_margin_rate", sa.Float(), nullable=False),
        sa.Column("realized_pnl", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("mark_price", sa.Float(), nullable=False),
        sa.Column("extra_margin", sa.Float(), nullable=False),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.UniqueConstraint("record_uid", name="uq_position_snapshots_record_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_position_snapshots_expert_id_symbol_side",
        "position_snapshots",
        ["expert_id", "symbol", "side"],
    )
    op.create_table(
        "account_snapshots",
        _id(),
        sa.Column("record_uid", UID, nullable=False),
        _expert_fk(),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(32), nullable=False),
        sa.Column("balance", sa.Float(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("used_margin", sa.Float(), nullable=False),
        sa.Column("unrealized_pnl", sa.Float(), nullable=False),
        sa.Column("fees_paid", sa.Float(), nullable=False),
        sa.UniqueConstraint("record_uid", name="uq_account_snapshots_record_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_account_snapshots_expert_id_timestamp_ms",
        "account_snapshots",
        ["expert_id", "timestamp_ms"],
    )
    op.create_table(
        "expert_state",
        sa.Column(
            "expert_id",
            IDENTIFIER,
            sa.ForeignKey("experts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", JSON_DOCUMENT, nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "decisions",
        _id(),
        sa.Column("record_uid", UID, nullable=False),
        _expert_fk(nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("domain", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", JSON_DOCUMENT, nullable=False),
        sa.UniqueConstraint("record_uid", name="uq_decisions_record_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_decisions_expert_id_timestamp_ms", "decisions", ["expert_id", "timestamp_ms"]
    )
    op.create_table(
        "errors",
        _id(),
        sa.Column("record_uid", UID, nullable=False),
        _expert_fk(nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.UniqueConstraint("record_uid", name="uq_errors_record_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_errors_expert_id_timestamp_ms", "errors", ["expert_id", "timestamp_ms"])
    op.create_table(
        "backtest_runs",
        _id(),
        sa.Column("run_uid", UID, nullable=False),
        sa.Column("expert_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("data_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("data_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("parameters", JSON_DOCUMENT, nullable=False),
        sa.Column("metrics", JSON_DOCUMENT, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.UniqueConstraint("run_uid", name="uq_backtest_runs_run_uid"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "archive_manifests",
        _id(),
        sa.Column("batch_uid", UID, nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("cutoff_ms", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("rows_checksum", sa.String(64), nullable=False),
        sa.Column("files", JSON_DOCUMENT, nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("batch_uid", name="uq_archive_manifests_batch_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_archive_manifests_table_name_cutoff_ms",
        "archive_manifests",
        ["table_name", "cutoff_ms"],
    )
    op.create_table(
        "audit_events",
        _id(),
        sa.Column("record_uid", UID, nullable=False),
        sa.Column("expert_id", IDENTIFIER, sa.ForeignKey("experts.id"), nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=True),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.UniqueConstraint("record_uid", name="uq_audit_events_record_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_audit_events_expert_id_timestamp_ms", "audit_events", ["expert_id", "timestamp_ms"]
    )
    op.create_index("ix_audit_events_timestamp_ms", "audit_events", ["timestamp_ms"])
    _create_audit_guard()


def _create_audit_guard() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' AND EXISTS (
                    SELECT 1 FROM archive_manifests m
                    WHERE m.table_name = 'audit_events' AND m.cutoff_ms > OLD.timestamp_ms AND OLD.id BETWEEN m.first_id AND m.last_id
                ) THEN
                    RETURN OLD;
                END IF;
                IF TG_OP = 'DELETE' THEN
                    RAISE EXCEPTION '{_DELETE_REFUSED}' USING ERRCODE = 'restrict_violation';
                END IF;
                RAISE EXCEPTION '{_APPEND_ONLY}: % refused', TG_OP USING ERRCODE = 'restrict_violation';
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_guard()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_guard()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_events_refuse_update BEFORE UPDATE ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}: UPDATE refused'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_events_refuse_delete BEFORE DELETE ON audit_events "
            "WHEN NOT EXISTS (SELECT 1 FROM archive_manifests m "
            "WHERE m.table_name = 'audit_events' AND m.cutoff_ms > OLD.timestamp_ms AND OLD.id BETWEEN m.first_id AND m.last_id) "
            f"BEGIN SELECT RAISE(ABORT, '{_DELETE_REFUSED}'); END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_refuse_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_events_refuse_update")
    for table in (
        "audit_events",
        "archive_manifests",
        "backtest_runs",
        "errors",
        "decisions",
        "expert_state",
        "account_snapshots",
        "position_snapshots",
        "trades",
        "order_status_history",
        "orders",
        "experts",
    ):
        op.drop_table(table)
