"""Paper and live mode end to end: the real engine, real ccxt, the loopback sandbox.

The sandbox is stepped by hand (speed 0) and the runtime polled step by step, so every
run is deterministic.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.exchanges import CcxtGateway
from metaexpert.risk import RiskManager
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.runtime.driving import drive

KEY, SECRET = "runtime-key-" + "a" * 52, "runtime-secret-" + "b" * 49
ONEWAY_KEY, ONEWAY_SECRET = "runtime-oneway-" + "c" * 49, "runtime-oneway-secret-" + "d" * 42

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        accounts=[
            AccountConfig(
                api_key=KEY,
                secret=SECRET,
                spot_balances={"USDT": 100_000},
                futures_balances={"USDT": 100_000},
            ),
            AccountConfig(
                api_key=ONEWAY_KEY, secret=ONEWAY_SECRET, futures_balances={"USDT": 100_000}
            ),
        ],
    )
    with SandboxServer(config) as server:
        yield server


def _expert(sandbox, **settings) -> MetaExpert:
    return MetaExpert(
        exchange="binance",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        **settings,
    )


async def _drive(
    expert: MetaExpert, sandbox, mode: TradeMode, steps: int, simulation=None
) -> TradingRuntime:
    runtime, _ = await drive(expert, sandbox, mode, steps, simulation=simulation)
    return runtime


def test_paper_mode_with_spot_expert_fills_on_simulated_broker_without_keys(sandbox):
    expert = _expert(sandbox, market_type="spot")
    actions = []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        actions.append(bars.last.timestamp)
        if len(actions) == 1:
            ctx.buy()
        elif len(actions) == 3:
            ctx.close()

    fills_before = len(sandbox.ledger()["fills"])
    runtime = asyncio.run(_drive(expert, sandbox, TradeMode.PAPER, steps=5))
    engine = runtime.engine
    assert len(actions) >= 4, "a bar must be delivered after each closed sandbox bar"
    assert all(b > a for a, b in itertools.pairwise(actions)), (
        "bars arrive in time order, once each"
    )
    statuses = [o.status for o in engine.orders]
    assert statuses == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert engine.portfolio.positions() == []
    assert len(engine.closed_trades) == 1
    assert len(sandbox.ledger()["fills"]) == fills_before, "paper mode must not trade at the venue"


def test_live_mode_with_hedge_futures_expert_matches_sandbox_ledger(sandbox):
    expert = _expert(
        sandbox,
        market_type="futures",
        contract_type="linear",
        position_mode="hedge",
        margin_mode="isolated",
        api_key=KEY,
        api_secret=SECRET,
    )
    events = []

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.01,
        leverage=2,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        events.append("bar")
        count = events.count("bar")
        if count == 1:
            ctx.buy(position_side="long")
            ctx.sell(position_side="short")
        elif count == 2:
            resting = ctx.buy(0.02, position_side="long", price=round(bars.last_close * 0.5, 1))
            ctx.state["resting"] = resting.client_order_id
        elif count == 3:
            ctx.modify(ctx.state["resting"], price=round(bars.last_close * 0.6, 1))
        elif count == 4:
            ctx.cancel(ctx.state["resting"])

    @expert.on_order()
    def order(ctx, event):
        events.append((event.order.client_order_id, event.order.status.value))

    runtime = asyncio.run(_drive(expert, sandbox, TradeMode.LIVE, steps=6))
    engine = runtime.engine
    positions = {(p.side.value, round(p.quantity, 8)) for p in engine.portfolio.positions()}
    assert positions == {("long", 0.01), ("short", 0.01)}
    account = next(a for key, a in sandbox.ledger()["accounts"].items() if key == KEY)
    venue = {
        (p["position_side"].lower(), round(abs(p["amount"]), 8))
        for p in account["positions"]
        if p["amount"]
    }
    assert positions == venue, "engine positions must equal the sandbox's own ledger"
    resting = next(o for o in engine.orders if o.price is not None)
    assert resting.status is OrderStatus.CANCELLED
    assert (resting.client_order_id, "cancelled") in events
    assert engine.errors == []


def test_live_mode_with_trailing_stop_manages_it_in_engine_and_exits_once_at_venue(sandbox):
    expert = _expert(
        sandbox,
        market_type="futures",
        contract_type="linear",
        position_mode="oneway",
        margin_mode="isolated",
        api_key=ONEWAY_KEY,
        api_secret=ONEWAY_SECRET,
    )
    state = {}

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.01,
        trailing_stop_pct=1.0,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        if not state:
            state["entry"] = ctx.buy()

    async def scenario():
        strategy, risk = expert.strategy_config(expert._init_options)
        gateway = CcxtGateway(expert.exchange_config(TradeMode.LIVE))
        runtime = TradingRuntime(
            handlers=expert.handlers,
            strategy=strategy,
            gateway=gateway,
            trade_mode=TradeMode.LIVE,
            parts=RunParts(risk=RiskManager(risk)),
            market_type=expert.config.market_type,
            margin_mode=expert.config.margin_mode,
        )
        try:
            await runtime.start()
            sandbox.advance(1)
            await runtime.step()  # the bar closes: entry sent and filled
            await runtime.step()
            entry = runtime.engine.portfolio.positions("BTCUSDT")[0].entry_price
            for factor in (1.02, 1.03, 1.025):  # up 3%: the stop trails to 1% below the high
                sandbox.set_price("BTCUSDT", round(entry * factor, 1))
                await runtime.step()
            sandbox.set_price(
                "BTCUSDT", round(entry * 1.015, 1)
            )  # down 1.5% from the high: breached
            await runtime.step()
            await runtime.step()
        finally:
            await gateway.close()
        return runtime, entry

    fills_before = len(sandbox.ledger()["fills"])
    runtime, entry = asyncio.run(scenario())
    engine = runtime.engine
    trailing = [o for o in engine.orders if o.tag == "trailing_stop"]
    assert len(trailing) == 1 and trailing[0].status is OrderStatus.FILLED
    assert trailing[0].average_price > entry * 1.01, "the trailing stop locked in the move up"
    assert engine.portfolio.positions() == []
    account = sandbox.ledger()["accounts"][ONEWAY_KEY]
    assert not [p for p in account["positions"] if p["symbol"] == "BTCUSDT" and p["amount"]]
    new_fills = sandbox.ledger()["fills"][fills_before:]
    assert len(new_fills) == 2, "one entry and exactly one protective exit at the venue"
    assert engine.closed_trades[-1].exit_reason == "trailing_stop"


def test_paper_mode_with_fill_on_close_and_participation_uses_both_simulation_settings(sandbox):
    from metaexpert.engine.config import SimulationConfig

    expert = _expert(sandbox, market_type="spot")
    fills_at_placement = []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        if not fills_at_placement:
            order = ctx.buy()
            fills_at_placement.append(order.filled_quantity)

    simulation = SimulationConfig(fill_market_on="close", max_volume_participation=0.25)
    runtime = asyncio.run(_drive(expert, sandbox, TradeMode.PAPER, steps=1, simulation=simulation))
    assert fills_at_placement == [pytest.approx(0.01)], (
        "fill_market_on='close' fills a market order at once"
    )
    assert runtime.broker.participation == 0.25
