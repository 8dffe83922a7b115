"""Bybit v5 (unified account): recorded venue responses through ccxt and our gateway.

Expected values are read off fixtures/bybit_responses.json: e.g. the unified account's USDT
coin states walletBalance 3322.25896609, unrealisedPnl -17.9613 and equity 3304.29766609.
"""

from __future__ import annotations

from typing import Any

import pytest

from metaexpert.core.enums import MarginMode, OrderSide, OrderStatus, OrderType, PositionSide
from metaexpert.core.order import Order
from metaexpert.exchanges import OrderOutcomeUnknownError
from tests.exchanges.conformance import entries, recorded_gateway, requests

pytestmark = [pytest.mark.asyncio, pytest.mark.network]

E = entries("bybit")
SPOT: dict[str, Any] = {}
LINEAR: dict[str, Any] = {"market_type": "futures", "contract_type": "linear"}


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------ account
async def test_bybit_unified_equity_with_open_positions_includes_unrealised_pnl() -> None:
    """Issue 15: Bybit equity ignored the unrealised PnL (ccxt's total is the wallet balance)."""
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchBalance.unified"])
        account = await gateway.fetch_balance("USDT")
        assert (account.balance, account.unrealized_pnl, account.equity) == (
            approx(3322.25896609),
            approx(-17.9613),
            approx(3304.29766609),
        )
        usdc = await gateway.fetch_balance("USDC")
        assert (usdc.balance, usdc.unrealized_pnl, usdc.equity) == (
            approx(5848.20013918),
            approx(0.3392),
            approx(5848.53933918),
        )
        btc = await gateway.fetch_balance("BTC")
        assert (btc.balance, btc.equity, btc.unrealized_pnl) == (
            approx(0.85581394),
            approx(0.85581394),
            0.0,
        )
        assert venue.paths()[-1] == "/v5/account/wallet-balance"


# ------------------------------------------------------------------------- orders
async def test_bybit_spot_create_limit_order_with_recorded_ack_is_submitted() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.createOrder.spot_limit"])
        order = Order(
            symbol="LTCUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            quantity=0.1,
            price=60.0,
        )
        await gateway.create_order(order)
        assert (order.status, order.order_id) == (OrderStatus.SUBMITTED, "1609920528435648000")
        body = venue.requests[-1].body
        assert (
            body["category"],
            body["symbol"],
            body["side"],
            body["orderType"],
            body["qty"],
            body["price"],
        ) == ("spot", "LTCUSDT", "Buy", "Limit", "0.1", "60")
        assert body["orderLinkId"] == order.client_order_id and "positionIdx" not in body


async def test_bybit_spot_create_stop_order_sends_trigger_and_keeps_stop_price() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.createOrder.spot_stop_loss"])
        order = Order(
            symbol="LTCUSDT",
            side=OrderSide.SELL,
            order_type=OrderType.STOP_MARKET,
            quantity=0.2,
            stop_price=90.0,
        )
        await gateway.create_order(order)
        assert (order.status, order.order_id, order.stop_price) == (
            OrderStatus.SUBMITTED,
            "1992319485461489920",
            90.0,
        )
        body = venue.requests[-1].body
        assert (
            body["orderType"] == "Market"
            and float(body.get("triggerPrice") or body.get("slTriggerPrice")) == 90.0
        )


async def test_bybit_spot_market_buy_with_cost_ack_maps_ids() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.createMarketBuyOrderWithCost.spot"])
        raw = await gateway.client.create_market_buy_order_with_cost("DOGE/USDT", 12.45)
        order = Order(
            symbol="DOGEUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            quantity=100.0,
            client_order_id="1971981115648733697",
        )
        gateway._apply(order, raw)
        assert (order.order_id, order.status, order.filled_quantity) == (
            "1971981115648733696",
            OrderStatus.SUBMITTED,
            0.0,
        )


async def test_bybit_fetch_order_with_partially_filled_canceled_books_partial_fill_only() -> None:
    """Issue 15: PartiallyFilledCanceled (ccxt: closed) was booked as fully filled (0.001614 became 0.002);
    and fetch_order failed on unified accounts (ccxt wants acknowledged or fetchOpen/ClosedOrder)."""
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(
            E["bybit.fetchOrder.spot_partially_filled_canceled"],
            elsewhere={
                "/v5/order/realtime": {
                    "retCode": 0,
                    "retMsg": "OK",
                    "result": {"list": [], "category": "spot"},
                }
            },
        )
        order = Order(
            symbol="BTCUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            quantity=0.002,
            client_order_id="1609602210852247041",
        )
        gateway._remember(order)
        fetched = await gateway.fetch_order("BTCUSDT", client_order_id="1609602210852247041")
        assert fetched is order
        assert (order.status, order.filled_quantity, order.average_price) == (
            OrderStatus.CANCELLED,
            approx(0.001614),
            approx(30966.41),
        )
        assert (order.fee, order.fee_currency) == (approx(0.000001614), "BTC")
        assert venue.paths() == ["/v5/order/realtime", "/v5/order/history"]
        assert venue.requests[-1].query["orderLinkId"] == "1609602210852247041"


async def test_bybit_adopted_quote_sized_market_buy_counts_base_filled() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.fetchOrder.spot_partially_filled_canceled"])
        raw = await gateway.client.fetch_order(
            "1609602210852247040", "BTC/USDT", {"acknowledged": True}
        )
        order = gateway.order_from_venue(raw)
        # The venue states qty 50 in USDT (marketUnit=quoteCoin): the base amount is what filled.
        assert (order.quantity, order.filled_quantity, order.is_terminal) == (
            approx(0.001614),
            approx(0.001614),
            True,
        )
        assert (order.fee, order.fee_currency) == (approx(0.000001614), "BTC")


async def test_bybit_fetch_order_with_filled_spot_sell_maps_fee_in_quote() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.fetchOrder.spot_sell_filled"])
        order = await gateway.fetch_order("XRPUSDT", order_id="1609604284784580096")
        assert (order.side, order.order_type, order.status, order.filled_quantity) == (
            OrderSide.SELL,
            OrderType.MARKET,
            OrderStatus.FILLED,
            approx(123.0),
        )
        assert (order.average_price, order.fee, order.fee_currency) == (
            approx(0.5351),
            approx(0.0658173),
            "USDT",
        )


async def test_bybit_linear_fetch_open_order_maps_open_limit() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchOpenOrder.swap"])
        order = await gateway.fetch_order(
            "BTCUSDT", order_id="3606515b-e4d7-4ea4-b096-bb247d0661ae"
        )
        assert (order.side, order.order_type, order.status, order.quantity, order.price) == (
            OrderSide.BUY,
            OrderType.LIMIT,
            OrderStatus.SUBMITTED,
            approx(0.001),
            approx(102000.0),
        )
        assert venue.paths() == ["/v5/order/realtime"]


async def test_bybit_linear_closed_order_maps_fill_and_fee() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchClosedOrder.swap"])
        raw = await gateway.client.fetch_closed_order(
            "aee7453a-a100-465f-857a-3db780e9329a", "BTC/USDT:USDT"
        )
        order = gateway.order_from_venue(raw)
        assert (
            order.status,
            order.filled_quantity,
            order.average_price,
            order.fee,
            order.fee_currency,
        ) == (OrderStatus.FILLED, approx(0.001), approx(123498.0), approx(0.0679239), "USDT")


async def test_bybit_linear_closed_orders_map_reduce_only_exit() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchClosedOrders.swap"])
        raw = await gateway.client.fetch_closed_orders("BTC/USDT:USDT")
        orders = {order.order_id: order for order in map(gateway.order_from_venue, raw)}
        exit_order = orders["f5f2d355-9a11-4af3-9b83-aa1d6ab6ddfe"]
        assert (
            exit_order.side,
            exit_order.reduce_only,
            exit_order.status,
            exit_order.average_price,
        ) == (OrderSide.SELL, True, OrderStatus.FILLED, approx(122529.9))
        assert exit_order.fee == approx(0.06739145)
        assert orders["aee7453a-a100-465f-857a-3db780e9329a"].reduce_only is False


async def test_bybit_spot_modify_order_maps_new_quantity_and_price() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.createOrder.spot_limit"])
        order = Order(
            symbol="LTCUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            quantity=0.2,
            price=70.0,
            client_order_id="bybit1",
        )
        await gateway.create_order(order)
        venue.play(E["bybit.editOrder.client_id"])
        await gateway.modify_order(order, quantity=0.22, price=73.0)
        assert (order.quantity, order.price, order.status, order.order_id) == (
            0.22,
            73.0,
            OrderStatus.SUBMITTED,
            "2088690093937486080",
        )
        body = venue.requests[-1].body
        assert (body["qty"], body["price"]) == ("0.22", "73")


async def test_bybit_cancel_all_ack_without_status_invents_no_fill() -> None:
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.cancelAllOrders.spot"])
        (raw,) = await gateway.client.cancel_all_orders("LTC/USDT")
        order = Order(
            symbol="LTCUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            quantity=0.1,
            price=50.0,
            client_order_id="1609919616652678657",
        )
        gateway._apply(order, raw)
        assert (order.order_id, order.filled_quantity, order.status) == (
            "1609919616652678656",
            0.0,
            OrderStatus.SUBMITTED,
        )


async def test_bybit_create_order_with_retcode_10016_is_looked_up_not_rejected() -> None:
    """Issue 15: a JSON 503 / retCode 10016 was taken for a rejection of an order the venue may hold."""
    busy = {
        "retCode": 10016,
        "retMsg": "System error. Please try again later.",
        "result": {},
        "retExtInfo": {},
        "time": 1706653482432,
    }
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play({"httpResponse": busy})
        order = Order(
            symbol="LTCUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            quantity=0.1,
            price=60.0,
        )
        gateway.order_retry_policy = type(gateway.order_retry_policy)(
            attempts=1, initial_delay=0.0, maximum_delay=0.001, jitter=0.0
        )
        with pytest.raises(OrderOutcomeUnknownError):
            await gateway.create_order(order)
        assert order.status is OrderStatus.CREATED  # not rejected: its fate is open


# ---------------------------------------------------------------------- positions
async def test_bybit_linear_positions_map_long_with_leverage_and_cross_trade_mode() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchPositions.linear"])
        (position,) = await gateway.fetch_positions(["LTCUSDT"])
        assert (position.side, position.quantity, position.entry_price, position.mark_price) == (
            PositionSide.LONG,
            approx(1.2),
            approx(64.59947917),
            approx(71.1),
        )
        assert (
            position.leverage,
            position.margin_mode,
            position.inverse,
            position.contract_size,
        ) == (6.0, MarginMode.CROSS, False, 1.0)
        assert position.unrealized_pnl == pytest.approx(7.800625, rel=1e-6)


async def test_bybit_flat_position_is_no_position() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchPosition.linear_flat"])
        assert await gateway.fetch_positions(["LTCUSDT"]) == []


# ------------------------------------------------------------------------- trades
@pytest.mark.parametrize(
    ("entry_id", "market", "args", "expected"),
    [
        (
            "bybit.fetchMyTrades.spot_fee_in_base",
            SPOT,
            ("BTC/USDT", None, 1),
            (OrderSide.BUY, 0.000336, 29708.7, 3.36e-7, "BTC"),
        ),
        (
            "bybit.fetchMyTrades.spot_fee_currency_field",
            SPOT,
            (None, None, 1, {"type": "spot"}),
            (OrderSide.BUY, 0.001, 2453.65, 0.000001, "ETH"),
        ),
        (
            "bybit.fetchMyTrades.swap_no_symbol",
            LINEAR,
            (None, None, 1),
            (OrderSide.BUY, 0.1, 85.11, 0.00468105, "USDT"),
        ),
    ],
)
async def test_bybit_my_trades_map_fills_with_fee_currency(
    entry_id: str, market: dict[str, Any], args: tuple[Any, ...], expected: tuple[Any, ...]
) -> None:
    async with recorded_gateway("bybit", **market) as (gateway, venue):
        venue.play(E[entry_id])
        (raw,) = await gateway.client.fetch_my_trades(*args)
        trade = gateway.trade_from_venue(raw)
        assert trade is not None
        assert (trade.side, trade.quantity, trade.price, trade.fee, trade.fee_currency) == (
            expected[0],
            approx(expected[1]),
            approx(expected[2]),
            approx(expected[3]),
            expected[4],
        )


async def test_bybit_funding_execution_is_no_fill() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchMyTrades.swap_funding"])
        (raw,) = await gateway.client.fetch_my_trades("LTC/USDT:USDT", None, 1)
        assert raw["amount"] == approx(1.2)  # ccxt reads the funding payment as a trade ...
        assert gateway.trade_from_venue(raw) is None  # ... it must not book a 1.2 LTC buy


# -------------------------------------------------------------------- market data
async def test_bybit_ohlcv_book_trades_and_ticker_map_recorded_values() -> None:
    async with recorded_gateway("bybit", **LINEAR) as (gateway, venue):
        venue.play(E["bybit.fetchOHLCV.swap"])
        bars = await gateway.fetch_ohlcv("BTCUSDT", "1h", since=1706628191000, limit=3)
        assert [bar.timestamp for bar in bars] == [1706630400000, 1706634000000, 1706637600000]
        assert (bars[0].open, bars[0].close, bars[0].volume) == (
            approx(43350.7),
            approx(43488.0),
            approx(1341.261),
        )
        venue.play(E["bybit.fetchOrderBook.swap"])
        book = await gateway.fetch_order_book("BTCUSDT", limit=2)
        assert book.bids[0] == (approx(42544.7), approx(172.404)) and book.asks[1] == (
            approx(42548.2),
            approx(75.008),
        )
        venue.play(E["bybit.fetchTicker.swap"])
        tick = await gateway.fetch_ticker("BTCUSDT")
        assert (tick.price, tick.bid, tick.ask) == (
            approx(51444.4),
            approx(51444.3),
            approx(51444.4),
        )
        assert tick.mark_price == approx(51444.40)  # what bars of an option are built from
        # The rows carry no time; the answer's ``time`` is the venue's (not the local clock).
        assert tick.timestamp == 1707905549267
        venue.play(E["bybit.fetchTrades.swap"])
        (public,) = await gateway.client.fetch_trades("BTC/USDT:USDT", None, 1)
        assert (public["side"], public["amount"]) == ("buy", approx(0.972))
    async with recorded_gateway("bybit", **SPOT) as (gateway, venue):
        venue.play(E["bybit.fetchOrderBook.spot"])
        book = await gateway.fetch_order_book("BTCUSDT", limit=2)
        assert book.bids[0] == (approx(29861.0), approx(0.00101)) and book.asks[0] == (
            approx(29971.81),
            approx(0.001161),
        )


# ----------------------------------------------------------- requests vs recorded
R = requests("bybit")
ACK = {
    "retCode": "0",
    "retMsg": "OK",
    "result": {"orderId": "1", "orderLinkId": ""},
    "retExtInfo": {},
    "time": "1",
}


@pytest.mark.parametrize(
    ("request_id", "market", "order"),
    [
        (
            "bybit.createOrder.swap_limit",
            LINEAR,
            {
                "symbol": "ADAUSDT",
                "side": OrderSide.BUY,
                "order_type": OrderType.LIMIT,
                "quantity": 50,
                "price": 0.1,
            },
        ),
        (
            "bybit.createOrder.spot_limit",
            SPOT,
            {
                "symbol": "ADAUSDT",
                "side": OrderSide.BUY,
                "order_type": OrderType.LIMIT,
                "quantity": 50,
                "price": 0.1,
            },
        ),
        (
            "bybit.createOrder.swap_take_profit",
            LINEAR,
            {
                "symbol": "LTCUSDT",
                "side": OrderSide.SELL,
                "order_type": OrderType.TAKE_PROFIT_LIMIT,
                "quantity": 0.1,
                "price": 100,
                "stop_price": 110,
                "reduce_only": True,
            },
        ),
        (
            "bybit.createOrder.swap_stop_loss",
            LINEAR,
            {
                "symbol": "LTCUSDT",
                "side": OrderSide.SELL,
                "order_type": OrderType.STOP_LIMIT,
                "quantity": 0.1,
                "price": 51,
                "stop_price": 56,
                "reduce_only": True,
            },
        ),
        (
            "bybit.createOrder.inverse_reduce_only",
            {"market_type": "futures", "contract_type": "inverse"},
            {
                "symbol": "BTCUSD",
                "side": OrderSide.SELL,
                "order_type": OrderType.MARKET,
                "quantity": 1,
                "reduce_only": True,
            },
        ),
        (
            "bybit.createOrder.spot_market_buy_base",
            SPOT,
            {
                "symbol": "LTCUSDT",
                "side": OrderSide.BUY,
                "order_type": OrderType.MARKET,
                "quantity": 0.2,
            },
        ),
    ],
)
async def test_bybit_gateway_order_request_carries_the_recorded_fields(
    request_id: str, market: dict[str, Any], order: dict[str, Any]
) -> None:
    import json

    recorded = json.loads(R[request_id]["output"])
    async with recorded_gateway("bybit", **market) as (gateway, venue):
        venue.play({"httpResponse": ACK})
        await gateway.create_order(Order(**order))
        request = venue.requests[-1]
        assert request.path == "/v5/order/create"
        sent = request.body
        assert {key: sent.get(key) for key in recorded} == recorded
