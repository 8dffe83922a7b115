"""Rows back into core entities, for restart recovery and reports."""

from __future__ import annotations

from collections.abc import Sequence

from metaexpert.core.account import Account
from metaexpert.core.enums import (
    LiquidityRole,
    MarginMode,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
)
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position
from metaexpert.storage.models import (
    AccountSnapshotRow,
    OrderRow,
    OrderStatusHistoryRow,
    PositionSnapshotRow,
    TradeRow,
)


def trade_from_row(row: TradeRow) -> Trade:
    return Trade(
        trade_id=row.trade_id,
        order_id=row.exchange_order_id,
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=OrderSide(row.side),
        quantity=row.quantity,
        price=row.price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        timestamp=row.timestamp_ms,
        liquidity=LiquidityRole(row.liquidity),
        position_side=PositionSide(row.position_side) if row.position_side else None,
        realized_pnl=row.realized_pnl,
    )


def order_from_row(
    row: OrderRow, history: Sequence[OrderStatusHistoryRow], trades: Sequence[TradeRow] = ()
) -> Order:
    """Rebuild an order exactly as saved, status history and fills included."""
    ordered_history = sorted(history, key=lambda entry: entry.sequence)
    return Order(
        symbol=row.symbol,
        side=OrderSide(row.side),
        order_type=OrderType(row.order_type),
        quantity=row.quantity,
        price=row.price,
        stop_price=row.stop_price,
        time_in_force=TimeInForce(row.time_in_force),
        position_side=PositionSide(row.position_side) if row.position_side else None,
        reduce_only=row.reduce_only,
        client_order_id=row.client_order_id,
        order_id=row.exchange_order_id,
        status=OrderStatus(row.status),
        created_at=row.created_at_ms,
        updated_at=row.updated_at_ms,
        expire_at=row.expire_at_ms,
        filled_quantity=row.filled_quantity,
        average_price=row.average_price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        cost=row.cost,
        triggered=row.triggered,
        trailing_pct=row.trailing_pct,
        activation_price=row.activation_price,
        oco_group=row.oco_group,
        reject_reason=row.reject_reason,
        tag=row.tag,
        comment=row.comment,
        engine_managed=row.engine_managed,
        trades=[
            trade_from_row(trade) for trade in sorted(trades, key=lambda t: (t.timestamp_ms, t.id))
        ],
        status_history=[
            (OrderStatus(entry.status), entry.timestamp_ms) for entry in ordered_history
        ],
    )


def position_from_row(row: PositionSnapshotRow) -> Position:
    return Position(
        symbol=row.symbol,
        side=PositionSide(row.side),
        quantity=row.quantity,
        entry_price=row.entry_price,
        leverage=row.leverage,
        margin_mode=MarginMode(row.margin_mode),
        inverse=row.inverse,
        contract_size=row.contract_size,
        maintenance_margin_rate=row.maintenance_margin_rate,
        realized_pnl=row.realized_pnl,
        fees=row.fees,
        opened_at=row.opened_at_ms,
        updated_at=row.updated_at_ms,
        mark_price=row.mark_price,
        extra_margin=row.extra_margin,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
    )


def account_from_row(row: AccountSnapshotRow) -> Account:
    return Account(
        currency=row.currency,
        balance=row.balance,
        equity=row.equity,
        used_margin=row.used_margin,
        unrealized_pnl=row.unrealized_pnl,
        fees_paid=row.fees_paid,
        timestamp=row.timestamp_ms,
    )
