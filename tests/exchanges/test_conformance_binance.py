"""Binance spot, USD-M and COIN-M: recorded venue responses through ccxt and our gateway.

Every expected value below is read off the recorded payload (fixtures/binance_responses.json),
not off our output: e.g. a COIN-M short of 3 contracts of 100 USD from 68911.00000037 marked
at 68234.2 is worth 3 * 100 * (1/68911.00000037 - 1/68234.2) * -1 = 0.0000432 BTC, and the
venue's own ``unRealizedProfit`` says 0.00004318.
"""

from __future__ import annotations

from typing import Any

import pytest

from metaexpert.core.enums import MarginMode, OrderSide, OrderStatus, OrderType, PositionSide
from metaexpert.core.order import Order
from tests.exchanges.conformance import FIXTURES, entries, recorded_gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.network]

E = entries("binance")
SPOT: dict[str, Any] = {}
USDM: dict[str, Any] = {"market_type": "futures", "contract_type": "linear"}
COINM: dict[str, Any] = {"market_type": "futures", "contract_type": "inverse"}


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------- orders
async def test_binance_spot_create_order_with_recorded_ack_is_submitted_with_venue_id() -> None:
    async with recorded_gateway("binance", **SPOT) as (gateway, venue):
        venue.play(E["binance.createOrder.spot_iceberg"])
        order = Order(
            symbol="SOLUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            quantity=0.05,
            price=241.0,
        )
        await gateway.create_order(order)
        assert (order.status, order.order_id, order.filled_quantity, order.remaining_quantity) == (
            OrderStatus.SUBMITTED,
            "9780331417",
            0.0,
            approx(0.05),
        )
        request = venue.requests[-1]
        assert request.path == "/api/v3/order" and request.method == "POST"
        sent = request.parameters
        assert (sent["symbol"], sent["side"], sent["type"], sent["quantity"], sent["price"]) == (
            "SOLUSDT",
            "BUY",
            "LIMIT",
            "0.05",
            "241",
        )
        assert sent["newClientOrderId"] == order.client_order_id and sent["timeInForce"] == "GTC"


async def test_binance_spot_fetch_order_with_recorded_market_sell_is_filled_at_average() -> None:
    async with recorded_gateway("binance", **SPOT) as (gateway, venue):
        venue.play(E["binance.fetchOrder.spot_closed"])
        order = await gateway.fetch_order("LTCUSDT", order_id="3397148653")
        assert (order.side, order.order_type, order.status) == (
            OrderSide.SELL,
            OrderType.MARKET,
            OrderStatus.FILLED,
        )
        assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (
            approx(0.1),
            approx(0.1),
            0.0,
        )
        assert (
            order.average_price == approx(90.8)
            and order.client_order_id == "x-R4BD3S825806ed40c861260428a48c"
        )
        assert venue.requests[-1].query["orderId"] == "3397148653"


async def test_binance_spot_fetch_open_orders_with_limit_maker_maps_open_limit() -> None:
    async with recorded_gateway("binance", **SPOT) as (gateway, venue):
        venue.play(E["binance.fetchOpenOrders.spot"])
        (order,) = await gateway.fetch_open_orders("LTCUSDT")
        assert (order.side, order.order_type, order.status) == (
            OrderSide.BUY,
            OrderType.LIMIT,
            OrderStatus.SUBMITTED,
        )
        assert (order.quantity, order.price, order.filled_quantity) == (
            approx(0.2),
            approx(50.0),
            0.0,
        )
        assert order.order_id == "3811057334"


async def test_binance_portfolio_margin_open_orders_map_buy_limit() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchOpenOrders.portfolio_margin"])
        raw = await gateway.client.fetch_open_orders(
            "LTC/USDT:USDT", None, 1, {"portfolioMargin": True}
        )
        order = gateway.order_from_venue(raw[0])
        assert (order.side, order.order_type, order.quantity, order.price) == (
            OrderSide.BUY,
            OrderType.LIMIT,
            approx(0.41),
            approx(50.0),
        )
        assert order.status is OrderStatus.SUBMITTED and order.position_side is None


async def test_binance_usdm_fetch_open_order_with_post_only_limit_is_open() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchOpenOrder.swap"])
        raw = await gateway.client.fetch_open_order("664082074", "LTC/USDT:USDT")
        order = gateway.order_from_venue(raw)
        assert (order.side, order.order_type, order.quantity, order.price, order.status) == (
            OrderSide.BUY,
            OrderType.LIMIT,
            approx(0.2),
            approx(50.0),
            OrderStatus.SUBMITTED,
        )
        assert venue.paths() == ["/fapi/v1/openOrder"]


async def test_binance_usdm_create_orders_batch_maps_open_sell_limit() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.createOrders.swap"])
        raw = await gateway.client.create_orders(
            [
                {
                    "symbol": "BTC/USDT:USDT",
                    "type": "limit",
                    "side": "sell",
                    "amount": 0.2,
                    "price": 110001,
                }
            ]
        )
        order = gateway.order_from_venue(raw[0])
        assert (order.side, order.order_type, order.quantity, order.price, order.status) == (
            OrderSide.SELL,
            OrderType.LIMIT,
            approx(0.2),
            approx(110001.0),
            OrderStatus.SUBMITTED,
        )
        assert order.order_id == "4087922044" and order.reduce_only is False


async def test_binance_usdm_edit_orders_maps_new_price_and_quantity() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.editOrders.swap"])
        raw = await gateway.client.edit_orders(
            [
                {
                    "id": "4087922044",
                    "symbol": "BTC/USDT:USDT",
                    "type": "limit",
                    "side": "buy",
                    "amount": 0.1,
                    "price": 666666,
                }
            ]
        )
        order = gateway.order_from_venue(raw[0])
        assert (order.quantity, order.price, order.status) == (
            approx(0.1),
            approx(666666.0),
            OrderStatus.SUBMITTED,
        )


async def test_binance_portfolio_margin_filled_market_order_keeps_hedge_leg() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchOrders.portfolio_margin_swap"])
        raw = await gateway.client.fetch_orders("BTC/USDT:USDT", None, 1, {"portfolioMargin": True})
        order = gateway.order_from_venue(raw[0])
        assert (order.status, order.order_type, order.filled_quantity, order.average_price) == (
            OrderStatus.FILLED,
            OrderType.MARKET,
            approx(0.01),
            approx(47279.4),
        )
        assert order.position_side is PositionSide.LONG


async def test_binance_spot_cancelled_order_history_maps_cancelled_without_fill() -> None:
    async with recorded_gateway("binance", **SPOT) as (gateway, venue):
        venue.play(E["binance.fetchOrders.spot_canceled"])
        raw = await gateway.client.fetch_orders("LTC/USDT", None, 1)
        order = gateway.order_from_venue(raw[0])
        assert (order.status, order.filled_quantity, order.quantity, order.price) == (
            OrderStatus.CANCELLED,
            0.0,
            approx(0.1),
            approx(50.0),
        )


# ------------------------------------------------------------------------- trades
@pytest.mark.parametrize(
    ("entry_id", "market", "args", "expected"),
    [
        (
            "binance.fetchMyTrades.spot",
            SPOT,
            ("LTC/USDT", None, 1),
            ("309520010", "3784695242", OrderSide.SELL, 0.2, 69.63, 0.013926, "USDT"),
        ),
        (
            "binance.fetchMyTrades.swap",
            USDM,
            ("BTC/USDT:USDT", None, 1),
            ("272536245", "3524852987", OrderSide.BUY, 0.01, 36567.1, 0.1462684, "USDT"),
        ),
        (
            "binance.fetchMyTrades.spot_portfolio_margin",
            SPOT,
            ("LTC/USDT", None, 1, {"portfolioMargin": True}),
            ("320530367", "3949667670", OrderSide.SELL, 0.173, 69.39, 0.01200447, "USDT"),
        ),
    ],
)
async def test_binance_my_trades_map_side_amount_price_and_fee(
    entry_id: str, market: dict[str, Any], args: tuple[Any, ...], expected: tuple[Any, ...]
) -> None:
    async with recorded_gateway("binance", **market) as (gateway, venue):
        venue.play(E[entry_id])
        (raw,) = await gateway.client.fetch_my_trades(*args)
        trade = gateway.trade_from_venue(raw)
        assert trade is not None
        assert (
            trade.trade_id,
            trade.order_id,
            trade.side,
            trade.quantity,
            trade.price,
            trade.fee,
            trade.fee_currency,
        ) == (
            expected[0],
            expected[1],
            expected[2],
            approx(expected[3]),
            approx(expected[4]),
            approx(expected[5]),
            expected[6],
        )


# ---------------------------------------------------------------------- positions
async def test_binance_usdm_positions_map_one_way_long_with_venue_pnl() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchPositions.linear"])
        (position,) = await gateway.fetch_positions()
        assert (
            position.symbol,
            position.side,
            position.quantity,
            position.contract_size,
            position.inverse,
        ) == ("BTCUSDT", PositionSide.LONG, approx(0.009), 1.0, False)
        assert (position.entry_price, position.mark_price, position.margin_mode) == (
            approx(67445.9),
            approx(67502.68519858),
            MarginMode.CROSS,
        )
        assert position.unrealized_pnl == pytest.approx(0.51106678, rel=1e-6)
        assert gateway.market_spec("BTCUSDT").settle == "USDT"


async def test_binance_usdm_positions_by_symbol_map_venue_pnl() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchPositions.linear_symbols"])
        (position,) = await gateway.fetch_positions(["BTCUSDT"])
        assert position.unrealized_pnl == pytest.approx(1.2267, rel=1e-6)
        assert position.mark_price == approx(67582.2)


async def test_binance_usdm_account_endpoint_positions_map_contracts_and_side() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchPositions.account_endpoint"])
        raw = await gateway.client.fetch_positions(["BTC/USDT:USDT"], {"method": "account"})
        position = gateway.position_from_venue(raw[0])
        assert position is not None
        assert (position.side, position.quantity, position.margin_mode) == (
            PositionSide.LONG,
            approx(0.009),
            MarginMode.CROSS,
        )


async def test_binance_coinm_short_with_recorded_payload_is_inverse_with_coin_pnl() -> None:
    """Issue 15: a COIN-M short of 3 contracts showed a PnL of 203,040 instead of 0.0000432 BTC."""
    async with recorded_gateway("binance", **COINM) as (gateway, venue):
        venue.play(E["binance.fetchPositions.inverse"])
        positions = await gateway.fetch_positions()
        assert len(positions) == 1  # the flat BCHUSD_241227 leg is no position
        (position,) = positions
        assert (position.side, position.quantity, position.contract_size, position.inverse) == (
            PositionSide.SHORT,
            approx(3.0),
            100.0,
            True,
        )
        assert (position.leverage, position.margin_mode) == (20.0, MarginMode.CROSS)
        assert position.unrealized_pnl == pytest.approx(0.00004318, rel=1e-3)
        assert position.notional() == pytest.approx(0.00439662, rel=1e-5)
        assert gateway.market_spec(position.symbol).settle == "BTC"


# ------------------------------------------------------------------------ account
async def test_binance_usdm_equity_with_open_position_counts_unrealised_pnl_once() -> None:
    """Issue 15: USD-M equity added ``totalUnrealizedProfit`` to a total that already held it."""
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchPositions.account_endpoint"])
        account = await gateway.fetch_balance("USDT")
        assert account.balance == approx(3.72964781)  # walletBalance
        assert account.unrealized_pnl == approx(0.54238506)  # unrealizedProfit
        assert account.equity == approx(4.27203287)  # marginBalance = wallet + unrealised
        assert account.used_margin == approx(7.59444356)


async def test_binance_usdm_flat_account_maps_wallet_as_equity() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchBalance.linear_swap"])
        account = await gateway.fetch_balance("USDT")
        assert (account.balance, account.equity, account.unrealized_pnl, account.used_margin) == (
            approx(31.022612),
            approx(31.022612),
            0.0,
            0.0,
        )


async def test_binance_spot_balance_maps_coin_total() -> None:
    async with recorded_gateway("binance", **SPOT) as (gateway, venue):
        venue.play(E["binance.fetchBalance.spot"])
        account = await gateway.fetch_balance("LTC")
        assert (account.currency, account.balance, account.equity, account.used_margin) == (
            "LTC",
            approx(0.919741),
            approx(0.919741),
            0.0,
        )
        assert account.timestamp == 1701856395927


# -------------------------------------------------------------------- market data
async def test_binance_ohlcv_book_trades_and_ticker_map_recorded_values() -> None:
    async with recorded_gateway("binance", **SPOT) as (gateway, venue):
        venue.play(E["binance.fetchOHLCV.spot"])
        bars = await gateway.fetch_ohlcv("BTCUSDT", "1h", since=1706628191000, limit=3)
        assert [bar.timestamp for bar in bars] == [1706630400000, 1706634000000, 1706637600000]
        assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
            approx(43519.34),
            approx(43936.0),
            approx(43171.0),
            approx(43488.71),
            approx(20.55495),
        )
        venue.play(E["binance.fetchOrderBook.spot"])
        book = await gateway.fetch_order_book("BTCUSDT", limit=5)
        assert book.bids[0] == (approx(42574.3), approx(0.0107)) and book.asks[0] == (
            approx(42574.31),
            approx(0.0087),
        )
        assert book.sequence == 25445101
        venue.play(E["binance.fetchTicker.spot"])
        tick = await gateway.fetch_ticker("BTCUSDT")
        assert (tick.price, tick.bid, tick.ask, tick.timestamp) == (
            approx(73369.84),
            approx(73369.83),
            approx(73369.84),
            1710328245391,
        )
        venue.play(E["binance.fetchTrades.spot"])
        (public,) = await gateway.client.fetch_trades("BTC/USDT", None, 1)
        assert public["side"] == "buy" and public["amount"] == approx(0.00109)


async def test_binance_usdm_ohlcv_and_book_map_recorded_values() -> None:
    async with recorded_gateway("binance", **USDM) as (gateway, venue):
        venue.play(E["binance.fetchOHLCV.swap"])
        bars = await gateway.fetch_ohlcv("BTCUSDT", "1m", limit=3)
        assert [bar.close for bar in bars] == [approx(71481.9), approx(70459.4), approx(70459.4)]
        assert bars[2].volume == approx(1.542)
        venue.play(E["binance.fetchOrderBook.swap"])
        book = await gateway.fetch_order_book("BTCUSDT", limit=5)
        assert len(book.bids) == 5 and book.bids[0] == (approx(42651.1), approx(470.672))
        assert book.timestamp == 1706803917258


# ----------------------------------------------------------- requests vs recorded
def _recorded_request(request_id: str) -> tuple[str, dict[str, str]]:
    """The path and the parameters ccxt recorded, without the keys it skips itself."""
    import json
    from urllib.parse import parse_qsl, urlsplit

    data = json.loads((FIXTURES / "binance_requests.json").read_text())
    (entry,) = [item for item in data["entries"] if item["id"] == request_id]
    parameters = dict(parse_qsl(entry["output"]))
    return urlsplit(entry["url"]).path, {
        key: value for key, value in parameters.items() if key not in data["skipKeys"]
    }


ORDER_ACK = {"orderId": 1, "algoId": 1, "status": "NEW", "algoStatus": "NEW", "updateTime": 1}


@pytest.mark.parametrize(
    ("request_id", "market", "order"),
    [
        ("spot_limit", SPOT, {"symbol": "LTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.LIMIT, "quantity": 0.2, "price": 50}),
        ("spot_limit_odd_amount", SPOT, {"symbol": "BTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.LIMIT, "quantity": 0.0007856509959147719, "price": 55000}),
        ("spot_stop_limit", SPOT, {"symbol": "LTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.STOP_LIMIT, "quantity": 0.2, "price": 50, "stop_price": 100}),
        ("swap_market", USDM, {"symbol": "LTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.MARKET, "quantity": 0.1}),
        ("swap_limit", USDM, {"symbol": "LTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.LIMIT, "quantity": 0.1, "price": 55}),
        ("swap_limit_reduce_only", USDM, {"symbol": "LTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.LIMIT, "quantity": 0.2, "price": 60, "reduce_only": True}),
        ("swap_stop_limit_algo", USDM, {"symbol": "LTCUSDT", "side": OrderSide.BUY, "order_type": OrderType.STOP_LIMIT, "quantity": 0.21, "price": 51, "stop_price": 101}),
        ("swap_stop_loss_algo", USDM, {"symbol": "LTCUSDT", "side": OrderSide.SELL, "order_type": OrderType.STOP_LIMIT, "quantity": 0.21, "price": 50, "stop_price": 51}),
        ("swap_take_profit_algo", USDM, {"symbol": "LTCUSDT", "side": OrderSide.SELL, "order_type": OrderType.TAKE_PROFIT_LIMIT, "quantity": 0.21, "price": 104, "stop_price": 108}),
        ("swap_trailing_algo", USDM, {"symbol": "BTCUSDT", "side": OrderSide.SELL, "order_type": OrderType.TRAILING_STOP, "quantity": 0.11, "stop_price": 60000, "trailing_pct": 5.0, "reduce_only": True}),
        ("inverse_stop_market_algo", COINM, {"symbol": "ETHUSD_PERP", "side": OrderSide.SELL, "order_type": OrderType.STOP_MARKET, "quantity": 1, "stop_price": 1000}),
    ],
)  # fmt: skip
async def test_binance_gateway_order_request_carries_the_recorded_fields(
    request_id: str, market: dict[str, Any], order: dict[str, Any]
) -> None:
    # ccxt recorded what Binance accepted for each of these orders; the gateway, asked for the
    # same order in its own terms, must send the same endpoint and the same fields.
    path, recorded = _recorded_request(f"binance.createOrder.{request_id}")
    async with recorded_gateway("binance", **market) as (gateway, venue):
        venue.play({"httpResponse": ORDER_ACK})
        placed = Order(**order)
        try:
            await gateway.create_order(placed)
        except Exception:  # noqa: BLE001, S110 - the minimal ack may not parse; the request is what counts
            pass
        creates = [request for request in venue.requests if request.method == "POST"]
        assert creates, venue.paths()
        sent = creates[0]
        assert sent.path == path
        assert {key: sent.parameters.get(key) for key in recorded} == recorded
        # the client id (ccxt leaves it out of the comparison): clientAlgoId on the algo endpoints
        client_key = "clientAlgoId" if path.endswith("/algoOrder") else "newClientOrderId"
        assert sent.parameters.get(client_key) == placed.client_order_id


@pytest.mark.parametrize(
    ("exchange", "market"), [("binance", SPOT), ("bybit", USDM), ("okx", USDM)]
)
async def test_trailing_stop_where_ccxt_has_no_venue_trailing_order_is_refused_before_sending(
    exchange: str, market: dict[str, Any]
) -> None:
    from metaexpert.core.errors import ConfigurationError

    async with recorded_gateway(exchange, **market) as (gateway, venue):
        venue.play({"httpResponse": ORDER_ACK})
        order = Order(
            symbol="BTCUSDT" if exchange != "okx" else "BTC-USDT-SWAP",
            side=OrderSide.SELL,
            order_type=OrderType.TRAILING_STOP,
            quantity=0.01,
            stop_price=60000,
            trailing_pct=5.0,
        )
        with pytest.raises(ConfigurationError, match="trailing stops are placed at the venue only"):
            await gateway.create_order(order)
        assert [r for r in venue.requests if r.method == "POST"] == []
