"""ccxt snapshots -> core Order: increments become fills, repeats never double-count."""

from __future__ import annotations

import pytest
from ccxt.base.decimal_to_precision import DECIMAL_PLACES

from metaexpert.core.enums import OrderSide, OrderStatus, OrderType
from metaexpert.core.order import Order
from metaexpert.exchanges.mapping import apply_order_snapshot, market_spec_from_ccxt


def _order() -> Order:
    return Order(
        symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.LIMIT, quantity=1.0, price=100.0
    )


def test_apply_order_snapshot_with_repeated_partial_snapshots_fills_incrementally() -> None:
    order = _order()
    first = {
        "id": "7",
        "status": "open",
        "filled": 0.4,
        "average": 100.0,
        "fee": {"cost": 0.04, "currency": "USDT"},
    }
    apply_order_snapshot(order, first)
    apply_order_snapshot(order, first)  # the same snapshot again (a websocket echo)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_quantity == pytest.approx(
        0.4
    )
    assert len(order.trades) == 1 and order.order_id == "7"
    apply_order_snapshot(
        order,
        {
            "id": "7",
            "status": "closed",
            "filled": 1.0,
            "average": 99.4,
            "fee": {"cost": 0.1, "currency": "USDT"},
        },
    )
    assert order.status is OrderStatus.FILLED
    assert order.trades[1].price == pytest.approx(99.0)  # (99.4*1.0 - 100*0.4) / 0.6
    assert order.average_price == pytest.approx(99.4) and order.fee == pytest.approx(0.1)


def test_apply_order_snapshot_with_cancel_after_partial_fill_keeps_fill() -> None:
    order = _order()
    apply_order_snapshot(order, {"id": "8", "status": "canceled", "filled": 0.25, "average": 101.0})
    assert order.status is OrderStatus.CANCELLED and order.filled_quantity == pytest.approx(0.25)
    rejected = _order()
    apply_order_snapshot(rejected, {"id": "9", "status": "rejected", "info": {"msg": "post only"}})
    assert rejected.status is OrderStatus.REJECTED and rejected.reject_reason == "post only"


def test_market_spec_from_ccxt_with_decimal_precision_converts_steps() -> None:
    market = {
        "id": "BTC-USDT-SWAP",
        "base": "BTC",
        "quote": "USDT",
        "settle": "USDT",
        "swap": True,
        "linear": True,
        "contractSize": 0.01,
        "precision": {"amount": 1, "price": 2},
        "limits": {"amount": {"min": 1}, "leverage": {"max": None}},
        "maker": 0.0002,
        "taker": 0.0005,
    }
    spec = market_spec_from_ccxt(
        market, "BTCUSDT", precision_mode=DECIMAL_PLACES, default_max_leverage=125
    )
    assert (spec.amount_step, spec.price_step, spec.contract_size) == (0.1, 0.01, 0.01)
    assert spec.max_leverage == 125 and spec.min_amount == 1 and spec.taker_fee == 0.0005


@pytest.mark.parametrize(
    ("side", "direction", "expected"),
    [
        ("Sell", 1, OrderType.TAKE_PROFIT),
        ("Sell", 2, OrderType.STOP_MARKET),
        ("Buy", 2, OrderType.TAKE_PROFIT),
        ("Buy", 1, OrderType.STOP_MARKET),
    ],
)
def test_bybit_conditional_exit_read_back_with_trigger_direction_keeps_target_or_stop(
    side, direction, expected
):
    """A Bybit target is a reduce-only conditional order whose trigger lies beyond the price in the
    position's favour; ccxt names it by ``takeProfitPrice`` = ``triggerPrice``. Read back at restart,
    every target became a stop (the trigger price alone made it a stop)."""
    import ccxt

    from metaexpert.exchanges.mapping import order_from_snapshot

    client = ccxt.bybit()
    client.markets_by_id = {}
    row = {
        "orderId": "1",
        "orderLinkId": "me-1",
        "symbol": "BTCUSDT",
        "side": side,
        "orderType": "Market",
        "orderStatus": "Untriggered",
        "qty": "0.01",
        "price": "0",
        "triggerPrice": "115949.6",
        "triggerDirection": direction,
        "reduceOnly": True,
        "takeProfit": "0",
        "stopLoss": "0",
        "cumExecQty": "0",
        "createdTime": "1747759320000",
        "updatedTime": "1747759320000",
    }
    order = order_from_snapshot(client.parse_order(row), "BTCUSDT")
    assert (order.order_type, order.stop_price) == (expected, 115949.6)
