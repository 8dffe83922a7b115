"""Repositories: typed reads and writes per kind of trading state.

Each method is one short transaction, retried on transient failures. Writes build
``StorageRecord`` objects and go through ``apply_records``, the same idempotent path
the BatchWriter uses, so a direct write and a batched write can never disagree.
The audit repository has no update or delete method on purpose; the database
triggers back that up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metaexpert.core.account import Account
from metaexpert.core.clock import now_ms
from metaexpert.core.enums import OrderStatus
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position
from metaexpert.storage.apply import apply_records, insert_for
from metaexpert.storage.database import Database
from metaexpert.storage.mapping import (
    account_from_row,
    order_from_row,
    position_from_row,
    trade_from_row,
)
from metaexpert.storage.models import (
    AccountSnapshotRow,
    AuditEventRow,
    BarCursorRow,
    DecisionRow,
    ErrorRow,
    ExpertRow,
    ExpertStateRow,
    OrderRow,
    OrderStatusHistoryRow,
    PositionSnapshotRow,
    TradeRow,
)
from metaexpert.storage.records import (
    AuditKind,
    DecisionDomain,
    StorageRecord,
    account_record,
    audit_record,
    bar_cursor_record,
    decision_record,
    error_record,
    order_record,
    position_record,
    state_delete_record,
    state_set_record,
    trade_record,
)
from metaexpert.storage.redaction import sanitize_configuration

_OPEN_STATUSES = tuple(status.value for status in OrderStatus if not status.is_terminal)


class _Repository:
    def __init__(self, database: Database) -> None:
        self.database = database

    def _apply(self, records: Sequence[StorageRecord], what: str) -> None:
        self.database.write(lambda session: apply_records(session, records), what=what)


@dataclass(frozen=True, slots=True)
class ExpertInfo:
    expert_id: int
    name: str
    trade_mode: str
    exchange: str
    market_type: str
    configuration: dict[str, Any]
    created_at_ms: int
    updated_at_ms: int


class ExpertRepository(_Repository):
    """Experts, one row per (name, trade mode), with their configuration minus secrets."""

    def register(
        self,
        name: str,
        *,
        trade_mode: str,
        exchange: str = "",
        market_type: str = "",
        configuration: dict[str, Any] | None = None,
    ) -> int:
        """Create or update the expert and return its id (stable across restarts)."""
        if not name or not name.strip():
            raise ValueError("expert name must not be empty")
        if not trade_mode:
            raise ValueError(f"expert {name!r} needs a trade mode (backtest, paper or live)")
        clean = sanitize_configuration(configuration or {})
        moment = now_ms()

        def unit(session: Session) -> int:
            statement = insert_for(session, ExpertRow).values(
                name=name,
                trade_mode=str(trade_mode),
                exchange=str(exchange),
                market_type=str(market_type),
                configuration=clean,
                created_at_ms=moment,
                updated_at_ms=moment,
            )
            statement = statement.on_conflict_do_update(
                index_elements=[ExpertRow.name, ExpertRow.trade_mode],
                set_={
                    "exchange": statement.excluded.exchange,
                    "market_type": statement.excluded.market_type,
                    "configuration": statement.excluded.configuration,
                    "updated_at_ms": statement.excluded.updated_at_ms,
                },
            ).returning(ExpertRow.id)
            return int(session.execute(statement).scalar_one())

        return self.database.write(unit, what=f"register expert {name!r}")

    def get(self, expert_id: int) -> ExpertInfo | None:
        row = self.database.read(
            lambda session: session.get(ExpertRow, expert_id), what="read expert"
        )
        return None if row is None else _expert_info(row)

    def find(self, name: str, *, trade_mode: str) -> ExpertInfo | None:
        row = self.database.read(
            lambda session: session.scalar(
                select(ExpertRow).where(
                    ExpertRow.name == name, ExpertRow.trade_mode == str(trade_mode)
                )
            ),
            what="find expert",
        )
        return None if row is None else _expert_info(row)


def _expert_info(row: ExpertRow) -> ExpertInfo:
    return ExpertInfo(
        expert_id=row.id,
        name=row.name,
        trade_mode=row.trade_mode,
        exchange=row.exchange,
        market_type=row.market_type,
        configuration=row.configuration,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
    )


class OrderRepository(_Repository):
    """Orders keyed by client order id (unique per expert), with every status transition."""

    def save(self, expert_id: int, order: Order) -> None:
        self._apply([order_record(expert_id, order)], "save order")

    def get(self, expert_id: int, client_order_id: str) -> Order | None:
        def query(session: Session) -> Order | None:
            orders = _load_orders(session, expert_id, OrderRow.client_order_id == client_order_id)
            return orders[0] if orders else None

        return self.database.read(query, what="read order")

    def open_orders(self, expert_id: int) -> list[Order]:
        """Every non-terminal order (created, submitted, partially filled), oldest first."""
        return self.database.read(
            lambda session: _load_orders(session, expert_id, OrderRow.status.in_(_OPEN_STATUSES)),
            what="read open orders",
        )

    def status_history(self, expert_id: int, client_order_id: str) -> list[tuple[OrderStatus, int]]:
        def query(session: Session) -> list[tuple[OrderStatus, int]]:
            rows = session.execute(
                select(OrderStatusHistoryRow.status, OrderStatusHistoryRow.timestamp_ms)
                .join(OrderRow, OrderRow.id == OrderStatusHistoryRow.order_id)
                .where(OrderRow.expert_id == expert_id, OrderRow.client_order_id == client_order_id)
                .order_by(OrderStatusHistoryRow.sequence)
            ).all()
            return [(OrderStatus(status), timestamp) for status, timestamp in rows]

        return self.database.read(query, what="read order history")


def _load_orders(session: Session, expert_id: int, condition: Any) -> list[Order]:
    rows = session.scalars(
        select(OrderRow)
        .where(OrderRow.expert_id == expert_id, condition)
        .order_by(OrderRow.created_at_ms, OrderRow.id)
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    history: dict[int, list[OrderStatusHistoryRow]] = {order_id: [] for order_id in ids}
    for entry in session.scalars(
        select(OrderStatusHistoryRow).where(OrderStatusHistoryRow.order_id.in_(ids))
    ):
        history[entry.order_id].append(entry)
    client_ids = [row.client_order_id for row in rows]
    fills: dict[str, list[TradeRow]] = {client_id: [] for client_id in client_ids}
    for trade in session.scalars(
        select(TradeRow).where(
            TradeRow.expert_id == expert_id, TradeRow.client_order_id.in_(client_ids)
        )
    ):
        fills[trade.client_order_id].append(trade)
    return [order_from_row(row, history[row.id], fills[row.client_order_id]) for row in rows]


class TradeRepository(_Repository):
    """Fills with their fees; a trade id is stored once per expert however often it is saved."""

    def save(self, expert_id: int, trade: Trade) -> None:
        self._apply([trade_record(expert_id, trade)], "save trade")

    def list(
        self,
        expert_id: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        symbol: str | None = None,
    ) -> list[Trade]:
        def query(session: Session) -> list[Trade]:
            statement = select(TradeRow).where(TradeRow.expert_id == expert_id)
            if start_ms is not None:
                statement = statement.where(TradeRow.timestamp_ms >= start_ms)
            if end_ms is not None:
                statement = statement.where(TradeRow.timestamp_ms < end_ms)
            if symbol is not None:
                statement = statement.where(TradeRow.symbol == symbol)
            return [
                trade_from_row(row)
                for row in session.scalars(statement.order_by(TradeRow.timestamp_ms, TradeRow.id))
            ]

        return self.database.read(query, what="read trades")


class PositionRepository(_Repository):
    """Position snapshots; the latest per (symbol, side) is the position now."""

    def save_snapshot(
        self, expert_id: int, position: Position, *, timestamp_ms: int, action: str = ""
    ) -> None:
        self._apply(
            [position_record(expert_id, position, timestamp_ms=timestamp_ms, action=action)],
            "save position",
        )

    def current(self, expert_id: int, *, include_closed: bool = False) -> list[Position]:
        def query(session: Session) -> list[Position]:
            latest = (
                select(func.max(PositionSnapshotRow.id))
                .where(PositionSnapshotRow.expert_id == expert_id)
                .group_by(PositionSnapshotRow.symbol, PositionSnapshotRow.side)
            )
            rows = session.scalars(
                select(PositionSnapshotRow)
                .where(PositionSnapshotRow.id.in_(latest))
                .order_by(PositionSnapshotRow.symbol, PositionSnapshotRow.side)
            )
            positions = [position_from_row(row) for row in rows]
            return (
                positions
                if include_closed
                else [position for position in positions if position.is_open]
            )

        return self.database.read(query, what="read positions")


class AccountRepository(_Repository):
    def save_snapshot(
        self, expert_id: int, account: Account, *, timestamp_ms: int | None = None
    ) -> None:
        self._apply([account_record(expert_id, account, timestamp_ms=timestamp_ms)], "save account")

    def latest(self, expert_id: int) -> Account | None:
        def query(session: Session) -> Account | None:
            row = session.scalar(
                select(AccountSnapshotRow)
                .where(AccountSnapshotRow.expert_id == expert_id)
                .order_by(AccountSnapshotRow.id.desc())
                .limit(1)
            )
            return None if row is None else account_from_row(row)

        return self.database.read(query, what="read account")


class ExpertStateRepository(_Repository):
    """The expert's own key/value store: JSON values that survive restarts."""

    def set(self, expert_id: int, key: str, value: Any) -> None:
        self._apply([state_set_record(expert_id, key, value)], f"set state {key!r}")

    def delete(self, expert_id: int, key: str) -> None:
        self._apply([state_delete_record(expert_id, key)], f"delete state {key!r}")

    def get(self, expert_id: int, key: str, default: Any = None) -> Any:
        def query(session: Session) -> Any:
            row = session.get(ExpertStateRow, (expert_id, key))
            return default if row is None else row.value

        return self.database.read(query, what=f"read state {key!r}")

    def items(self, expert_id: int) -> dict[str, Any]:
        def query(session: Session) -> dict[str, Any]:
            rows = session.scalars(
                select(ExpertStateRow).where(ExpertStateRow.expert_id == expert_id)
            )
            return {row.key: row.value for row in rows}

        return self.database.read(query, what="read state")


class BarCursorRepository(_Repository):
    """The last bar processed per stream; it only moves forward."""

    def advance(self, expert_id: int, stream: str, last_bar_ms: int) -> None:
        self._apply([bar_cursor_record(expert_id, stream, last_bar_ms)], "advance bar cursor")

    def all(self, expert_id: int) -> dict[str, int]:
        def query(session: Session) -> dict[str, int]:
            rows = session.scalars(select(BarCursorRow).where(BarCursorRow.expert_id == expert_id))
            return {row.stream: row.last_bar_ms for row in rows}

        return self.database.read(query, what="read bar cursors")


@dataclass(frozen=True, slots=True)
class DecisionInfo:
    domain: str
    rule: str
    action: str
    timestamp_ms: int
    symbol: str | None
    reason: str
    details: dict[str, Any]


class DecisionRepository(_Repository):
    """Risk and compliance decisions."""

    def record(
        self,
        expert_id: int | None,
        *,
        domain: DecisionDomain | str,
        rule: str,
        action: str,
        timestamp_ms: int,
        symbol: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        decision = decision_record(
            expert_id,
            domain=domain,
            rule=rule,
            action=action,
            timestamp_ms=timestamp_ms,
            symbol=symbol,
            reason=reason,
            details=details,
        )
        audit_kind = (
            AuditKind.RISK_DECISION
            if decision.payload["domain"] == "risk"
            else AuditKind.COMPLIANCE_DECISION
        )
        audit = audit_record(
            expert_id, audit_kind, dict(decision.payload), timestamp_ms=timestamp_ms
        )
        self._apply([decision, audit], "record decision")

    def list(
        self, expert_id: int | None = None, *, domain: DecisionDomain | str | None = None
    ) -> list[DecisionInfo]:
        def query(session: Session) -> list[DecisionInfo]:
            statement = select(DecisionRow)
            if expert_id is not None:
                statement = statement.where(DecisionRow.expert_id == expert_id)
            if domain is not None:
                statement = statement.where(DecisionRow.domain == DecisionDomain(domain).value)
            return [
                DecisionInfo(
                    row.domain,
                    row.rule,
                    row.action,
                    row.timestamp_ms,
                    row.symbol,
                    row.reason,
                    row.details,
                )
                for row in session.scalars(
                    statement.order_by(DecisionRow.timestamp_ms, DecisionRow.id)
                )
            ]

        return self.database.read(query, what="read decisions")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    timestamp_ms: int
    error_type: str
    message: str
    source: str
    handler: str
    traceback: str


class ErrorRepository(_Repository):
    def record(
        self,
        expert_id: int | None,
        error: BaseException,
        *,
        timestamp_ms: int,
        source: str = "",
        handler: str = "",
    ) -> None:
        self._apply(
            [
                error_record(
                    expert_id, error, timestamp_ms=timestamp_ms, source=source, handler=handler
                )
            ],
            "record error",
        )

    def list(self, expert_id: int | None = None) -> list[ErrorInfo]:
        def query(session: Session) -> list[ErrorInfo]:
            statement = select(ErrorRow)
            if expert_id is not None:
                statement = statement.where(ErrorRow.expert_id == expert_id)
            return [
                ErrorInfo(
                    row.timestamp_ms,
                    row.error_type,
                    row.message,
                    row.source,
                    row.handler,
                    row.traceback,
                )
                for row in session.scalars(statement.order_by(ErrorRow.timestamp_ms, ErrorRow.id))
            ]

        return self.database.read(query, what="read errors")


@dataclass(frozen=True, slots=True)
class AuditEventInfo:
    record_uid: str
    expert_id: int | None
    timestamp_ms: int
    kind: str
    client_order_id: str | None
    payload: dict[str, Any]


class AuditRepository(_Repository):
    """Append-only: there is deliberately no update or delete here."""

    def append(
        self,
        expert_id: int | None,
        kind: AuditKind | str,
        payload: dict[str, Any],
        *,
        timestamp_ms: int,
        client_order_id: str | None = None,
    ) -> str:
        """Append one event; returns its record uid."""
        record = audit_record(
            expert_id, kind, payload, timestamp_ms=timestamp_ms, client_order_id=client_order_id
        )
        self._apply([record], "append audit event")
        return record.uid

    def list(
        self,
        expert_id: int | None = None,
        *,
        kind: AuditKind | str | None = None,
        client_order_id: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[AuditEventInfo]:
        def query(session: Session) -> list[AuditEventInfo]:
            statement = select(AuditEventRow)
            if expert_id is not None:
                statement = statement.where(AuditEventRow.expert_id == expert_id)
            if kind is not None:
                statement = statement.where(AuditEventRow.kind == str(kind))
            if client_order_id is not None:
                statement = statement.where(AuditEventRow.client_order_id == client_order_id)
            if start_ms is not None:
                statement = statement.where(AuditEventRow.timestamp_ms >= start_ms)
            if end_ms is not None:
                statement = statement.where(AuditEventRow.timestamp_ms < end_ms)
            return [
                AuditEventInfo(
                    row.record_uid,
                    row.expert_id,
                    row.timestamp_ms,
                    row.kind,
                    row.client_order_id,
                    row.payload,
                )
                for row in session.scalars(statement.order_by(AuditEventRow.id))
            ]

        return self.database.read(query, what="read audit events")

    def count(self) -> int:
        return self.database.read(
            lambda session: session.scalar(select(func.count()).select_from(AuditEventRow)) or 0,
            what="count audit events",
        )
