"""Live mode through the runtime on the loopback Binance sandbox: fees in the coin bought, the queue.

The sandbox charges a spot buy's commission in the base coin (as Binance does without BNB):
buying 0.01 BTC leaves 0.00999 BTC. The sandbox is stepped by hand (speed 0), so every run
is deterministic.
"""

from __future__ import annotations

import asyncio

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderSide, OrderStatus, TradeMode
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.exchanges import CcxtGateway
from metaexpert.risk import RiskManager
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.runtime.driving import drive

KEY, SECRET = "live-runtime-key-" + "a" * 47, "live-runtime-secret-" + "b" * 44

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        tick_replay=False,
        accounts=[
            AccountConfig(
                api_key=KEY,
                secret=SECRET,
                spot_balances={"USDT": 100_000},
                futures_balances={"USDT": 100_000},
            )
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
        api_key=KEY,
        api_secret=SECRET,
        **settings,
    )


def _protected_futures_expert(sandbox) -> MetaExpert:
    """A USD-M expert (isolated, one-way) buying 0.002 BTC protected at the venue by a stop 5%
    and a target 10% away; each test adds its own ``on_bar``."""
    expert = _expert(
        sandbox,
        market_type="futures",
        contract_type="linear",
        margin_mode="isolated",
        position_mode="oneway",
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.002,
        stop_loss_pct=5.0,
        take_profit_pct=10.0,
        leverage=2,
    )
    def init(ctx):
        pass

    return expert


async def _drive(
    expert: MetaExpert, sandbox, steps: int, until=None, **gateway_options
) -> TradingRuntime:
    """Run ``steps`` sandbox bars in live mode (or, with ``until``, up to ``steps`` until it holds)."""
    runtime, _ = await drive(expert, sandbox, TradeMode.LIVE, steps, until=until, **gateway_options)
    return runtime


def _btc(sandbox) -> float:
    account = sandbox.ledger()["accounts"][KEY]
    balances = account.get("spot_balances") or account.get("balances") or {}
    entry = balances.get("BTC", 0.0)
    return (
        float(entry.get("free", 0.0) + entry.get("locked", 0.0))
        if isinstance(entry, dict)
        else float(entry)
    )


def test_live_spot_close_after_buy_with_fee_in_base_coin_sells_the_net_amount(sandbox):
    """Issue 15: the buy fee was charged in BTC at the venue, then ``ctx.close()`` tried to sell the
    gross 0.01 BTC and got "insufficient funds" twice; the position stayed open."""
    expert = _expert(sandbox, market_type="spot")
    bars = []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            ctx.buy()
        elif len(bars) == 3:
            ctx.close()

    runtime = asyncio.run(_drive(expert, sandbox, steps=5))
    engine = runtime.engine
    buy, sell = engine.orders
    assert (buy.side, buy.status, sell.side, sell.status) == (
        OrderSide.BUY,
        OrderStatus.FILLED,
        OrderSide.SELL,
        OrderStatus.FILLED,
    )
    coin_fee = 0.01 * 0.001  # the sandbox's 0.1% taker fee, taken in BTC
    # The engine books the fee at its quote value (its accounts are in USDT) ...
    assert (buy.fee_currency, buy.fee) == ("USDT", pytest.approx(coin_fee * buy.average_price))
    assert sell.quantity == pytest.approx(0.01 - coin_fee)  # ... and sells the net held amount
    realised = sell.filled_quantity * sell.average_price - 0.01 * buy.average_price - sell.fee
    assert engine.portfolio.account.balance == pytest.approx(100_000 + realised, abs=1e-6)
    assert engine.portfolio.positions() == []
    assert _btc(sandbox) == pytest.approx(0.0, abs=1e-12)
    assert engine.errors == []


def _refuse_the_next_creates(sandbox) -> None:
    """Five 429s on the spot order endpoint: with two attempts per request, the create is
    journalled in the durable queue."""
    from metaexpert.sandbox import Fault

    sandbox.inject(
        Fault(
            kind="rate_limit", count=5, path="/api/v3/order", method="POST", retry_after_seconds=0
        )
    )


async def _drive_with_queue(expert, sandbox, tmp_path, until) -> TradingRuntime:
    """Up to 200 bars until ``until`` holds, with the durable queue and two attempts a request
    (the queue waits out the venue's acceptance window, 0.1 s, before it replays)."""
    from metaexpert.exchanges import RetryPolicy

    quick = RetryPolicy(attempts=2, initial_delay=0.0, maximum_delay=0.001, jitter=0.0)
    return await _drive(
        expert,
        sandbox,
        steps=200,
        until=until,
        order_queue_path=tmp_path / "queue.sqlite",
        retry_policy=quick,
        order_retry_policy=quick,
        client_options={"recvWindow": 100},
    )


def test_live_order_journalled_during_429_burst_is_replayed_by_the_runtime_and_fills_once(
    sandbox, tmp_path
):
    """Issue 15: after five 429s an order stayed ``created`` for ever: nothing replayed the queue."""
    expert = _expert(sandbox, market_type="spot")
    bars = []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.002
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            _refuse_the_next_creates(sandbox)
            ctx.buy()

    before = len(sandbox.ledger()["orders"])

    def filled(runtime) -> bool:
        return bool(runtime.engine.orders) and runtime.engine.orders[0].status is OrderStatus.FILLED

    runtime = asyncio.run(_drive_with_queue(expert, sandbox, tmp_path, until=filled))
    (buy,) = runtime.engine.orders
    assert buy.status is OrderStatus.FILLED and buy.filled_quantity == pytest.approx(0.002)
    placed = [
        o
        for o in sandbox.ledger()["orders"][before:]
        if o["client_order_id"] == buy.client_order_id
    ]
    assert len(placed) == 1  # journalled, replayed once the venue answered, placed once


def test_live_order_journalled_then_cancelled_by_the_expert_is_never_left_at_the_venue(
    sandbox, tmp_path
):
    """Found by the loaded series (chaos run, Bybit): ``ctx.cancel`` of an order whose create
    waited in the durable queue did nothing (the engine cancelled open orders only, and a
    journalled create is still ``created``); the replay then placed it, and 12 resting buys
    stood at the venue at the end of the run."""
    expert = _expert(sandbox, market_type="spot")
    bars, resting = [], []

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.002
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            _refuse_the_next_creates(sandbox)
            order = ctx.buy(0.002, price=round(series.last_close * 0.5, 2))
            resting.append(order)
        elif len(bars) == 2:
            assert resting[0].status is OrderStatus.CREATED  # still in the durable queue
            ctx.cancel(resting[0].client_order_id)

    def settled(runtime) -> bool:
        queue = runtime.gateway.order_queue
        return len(bars) > 2 and resting[0].status.is_terminal and queue.count() == 0

    runtime = asyncio.run(_drive_with_queue(expert, sandbox, tmp_path, until=settled))
    (order,) = runtime.engine.orders
    assert order.status is OrderStatus.CANCELLED
    at_venue = [
        o for o in sandbox.ledger()["orders"] if o["client_order_id"] == order.client_order_id
    ]
    assert all(o["status"] == "CANCELED" for o in at_venue)  # never sent, or sent and cancelled


def test_bounded_run_with_market_data_shed_ends_with_one_line_per_skipped_poll(sandbox, caplog):
    """Issue 15: a shed market-data poll logged a traceback each time and ``max_steps`` never returned
    (the failed step was never counted)."""
    import logging

    from metaexpert.exchanges import PriorityRateLimiter, RequestPriority

    expert = _expert(sandbox, market_type="spot")

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.001
    )
    def init(ctx):
        pass

    limiter = PriorityRateLimiter(
        600, clock=lambda: 0.0
    )  # frozen clock: a drained budget never refills

    async def run() -> TradingRuntime:
        strategy, risk = expert.strategy_config(expert._init_options)
        gateway = CcxtGateway(expert.exchange_config(TradeMode.PAPER), rate_limiter=limiter)
        runtime = TradingRuntime(
            handlers=expert.handlers,
            strategy=strategy,
            gateway=gateway,
            trade_mode=TradeMode.PAPER,
            parts=RunParts(risk=RiskManager(risk)),
            leverage=risk.leverage,
            market_type=expert.config.market_type,
            position_mode=expert.config.position_mode,
            margin_mode=None,
            poll_interval=0.0,
        )
        try:
            await runtime.start()
            # Spend the budget down to just under the share reserved for orders.
            limiter.try_acquire(RequestPriority.ORDER, cost=limiter.tokens - limiter.reserve + 1)
            sandbox.advance(1)
            await asyncio.wait_for(runtime.run(max_steps=runtime.steps + 5), timeout=60)
        finally:
            await gateway.close()
        return runtime

    # The handler sits on the emitting logger itself: under pytest-xdist a module run earlier in
    # the same worker may have left a parent logger not propagating (found by the loaded series:
    # 5 polls shed, 0 lines captured).
    emitting = logging.getLogger("metaexpert.runtime")
    disabled, propagate = emitting.disabled, emitting.propagate
    emitting.disabled, emitting.propagate = False, False
    emitting.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=emitting.name):
            runtime = asyncio.run(run())
    finally:
        emitting.removeHandler(caplog.handler)
        emitting.disabled, emitting.propagate = disabled, propagate
    skipped = [
        record for record in caplog.records if "market data poll skipped" in record.getMessage()
    ]
    assert runtime.shed_polls == 5 and len(skipped) == 5
    assert "(5 so far)" in skipped[-1].getMessage()
    assert not any(record.exc_info for record in caplog.records)
    assert runtime.engine.errors == []


def test_live_futures_close_cancels_the_venue_stop_and_target_of_the_position(sandbox):
    """Issue 15: after the position was closed its stop was still live at the venue and still
    ``submitted`` in the engine (brackets still being created were not counted as the position's)."""
    expert = _protected_futures_expert(sandbox)
    bars = []

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            ctx.buy()
        elif len(bars) == 3:
            ctx.close()

    runtime = asyncio.run(_drive(expert, sandbox, steps=5))
    engine = runtime.engine
    protective = [o for o in engine.orders if o.tag in ("stop_loss", "take_profit")]
    assert len(protective) == 2 and all(o.status is OrderStatus.CANCELLED for o in protective)
    venue = {o["client_order_id"]: o["status"] for o in sandbox.ledger()["orders"]}
    assert [venue[o.client_order_id] for o in protective] == ["CANCELED", "CANCELED"]
    assert engine.portfolio.positions() == []


def test_live_futures_stop_moved_by_the_expert_is_moved_at_the_venue(sandbox):
    """Issue 16: moving a protective stop (``ctx.modify``) on Binance USD-M, where stops live on
    the algo API, which has no amend: the stop is cancelled and placed again at the new trigger
    under a new client id of this run (``exchanges/modify.py``), and that order is the one the
    close cancels. Red before: ccxt's editOrder asked for a price, the stop stayed where it was."""
    expert = _protected_futures_expert(sandbox)
    state: dict = {"bars": 0}

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        state["bars"] += 1
        if state["bars"] == 1:
            ctx.buy()
        elif state["bars"] == 2:
            (stop,) = [o for o in ctx.open_orders() if o.tag == "stop_loss"]
            state["stop"], state["was"] = stop, stop.stop_price
            ctx.modify(stop, stop_price=round(stop.stop_price * 1.01, 1))
        elif state["bars"] == 3:
            ctx.close()

    runtime = asyncio.run(_drive(expert, sandbox, steps=5))
    assert runtime.engine.errors == []
    stop = state["stop"]
    assert stop.stop_price == pytest.approx(round(state["was"] * 1.01, 1))
    assert stop.status is OrderStatus.CANCELLED
    orders = sandbox.ledger()["orders"]  # this test's: from its entry on (the sandbox is shared)
    entry = runtime.engine.orders[0].client_order_id
    orders = orders[[o["client_order_id"] for o in orders].index(entry) :]
    first, moved = [o for o in orders if o["kind"] == "STOP_MARKET"]  # the original, the moved
    assert first["client_order_id"] == stop.client_order_id
    assert (first["stop_price"], first["status"]) == (pytest.approx(state["was"]), "CANCELED")
    assert moved["stop_price"] == pytest.approx(stop.stop_price)
    assert moved["status"] == "CANCELED"  # the close cancelled the moved stop, not the old one
    # A new id of this run, made as every one of its ids (core/order.py new_client_order_id).
    assert moved["client_order_id"] != stop.client_order_id
    assert moved["client_order_id"][:3] == stop.client_order_id[:3] == "me-"
    assert not [o for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    assert runtime.engine.portfolio.positions() == []


def test_live_futures_stop_moved_past_the_market_is_refused_and_placed_again_at_its_old_trigger(
    sandbox,
):
    """A long's stop moved above the market: Binance refuses it (-2021 "Order would immediately
    trigger") after the old stop was cancelled. The old trigger is placed again, so the position
    is never left without its stop; the refusal is the run's error, and the close cancels the
    restored stop."""
    expert = _protected_futures_expert(sandbox)
    state: dict = {"bars": 0}

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        state["bars"] += 1
        if state["bars"] == 1:
            ctx.buy()
        elif state["bars"] == 2:
            (stop,) = [o for o in ctx.open_orders() if o.tag == "stop_loss"]
            state["stop"], state["was"] = stop, stop.stop_price
            ctx.modify(stop, stop_price=round(series.last_close * 1.05, 1))
        elif state["bars"] == 3:
            state["held"] = [(o.tag, o.stop_price) for o in ctx.open_orders()]
            ctx.close()

    runtime = asyncio.run(_drive(expert, sandbox, steps=5))
    stop = state["stop"]
    assert len(runtime.engine.errors) == 1 and "-2021" in str(runtime.engine.errors[0])
    assert stop.stop_price == pytest.approx(state["was"])  # not moved in the engine either
    assert ("stop_loss", pytest.approx(state["was"])) in state["held"]
    orders = sandbox.ledger()["orders"]
    entry = runtime.engine.orders[0].client_order_id
    orders = orders[[o["client_order_id"] for o in orders].index(entry) :]
    first, restored = [o for o in orders if o["kind"] == "STOP_MARKET"]
    assert first["client_order_id"] == stop.client_order_id and first["status"] == "CANCELED"
    assert restored["stop_price"] == pytest.approx(state["was"])
    assert restored["status"] == "CANCELED"  # cancelled by the close, as the position's stop
    assert not [o for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    assert runtime.engine.portfolio.positions() == []


def test_live_coin_m_with_bracket_moved_and_closed_settles_in_btc_and_matches_the_sandbox_ledger():
    """Issue 16: COIN-M (``BTCUSD_PERP``, 100 USD contracts settled in BTC) through the runtime:
    1,000 USD of exposure is 10 contracts, the stop and target go to the venue, the stop is moved
    (cancel and replace, as on USD-M), the close cancels the bracket, and the BTC wallet, the
    gateway's account and the engine's agree with the sandbox's ledger."""
    account = AccountConfig(api_key=KEY, secret=SECRET, coin_balances={"BTC": 1.0})
    config = SandboxConfig(
        timeframe="1m",
        inverse_symbols=["BTCUSDT"],
        speed=0.0,
        tick_replay=False,
        accounts=[account],
    )
    state: dict = {"bars": 0}
    with SandboxServer(config) as coinm:
        expert = _expert(
            coinm,
            market_type="futures",
            contract_type="inverse",
            margin_mode="isolated",
            position_mode="oneway",
        )

        @expert.on_init(
            symbol="BTCUSD_PERP",
            timeframe="1m",
            lookback_bars=5,
            size_type="fixed_quote",
            size_value=1_000,
            stop_loss_pct=5.0,
            take_profit_pct=10.0,
            leverage=2,
        )
        def init(ctx):
            pass

        @expert.on_bar(timeframe="1m")
        def bar(ctx, series):
            state["bars"] += 1
            if state["bars"] == 1:
                ctx.buy()
            elif state["bars"] == 2:
                (stop,) = [o for o in ctx.open_orders() if o.tag == "stop_loss"]
                state["stop"] = stop
                ctx.modify(stop, stop_price=round(stop.stop_price * 1.01, 1))
            elif state["bars"] == 4:
                ctx.close()

        async def venue_state(gateway):
            return await gateway.fetch_balance("BTC"), await gateway.fetch_open_orders()

        runtime, (balance, open_orders) = asyncio.run(
            drive(expert, coinm, TradeMode.LIVE, 6, after=venue_state)
        )
        ledger = coinm.ledger()
    engine = runtime.engine
    assert engine.errors == []
    buy = engine.orders[0]
    (close,) = [o for o in engine.orders if o.tag == "close"]
    assert buy.quantity == 10 and close.filled_quantity == 10  # 100 USD contracts
    stops = [o for o in ledger["orders"] if o["kind"] == "STOP_MARKET"]
    assert [o["status"] for o in stops] == ["CANCELED", "CANCELED"]  # the original, the moved
    assert stops[1]["stop_price"] == pytest.approx(state["stop"].stop_price)
    assert open_orders == [] and engine.portfolio.positions() == []
    fills = ledger["fills"]
    realised = 10 * 100 * (1 / buy.average_price - 1 / close.average_price)
    assert sum(f["realized_pnl"] for f in fills) == pytest.approx(realised, rel=0, abs=1e-12)
    assert {f["commission_asset"] for f in fills} == {"BTC"}
    assert engine.portfolio.account.currency == "BTC"
    assert balance.balance == pytest.approx(engine.portfolio.account.balance, abs=1e-8)
    assert engine.portfolio.account.balance == pytest.approx(
        1.0 + realised - sum(f["commission"] for f in fills), abs=1e-8
    )
