"""Bars built from polled mark prices (``engine/polled_bars.py``), for venues without candles."""

from __future__ import annotations

from metaexpert.core.market import Tick
from metaexpert.core.timeframe import Timeframe
from metaexpert.engine.polled_bars import PolledBars

MINUTE = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def _tick(offset_ms: int, mark: float | None, last: float = 1.0) -> Tick:
    return Tick("BTC-P", T0 + offset_ms, last, mark_price=mark)


def _feed(bars: PolledBars, samples: list[tuple[int, float]]) -> list[tuple]:
    closed = []
    for offset, mark in samples:
        closed += [
            (b.timeframe, b.timestamp - T0, b.open, b.high, b.low, b.close, b.volume)
            for b in bars.sample(_tick(offset, mark))
        ]
    return closed


def test_polled_bars_with_several_polls_a_bar_give_open_high_low_close_of_the_marks():
    bars = PolledBars(["BTC-P"], [Timeframe.parse("1m")])
    closed = _feed(bars, [(0, 10.0), (20_000, 12.0), (40_000, 9.0), (59_999, 11.0), (MINUTE, 11.5)])
    assert closed == [("1m", 0, 10.0, 12.0, 9.0, 11.0, 0.0)]


def test_polled_bars_with_first_poll_inside_a_bar_drop_that_partial_bar():
    bars = PolledBars(["BTC-P"], [Timeframe.parse("1m")])
    closed = _feed(bars, [(30_000, 10.0), (MINUTE, 11.0), (2 * MINUTE, 12.0)])
    assert closed == [("1m", MINUTE, 11.0, 11.0, 11.0, 11.0, 0.0)]


def test_polled_bars_with_a_minute_without_polls_leave_a_gap():
    bars = PolledBars(["BTC-P"], [Timeframe.parse("1m")])
    closed = _feed(bars, [(0, 10.0), (2 * MINUTE + 5_000, 12.0), (3 * MINUTE, 13.0)])
    # 00:00 closes at the 00:02 poll, 00:01 had no poll, 00:02 began 5 s late (partial: dropped)
    assert closed == [("1m", 0, 10.0, 10.0, 10.0, 10.0, 0.0)]


def test_polled_bars_with_two_timeframes_close_each_on_its_own_grid():
    bars = PolledBars(["BTC-P"], [Timeframe.parse("1m"), Timeframe.parse("5m")])
    closed = _feed(bars, [(i * MINUTE, 10.0 + i) for i in range(6)])
    assert [(tf, start) for tf, start, *_ in closed] == [
        ("1m", 0), ("1m", MINUTE), ("1m", 2 * MINUTE), ("1m", 3 * MINUTE), ("1m", 4 * MINUTE),
        ("5m", 0),
    ]  # fmt: skip
    assert closed[-1] == ("5m", 0, 10.0, 14.0, 10.0, 14.0, 0.0)


def test_polled_bars_with_no_mark_price_use_the_last_price_and_skip_an_empty_ticker():
    bars = PolledBars(["BTC-P"], [Timeframe.parse("1m")])
    bars.sample(_tick(0, None, last=7.0))
    bars.sample(_tick(10_000, None, last=0.0))  # no price at all: not a sample
    [bar] = bars.sample(_tick(MINUTE, 8.0))
    assert (bar.open, bar.low, bar.close) == (7.0, 7.0, 7.0)
