"""Real ccxt binance (spot) and binanceusdm against the loopback Binance sandbox."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import MarginMode, OrderSide, OrderStatus, OrderType, PositionSide
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.order import Order
from metaexpert.exchanges import (
    AuthenticationFailedError,
    ExchangeOrderRejectedError,
    UnknownSymbolError,
)
from tests.exchanges.conftest import SANDBOX_SECRET, ledger_orders, sandbox_gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.network]


async def test_spot_gateway_with_limit_order_places_modifies_and_cancels(sandbox) -> None:
    gateway = sandbox_gateway(sandbox, "spot")
    try:
        await gateway.load_markets()
        spec = gateway.market_spec("BTCUSDT")
        assert (spec.base, spec.quote, spec.amount_step, spec.price_step) == (
            "BTC",
            "USDT",
            1e-05,
            0.01,
        )
        price = spec.round_price(sandbox.price("BTCUSDT") * 0.9)
        order = await gateway.create_order(
            Order(
                symbol="BTCUSDT",
                side=OrderSide.BUY,
                order_type=OrderType.LIMIT,
                quantity=0.01,
                price=price,
            )
        )
        assert order.status is OrderStatus.SUBMITTED and order.order_id
        assert ledger_orders(sandbox, order.client_order_id)[0]["price"] == pytest.approx(price)
        lower = spec.round_price(price * 0.95)
        modified = await gateway.modify_order(order, price=lower)
        assert modified is order and order.price == lower and order.status is OrderStatus.SUBMITTED
        open_ids = [o.client_order_id for o in await gateway.fetch_open_orders("BTCUSDT")]
        assert open_ids.count(order.client_order_id) == 1
        fetched = await gateway.fetch_order("BTCUSDT", client_order_id=order.client_order_id)
        assert fetched is order and fetched.price == lower
        cancelled = await gateway.cancel_order(order)
        assert cancelled.status is OrderStatus.CANCELLED
        assert ledger_orders(sandbox, order.client_order_id)[-1]["status"] == "CANCELED"
    finally:
        await gateway.close()


async def test_spot_gateway_with_market_order_fills_and_reads_data(sandbox) -> None:
    gateway = sandbox_gateway(sandbox, "spot")
    try:
        before = await gateway.fetch_balance("BTC")
        order = await gateway.create_order(
            Order(symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=0.02)
        )
        assert order.status is OrderStatus.FILLED
        assert order.filled_quantity == pytest.approx(0.02) and order.average_price > 0
        assert len(order.trades) == 1
        after = await gateway.fetch_balance("BTC")
        assert after.balance == pytest.approx(before.balance + 0.02 - order.fee, rel=1e-6)
        bars = await gateway.fetch_ohlcv("BTCUSDT", "1m", limit=10)
        assert len(bars) == 10 and all(bar.symbol == "BTCUSDT" for bar in bars)
        assert bars[0].timestamp < bars[-1].timestamp
        tick = await gateway.fetch_ticker("BTCUSDT")
        assert tick.price == pytest.approx(sandbox.price("BTCUSDT"))
        assert await gateway.fetch_positions() == []
    finally:
        await gateway.close()


async def test_futures_gateway_with_hedge_mode_holds_long_and_short(fresh_sandbox) -> None:
    sandbox = fresh_sandbox
    gateway = sandbox_gateway(sandbox, "usdm", config_overrides={"position_mode": "hedge"})
    try:
        assert await gateway.set_position_mode() is True
        assert await gateway.set_position_mode() is False  # already hedged
        assert await gateway.set_margin_mode("BTCUSDT") is True
        assert await gateway.set_margin_mode("BTCUSDT", MarginMode.ISOLATED) is False
        assert await gateway.set_leverage("BTCUSDT", 10) is True
        account = sandbox.ledger()["accounts"]
        state = next(iter(account.values()))
        assert state["dual_side_position"] is True
        assert state["leverage"]["BTCUSDT"] == 10
        assert state["margin_type"]["BTCUSDT"].lower() == "isolated"
        long_entry = await gateway.create_order(
            Order(
                symbol="BTCUSDT",
                side=OrderSide.BUY,
                order_type=OrderType.MARKET,
                quantity=0.01,
                position_side=PositionSide.LONG,
            )
        )
        short_entry = await gateway.create_order(
            Order(
                symbol="BTCUSDT",
                side=OrderSide.SELL,
                order_type=OrderType.MARKET,
                quantity=0.03,
                position_side=PositionSide.SHORT,
            )
        )
        assert long_entry.status is OrderStatus.FILLED and short_entry.status is OrderStatus.FILLED
        positions = {p.side: p for p in await gateway.fetch_positions(["BTCUSDT"])}
        assert positions[PositionSide.LONG].quantity == pytest.approx(0.01)
        assert positions[PositionSide.SHORT].quantity == pytest.approx(0.03)
        assert positions[PositionSide.LONG].leverage == 10
        close = await gateway.create_order(
            Order(
                symbol="BTCUSDT",
                side=OrderSide.BUY,
                order_type=OrderType.MARKET,
                quantity=0.03,
                position_side=PositionSide.SHORT,
                reduce_only=True,
            )
        )
        assert close.status is OrderStatus.FILLED
        assert ledger_orders(sandbox, close.client_order_id)[0]["position_side"] == "SHORT"
        remaining = {p.side for p in await gateway.fetch_positions()}
        assert remaining == {PositionSide.LONG}
        resting = await gateway.create_order(
            Order(
                symbol="BTCUSDT",
                side=OrderSide.BUY,
                order_type=OrderType.LIMIT,
                quantity=0.01,
                price=round(sandbox.price("BTCUSDT") * 0.8, 1),
                position_side=PositionSide.LONG,
            )
        )
        new_price = round(sandbox.price("BTCUSDT") * 0.7, 1)
        await gateway.modify_order(resting, quantity=0.02, price=new_price)
        record = ledger_orders(sandbox, resting.client_order_id)
        assert len(record) == 1  # futures modify in place: same order, same client id
        assert (record[0]["quantity"], record[0]["price"]) == (
            pytest.approx(0.02),
            pytest.approx(new_price),
        )
        assert (await gateway.cancel_order(resting)).status is OrderStatus.CANCELLED
    finally:
        await gateway.close()


async def test_futures_gateway_with_leverage_above_limit_raises_before_sending(sandbox) -> None:
    gateway = sandbox_gateway(sandbox, "usdm")
    try:
        await gateway.load_markets()
        maximum = gateway.market_spec("BTCUSDT").max_leverage
        with pytest.raises(
            ConfigurationError, match=f"leverage 500 is above the maximum {maximum:g} of BTCUSDT"
        ):
            await gateway.set_leverage("BTCUSDT", 500)
    finally:
        await gateway.close()


async def test_gateway_with_unknown_symbol_names_symbol_and_market(sandbox) -> None:
    gateway = sandbox_gateway(sandbox, "usdm")
    try:
        with pytest.raises(
            UnknownSymbolError, match="unknown symbol 'DOGEUSDT' on binance linear futures"
        ):
            await gateway.create_order(
                Order(
                    symbol="DOGEUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=1
                )
            )
    finally:
        await gateway.close()


async def test_gateway_with_wrong_api_secret_reports_signature_rejected(sandbox) -> None:
    wrong_secret = "wrong-secret-" + SANDBOX_SECRET[::-1]
    gateway = sandbox_gateway(sandbox, "spot", config_overrides={"api_secret": wrong_secret})
    try:
        with pytest.raises(AuthenticationFailedError) as caught:
            await gateway.fetch_balance()
        message = str(caught.value)
        assert "authentication failed" in message and "signature" in message.lower()
        assert wrong_secret not in message and "signature=" not in message.replace(
            "signature=***", ""
        )
    finally:
        await gateway.close()


async def test_gateway_with_insufficient_balance_rejects_order_permanently(sandbox) -> None:
    gateway = sandbox_gateway(sandbox, "spot")
    try:
        order = Order(
            symbol="BTCUSDT", side=OrderSide.SELL, order_type=OrderType.MARKET, quantity=5000
        )
        with pytest.raises(ExchangeOrderRejectedError, match="insufficient"):
            await gateway.create_order(order)
        assert order.status is OrderStatus.REJECTED and "insufficient" in order.reject_reason
    finally:
        await gateway.close()
