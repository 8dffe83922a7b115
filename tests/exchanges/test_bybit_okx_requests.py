"""Bybit and OKX: the requests ccxt really builds from gateway calls, captured on 127.0.0.1.

The ccxt clients are real and unpatched; only their REST URL points at a capture server
that records each request and answers canned, valid venue JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from metaexpert.core.enums import OrderSide, OrderStatus, OrderType, PositionSide
from metaexpert.core.order import Order
from metaexpert.exchanges import CcxtGateway, ExchangeConfig, UnknownSymbolError
from tests.exchanges import canned
from tests.exchanges.capture_server import CaptureServer

pytestmark = [pytest.mark.asyncio, pytest.mark.network]

OKX_PASSPHRASE = "okx-pass-phrase-77"


@asynccontextmanager
async def venue(
    exchange: str, routes: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[tuple[CcxtGateway, CaptureServer]]:
    base_routes = canned.bybit_routes() if exchange == "bybit" else canned.okx_routes()
    base_routes.update(routes or {})
    default = canned.BYBIT_DEFAULT if exchange == "bybit" else canned.OKX_DEFAULT
    server = await CaptureServer(base_routes, default).start()
    values = {
        "exchange": exchange,
        "api_key": "test-key-0123456789",
        "api_secret": "test-secret-0123456789",
        "base_url": server.url,
        "trade_mode": "live",
        "timeout_ms": 3000,
    }
    if exchange == "okx":
        values["api_passphrase"] = OKX_PASSPHRASE
    values.update(config)
    gateway = CcxtGateway(ExchangeConfig.parse(**values))
    # ccxt paces requests by the venue's weights (100 ms for some Bybit calls); a local
    # capture server needs no pacing, and the tests stay fast.
    gateway.client.enableRateLimit = False
    try:
        await gateway.load_markets()
        yield gateway, server
    finally:
        await gateway.close()
        await server.stop()


def order(symbol: str = "BTCUSDT", side: OrderSide = OrderSide.BUY, **values: Any) -> Order:
    values.setdefault("order_type", OrderType.LIMIT)
    values.setdefault("price", 50_000.0)
    values.setdefault("quantity", 1.0)
    return Order(symbol=symbol, side=side, **values)


# -------------------------------------------------------------------------- bybit
async def test_bybit_create_order_with_linear_hedge_sends_position_index_per_side() -> None:
    async with venue("bybit", market_type="futures", position_mode="hedge") as (gateway, server):
        long_entry = await gateway.create_order(
            order(position_side=PositionSide.LONG, quantity=0.01)
        )
        body = server.last("/v5/order/create").body
        assert body["category"] == "linear" and body["symbol"] == "BTCUSDT"
        assert body["positionIdx"] == 1 and body["orderLinkId"] == long_entry.client_order_id
        assert "reduceOnly" not in body
        assert (
            long_entry.status is OrderStatus.SUBMITTED
            and long_entry.order_id == "1321003749386327552"
        )
        await gateway.create_order(
            order(side=OrderSide.SELL, position_side=PositionSide.SHORT, quantity=0.01)
        )
        assert server.last("/v5/order/create").body["positionIdx"] == 2
        await gateway.create_order(
            order(
                side=OrderSide.SELL,
                position_side=PositionSide.LONG,
                reduce_only=True,
                quantity=0.01,
                order_type=OrderType.MARKET,
                price=None,
            )
        )
        close_body = server.last("/v5/order/create").body
        assert (close_body["positionIdx"], close_body["reduceOnly"], close_body["orderType"]) == (
            1,
            True,
            "Market",
        )


async def test_bybit_create_order_with_oneway_inverse_sends_index_zero_and_category() -> None:
    async with venue("bybit", market_type="futures", contract_type="inverse") as (gateway, server):
        assert gateway.market_spec("BTCUSD").contract_type == "inverse"
        await gateway.create_order(
            order("BTCUSD", side=OrderSide.SELL, reduce_only=True, quantity=100)
        )
        body = server.last("/v5/order/create").body
        assert (body["category"], body["symbol"], body["positionIdx"], body["reduceOnly"]) == (
            "inverse",
            "BTCUSD",
            0,
            True,
        )


async def test_bybit_create_order_with_spot_sends_no_position_fields() -> None:
    async with venue("bybit") as (gateway, server):
        placed = await gateway.create_order(order(quantity=0.001))
        body = server.last("/v5/order/create").body
        assert body["category"] == "spot" and body["orderLinkId"] == placed.client_order_id
        assert "positionIdx" not in body and "reduceOnly" not in body


async def test_bybit_settings_with_hedge_isolated_send_leverage_margin_and_mode() -> None:
    async with venue("bybit", market_type="futures", position_mode="hedge") as (gateway, server):
        assert await gateway.set_leverage("BTCUSDT", 7) is True
        leverage = server.last("/v5/position/set-leverage").body
        assert (leverage["buyLeverage"], leverage["sellLeverage"], leverage["category"]) == (
            "7",
            "7",
            "linear",
        )
        assert await gateway.set_margin_mode("BTCUSDT", leverage=7) is True
        assert server.last("/v5/account/set-margin-mode").body["setMarginMode"] == "ISOLATED_MARGIN"
        assert await gateway.set_position_mode() is True
        assert server.last("/v5/position/switch-mode").body["mode"] == 3
        await gateway.set_position_mode(False, "BTCUSDT")
        assert server.last("/v5/position/switch-mode").body["mode"] == 0


async def test_bybit_settings_with_already_set_answers_return_false() -> None:
    not_modified = {
        "/v5/position/set-leverage": {
            "retCode": 110043,
            "retMsg": "Set leverage not modified",
            "result": {},
        },
        "/v5/account/set-margin-mode": {
            "retCode": 110026,
            "retMsg": "Cross/isolated margin mode is not modified",
            "result": {},
        },
        "/v5/position/switch-mode": {
            "retCode": 110025,
            "retMsg": "Position mode is not modified",
            "result": {},
        },
    }
    async with venue("bybit", routes=not_modified, market_type="futures") as (gateway, _):
        assert await gateway.set_leverage("BTCUSDT", 5) is False
        assert await gateway.set_margin_mode("BTCUSDT") is False
        assert await gateway.set_position_mode() is False


async def test_bybit_set_leverage_with_value_above_symbol_limit_names_maximum() -> None:
    async with venue("bybit", market_type="futures") as (gateway, server):
        with pytest.raises(
            ValueError, match="leverage 150 is above the maximum 100 of BTCUSDT on bybit"
        ):
            await gateway.set_leverage("BTCUSDT", 150)
        assert not server.find("/v5/position/set-leverage")


async def test_bybit_cancel_order_with_client_id_only_sends_order_link_id() -> None:
    async with venue("bybit", market_type="futures") as (gateway, server):
        pending = order(quantity=0.01)
        pending.submit(0)
        pending.order_id = ""
        await gateway.cancel_order(pending)
        body = server.last("/v5/order/cancel").body
        assert body["orderLinkId"] == pending.client_order_id and "orderId" not in body


# ---------------------------------------------------------------------------- okx
def okx_order_request(server: CaptureServer):
    """ccxt sends single orders to /trade/order, or (spot) as a one-element /trade/batch-orders."""
    found = [
        r
        for r in server.requests
        if r.method == "POST" and r.path in ("/api/v5/trade/order", "/api/v5/trade/batch-orders")
    ]
    assert found, "no order request captured"
    request = found[-1]
    if "_list" in request.body:
        request.body = request.body["_list"][0]
    return request


async def test_okx_create_order_with_spot_sends_cash_trade_mode_and_client_id() -> None:
    async with venue("okx") as (gateway, server):
        placed = await gateway.create_order(order("BTC-USDT", quantity=0.001))
        request = okx_order_request(server)
        body = request.body
        assert (body["instId"], body["tdMode"], body["clOrdId"]) == (
            "BTC-USDT",
            "cash",
            placed.client_order_id,
        )
        assert "posSide" not in body
        assert request.headers["OK-ACCESS-PASSPHRASE"] == OKX_PASSPHRASE
        assert placed.order_id == "312269865356374016"


async def test_okx_create_order_with_hedge_isolated_sends_pos_side_without_reduce_only() -> None:
    async with venue("okx", market_type="futures", position_mode="hedge") as (gateway, server):
        assert gateway.market_spec("BTCUSDT").contract_size == pytest.approx(0.01)
        await gateway.create_order(
            order(side=OrderSide.SELL, position_side=PositionSide.LONG, reduce_only=True)
        )
        body = okx_order_request(server).body
        assert (body["instId"], body["tdMode"], body["posSide"]) == (
            "BTC-USDT-SWAP",
            "isolated",
            "long",
        )
        assert "reduceOnly" not in body
        await gateway.create_order(order(side=OrderSide.SELL, position_side=PositionSide.SHORT))
        assert okx_order_request(server).body["posSide"] == "short"


async def test_okx_create_order_with_oneway_cross_inverse_sends_net_and_reduce_only() -> None:
    async with venue(
        "okx", market_type="futures", contract_type="inverse", margin_mode="cross"
    ) as (gateway, server):
        await gateway.create_order(order("BTC-USD-SWAP", side=OrderSide.BUY, reduce_only=True))
        body = okx_order_request(server).body
        assert (body["instId"], body["tdMode"], body["posSide"], body["reduceOnly"]) == (
            "BTC-USD-SWAP",
            "cross",
            "net",
            True,
        )


async def test_okx_leverage_with_hedge_isolated_sets_each_side_and_cross_sets_once() -> None:
    async with venue("okx", market_type="futures", position_mode="hedge") as (gateway, server):
        await gateway.set_leverage("BTCUSDT", 5)
        calls = [request.body for request in server.find("/api/v5/account/set-leverage")]
        assert [(c["mgnMode"], c["posSide"], c["lever"]) for c in calls] == [
            ("isolated", "long", 5),
            ("isolated", "short", 5),
        ]
        await gateway.set_position_mode()
        assert server.last("/api/v5/account/set-position-mode").body["posMode"] == "long_short_mode"
    async with venue("okx", market_type="futures", margin_mode="cross") as (gateway, server):
        await gateway.set_margin_mode("BTCUSDT", leverage=3)
        calls = [request.body for request in server.find("/api/v5/account/set-leverage")]
        assert len(calls) == 1 and calls[0]["mgnMode"] == "cross" and calls[0]["lever"] == 3
        await gateway.set_position_mode()
        assert server.last("/api/v5/account/set-position-mode").body["posMode"] == "net_mode"


async def test_okx_market_spec_with_unknown_symbol_names_market() -> None:
    async with venue("okx", market_type="futures") as (gateway, _):
        with pytest.raises(
            UnknownSymbolError, match="unknown symbol 'DOGEUSDT' on okx linear futures"
        ):
            gateway.market_spec("DOGEUSDT")


async def test_okx_fetch_order_with_client_id_sends_cl_ord_id() -> None:
    snapshot = {
        "instId": "BTC-USDT-SWAP",
        "ordId": "99",
        "clOrdId": "me-lookup-1",
        "px": "50000",
        "sz": "1",
        "side": "buy",
        "posSide": "net",
        "ordType": "limit",
        "state": "partially_filled",
        "accFillSz": "0.4",
        "avgPx": "50010",
        "fee": "-0.01",
        "feeCcy": "USDT",
        "cTime": "1700000000000",
        "uTime": "1700000001000",
        "tdMode": "isolated",
    }
    routes = {"GET /api/v5/trade/order": canned.okx_ok([snapshot])}
    async with venue("okx", routes=routes, market_type="futures") as (gateway, server):
        found = await gateway.fetch_order("BTCUSDT", client_order_id="me-lookup-1")
        assert server.last("/api/v5/trade/order", "GET").query["clOrdId"] == "me-lookup-1"
        assert found.status is OrderStatus.PARTIALLY_FILLED
        assert found.filled_quantity == pytest.approx(0.4) and found.average_price == pytest.approx(
            50010
        )
