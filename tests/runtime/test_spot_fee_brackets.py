"""Spot brackets and closes are sized at the coin really held after a buy fee taken in that coin.

Binance spot without BNB (and the loopback sandbox) keeps a buy's commission in the coin bought:
buying 0.01 BTC leaves 0.00999 BTC. The engine placed the stop and the target for the gross
0.01 before it booked the fee in kind, so the venue refused them ("insufficient balance") and
the position stood unprotected; a spot venue also locks the coin of a resting sell, so a close
must free what the protective orders hold first. Issue 15.
"""

from __future__ import annotations

import asyncio

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderStatus, OrderType, TradeMode
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.runtime.driving import drive

KEY, SECRET = "spot-fee-key-" + "a" * 51, "spot-fee-secret-" + "b" * 48

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        speed=0.0,
        tick_replay=False,
        accounts=[AccountConfig(api_key=KEY, secret=SECRET, spot_balances={"USDT": 100_000})],
    )
    with SandboxServer(config) as server:
        yield server


def _btc(sandbox) -> float:
    balances = sandbox.ledger()["accounts"][KEY].get("spot_balances") or {}
    entry = balances.get("BTC", 0.0)
    if isinstance(entry, dict):
        return float(entry.get("free", 0.0) + entry.get("locked", 0.0))
    return float(entry)


def test_live_spot_brackets_with_buy_fee_in_base_coin_are_placed_at_net_quantity(sandbox):
    """The stop was refused for the gross 0.01 BTC, the target (no price sent to a spot
    TAKE_PROFIT) and the close for the coin the stop locked."""
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        api_key=KEY,
        api_secret=SECRET,
    )
    bars: list[int] = []
    seen: dict[str, object] = {}

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            ctx.buy(stop_loss_pct=20, take_profit_pct=20)
        elif len(bars) == 3:
            seen["venue"] = [
                (o["type"], o["quantity"])
                for o in sandbox.ledger()["orders"]
                if o["api_key"] == KEY and o["status"] == "NEW"
            ]
            ctx.close()

    runtime, _ = asyncio.run(drive(expert, sandbox, TradeMode.LIVE, 6))
    engine = runtime.engine
    net = 0.01 - 0.01 * 0.001  # the sandbox's 0.1% taker fee, kept in BTC
    protective = [o for o in engine.orders if o.tag in ("stop_loss", "take_profit")]
    rejected = [o for o in engine.orders if o.status is OrderStatus.REJECTED]
    assert rejected == [], [(o.tag, o.quantity) for o in rejected]
    assert sorted(o.order_type for o in protective) == sorted(
        [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT]
    )
    assert all(o.quantity == pytest.approx(net) for o in protective)
    # The venue holds the stop for the net coin; the target would need the same coin a second
    # time (a spot venue locks a resting sell's coin, and has no unified OCO): kept by the engine.
    assert seen["venue"] == [("STOP_LOSS", pytest.approx(net))], seen
    (stop,) = [o for o in protective if o.order_type is OrderType.STOP_MARKET]
    assert stop.status is OrderStatus.CANCELLED  # cancelled at the venue before the close sold
    (close,) = [o for o in engine.orders if o.tag == "close"]
    assert close.status is OrderStatus.FILLED and close.filled_quantity == pytest.approx(net)
    assert engine.portfolio.positions() == []
    assert _btc(sandbox) < 0.00001 + 1e-12  # no dust beyond one amount step
    assert engine.errors == []


def test_live_spot_target_with_venue_stop_holding_the_coin_cancels_the_stop_and_sells_net(sandbox):
    """The engine-kept target triggers on a price above it: the venue stop that locks the coin is
    cancelled first, then one market sell of the net coin; nothing is refused, no dust is left."""
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        api_key=KEY,
        api_secret=SECRET,
    )
    bars: list[int] = []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            ctx.buy(stop_loss_pct=20, take_profit_pct=0.5)

    async def run():
        builder = expert.builder(TradeMode.LIVE, None)
        gateway = builder.gateway()
        runtime = builder.trading_runtime(gateway, None)
        try:
            await runtime.start()
            for _ in range(2):
                sandbox.advance(1)
                await runtime.step()
            sandbox.set_price("BTCUSDT", sandbox.price("BTCUSDT") * 1.05)  # above the target
            await runtime.step()
            await runtime.step()
        finally:
            await gateway.close()
        return runtime

    engine = asyncio.run(run()).engine
    net = 0.01 - 0.01 * 0.001
    tagged = {o.tag: o for o in engine.orders}
    rejected = [(o.tag, o.reject_reason) for o in engine.orders if o.status is OrderStatus.REJECTED]
    assert rejected == []
    assert tagged["stop_loss"].status is OrderStatus.CANCELLED
    target = tagged["take_profit"]
    assert target.status is OrderStatus.FILLED and target.filled_quantity == pytest.approx(net)
    assert engine.portfolio.positions() == []
    assert _btc(sandbox) < 0.00001 + 1e-12
    assert engine.errors == []
