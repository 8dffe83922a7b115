"""BarSeries indicator caches in paper/live mode, where bars arrive one by one."""

from __future__ import annotations

import pytest

from metaexpert.core.market import Bar
from metaexpert.core.series import BarSeries


def bar(minute: int, close: float) -> Bar:
    return Bar("BTCUSDT", "1m", minute * 60_000, close, close, close, close, 1.0)


def series_of(closes: list[float]) -> BarSeries:
    series = BarSeries("BTCUSDT", "1m")
    for minute, close in enumerate(closes):
        series.append(bar(minute, close))
    return series


def test_sma_with_a_new_bar_is_recomputed():
    series = series_of([1.0, 2.0, 3.0])
    assert series.sma(2) == pytest.approx(2.5)
    series.append(bar(3, 5.0))
    assert series.sma(2) == pytest.approx(4.0)


def test_sma_and_ema_with_the_last_bar_replaced_are_recomputed():
    series = series_of([1.0, 2.0, 3.0])
    assert series.sma(2) == pytest.approx(2.5)
    first_ema = series.ema(2)
    series.append(bar(2, 7.0))  # same open time: the forming bar's newer values
    assert len(series) == 3
    assert series.sma(2) == pytest.approx(4.5)
    assert series.ema(2) > first_ema


def test_sma_read_returns_a_python_float():
    series = series_of([1.0, 2.0, 3.0])
    assert type(series.sma(2)) is float
    assert type(series.sma(2)) is float  # the cached path too
