"""Indicators are causal: the value at bar i never depends on bars after i.

That property is what lets ``BarSeries`` compute an indicator once over a whole replay
and read it at the last visible bar without look-ahead.
"""

from __future__ import annotations

import numpy as np
import pytest

from metaexpert.core import indicators
from metaexpert.core.series import BarSeries

_RNG = np.random.default_rng(7)
_CLOSE = 100 * np.exp(np.cumsum(_RNG.normal(0, 0.01, 120)))
_HIGH = _CLOSE * (1 + _RNG.uniform(0, 0.01, 120))
_LOW = _CLOSE * (1 - _RNG.uniform(0, 0.01, 120))

_CASES = {
    "sma": lambda n: indicators.sma(_CLOSE[:n], 10),
    "ema": lambda n: indicators.ema(_CLOSE[:n], 10),
    "rsi": lambda n: indicators.rsi(_CLOSE[:n], 14),
    "atr": lambda n: indicators.atr(_HIGH[:n], _LOW[:n], _CLOSE[:n], 14),
    "stddev": lambda n: indicators.stddev(_CLOSE[:n], 20),
    "macd": lambda n: indicators.macd(_CLOSE[:n])[1],
    "bollinger_upper": lambda n: indicators.bollinger(_CLOSE[:n])[2],
    "highest": lambda n: indicators.highest(_HIGH[:n], 15),
    "lowest": lambda n: indicators.lowest(_LOW[:n], 15),
    "volatility": lambda n: indicators.realized_volatility(_CLOSE[:n], 20),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_indicator_with_truncated_history_equals_full_history_prefix(name):
    compute = _CASES[name]
    full = compute(len(_CLOSE))
    assert full.shape == _CLOSE.shape
    assert np.isfinite(full[-1])
    for length in range(1, len(_CLOSE) + 1, 7):
        np.testing.assert_allclose(compute(length), full[:length], rtol=1e-12, equal_nan=True)


def test_sma_with_known_values_matches_hand_computation():
    values = indicators.sma(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3)
    np.testing.assert_allclose(values, [np.nan, np.nan, 2.0, 3.0, 4.0], equal_nan=True)


@pytest.mark.parametrize("period", [1, 2, 10, 128, 129, 200, 359, 360, 361])
def test_sma_with_short_and_long_periods_equals_each_window_mean(period):
    close = np.concatenate([_CLOSE, _HIGH, _LOW])  # 360 bars: long enough for both summation paths
    values = indicators.sma(close, period)
    expected = np.full(close.shape[0], np.nan)
    for end in range(period, close.shape[0] + 1):
        expected[end - 1] = np.mean(close[end - period : end])
    np.testing.assert_allclose(values, expected, rtol=1e-14, equal_nan=True)


def test_ema_with_constant_series_stays_constant_after_seed():
    values = indicators.ema(np.full(30, 7.0), 5)
    assert np.isnan(values[3]) and np.allclose(values[4:], 7.0)


def test_indicator_with_bad_period_raises():
    with pytest.raises(ValueError, match="positive integer"):
        indicators.sma(_CLOSE, 0)


def test_bar_series_indicator_with_hidden_future_bars_equals_visible_only_computation():
    stamps = np.arange(120, dtype=np.int64) * 3_600_000
    series = BarSeries(
        "BTCUSDT", "1h", stamps, _CLOSE, _HIGH, _LOW, _CLOSE, np.ones(120), visible=30
    )
    for visible in (30, 31, 57, 120):
        series.visible = visible
        assert series.sma(10) == pytest.approx(indicators.sma(_CLOSE[:visible], 10)[-1], rel=1e-12)
        assert series.ema(10) == pytest.approx(indicators.ema(_CLOSE[:visible], 10)[-1], rel=1e-12)
        assert series.atr(14) == pytest.approx(
            indicators.atr(_HIGH[:visible], _LOW[:visible], _CLOSE[:visible], 14)[-1], rel=1e-12
        )
        assert len(series.close) == visible and series.last.timestamp == stamps[visible - 1]
    with pytest.raises(IndexError, match="120 closed bars"):
        series[120]


@pytest.mark.parametrize("name", ["sma", "ema", "rsi", "atr", "volatility"])
def test_bar_series_indicator_with_cached_value_returns_python_float(name):
    stamps = np.arange(120, dtype=np.int64) * 3_600_000
    series = BarSeries(
        "BTCUSDT", "1h", stamps, _CLOSE, _HIGH, _LOW, _CLOSE, np.ones(120), visible=60
    )
    method = getattr(series, name)
    first = method(10)
    series.visible = 61
    second = method(10)  # served from the cache
    assert type(first) is float and type(second) is float
    assert type(first > second) is bool  # so `state.get("above") is False` works in experts
