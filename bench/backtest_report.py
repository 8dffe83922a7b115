"""Speed and size of backtest metrics and reports.

Run: ``.venv/bin/python -m bench.backtest_report``. Targets: metrics for a year of 1m
bars (525,600 equity points) well under 100 ms; the HTML report of the same result in a
few seconds and under 15 MB. A second case uses the real Binance BTCUSDT 1m candles from
``../shared/data`` (read in place, never copied) when they are present.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from metaexpert.backtest.metrics import compute_metrics
from metaexpert.backtest.report import write_html_report, write_json
from metaexpert.backtest.result import BacktestResult, ClosedTrade, PriceSeries
from metaexpert.core.enums import PositionSide

MINUTE_MS = 60_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "spot"


def _result(
    timestamps: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    opens: np.ndarray,
    *,
    hold_every: int = 250,
    hold_bars: int = 90,
) -> BacktestResult:
    """A long-only result that holds ``hold_bars`` bars every ``hold_every`` bars."""
    count = timestamps.size
    capital = 10_000.0
    in_market = (np.arange(count) % hold_every) < hold_bars
    bar_returns = np.concatenate(([0.0], np.diff(close) / close[:-1]))
    equity = capital * np.cumprod(1.0 + np.where(np.roll(in_market, 1), bar_returns, 0.0))
    trades = []
    for entry in range(0, count - hold_bars, hold_every):
        exit_ = entry + hold_bars
        quantity = capital / close[entry]
        pnl = quantity * (close[exit_] - close[entry]) - 0.0008 * capital
        trades.append(
            ClosedTrade(
                "BTCUSDT",
                PositionSide.LONG,
                float(quantity),
                int(timestamps[entry]),
                int(timestamps[exit_]),
                float(close[entry]),
                float(close[exit_]),
                float(pnl),
                0.0008 * capital,
                float(pnl / capital * 100),
                hold_bars,
                "time_exit",
            )
        )
    return BacktestResult(
        expert_name="bench",
        symbols=["BTCUSDT"],
        timeframe="1m",
        start_ms=int(timestamps[0]),
        end_ms=int(timestamps[-1]),
        initial_capital=capital,
        currency="USDT",
        final_equity=float(equity[-1]),
        equity_timestamps=timestamps,
        equity=equity,
        exposure=in_market,
        closed_trades=trades,
        fees_paid=0.0008 * capital * len(trades),
        prices={"BTCUSDT": PriceSeries(timestamps, opens, high, low, close)},
        risk_counts={"max_open_positions": 12, "daily_loss_limit": 3},
        parameters={"hold_every": hold_every, "hold_bars": hold_bars},
    )


def _synthetic_year() -> BacktestResult:
    rng = np.random.default_rng(42)
    count = 525_600
    timestamps = START_MS + np.arange(count, dtype=np.int64) * MINUTE_MS
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.0007, count)))
    opens = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0004, count)) * close
    return _result(
        timestamps,
        close,
        np.maximum(opens, close) + spread,
        np.minimum(opens, close) - spread,
        opens,
    )


def _real_btc() -> BacktestResult | None:
    path = DATA / "BTCUSDT-1m.parquet"
    if not path.exists():
        return None
    import polars as pl

    frame = pl.read_parquet(path)
    return _result(
        frame["timestamp"].to_numpy(),
        frame["close"].to_numpy(),
        frame["high"].to_numpy(),
        frame["low"].to_numpy(),
        frame["open"].to_numpy(),
    )


def _measure(name: str, result: BacktestResult, folder: Path) -> None:
    timings = []
    for _ in range(5):
        result.metrics = {}
        started = time.perf_counter()
        compute_metrics(result)
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    html = write_html_report(result, folder / f"{name}.html", display_timezone="Europe/Berlin")
    html_seconds = time.perf_counter() - started
    started = time.perf_counter()
    document = write_json(result, folder / f"{name}.json")
    json_seconds = time.perf_counter() - started
    print(
        f"{name}: {result.equity.size:,} points, {len(result.closed_trades):,} trades | "
        f"metrics best {min(timings) * 1000:.1f} ms, median {sorted(timings)[2] * 1000:.1f} ms | "
        f"HTML {html_seconds:.2f} s, {html.stat().st_size / 1e6:.1f} MB | "
        f"JSON {json_seconds:.2f} s, {document.stat().st_size / 1e6:.2f} MB"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        _measure("synthetic-1y-1m", _synthetic_year(), folder)
        real = _real_btc()
        if real is None:
            print(f"real data not found under {DATA}; skipped")
        else:
            _measure("binance-btcusdt-1m", real, folder)


if __name__ == "__main__":
    main()
