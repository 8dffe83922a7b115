"""SQLAlchemy 2 typed models of the trading state.

Money and quantities are ``Float`` (double precision): the core entities compute in
binary floats, and a double round-trips every one of them bit for bit, which is what
restart recovery needs (a position reloaded must equal the position saved). ``Numeric``
would force a per-column scale on assets whose precision ranges from 0 to 18 decimals
and convert Decimal <-> float on every read and write for no gain in fidelity.

Timestamps are UTC epoch milliseconds (``BigInteger``, the unit the core uses); the
audit trail also keeps an aware ``recorded_at`` datetime for humans and SQL range
queries. Rows written through the idempotent write path carry a ``record_uid`` so
that replaying the write-ahead journal can never insert a row twice.

The schema is created and changed only by the Alembic migrations in
``metaexpert/storage/migrations``; these models describe the head revision and are
checked against it by the test suite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from metaexpert.storage.column_types import Identifier, JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UID_LENGTH = 64

#: SQLite reuses the highest rowid after rows are deleted (archived); AUTOINCREMENT
#: makes ids unique for the table's lifetime, as PostgreSQL sequences are. Archive
#: manifests and restores rely on it.
_NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ExpertRow(Base):
    """An expert as run in one trade mode; paper and live state never mix."""

    __tablename__ = "experts"
    __table_args__ = (UniqueConstraint("name", "trade_mode"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    trade_mode: Mapped[str] = mapped_column(String(16))
    exchange: Mapped[str] = mapped_column(String(32), default="")
    market_type: Mapped[str] = mapped_column(String(16), default="")
    configuration: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    """The latest state of an order; its transitions live in ``order_status_history``."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("expert_id", "client_order_id"),
        Index("ix_orders_expert_id_status", "expert_id", "status"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    client_order_id: Mapped[str] = mapped_column(String(64))
    exchange_order_id: Mapped[str] = mapped_column(String(128), default="")
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    stop_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    time_in_force: Mapped[str] = mapped_column(String(8))
    position_side: Mapped[str | None] = mapped_column(String(8), nullable=True)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    expire_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    filled_quantity: Mapped[float] = mapped_column(Float, default=0.0)
    average_price: Mapped[float] = mapped_column(Float, default=0.0)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    fee_currency: Mapped[str] = mapped_column(String(32), default="")
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    triggered: Mapped[bool] = mapped_column(Boolean, default=False)
    trailing_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    activation_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    oco_group: Mapped[str] = mapped_column(String(64), default="")
    reject_reason: Mapped[str] = mapped_column(Text, default="")
    tag: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    engine_managed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class OrderStatusHistoryRow(Base):
    """Every status an order went through, numbered, with its time."""

    __tablename__ = "order_status_history"
    __table_args__ = (UniqueConstraint("order_id", "sequence"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class TradeRow(Base):
    """One fill with its fee; ``trade_id`` is unique per expert."""

    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("expert_id", "trade_id"),
        Index("ix_trades_expert_id_client_order_id", "expert_id", "client_order_id"),
        Index("ix_trades_expert_id_timestamp_ms", "expert_id", "timestamp_ms"),  # revision 0002
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    trade_id: Mapped[str] = mapped_column(String(128))
    exchange_order_id: Mapped[str] = mapped_column(String(128), default="")
    client_order_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    fee_currency: Mapped[str] = mapped_column(String(32), default="")
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    liquidity: Mapped[str] = mapped_column(String(8))
    position_side: Mapped[str | None] = mapped_column(String(8), nullable=True)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)


class PositionSnapshotRow(Base):
    """A position as it was after a change; the latest per (symbol, side) is the current one."""

    __tablename__ = "position_snapshots"
    __table_args__ = (
        Index("ix_position_snapshots_expert_id_symbol_side", "expert_id", "symbol", "side"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32), default="")
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float] = mapped_column(Float)
    margin_mode: Mapped[str] = mapped_column(String(16))
    inverse: Mapped[bool] = mapped_column(Boolean, default=False)
    contract_size: Mapped[float] = mapped_column(Float, default=1.0)
    maintenance_margin_rate: Mapped[float] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    fees: Mapped[float] = mapped_column(Float, default=0.0)
    opened_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    mark_price: Mapped[float] = mapped_column(Float, default=0.0)
    extra_margin: Mapped[float] = mapped_column(Float, default=0.0)
    stop_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    take_profit: Mapped[float | None] = mapped_column(Float, nullable=True)


class AccountSnapshotRow(Base):
    __tablename__ = "account_snapshots"
    __table_args__ = (
        Index("ix_account_snapshots_expert_id_timestamp_ms", "expert_id", "timestamp_ms"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(32))
    balance: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    used_margin: Mapped[float] = mapped_column(Float, default=0.0)
    unrealized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    fees_paid: Mapped[float] = mapped_column(Float, default=0.0)


class ExpertStateRow(Base):
    """The expert's own key/value store (JSON values), read and written from handlers."""

    __tablename__ = "expert_state"

    expert_id: Mapped[int] = mapped_column(
        ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class DecisionRow(Base):
    """A risk or compliance rule's decision (blocked, resized, forced exit, halt, resume)."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_expert_id_timestamp_ms", "expert_id", "timestamp_ms"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    expert_id: Mapped[int | None] = mapped_column(
        ForeignKey("experts.id", ondelete="CASCADE"), nullable=True
    )
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    domain: Mapped[str] = mapped_column(String(16))  # risk | compliance
    rule: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class ErrorRow(Base):
    __tablename__ = "errors"
    __table_args__ = (
        Index("ix_errors_expert_id_timestamp_ms", "expert_id", "timestamp_ms"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    expert_id: Mapped[int | None] = mapped_column(
        ForeignKey("experts.id", ondelete="CASCADE"), nullable=True
    )
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    error_type: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    handler: Mapped[str] = mapped_column(String(200), default="")
    traceback: Mapped[str] = mapped_column(Text, default="")


class BacktestRunRow(Base):
    __tablename__ = "backtest_runs"
    __table_args__ = (_NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    run_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    expert_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # running | finished | failed
    started_at_ms: Mapped[int] = mapped_column(BigInteger)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data_start_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data_end_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")


class AuditEventRow(Base):
    """Append-only trail of order intents, exchange responses and risk decisions.

    Database triggers refuse every UPDATE, and every DELETE except of rows that belong
    to a recorded, verified archive batch (see ``archive_manifests``).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_expert_id_timestamp_ms", "expert_id", "timestamp_ms"),
        Index("ix_audit_events_timestamp_ms", "timestamp_ms"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("experts.id"), nullable=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class ArchiveManifestRow(Base):
    """One verified archival: which rows left the hot database, to which files, with which checksum."""

    __tablename__ = "archive_manifests"
    __table_args__ = (
        Index("ix_archive_manifests_table_name_cutoff_ms", "table_name", "cutoff_ms"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    batch_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    table_name: Mapped[str] = mapped_column(String(64))
    cutoff_ms: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int] = mapped_column(BigInteger)  # the batch: ids in [first_id, last_id]
    last_id: Mapped[int] = mapped_column(BigInteger)  # with a timestamp before cutoff_ms
    rows_checksum: Mapped[str] = mapped_column(String(64))
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BarCursorRow(Base):
    """The last bar an expert finished processing, per stream (e.g. ``BTCUSDT:1h``). Revision 0002."""

    __tablename__ = "bar_cursors"

    expert_id: Mapped[int] = mapped_column(
        ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_bar_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
