"""Spot trading through unmodified ccxt: fills, fees, balances, errors mapped to ccxt exceptions."""

from __future__ import annotations

import ccxt
import pytest

from metaexpert.sandbox import SandboxServer, make_ccxt_client
from tests.sandbox.conftest import POOR_KEY, POOR_SECRET


def test_market_buy_with_enough_quote_fills_at_price_and_charges_base_fee(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    order = spot.create_order("BTC/USDT", "market", "buy", 0.01)
    assert order["status"] == "closed"
    assert order["average"] == pytest.approx(price)
    assert order["trades"][0]["fee"]["currency"] == "BTC"
    balance = spot.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(1.0 + 0.01 * (1 - 0.001))
    assert balance["USDT"]["free"] == pytest.approx(100_000 - 0.01 * price)


def test_limit_buy_with_replay_crossing_fills_as_maker_at_limit(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    limit = round(price * 0.9, 2)
    order = spot.create_order(
        "BTC/USDT", "limit", "buy", 0.002, limit, {"clientOrderId": "my-limit-1"}
    )
    assert spot.fetch_order(order["id"], "BTC/USDT")["status"] == "open"
    assert spot.fetch_balance()["USDT"]["used"] == pytest.approx(0.002 * limit)
    sandbox.set_price("BTCUSDT", round(price * 0.85, 2))
    filled = spot.fetch_order(order["id"], "BTC/USDT")
    assert filled["status"] == "closed"
    assert filled["clientOrderId"] == "my-limit-1"
    trades = spot.fetch_my_trades("BTC/USDT")
    assert trades[-1]["price"] == limit  # a resting order fills at its limit, not the lower price
    assert trades[-1]["takerOrMaker"] == "maker"
    assert spot.fetch_open_orders("BTC/USDT") == []


def test_cancel_order_with_unknown_id_raises_order_not_found(spot: ccxt.binance) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        spot.cancel_order("424242", "BTC/USDT")


def test_fetch_order_with_unknown_id_raises_order_not_found(spot: ccxt.binance) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        spot.fetch_order("424242", "BTC/USDT")


def test_cancel_order_with_open_limit_releases_locked_quote(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    limit = round(sandbox.price("BTCUSDT") * 0.5, 2)
    order = spot.create_order("BTC/USDT", "limit", "buy", 0.01, limit)
    assert spot.cancel_order(order["id"], "BTC/USDT")["status"] == "canceled"
    assert spot.fetch_balance()["USDT"]["used"] == 0
    with pytest.raises(ccxt.OrderNotFound):
        spot.cancel_order(order["id"], "BTC/USDT")


def test_market_buy_with_insufficient_quote_raises_insufficient_funds(
    sandbox: SandboxServer,
) -> None:
    client = make_ccxt_client("binance", sandbox, POOR_KEY, POOR_SECRET)
    client.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "market", "buy", 0.001)


def test_limit_with_price_off_tick_raises_invalid_order(spot: ccxt.binance) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        spot.privatePostOrder(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "50000.005",
            }
        )


def test_order_below_min_notional_raises_bad_request(spot: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        spot.create_order("BTC/USDT", "limit", "buy", 0.00001, 50_000)


def test_limit_with_duplicate_client_order_id_is_rejected(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    limit = round(sandbox.price("BTCUSDT") * 0.5, 2)
    spot.create_order("BTC/USDT", "limit", "buy", 0.001, limit, {"clientOrderId": "same-id"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        spot.create_order("BTC/USDT", "limit", "buy", 0.001, limit, {"clientOrderId": "same-id"})
    assert len(spot.fetch_open_orders("BTC/USDT")) == 1


def test_stop_loss_with_price_falling_through_trigger_sells(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    trigger = round(price * 0.95, 2)
    order = spot.create_order(
        "BTC/USDT", "limit", "sell", 0.1, round(trigger - 10, 2), {"stopLossPrice": trigger}
    )
    assert order["status"] == "open" and order["triggerPrice"] == trigger
    sandbox.set_price("BTCUSDT", round(price * 0.97, 2))
    assert spot.fetch_order(order["id"], "BTC/USDT")["status"] == "open"
    sandbox.set_price("BTCUSDT", round(price * 0.94, 2))
    done = spot.fetch_order(order["id"], "BTC/USDT")
    assert done["status"] == "closed" and done["filled"] == 0.1


def test_stop_loss_with_trigger_already_crossed_raises_order_immediately_fillable(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    price = sandbox.price("BTCUSDT")
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        spot.create_order(
            "BTC/USDT",
            "limit",
            "sell",
            0.1,
            round(price, 2),
            {"stopLossPrice": round(price * 1.1, 2)},
        )


def test_edit_order_with_new_price_cancels_and_replaces(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    limit = round(sandbox.price("BTCUSDT") * 0.5, 2)
    order = spot.create_order("BTC/USDT", "limit", "buy", 0.001, limit)
    edited = spot.edit_order(order["id"], "BTC/USDT", "limit", "buy", 0.002, round(limit + 1, 2))
    assert edited["id"] != order["id"]
    assert spot.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"
    open_orders = spot.fetch_open_orders("BTC/USDT")
    assert [(o["amount"], o["price"]) for o in open_orders] == [(0.002, round(limit + 1, 2))]


def test_market_buy_with_cost_uses_quote_order_quantity(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    order = spot.create_market_buy_order_with_cost("ETH/USDT", 100.0)
    price = sandbox.price("ETHUSDT")
    assert order["status"] == "closed"
    assert order["filled"] == pytest.approx(int(100.0 / price / 0.0001) * 0.0001)
    ledger = sandbox.ledger()
    assert ledger["fills"][-1]["symbol"] == "ETHUSDT"


def test_take_profit_market_with_trigger_only_rests_then_sells_above_it(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    """Spot TAKE_PROFIT is a market order on trigger: it needs no price (issue 15: the sandbox
    asked for one, -1102, as USD-M's limit TAKE_PROFIT does, so a spot target was refused)."""
    price = sandbox.price("BTCUSDT")
    trigger = round(price * 1.05, 2)
    order = spot.create_order("BTC/USDT", "market", "sell", 0.1, None, {"takeProfitPrice": trigger})
    assert order["status"] == "open" and order["triggerPrice"] == trigger
    sandbox.set_price("BTCUSDT", round(price * 1.06, 2))
    done = spot.fetch_order(order["id"], "BTC/USDT")
    assert done["status"] == "closed" and done["filled"] == 0.1
