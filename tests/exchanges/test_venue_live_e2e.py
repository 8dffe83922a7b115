"""Live mode end to end through the runtime on the loopback Bybit v5 and OKX v5 sandboxes.

The facade is given ``exchange="bybit"|"okx"`` and the sandbox's ``base_url`` only: the
gateway must point unmodified ccxt at it. The sandbox is stepped by hand (speed 0), so every
run is deterministic; at the end the engine's view equals the sandbox's own ledger.
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

KEY, SECRET, PASSPHRASE = "venue-e2e-key-0001", "venue-e2e-secret-0001", "venue-e2e-pass"

pytestmark = pytest.mark.network


def _exact(value: float):
    """Equal to the venue's ledger to a billionth of a coin (float noise only, no fee rounding)."""
    return pytest.approx(value, rel=0, abs=1e-9)


def _sandbox(venue: str) -> SandboxServer:
    account = AccountConfig(
        api_key=KEY,
        secret=SECRET,
        passphrase=PASSPHRASE,
        spot_balances={"USDT": 100_000.0},
        futures_balances={"USDT": 100_000.0},
    )
    return SandboxServer(
        SandboxConfig(venue=venue, timeframe="1m", speed=0.0, tick_replay=False, accounts=[account])
    )


@pytest.fixture(params=["bybit", "okx"])
def venue(request):
    with _sandbox(request.param) as server:
        yield request.param, server


def _expert(venue: str, sandbox: SandboxServer, **settings) -> MetaExpert:
    # The OKX sandbox is a demo-trading account: ccxt's sandbox mode (testnet) sends the
    # ``x-simulated-trading: 1`` header OKX demands for it.
    extra = {"api_passphrase": PASSPHRASE, "testnet": True} if venue == "okx" else {}
    return MetaExpert(
        exchange=venue,
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        api_key=KEY,
        api_secret=SECRET,
        **extra,
        **settings,
    )


def _protected_swap_expert(
    venue: str, sandbox: SandboxServer, *, leverage: int = 2, protected: bool = True
) -> MetaExpert:
    """A linear swap expert (isolated, one-way) buying 0.01 BTC protected at the venue by a
    stop 5% and a target 10% away (unless not ``protected``); each test adds its ``on_bar``."""
    protection = {"stop_loss_pct": 5.0, "take_profit_pct": 10.0} if protected else {}
    expert = _expert(
        venue,
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
        size_value=0.01,
        leverage=leverage,
        **protection,
    )
    def init(ctx):
        pass

    return expert


async def _venue_state(gateway):
    return (
        await gateway.fetch_balance("USDT"),
        await gateway.fetch_positions(),
        await gateway.fetch_open_orders(),
    )


async def _drive(
    expert: MetaExpert, sandbox: SandboxServer, steps: int, mode: TradeMode = TradeMode.LIVE
):
    """``steps`` sandbox bars; returns the runtime and the venue's (balance, positions, open orders)."""
    return await drive(expert, sandbox, mode, steps, after=_venue_state)


def test_live_swap_with_venue_bracket_closes_and_matches_the_sandbox_ledger(venue):
    name, sandbox = venue
    expert = _protected_swap_expert(name, sandbox)
    bars = []
    # Derivative quantities are in the venue's contracts (metaexpert/exchanges/mapping.py), but
    # fixed_base is base coin: 0.01 BTC is 0.01 Bybit linear contracts (1 BTC each) and 1 OKX
    # BTC-USDT-SWAP contract (ctVal 0.01 BTC).
    size = {"bybit": 1.0, "okx": 0.01}[name]

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            ctx.buy()
        elif len(bars) == 2:  # the stop moved at the venue (OKX: in its algo book)
            (stop,) = [o for o in ctx.open_orders() if o.tag == "stop_loss"]
            ctx.modify(stop, stop_price=round(stop.stop_price * 1.01, 1))
        elif len(bars) == 3:
            ctx.close()

    runtime, (account, positions, open_orders) = asyncio.run(_drive(expert, sandbox, steps=5))
    engine = runtime.engine
    ledger = sandbox.ledger()
    assert engine.errors == []
    buy, stop, target, close = engine.orders
    assert [(o.tag, o.side, o.status) for o in engine.orders] == [
        ("", OrderSide.BUY, OrderStatus.FILLED),
        ("stop_loss", OrderSide.SELL, OrderStatus.CANCELLED),
        ("take_profit", OrderSide.SELL, OrderStatus.CANCELLED),
        ("close", OrderSide.SELL, OrderStatus.FILLED),
    ]
    # The stop and the target were placed at the venue (as conditional orders) and cancelled there.
    venue_orders = {o["client_order_id"]: o for o in ledger["orders"]}
    assert [venue_orders[o.client_order_id]["status"] for o in engine.orders] == [
        "FILLED",
        "CANCELED",
        "CANCELED",
        "FILLED",
    ]
    assert [venue_orders[o.client_order_id]["kind"] for o in (stop, target)] == [
        "STOP_MARKET",
        "TAKE_PROFIT_MARKET",
    ]
    assert venue_orders[stop.client_order_id]["stop_price"] == pytest.approx(stop.stop_price)
    # Red before on OKX: amended through amend-order, 51603 "Order does not exist".
    assert stop.stop_price == pytest.approx(round(buy.average_price * 0.95 * 1.01, 1), abs=0.2)
    # Nothing left: no position, no open order (plain or conditional) in the engine or at the venue.
    (venue_account,) = ledger["accounts"].values()
    assert positions == [] and open_orders == [] and engine.portfolio.positions() == []
    assert all(not market["positions"] for market in venue_account["markets"].values())
    # The fills the venue booked are the engine's: base quantity, prices, fees.
    fills = ledger["fills"]
    assert [f["quantity"] for f in fills] == pytest.approx(
        [buy.filled_quantity, close.filled_quantity]
    )
    assert [f["quantity"] * size for f in fills] == pytest.approx([0.01, 0.01])  # BTC
    assert [f["price"] for f in fills] == pytest.approx([buy.average_price, close.average_price])
    assert sum(f["commission"] for f in fills) == pytest.approx(buy.fee + close.fee)
    # Balances and equity: the venue's wallet, the gateway's account and the engine's agree.
    wallet = venue_account["futures_wallet"]["USDT"]
    assert wallet == _exact(100_000 + sum(f["realized_pnl"] - f["commission"] for f in fills))
    assert account.balance == _exact(wallet) and account.equity == _exact(wallet)
    assert engine.portfolio.account.balance == _exact(wallet)
    assert engine.portfolio.account.equity == _exact(wallet)


def test_live_spot_with_fee_in_base_coin_sells_the_net_amount_and_matches_the_sandbox_ledger(venue):
    """Spot on the unified accounts: the buy's fee is taken in BTC at the venue, the close sells the
    net amount, and the venue's USDT equals the engine's balance and the gateway's equity."""
    name, sandbox = venue
    expert = _expert(name, sandbox, market_type="spot")
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

    runtime, (account, positions, open_orders) = asyncio.run(_drive(expert, sandbox, steps=5))
    engine = runtime.engine
    ledger = sandbox.ledger()
    assert engine.errors == []
    buy, sell = engine.orders
    assert (buy.status, sell.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    buy_fill, sell_fill = ledger["fills"]
    assert (buy_fill["commission_asset"], buy_fill["commission"]) == (
        "BTC",
        pytest.approx(0.01 * 0.001),
    )
    assert (
        sell.filled_quantity
        == pytest.approx(sell_fill["quantity"])
        == pytest.approx(0.01 - 0.01 * 0.001)
    )
    (venue_account,) = ledger["accounts"].values()
    balances = venue_account["spot_balances"]
    assert balances["BTC"]["free"] + balances["BTC"]["locked"] == pytest.approx(0.0, abs=1e-12)
    usdt = balances["USDT"]["free"] + balances["USDT"]["locked"]
    assert usdt == _exact(
        100_000
        - buy_fill["price"] * 0.01
        + sell_fill["price"] * sell_fill["quantity"]
        - sell_fill["commission"]
    )
    assert positions == [] and open_orders == [] and engine.portfolio.positions() == []
    assert account.balance == _exact(usdt) and account.equity == _exact(usdt)
    assert engine.portfolio.account.balance == _exact(usdt)
    assert engine.portfolio.account.equity == _exact(usdt)


@pytest.mark.parametrize("market_type", ["futures", "spot"])
def test_paper_run_with_sandbox_market_data_trades_without_touching_the_venue(venue, market_type):
    """Paper mode: candles and prices from the Bybit/OKX sandbox, fills simulated by the engine."""
    name, sandbox = venue
    settings = (
        {"contract_type": "linear", "margin_mode": "isolated"} if market_type == "futures" else {}
    )
    expert = _expert(name, sandbox, market_type=market_type, **settings)
    bars, prices = [], []

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.01,
        stop_loss_pct=5.0,
        take_profit_pct=10.0,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        prices.append((series.last.close, sandbox.price("BTCUSDT")))
        if len(bars) == 1:
            ctx.buy()
        elif len(bars) == 3:
            ctx.close()

    orders_before = len(sandbox.ledger()["orders"])
    runtime, _ = asyncio.run(_drive(expert, sandbox, steps=5, mode=TradeMode.PAPER))
    engine = runtime.engine
    assert engine.errors == []
    assert len(bars) == 5 and all(
        seen == venue_price for seen, venue_price in prices
    )  # the sandbox's replay
    buy, _stop, _target, close = engine.orders
    assert [(o.tag, o.status) for o in engine.orders] == [
        ("", OrderStatus.FILLED),
        ("stop_loss", OrderStatus.CANCELLED),
        ("take_profit", OrderStatus.CANCELLED),
        ("close", OrderStatus.FILLED),
    ]
    assert {buy.average_price, close.average_price} <= {
        seen for seen, _ in prices
    }  # filled at replayed prices
    assert len(sandbox.ledger()["orders"]) == orders_before  # simulated: nothing reached the venue
    assert engine.portfolio.positions() == []
    size = engine.portfolio.market("BTCUSDT").contract_size
    assert size == (
        0.01 if (name, market_type) == ("okx", "futures") else 1.0
    )  # the venue's contract terms
    # fixed_base 0.01 is 0.01 BTC of exposure: 1 OKX contract of 0.01 BTC (it was 0.01 contracts)
    assert buy.quantity * size == pytest.approx(0.01)
    pnl = (close.average_price - buy.average_price) * buy.quantity * size
    account = engine.portfolio.account
    assert account.balance == pytest.approx(runtime.initial_capital + pnl - buy.fee - close.fee)
    assert buy.fee > 0 and account.equity == pytest.approx(account.balance)


async def _run_built(expert: MetaExpert, sandbox: SandboxServer, steps: int):
    """The one builder's live runtime (recorder included), stepped ``steps`` sandbox bars."""
    from metaexpert.engine.assembly import RunBuilder

    async with RunBuilder(expert.plan(TradeMode.LIVE)).trading(poll_interval=0.0) as runtime:
        await runtime.start()
        for _ in range(steps):
            sandbox.advance(1)
            await runtime.step()
        gateway = runtime.gateway
        venue = (
            await gateway.fetch_balance("USDT"),
            await gateway.fetch_positions(),
            await gateway.fetch_open_orders(),
        )
    return runtime, venue


def test_live_swap_restarted_mid_trade_restores_the_position_and_its_venue_bracket(venue, tmp_path):
    """A second process on the same database finds the position and the venue's stop and target,
    closes the position, cancels both at the venue and leaves nothing there."""
    name, sandbox = venue
    size = {"bybit": 1.0, "okx": 0.01}[name]

    def build(action):
        expert = _expert(
            name,
            sandbox,
            market_type="futures",
            contract_type="linear",
            margin_mode="isolated",
            position_mode="oneway",
            storage_url=f"sqlite:///{tmp_path / 'state.db'}",
            journal_dir=str(tmp_path / "journal"),
        )
        bars = []

        @expert.on_init(
            symbol="BTCUSDT",
            timeframe="1m",
            lookback_bars=5,
            size_type="fixed_base",
            size_value=0.01,  # base coin: 1 OKX contract of 0.01 BTC
            stop_loss_pct=5.0,
            take_profit_pct=10.0,
            leverage=2,
        )
        def init(ctx):
            pass

        @expert.on_bar(timeframe="1m")
        def bar(ctx, series):
            bars.append(series.last.timestamp)
            if len(bars) == 1:
                getattr(ctx, action)()

        return expert

    first, _ = asyncio.run(_run_built(build("buy"), sandbox, steps=2))
    bracket = {
        o.client_order_id: o for o in first.engine.orders if o.tag in ("stop_loss", "take_profit")
    }
    runtime, (account, positions, open_orders) = asyncio.run(
        _run_built(build("close"), sandbox, steps=2)
    )
    engine = runtime.engine
    ledger = sandbox.ledger()
    assert engine.errors == []
    restored = {
        o.client_order_id: o for o in engine.orders if o.tag in ("stop_loss", "take_profit")
    }
    assert restored.keys() == bracket.keys()  # the same venue orders, by client id
    assert all(o.status is OrderStatus.CANCELLED for o in restored.values())
    assert [restored[c].order_type for c in bracket] == [bracket[c].order_type for c in bracket]
    assert [restored[c].stop_price for c in bracket] == pytest.approx(
        [bracket[c].stop_price for c in bracket]
    )
    (close,) = [o for o in engine.orders if o.tag == "close"]
    assert close.status is OrderStatus.FILLED and close.filled_quantity == pytest.approx(
        0.01 / size
    )
    statuses = {o["client_order_id"]: o["status"] for o in ledger["orders"]}
    assert [statuses[c] for c in bracket] == ["CANCELED", "CANCELED"] and statuses[
        close.client_order_id
    ] == "FILLED"
    assert len(ledger["orders"]) == 4  # entry, stop, target, close: nothing placed twice
    assert positions == [] and open_orders == [] and engine.portfolio.positions() == []
    (venue_account,) = ledger["accounts"].values()
    wallet = venue_account["futures_wallet"]["USDT"]
    assert wallet == _exact(
        100_000 + sum(f["realized_pnl"] - f["commission"] for f in ledger["fills"])
    )
    assert account.balance == _exact(wallet) and account.equity == _exact(wallet)
    assert engine.portfolio.account.equity == _exact(wallet)


def test_live_bybit_inverse_with_venue_bracket_settles_in_btc_and_matches_the_sandbox_ledger():
    """Bybit inverse (BTCUSD, 1 USD per contract, settled in BTC): PnL and fees in BTC, exactly."""
    account = AccountConfig(
        api_key=KEY, secret=SECRET, passphrase=PASSPHRASE, spot_balances={"BTC": 1.0}
    )
    with SandboxServer(
        SandboxConfig(
            venue="bybit", timeframe="1m", speed=0.0, tick_replay=False, accounts=[account]
        )
    ) as sandbox:
        expert = _expert(
            "bybit",
            sandbox,
            market_type="futures",
            contract_type="inverse",
            margin_mode="isolated",
            position_mode="oneway",
        )
        bars = []

        @expert.on_init(
            symbol="BTCUSD",
            timeframe="1m",
            lookback_bars=5,
            size_type="fixed_quote",  # 100 USD: 100 contracts of 1 USD (fixed_base is refused)
            size_value=100,
            stop_loss_pct=5.0,
            take_profit_pct=10.0,
            leverage=2,
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

        async def drive():
            strategy, risk = expert.strategy_config(expert._init_options)
            gateway = CcxtGateway(expert.exchange_config(TradeMode.LIVE))
            runtime = TradingRuntime(
                handlers=expert.handlers,
                strategy=strategy,
                gateway=gateway,
                trade_mode=TradeMode.LIVE,
                parts=RunParts(risk=RiskManager(risk)),
                leverage=risk.leverage,
                market_type=expert.config.market_type,
                position_mode=expert.config.position_mode,
                margin_mode=None,
            )
            try:
                await runtime.start()
                for _ in range(5):
                    sandbox.advance(1)
                    await runtime.step()
                return (
                    runtime,
                    await gateway.fetch_balance("BTC"),
                    await gateway.fetch_open_orders(),
                )
            finally:
                await gateway.close()

        runtime, balance, open_orders = asyncio.run(drive())
        ledger = sandbox.ledger()
    engine = runtime.engine
    assert engine.errors == []
    assert [(o.tag, o.status) for o in engine.orders] == [
        ("", OrderStatus.FILLED),
        ("stop_loss", OrderStatus.CANCELLED),
        ("take_profit", OrderStatus.CANCELLED),
        ("close", OrderStatus.FILLED),
    ]
    statuses = {o["client_order_id"]: o["status"] for o in ledger["orders"]}
    assert [statuses[o.client_order_id] for o in engine.orders] == [
        "FILLED",
        "CANCELED",
        "CANCELED",
        "FILLED",
    ]
    buy, close = engine.orders[0], engine.orders[3]
    realised = 100 * (1 / buy.average_price - 1 / close.average_price)  # USD contracts, BTC PnL
    assert sum(f["realized_pnl"] for f in ledger["fills"]) == pytest.approx(
        realised, rel=0, abs=1e-15
    )
    assert [f["commission_asset"] for f in ledger["fills"]] == ["BTC", "BTC"]
    (venue_account,) = ledger["accounts"].values()
    wallet = venue_account["markets"]["inverse"]["wallet"]["BTC"]
    assert wallet == _exact(1.0 + realised - sum(f["commission"] for f in ledger["fills"]))
    assert open_orders == [] and engine.portfolio.positions() == []
    assert engine.portfolio.account.currency == "BTC"
    assert engine.portfolio.account.balance == _exact(
        wallet
    ) and engine.portfolio.account.equity == _exact(wallet)
    # The venue reports balances to 8 places (1 satoshi), and the sandbox settles PnL unrounded.
    assert (
        balance.balance == pytest.approx(wallet, rel=0, abs=1e-8)
        and balance.equity == balance.balance
    )


def test_live_swap_with_stop_modified_and_limit_partially_filled_matches_the_sandbox_ledger(venue):
    """Issue 16: an expert protects at the venue, moves its stop there, gets a resting buy
    partially filled (the sandbox fills at most a share of each bar's volume) and cancels the
    rest, then closes; the venue's ledger and the engine agree on every order and the wallet.
    Red before on OKX: the sandbox put a linear position's liquidation price at its entry (it
    counted contracts of 0.01 BTC as coins) and liquidated the long on the first dip."""
    name, sandbox = venue
    with SandboxServer(sandbox.config.model_copy(update={"fill_volume_fraction": 0.01})) as limited:
        expert = _protected_swap_expert(name, limited)
        size = {"bybit": 1.0, "okx": 0.01}[name]  # BTC per contract
        state: dict = {"bars": 0}

        @expert.on_bar(timeframe="1m")
        def bar(ctx, series):
            state["bars"] += 1
            if state["bars"] == 1:
                ctx.buy()
            elif state["bars"] == 2:
                (stop,) = [o for o in ctx.open_orders() if o.tag == "stop_loss"]
                state["stop"] = stop
                ctx.modify(stop, stop_price=round(stop.stop_price * 1.01, 1))
            elif state["bars"] == 3:
                # Resting 5 USDT below the last close (the ask), far more than a bar's share of volume (1 to 20 BTC
                # a minute here, 1% of it per bar): touched bars fill it in parts.
                quantity = 0.5 / size  # contracts
                state["limit"] = ctx.buy(quantity, price=round(series.last_close - 5.0, 1))
            elif state["bars"] == 7:
                ctx.cancel(state["limit"])
            elif state["bars"] == 8:
                ctx.close()

        runtime, (account, positions, open_orders) = asyncio.run(_drive(expert, limited, steps=10))
        ledger = limited.ledger()
    engine = runtime.engine
    assert engine.errors == []
    venue_orders = {o["client_order_id"]: o for o in ledger["orders"]}
    stop, limit = state["stop"], state["limit"]
    moved = venue_orders[stop.client_order_id]
    assert moved["stop_price"] == pytest.approx(stop.stop_price)  # the venue holds the new trigger
    assert stop.status is OrderStatus.CANCELLED and moved["status"] == "CANCELED"
    assert limit.status is OrderStatus.CANCELLED
    assert 0 < limit.filled_quantity < limit.quantity  # partially filled, then cancelled
    assert venue_orders[limit.client_order_id]["executed_quantity"] == pytest.approx(
        limit.filled_quantity
    )
    for order in engine.orders:  # every order as the venue has it
        assert venue_orders[order.client_order_id]["status"] in ("FILLED", "CANCELED")
    assert positions == [] and open_orders == [] and engine.portfolio.positions() == []
    (venue_account,) = ledger["accounts"].values()
    assert all(not market["positions"] for market in venue_account["markets"].values())
    wallet = venue_account["futures_wallet"]["USDT"]
    assert wallet == _exact(
        100_000 + sum(f["realized_pnl"] - f["commission"] for f in ledger["fills"])
    )
    assert account.balance == _exact(wallet) and account.equity == _exact(wallet)
    assert engine.portfolio.account.equity == _exact(wallet)


def test_live_swap_closed_at_the_venue_by_hand_is_dropped_with_its_bracket(venue, caplog):
    """Issue 15: a position closed at the venue outside the run (here by another client on the
    same account, as a user closing it on the venue's website; a liquidation looks the same) is
    noticed while the run trades: the engine drops the leg, cancels its stop and target at the
    venue and takes the venue's wallet. Red before: the engine kept the position (and its
    bracket at the venue) until the next start."""
    from metaexpert.sandbox import make_ccxt_client

    name, sandbox = venue
    expert = _protected_swap_expert(name, sandbox)
    size = {"bybit": 1.0, "okx": 0.01}[name]
    state = {"bars": 0}

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        state["bars"] += 1
        if state["bars"] == 1:
            ctx.buy()
        elif state["bars"] == 2:
            other = make_ccxt_client(name, sandbox, KEY, SECRET, timeout=5_000)
            other.load_markets()
            params = {"reduceOnly": True, **({"marginMode": "isolated"} if name == "okx" else {})}
            other.create_order("BTC/USDT:USDT", "market", "sell", 0.01 / size, params=params)

    with caplog.at_level("WARNING", logger="metaexpert.runtime"):
        runtime, (account, positions, open_orders) = asyncio.run(_drive(expert, sandbox, steps=5))
    engine = runtime.engine
    ledger = sandbox.ledger()
    assert positions == [] and engine.portfolio.positions() == []
    assert runtime.position_check is not None and runtime.position_check.changes == 1
    assert "changed at the venue outside this run" in caplog.text
    bracket = [o for o in engine.orders if o.tag in ("stop_loss", "take_profit")]
    assert len(bracket) == 2 and all(o.status is OrderStatus.CANCELLED for o in bracket)
    statuses = {o["client_order_id"]: o["status"] for o in ledger["orders"]}
    assert [statuses[o.client_order_id] for o in bracket] == ["CANCELED", "CANCELED"]
    assert open_orders == []
    (venue_account,) = ledger["accounts"].values()
    wallet = venue_account["futures_wallet"]["USDT"]
    assert account.balance == _exact(wallet)
    assert engine.portfolio.account.balance == _exact(wallet)
    assert engine.portfolio.account.equity == _exact(wallet)
    assert engine.errors == []


def test_live_swap_liquidated_at_the_venue_is_dropped_and_the_wallet_taken_from_the_venue(venue):
    """A 10x isolated long of 0.01 BTC on a 200 USDT account, liquidated at the venue (the
    price forced 25% down): the engine, which does not model the venue's liquidation in live
    mode, drops the leg within two checks and its wallet is the venue's (the margin lost). Red
    before: the engine kept the long and valued it at the forced price for the rest of the run."""
    name, sandbox = venue
    account = sandbox.config.accounts[0].model_copy(
        update={"spot_balances": {"USDT": 200.0}, "futures_balances": {"USDT": 200.0}}
    )
    small = sandbox.config.model_copy(update={"accounts": [account]})
    state = {"bars": 0}
    with SandboxServer(small) as poor:
        expert = _protected_swap_expert(name, poor, leverage=10, protected=False)

        @expert.on_bar(timeframe="1m")
        def bar(ctx, series):
            state["bars"] += 1
            if state["bars"] == 1:
                ctx.buy()
            elif state["bars"] == 2:
                poor.set_price("BTCUSDT", round(series.last_close * 0.75, 1))

        runtime, (balance, positions, _) = asyncio.run(_drive(expert, poor, steps=5))
        ledger = poor.ledger()
    engine = runtime.engine
    (liquidation,) = [o for o in ledger["orders"] if o["client_order_id"].startswith("autoclose")]
    assert liquidation["status"] == "FILLED"
    (venue_account,) = ledger["accounts"].values()
    wallet = venue_account["futures_wallet"]["USDT"]
    assert wallet < 200 - 80  # most of the 105 USDT margin is lost at the venue
    assert positions == [] and engine.portfolio.positions() == []
    assert runtime.position_check.changes == 1
    # The venue reports its wallet to 8 places; the engine takes what the venue reports.
    assert balance.balance == pytest.approx(wallet, abs=1e-8)
    assert engine.portfolio.account.balance == balance.balance
    assert engine.portfolio.account.equity == balance.balance


def test_live_spot_limit_moved_partially_filled_and_cancelled_matches_the_sandbox_ledger(venue):
    """Issue 16, spot on the unified accounts: a resting buy limit is moved (amended at the
    venue), partly filled by the bars' volume, the rest cancelled, and the coin bought sold
    again; the venue's orders, coin and USDT equal the engine's."""
    name, sandbox = venue
    with SandboxServer(sandbox.config.model_copy(update={"fill_volume_fraction": 0.01})) as limited:
        expert = _expert(name, limited, market_type="spot")
        state: dict = {"bars": 0}

        @expert.on_init(
            symbol="BTCUSDT",
            timeframe="1m",
            lookback_bars=5,
            size_type="fixed_base",
            size_value=0.01,
        )
        def init(ctx):
            pass

        @expert.on_bar(timeframe="1m")
        def bar(ctx, series):
            state["bars"] += 1
            if state["bars"] == 1:  # far below the market: rests
                state["limit"] = ctx.buy(0.5, price=round(series.last_close * 0.9, 1))
            elif state["bars"] == 2:  # moved to 5 USDT below the last close: touched bars fill it
                ctx.modify(state["limit"], price=round(series.last_close - 5.0, 1))
            elif state["bars"] == 6:
                ctx.cancel(state["limit"])
            elif state["bars"] == 7:
                ctx.close()

        runtime, (account, _, open_orders) = asyncio.run(_drive(expert, limited, steps=8))
        ledger = limited.ledger()
    engine = runtime.engine
    assert engine.errors == []
    limit = state["limit"]
    venue_orders = {o["client_order_id"]: o for o in ledger["orders"]}
    assert limit.status is OrderStatus.CANCELLED and 0 < limit.filled_quantity < limit.quantity
    moved = venue_orders[limit.client_order_id]
    assert moved["price"] == pytest.approx(limit.price)  # the venue holds the moved price
    assert moved["executed_quantity"] == pytest.approx(limit.filled_quantity)
    (close,) = [o for o in engine.orders if o.tag == "close"]
    assert close.status is OrderStatus.FILLED
    (venue_account,) = ledger["accounts"].values()
    balances = venue_account["spot_balances"]
    # The close sells the coin net of the buys' fees (taken in BTC) rounded down to the amount
    # step: dust below one step stays, at the venue and in the engine alike.
    dust = balances["BTC"]["free"] + balances["BTC"]["locked"]
    assert 0 <= dust < 1e-6
    assert sum(p.quantity for p in engine.portfolio.positions()) == pytest.approx(dust, abs=1e-12)
    usdt = balances["USDT"]["free"] + balances["USDT"]["locked"]
    assert open_orders == []
    # The venue reports balances to 8 places; the engine books the fills unrounded.
    assert account.balance == pytest.approx(usdt, abs=1e-8)
    assert engine.portfolio.account.balance == pytest.approx(usdt, abs=1e-8)
