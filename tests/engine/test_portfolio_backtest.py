"""Portfolio backtests: one expert over many symbols, on the 126-pair 1h universe of the shared data.

The expert is written for one symbol (``ctx.buy()``, ``ctx.position()`` without a symbol):
in a portfolio run ``ctx.symbol`` is the symbol whose bar is being handled, so each symbol
trades as its own backtest would, as long as no portfolio limit binds and cash suffices.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from metaexpert import MetaExpert
from metaexpert.backtest.universe import UniverseSource
from metaexpert.core.errors import ConfigurationError, DataError

UNIVERSE = Path("binance") / "spot" / "multi-126pairs-1h-20201201-20210717.parquet"
SYMBOLS = ["ADAUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "LINKUSDT"]


@pytest.fixture(scope="module")
def universe(shared_data: Path) -> UniverseSource:
    return UniverseSource(shared_data / UNIVERSE)


def _expert(symbol: str | list[str], **options) -> MetaExpert:
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )

    @expert.on_init(symbol=symbol, timeframe="1h", lookback_bars=0, **options)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if len(bars) < 31:
            return
        fast, slow = bars.sma(10), bars.sma(30)
        if math.isnan(slow):
            return
        position = ctx.position()
        if fast > slow and position is None:
            ctx.buy(1_000.0 / bars.last_close)  # a fixed notional: independent of the other symbols
        elif fast < slow and position is not None:
            ctx.close()

    return expert


def _run(expert: MetaExpert, universe: UniverseSource, symbol=None, capital: float = 1e9):
    return expert.run(
        "backtest",
        backtest_start="2021-01-01",
        backtest_end="2021-02-28",
        report=False,
        configure_logs=False,
        candle_source=universe,
        initial_capital=capital,
        symbol=symbol,
        close_at_end=True,
        simulation={"taker_fee": 0.001, "maker_fee": 0.001},
    )


def _trades(result, symbol: str):
    return [
        (t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.quantity, t.pnl, t.exit_reason)
        for t in result.closed_trades
        if t.symbol == symbol
    ]


def test_multi_symbol_backtest_with_no_binding_limit_gives_each_symbol_its_single_symbol_trades(
    universe,
):
    portfolio = _run(_expert(SYMBOLS), universe)
    assert portfolio.symbols == SYMBOLS
    for symbol in SYMBOLS:
        alone = _run(_expert(symbol), universe)
        expected = _trades(alone, symbol)
        assert len(expected) > 5, symbol
        assert _trades(portfolio, symbol) == expected, symbol
        assert portfolio.symbol_metrics[symbol]["number_of_trades"] == len(expected)
        assert portfolio.symbol_metrics[symbol]["net_trade_pnl"] == pytest.approx(
            alone.metrics["net_trade_pnl"]
        )
    assert portfolio.metrics["number_of_trades"] == sum(len(_trades(portfolio, s)) for s in SYMBOLS)


def test_multi_symbol_backtest_with_max_open_positions_never_holds_more_than_the_limit(universe):
    result = _run(_expert(SYMBOLS, max_open_positions=2), universe)
    spans = [(t.entry_time, t.exit_time) for t in result.closed_trades]
    moments = sorted({moment for span in spans for moment in span})
    most = max(sum(1 for entry, exit_ in spans if entry <= moment < exit_) for moment in moments)
    assert most == 2
    assert result.risk_counts.get("max_open_positions", 0) > 0  # the limit did bind


def test_multi_symbol_backtest_shares_one_cash_balance(universe):
    # 2,500 of cash for 1,000-notional entries on five symbols: alone each symbol always has the
    # cash for its entry; together entries are refused while the others hold the cash.
    result = _run(_expert(SYMBOLS), universe, capital=2_500.0)
    refused = [
        (order.symbol, order.created_at)
        for order in result.orders
        if order.reject_reason and order.reject_reason.startswith("insufficient USDT balance")
    ]
    assert refused
    for symbol, moment in refused:  # two other symbols held (or were buying) the cash then
        others = {
            t.symbol
            for t in result.closed_trades
            if t.symbol != symbol and t.entry_time <= moment <= t.exit_time
        }
        assert len(others) >= 2, (symbol, moment)
    for symbol in SYMBOLS:
        alone = _run(_expert(symbol), universe, capital=2_500.0)
        assert not any(order.reject_reason for order in alone.orders), symbol


def test_universe_symbol_star_runs_every_symbol_of_the_file(universe):
    expert = _expert("*")
    result = expert.run(
        "backtest",
        backtest_start="2021-07-01",
        backtest_end="2021-07-03",
        report=False,
        configure_logs=False,
        candle_source=universe,
        initial_capital=1e9,
        simulation={"taker_fee": 0.001, "maker_fee": 0.001},
    )
    assert result.symbols == universe.symbols
    assert len(result.symbols) == 126
    assert set(result.symbol_metrics) == set(universe.symbols)


def test_universe_symbol_star_without_a_listing_candle_source_raises_configuration_error(
    candle_store,
):
    root = candle_store([(1_704_067_200_000, 100.0, 101.0, 99.0, 100.5, 5.0)])
    with pytest.raises(ConfigurationError, match=r"symbol='\*' means every symbol"):
        _expert("*").run(
            "backtest",
            backtest_start="2024-01-01",
            backtest_end="2024-01-02",
            report=False,
            configure_logs=False,
            data_dir=root,
        )


def test_universe_source_with_unknown_symbol_raises_data_error_naming_the_file(universe):
    with pytest.raises(DataError, match=r"NOPEUSDT is not in the universe file .*multi-126pairs"):
        universe.load("binance", "spot", "NOPEUSDT", "1h", 0, 2**62)


def test_universe_source_with_4h_request_resamples_its_1h_candles(universe):
    loaded = universe.load(
        "binance", "spot", "BTCUSDT", "4h", 1_609_459_200_000, 1_609_459_200_000 + 86_400_000
    )
    assert loaded.frame.height == 6
    assert "resampled to 4h" in loaded.source
