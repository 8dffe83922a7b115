"""Chaos through the live runtime: an expert trades linear perpetuals on the Binance USD-M, OKX
v5 SWAP and Bybit v5 linear sandboxes while a quarter of its order requests fail, and at the
end nothing is lost, nothing duplicated, no stop left behind. On Binance a second run faults
creates only (its cancels are DELETEs), so journalled creates back off behind due cancels.

Each bar the expert rests 40 limit buys far below the market and cancels the previous bar's,
and alternately opens a position (the engine protects it with a stop-loss and a take-profit at
the venue: algo orders) or closes it (the engine cancels the protection). Before every step the
test injects single-shot faults on the order endpoints (rate limit, 503, answers lost after
the order was accepted, dropped connections), so the number of faults is a count the test
controls; the engine's orders go through the live broker, the gateway's retries, lookups by
client order id and the durable queue that every poll replays. The sandbox's own ledger is
the source of truth.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.exchanges import CcxtGateway, CircuitBreaker, RetryPolicy
from metaexpert.risk import RiskManager
from metaexpert.sandbox import AccountConfig, Fault, SandboxConfig, SandboxServer

pytestmark = [pytest.mark.network, pytest.mark.slow]

KEY, SECRET = "chaos-runtime-key-" + "a" * 46, "chaos-runtime-secret-" + "b" * 43
PASSPHRASE = "chaos-runtime-pass"
FAULT_KINDS = ("rate_limit", "unavailable", "drop_after_accept", "drop_connection")
#: Per venue: the order endpoints faults are injected on (POST, substrings of the path), the
#: expert's extra settings and the size of a resting buy (OKX counts contracts of 0.01 BTC).
VENUES = {
    "binance": (("/fapi/v1/order", "/fapi/v1/algoOrder"), {}, 0.003),
    "okx": (
        ("/api/v5/trade/batch-orders", "/api/v5/trade/cancel"),  # ccxt creates in batches of 1
        {"api_passphrase": PASSPHRASE, "testnet": True},
        1.0,
    ),
    # Bybit's REST tickers carry no time: the engine's clock comes from the answer's ``time``
    # (before, the wall clock stood in, and a create retried after a dropped answer found the
    # venue's order stamped in replayed time, "not this run's").
    "bybit": (("/v5/order/create", "/v5/order/cancel"), {}, 0.003),
}
#: Runs: a venue and the HTTP method faults are limited to (None: every request on the paths).
#: On Binance cancels are DELETEs, so faults on POST alone hit creates only: their replays back
#: off while the cancels behind them come due (2 protective orders were left at the venue).
RUNS = {
    "binance": ("binance", None),
    "okx": ("okx", None),
    "bybit": ("bybit", None),
    "binance-creates-only": ("binance", "POST"),
}
RESTING_PER_BAR = 40
TRADING_BARS = 26
FAULTS_PER_STEP = 24


@pytest.fixture(params=list(RUNS))
def sandbox(request):
    venue, fault_method = RUNS[request.param]
    config = SandboxConfig(
        venue=venue,
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        tick_replay=False,
        accounts=[
            AccountConfig(
                api_key=KEY,
                secret=SECRET,
                passphrase=PASSPHRASE,
                futures_balances={"USDT": 10_000_000},
            )
        ],
    )
    with SandboxServer(config) as server:
        yield venue, fault_method, server


@pytest.mark.timeout(600)
def test_live_runtime_chaos_loses_duplicates_and_leaves_behind_nothing(sandbox, tmp_path) -> None:
    venue, fault_method, sandbox = sandbox
    order_paths, venue_settings, resting_quantity = VENUES[venue]
    expert = MetaExpert(
        exchange=venue,
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        market_type="futures",
        contract_type="linear",
        margin_mode="isolated",
        position_mode="oneway",
        api_key=KEY,
        api_secret=SECRET,
        rate_limit=100_000,
        log_to_file=False,
        log_to_console=False,
        **venue_settings,
    )
    state = {"bars": 0}

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.001,
        stop_loss_pct=5.0,
        take_profit_pct=10.0,
        leverage=2,
        max_open_positions=1,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        state["bars"] += 1
        for client_id in state.pop("resting", []):
            ctx.cancel(client_id)
        if state["bars"] > TRADING_BARS:
            if ctx.position() is not None:
                ctx.close()
            return
        far = round(bars.last_close * 0.5, 1)
        state["resting"] = [
            ctx.buy(resting_quantity, price=far).client_order_id for _ in range(RESTING_PER_BAR)
        ]
        if ctx.position() is None:
            ctx.buy()
        else:
            ctx.close()

    quick = RetryPolicy(attempts=4, initial_delay=0.0, maximum_delay=0.01, jitter=0.0)
    injected: Counter[str] = Counter()

    def inject_faults() -> None:
        for _ in range(FAULTS_PER_STEP):
            number = sum(injected.values())
            kind = FAULT_KINDS[number % len(FAULT_KINDS)]
            sandbox.inject(
                Fault(
                    kind=kind,
                    count=1,
                    path=order_paths[number % 2],
                    method=fault_method,
                    retry_after_seconds=0,
                )
            )
            injected[kind] += 1

    async def drive() -> TradingRuntime:
        strategy, risk = expert.strategy_config(expert._init_options)
        gateway = CcxtGateway(
            expert.exchange_config(TradeMode.LIVE),
            retry_policy=quick,
            order_retry_policy=quick,
            order_queue_path=tmp_path / "queue.sqlite",
            circuit_breaker=CircuitBreaker(venue, failure_threshold=50, reset_timeout=0.05),
            # 1 s: a request delayed past the window is refused (-1021); 200 ms failed once under load
            client_options={"recvWindow": 1000},
        )
        gateway.client.enableRateLimit = False
        runtime = TradingRuntime(
            handlers=expert.handlers,
            strategy=strategy,
            gateway=gateway,
            trade_mode=TradeMode.LIVE,
            parts=RunParts(risk=RiskManager(risk)),
            leverage=risk.leverage,
            market_type=expert.config.market_type,
            position_mode=expert.config.position_mode,
            margin_mode=expert.config.margin_mode,
        )
        try:
            await runtime.start()
            for _ in range(TRADING_BARS):
                inject_faults()
                sandbox.advance(1)
                await runtime.step()
            sandbox.clear_faults()
            for _ in range(200):  # wind down: close, cancel, replay what is journalled
                sandbox.advance(1)
                await runtime.step()
                await asyncio.sleep(0.02)
                engine = runtime.engine
                pending = gateway.order_queue.count() if gateway.order_queue is not None else 0
                if (
                    state["bars"] > TRADING_BARS + 1
                    and pending == 0
                    and not any(
                        o.status.is_open or o.status is OrderStatus.CREATED for o in engine.orders
                    )
                    and engine.portfolio.positions() == []
                ):
                    break
        finally:
            await gateway.close()
        return runtime

    runtime = asyncio.run(drive())
    engine = runtime.engine
    fired = Counter(str(entry["kind"]) for entry in sandbox.fault_history())
    ledger = sandbox.ledger()
    venue_orders = ledger["orders"]
    per_client_id = Counter(order["client_order_id"] for order in venue_orders)
    ours = [order for order in engine.orders]
    cancels = sum(1 for order in ours if order.status is OrderStatus.CANCELLED)
    operations = len(ours) + cancels
    # Lost: still unsent, or held filled or open by the engine but never at the venue. A create
    # cancelled while it waited in the journal is never sent (a bracket whose position closed).
    lost = [
        o.client_order_id
        for o in ours
        if o.status is OrderStatus.CREATED
        or (
            per_client_id[o.client_order_id] == 0
            and o.status not in (OrderStatus.REJECTED, OrderStatus.CANCELLED)
        )
    ]
    unsent = sum(
        1
        for o in ours
        if o.status is OrderStatus.CANCELLED and not per_client_id[o.client_order_id]
    )
    duplicated = [cid for cid, count in per_client_id.items() if count > 1]
    left_open = [order for order in venue_orders if order["status"] in ("NEW", "PARTIALLY_FILLED")]
    protective_left = [
        order
        for order in left_open
        if "STOP" in str(order.get("type", "")).upper()
        or "TAKE_PROFIT" in str(order.get("type", "")).upper()
    ]
    account = ledger["accounts"][KEY]
    venue_positions = [p for p in account.get("positions", []) if p.get("amount")]
    statuses = Counter(str(order.status) for order in ours)
    reasons = Counter(
        order.reject_reason[:60] for order in ours if order.status is OrderStatus.REJECTED
    )
    print(
        f"\nlive runtime chaos on {venue} (faults on {fault_method or 'every method'}): {operations} order operations ({len(ours)} orders, {cancels} cancels) over "
        f"{runtime.steps} steps; faults injected {sum(injected.values())} {dict(injected)}, fired "
        f"{sum(fired.values())}; venue orders {len(venue_orders)} ({unsent} cancelled unsent); lost {len(lost)}, duplicated {len(duplicated)}, "
        f"open at the venue {len(left_open)} (protective {len(protective_left)}); engine statuses {dict(statuses)}; "
        f"rejections {dict(reasons)}; first in full: "
        f"{next((o.reject_reason for o in ours if o.status is OrderStatus.REJECTED), '-')}"
    )
    assert operations >= 2000
    if fault_method is None:
        assert fired == injected  # every injected fault fired
        assert sum(injected.values()) >= 0.2 * operations
    else:  # the algo path sees a create per protective order only: its faults wait longer
        assert sum(fired.values()) >= 0.25 * len(ours)
    assert lost == [] and duplicated == []
    assert protective_left == [] and left_open == [] and venue_positions == []
    assert engine.portfolio.positions() == []
