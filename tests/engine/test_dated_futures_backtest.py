"""Dated futures backtest on their own candles (issue 18, item 5), as the venues name them.

Binance's quarterly ``BTCUSDT_261225`` (USDT-settled) and COIN-M ``BTCUSD_261225`` (100 USD
contracts, settled in BTC), given as frames of their own candles. Red before: the settings
collapsed the symbols to ``BTCUSDT261225``/``BTCUSD261225`` (no venue module could read them),
and the backtest's market read ``BTCUSD-261225`` as base BTCUSD quoted in 261225, so the
COIN-M contract was worth 10 USD and PnL was counted in "BTCUSD".
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metaexpert import MetaExpert

START = dt.datetime(2024, 12, 31, 12, tzinfo=dt.UTC)
PRICES = [100_000.0 + 100 * i for i in range(48)]
CANDLES = pl.DataFrame(
    {
        "timestamp": [START + dt.timedelta(hours=i) for i in range(48)],
        "open": PRICES,
        "high": [p + 50 for p in PRICES],
        "low": [p - 50 for p in PRICES],
        "close": PRICES,
        "volume": [10.0] * 48,
    }
)


def _run(symbol: str, contract_type: str):
    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type=contract_type,
        margin_mode="isolated",
        log_to_file=False,
        log_to_console=False,
    )
    bars: list[int] = []

    @expert.on_init(
        symbol=symbol,
        timeframe="1h",
        lookback_bars=5,
        size_type="fixed_quote",
        size_value=1_000,
        leverage=2,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1h")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 2:
            ctx.buy()
        elif len(bars) == 10:
            ctx.close()

    return expert.run(
        trade_mode="backtest",
        data=CANDLES,
        backtest_start="2025-01-01",
        backtest_end="2025-01-03",
        simulation={"funding": "none"},  # dated contracts pay no funding
    )


def test_backtest_dated_linear_future_settles_in_usdt_with_its_symbol_kept():
    result = _run("BTCUSDT_261225", "linear")
    buy, sell = result.orders
    assert buy.symbol == "BTCUSDT-261225" and result.currency == "USDT"
    assert buy.quantity * buy.average_price == pytest.approx(1_000, rel=0.01)
    pnl = buy.quantity * (sell.average_price - buy.average_price)
    assert result.metrics["final_equity"] == pytest.approx(
        10_000 + pnl - buy.fee - sell.fee, abs=1e-6
    )


def test_backtest_dated_coin_m_future_counts_100_usd_contracts_and_settles_in_btc():
    result = _run("BTCUSD_261225", "inverse")
    buy, sell = result.orders
    assert result.currency == "BTC"
    assert buy.quantity == 10  # 1,000 USD of 100 USD contracts
    pnl = 10 * 100 * (1 / buy.average_price - 1 / sell.average_price)  # BTC
    assert result.metrics["final_equity"] == pytest.approx(
        10_000 + pnl - buy.fee - sell.fee, abs=1e-9
    )
