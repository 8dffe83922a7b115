"""Perpetual funding in paper and live runs: the venue's rates, the backtest's rule, booked once.

Paper runs used to book no funding at all, so a paper long carried through positive funding
looked better than the same long in a backtest or at the venue; live runs never read back the
funding the venue booked, so the engine's wallet drifted from the venue's at every funding
time. The loopback sandbox is the venue (Binance USD-M, 1h bars, stepped by hand): it settles
funding every 8 h at a fixed rate and lists every funding time, rate and mark in its
``fundingRate`` history (``ledger()["funding_rates"]``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.enums import PositionSide, TradeMode
from metaexpert.data import CandleStore
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from metaexpert.sandbox.config import DEFAULT_DATA_DIR
from tests.runtime.driving import drive

pytestmark = pytest.mark.network

HOUR = 3_600_000
FUNDING_TIME = parse_date_ms("2024-03-01T08:00:00+00:00")
RATE = 0.0003
QUANTITY = 0.01
KEY, SECRET = "funding-key-" + "a" * 52, "funding-secret-" + "b" * 49
ZERO_FEES = {"taker_fee": 0.0, "maker_fee": 0.0}


def _config(**fees: float) -> SandboxConfig:
    """Six 1h bars before the 08:00 funding time."""
    return SandboxConfig(
        timeframe="1h",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        start_time_ms=FUNDING_TIME - 6 * HOUR,
        tick_replay=False,
        funding_rate=RATE,
        accounts=[AccountConfig(api_key=KEY, secret=SECRET, futures_balances={"USDT": 10_000})],
        **fees,
    )


@pytest.fixture
def sandbox():
    """Zero fees at the venue (paper runs take no fees from it)."""
    with SandboxServer(_config(futures_maker_fee=0.0, futures_taker_fee=0.0)) as server:
        yield server


@pytest.fixture
def live_sandbox():
    """The venue's default fees, the ones its markets announce (so the engine charges the same)."""
    with SandboxServer(_config()) as server:
        yield server


def _long_expert(**settings) -> MetaExpert:
    """Buys QUANTITY at the first closed bar and holds."""
    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type="linear",
        position_mode="oneway",
        log_to_file=False,
        log_to_console=False,
        **settings,
    )
    bought = []

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=3)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if not bought:
            bought.append(ctx.buy(QUANTITY))

    return expert


def _venue_rate(sandbox) -> dict:
    (record,) = [r for r in sandbox.ledger()["funding_rates"] if r["time"] == FUNDING_TIME]
    return record


def _paper_run(sandbox, steps: int = 8, wallets: list | None = None):
    """The paper long, polled once per bar; ``wallets`` gets (time, wallet) after every poll."""
    expert = _long_expert(base_url=f"http://{sandbox.host}:{sandbox.port}")

    def note(runtime) -> bool:
        portfolio = runtime.engine.portfolio
        if wallets is not None:
            wallets.append((portfolio.now_ms, portfolio.account.balance))
        return False

    runtime, _ = asyncio.run(
        drive(expert, sandbox, TradeMode.PAPER, steps, until=note, simulation=ZERO_FEES)
    )
    return runtime


def test_paper_long_with_funding_time_passed_pays_quantity_times_venue_mark_times_rate(sandbox):
    wallets: list[tuple[int, float]] = []
    runtime = _paper_run(sandbox, wallets=wallets)
    portfolio = runtime.engine.portfolio
    (position,) = portfolio.positions()
    assert position.quantity == QUANTITY
    venue = _venue_rate(sandbox)
    assert venue["rate"] == RATE
    expected = -(QUANTITY * venue["mark"] * venue["rate"])
    # The poll that reached the funding time moved the wallet by the funding only (the fill was
    # hours before; paper fees come from the market spec, so the run's start is not the baseline).
    # (The venue's clock says 07:59:59.999 once the 07:00 bar closed: that poll reached 08:00.)
    before = [wallet for time, wallet in wallets if time + 1 < FUNDING_TIME][-1]
    after = [wallet for time, wallet in wallets if time + 1 >= FUNDING_TIME]
    assert after[0] - before == pytest.approx(expected, rel=1e-9)
    assert after == [after[0]] * 4
    (payment,) = runtime.funding_payments  # booked once, though two more polls followed
    # What ``expert.run("paper")`` returns (the engine) lists them too (it had no list before).
    assert runtime.engine.funding_payments == [payment]
    assert (payment.timestamp, payment.side, payment.quantity, payment.rate) == (
        FUNDING_TIME,
        PositionSide.LONG,
        QUANTITY,
        RATE,
    )
    assert payment.mark_price == venue["mark"]
    assert payment.amount == pytest.approx(expected, rel=1e-12)
    assert portfolio.funding == payment.amount
    assert position.funding == payment.amount


def test_paper_long_with_funding_none_books_no_funding(sandbox):
    expert = _long_expert(base_url=f"http://{sandbox.host}:{sandbox.port}")
    runtime, _ = asyncio.run(
        drive(expert, sandbox, TradeMode.PAPER, 8, simulation={**ZERO_FEES, "funding": "none"})
    )
    assert runtime.funding_payments == []
    account = runtime.engine.portfolio.account
    assert account.balance == 10_000.0 - account.fees_paid


def _backtest_store(root: Path, rate: float, mark: float) -> Path:
    """The bars the sandbox replayed (its Binance 1h candles) as a perpetual's candles, and the
    venue's funding history of that day (its rate and mark at the funding time)."""
    source = DEFAULT_DATA_DIR / "binance" / "spot" / "BTCUSDT-1h.parquet"
    day = parse_date_ms("2024-03-01")
    bars = pl.read_parquet(source).filter(
        (pl.col("timestamp") >= day - 24 * HOUR) & (pl.col("timestamp") < day + 24 * HOUR)
    )
    CandleStore(root).write("binance", "futures", "BTCUSDT", "1h", bars)
    folder = root / "binance" / "futures"
    pl.DataFrame(
        {"timestamp": [FUNDING_TIME], "funding_rate": [rate]},
        schema={"timestamp": pl.Int64, "funding_rate": pl.Float64},
    ).write_parquet(folder / "BTCUSDT-funding.parquet")
    pl.DataFrame(
        {
            "timestamp": [FUNDING_TIME],
            "open": [mark],
            "high": [mark],
            "low": [mark],
            "close": [mark],
        },
        schema={
            "timestamp": pl.Int64,
            **dict.fromkeys(["open", "high", "low", "close"], pl.Float64),
        },
    ).write_parquet(folder / "BTCUSDT-mark-8h.parquet")
    return root


def test_backtest_of_same_long_over_same_bars_with_venue_rates_books_same_payment(
    sandbox, tmp_path
):
    (paper,) = _paper_run(sandbox).funding_payments
    venue = _venue_rate(sandbox)
    root = _backtest_store(tmp_path, venue["rate"], venue["mark"])
    result = _long_expert().run(
        "backtest",
        backtest_start="2024-03-01",
        backtest_end="2024-03-01",
        report=False,
        configure_logs=False,
        data_dir=root,
        initial_capital=10_000.0,
        simulation=ZERO_FEES,
    )
    (backtest,) = result.funding
    assert (backtest.timestamp, backtest.side, backtest.quantity) == (
        paper.timestamp,
        paper.side,
        paper.quantity,
    )
    assert (backtest.mark_price, backtest.rate) == (paper.mark_price, paper.rate)
    assert backtest.amount == paper.amount  # one rule, the same float


def test_live_long_with_funding_time_passed_reads_venue_funding_back_once(live_sandbox):
    sandbox = live_sandbox
    expert = _long_expert(
        base_url=f"http://{sandbox.host}:{sandbox.port}", api_key=KEY, api_secret=SECRET
    )

    async def venue_wallet(gateway):
        return (await gateway.fetch_balance("USDT")).balance

    runtime, wallet = asyncio.run(drive(expert, sandbox, TradeMode.LIVE, 8, after=venue_wallet))
    portfolio = runtime.engine.portfolio
    (venue_payment,) = [p for p in sandbox.ledger()["funding"] if p["api_key"] == KEY]
    assert venue_payment["time"] == FUNDING_TIME and venue_payment["payment"] < 0
    assert portfolio.account.balance == pytest.approx(wallet, rel=1e-12)  # read back, once
    assert portfolio.funding == pytest.approx(venue_payment["payment"], rel=1e-9)
    (payment,) = runtime.funding_payments
    assert payment.amount == pytest.approx(venue_payment["payment"], rel=1e-9)
    assert runtime.engine.errors == []


def test_live_long_with_venue_fees_unlike_engine_books_venue_rate_by_rule_not_fee_gap(sandbox):
    """The venue charges no fee, the engine estimates its market's 0.05 %: the wallet gap is more
    than funding, so the rule's figure (the venue's rate and mark) is booked, not the gap."""
    expert = _long_expert(
        base_url=f"http://{sandbox.host}:{sandbox.port}", api_key=KEY, api_secret=SECRET
    )
    runtime, _ = asyncio.run(drive(expert, sandbox, TradeMode.LIVE, 8))
    (venue_payment,) = [p for p in sandbox.ledger()["funding"] if p["api_key"] == KEY]
    (payment,) = runtime.funding_payments
    assert payment.amount == pytest.approx(venue_payment["payment"], rel=1e-9)
    assert runtime.engine.portfolio.funding == payment.amount


def test_paper_inverse_long_with_funding_time_passed_pays_coins_on_contract_value():
    """COIN-M BTCUSD_PERP (100 USD contracts, BTC-settled): pays contracts * 100 / mark * rate BTC."""
    config = _config(inverse_symbols=["BTCUSDT"]).model_copy(update={"futures_symbols": []})
    with SandboxServer(config) as sandbox:
        expert = MetaExpert(
            exchange="binance",
            market_type="futures",
            contract_type="inverse",
            position_mode="oneway",
            base_url=f"http://{sandbox.host}:{sandbox.port}",
            log_to_file=False,
            log_to_console=False,
        )
        bought = []

        @expert.on_init(symbol="BTCUSD", timeframe="1h", lookback_bars=3)
        def init(ctx):
            pass

        @expert.on_bar("1h")
        def bar(ctx, bars):
            if not bought:
                bought.append(ctx.buy(10))

        runtime, _ = asyncio.run(drive(expert, sandbox, TradeMode.PAPER, 8, simulation=ZERO_FEES))
        (venue,) = [
            r
            for r in sandbox.ledger()["funding_rates"]
            if r["time"] == FUNDING_TIME and r["market"] == "coinm"
        ]
    (payment,) = runtime.funding_payments
    assert (payment.timestamp, payment.quantity, payment.rate) == (FUNDING_TIME, 10, RATE)
    assert payment.mark_price == venue["mark"]
    assert payment.amount == pytest.approx(-10 * 100 / venue["mark"] * RATE, rel=1e-12)
    assert runtime.engine.portfolio.account.currency == "BTC"


@pytest.mark.parametrize("taker_fee", [0.0, 0.0012])
def test_paper_fill_with_simulation_taker_fee_charges_it_instead_of_the_venue_fee(
    live_sandbox, taker_fee
):
    # The venue announces its own taker fee; a paper run's simulation settings set the fee its
    # simulated fills pay, as in a backtest (they used to be ignored: the venue's fee was paid).
    expert = _long_expert(base_url=f"http://{live_sandbox.host}:{live_sandbox.port}")
    runtime, _ = asyncio.run(
        drive(
            expert,
            live_sandbox,
            TradeMode.PAPER,
            8,
            until=lambda runtime: bool(runtime.engine.portfolio.positions()),
            simulation={"taker_fee": taker_fee},
        )
    )
    venue_fee = runtime.gateway.market_spec("BTCUSDT").taker_fee
    assert venue_fee not in (0.0, taker_fee)
    (fill,) = runtime.engine.fills
    assert fill.fee == pytest.approx(QUANTITY * fill.price * taker_fee, abs=1e-12)
