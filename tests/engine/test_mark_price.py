"""Mark-price candles in perpetual backtests: they decide liquidations and value open positions.

On the venues a position is liquidated when the *mark* price reaches its liquidation price,
and its unrealised PnL is computed at the mark; a wick of the traded price alone does not
liquidate. The traded candles still fill the orders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.data import CandleStore

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")
BARS = 24


def _frame(lows: dict[int, float] | None = None, *, volume: bool = True) -> pl.DataFrame:
    lows = lows or {}
    rows = {
        "timestamp": [START + i * HOUR for i in range(BARS)],
        "open": [100.0] * BARS,
        "high": [101.0] * BARS,
        "low": [lows.get(i, 99.0) for i in range(BARS)],
        "close": [100.0 + (i % 3) * 0.25 for i in range(BARS)],
    }
    if volume:
        rows["volume"] = [10.0] * BARS
    return pl.DataFrame(rows)


def _store(
    root: Path,
    *,
    trade_lows: dict[int, float] | None = None,
    mark_lows: dict[int, float] | None = None,
    mark_shift: float = 0.0,
) -> Path:
    CandleStore(root).write("binance", "futures", "BTCUSDT", "1h", _frame(trade_lows))
    marks = _frame(mark_lows, volume=False).with_columns(pl.col("close") + mark_shift)
    marks.write_parquet(root / "binance" / "futures" / "BTCUSDT-mark-1h.parquet")
    return root


def _run(root: Path):
    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type="linear",
        log_to_file=False,
        log_to_console=False,
    )

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=0, leverage=10)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if len(bars) == 1:
            ctx.buy(10.0)  # 1,000 of BTC at 100 on 100 of margin: liquidated near 90.45

    return expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-01",
        report=False,
        configure_logs=False,
        data_dir=root,
        initial_capital=10_000.0,
        simulation={"taker_fee": 0.0, "maker_fee": 0.0, "funding": "none"},
    )


def test_mark_price_below_liquidation_price_liquidates_though_trades_stayed_above(tmp_path):
    result = _run(_store(tmp_path, mark_lows={10: 85.0}))
    (trade,) = result.closed_trades
    assert trade.exit_reason == "liquidation"
    assert trade.exit_time == START + 10 * HOUR
    assert trade.exit_price == pytest.approx(100.0 * (1 - 0.1) / (1 - 0.005), rel=1e-12)


def test_trade_wick_below_liquidation_price_does_not_liquidate_when_the_mark_stayed_above(tmp_path):
    result = _run(_store(tmp_path, trade_lows={10: 80.0}))
    assert result.closed_trades == []
    assert not any(order.tag == "liquidation" for order in result.orders)


def test_open_position_is_valued_at_the_mark_close(tmp_path):
    result = _run(_store(tmp_path, mark_shift=1.5))
    closes = np.array([100.0 + (i % 3) * 0.25 for i in range(BARS)])
    entry = result.fills[0].price
    expected = 10_000.0 + 10.0 * (closes[1:] + 1.5 - entry)  # held from the second bar's open
    assert np.allclose(result.equity[1:], expected, rtol=0, atol=1e-9)
