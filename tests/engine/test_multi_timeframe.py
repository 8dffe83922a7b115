"""Multi-timeframe replay over real Binance BTCUSDT 1h candles, without look-ahead.

An expert with on_bar 1h and on_bar 4h runs 2024-01-01 .. 2024-01-10 inclusive (240 base
bars, no gaps in that range) from the shared recordings. Every handler call is checked against
an independent reading of the Parquet file: no bar closes after ``ctx.now_ms``, 4h bars
equal the 1h candles aggregated by hand, and indicators equal the indicator computed on
the history visible at that moment only.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.core import indicators
from metaexpert.core.clock import parse_date_ms

HOUR = 3_600_000
FOUR_HOURS = 4 * HOUR
START = parse_date_ms("2024-01-01")
END = parse_date_ms("2024-01-11")  # exclusive: the run's end date 2024-01-10 is inclusive
LOOKBACK = 48


@pytest.fixture(scope="module")
def hourly(shared_data):
    frame = (
        pl.scan_parquet(shared_data / "binance" / "spot" / "BTCUSDT-1h.parquet")
        .filter(pl.col("timestamp").is_between(START - LOOKBACK * HOUR, END + 2 * 24 * HOUR))
        .sort("timestamp")
        .collect()
    )
    stamps = frame["timestamp"].to_numpy()
    assert np.all(np.diff(stamps) == HOUR) and stamps[0] % FOUR_HOURS == 0
    return {name: frame[name].to_numpy() for name in frame.columns}


def _four_hour(hourly: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """4h candles built by hand from aligned groups of four 1h candles."""
    groups = len(hourly["timestamp"]) // 4
    take = {name: values[: groups * 4].reshape(groups, 4) for name, values in hourly.items()}
    return {
        "timestamp": take["timestamp"][:, 0],
        "open": take["open"][:, 0],
        "high": take["high"].max(axis=1),
        "low": take["low"].min(axis=1),
        "close": take["close"][:, -1],
        "volume": take["volume"].sum(axis=1),
    }


def test_multi_timeframe_expert_with_real_data_never_sees_the_future(shared_data, hourly):
    expected_4h = _four_hour(hourly)
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )
    calls = {"1h": 0, "4h": 0}

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=LOOKBACK)
    def init(ctx):
        pass

    def check_visible(
        now: int, bars, length_ms: int, truth: dict[str, np.ndarray], lag: int = 0
    ) -> None:
        closes_at = truth["timestamp"] + length_ms
        count = int((closes_at <= now).sum()) - lag
        assert len(bars) == count, (now, len(bars), count)
        last = bars.last
        assert last.timestamp + length_ms <= now
        assert int(bars.timestamps[-1]) + length_ms <= now
        # the newest visible bar is the newest closed one: nothing closed is withheld either
        assert last.timestamp == truth["timestamp"][count - 1]
        for name in ("open", "high", "low", "close", "volume"):
            assert getattr(last, name) == pytest.approx(truth[name][count - 1], rel=1e-12)
        np.testing.assert_allclose(bars.close, truth["close"][:count], rtol=1e-12)
        history_close = truth["close"][:count]
        history_high, history_low = truth["high"][:count], truth["low"][:count]
        assert bars.sma(5) == pytest.approx(indicators.sma(history_close, 5)[-1], rel=1e-12)
        assert bars.ema(8) == pytest.approx(indicators.ema(history_close, 8)[-1], rel=1e-12)
        assert bars.rsi(6) == pytest.approx(indicators.rsi(history_close, 6)[-1], rel=1e-12)
        assert bars.atr(6) == pytest.approx(
            indicators.atr(history_high, history_low, history_close, 6)[-1], rel=1e-12
        )

    @expert.on_bar("1h")
    def hourly_bar(ctx, bars):
        calls["1h"] += 1
        now = ctx.now_ms
        assert now % HOUR == 0
        check_visible(now, bars, HOUR, hourly)
        # A 4h bar that closes at this hour is already visible to the 1h handler.
        check_visible(now, ctx.bars(timeframe="4h"), FOUR_HOURS, expected_4h, 0)

    @expert.on_bar("4h")
    def four_hour_bar(ctx, bars):
        calls["4h"] += 1
        now = ctx.now_ms
        assert now % FOUR_HOURS == 0  # a 4h handler runs exactly when a 4h bar closes
        assert bars.last.timestamp + FOUR_HOURS == now
        check_visible(now, bars, FOUR_HOURS, expected_4h)
        check_visible(now, ctx.bars(timeframe="1h"), HOUR, hourly)

    result = expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-10",
        report=False,
        configure_logs=False,
        data_dir=shared_data,
        stop_on_error=True,
    )
    assert result.errors == []  # a failed check inside a handler lands here (and stops the run)
    assert result.bars_processed == 240
    assert calls == {"1h": 240, "4h": 60}


def test_higher_timeframe_bar_with_close_at_now_is_visible_to_base_handler(shared_data):
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )
    seen: list[tuple[int, int]] = []

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=LOOKBACK)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def hourly_bar(ctx, bars):
        seen.append((ctx.now_ms, ctx.bars(timeframe="4h").last.timestamp))

    @expert.on_bar("4h")
    def four_hour_bar(ctx, bars):
        pass

    expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-02",
        report=False,
        configure_logs=False,
        data_dir=shared_data,
    )
    # At 04:00 the 00:00-04:00 bar is closed: a 1h handler running at 04:00 should see it.
    assert all(last + FOUR_HOURS == now // FOUR_HOURS * FOUR_HOURS for now, last in seen), seen[:5]
