"""Causal technical indicators over numpy arrays.

Every function returns an array as long as its input where element ``i`` depends only on
inputs ``0..i`` (never on later bars), with NaN where there is not yet enough history.
That property is what lets the engine compute an indicator once over a whole backtest
without look-ahead; ``tests/core/test_indicators.py`` checks it for each function.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _as_float_array(values: np.ndarray | list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _check_period(period: int) -> None:
    if int(period) != period or period < 1:
        raise ValueError(f"indicator period must be a positive integer, got {period!r}")


def _rolling(values: np.ndarray, period: int, reduce: str) -> np.ndarray:
    """``reduce`` ("mean", "std", "max", "min") over each window of ``period`` values ending at i."""
    _check_period(period)
    data = _as_float_array(values)
    out = np.full(data.shape[0], np.nan)
    if data.shape[0] >= period:
        out[period - 1 :] = getattr(sliding_window_view(data, period), reduce)(axis=1)
    return out


#: Up to this period, ``sma`` adds shifted slices (one vectorised pass per offset); above
#: it, numpy's per-window reduction is the faster of the two.
_SHIFTED_SUM_MAX_PERIOD = 128


def sma(values: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average (window mean, exact per window: no running-sum drift).

    Each window is summed on its own, so an error never carries from one bar to the next
    as it does with a cumulative sum. For the usual periods the windows are summed as
    ``period`` shifted slices, two to three times faster than a per-window reduction.
    """
    if period > _SHIFTED_SUM_MAX_PERIOD:
        return _rolling(values, period, "mean")
    _check_period(period)
    data = _as_float_array(values)
    out = np.full(data.shape[0], np.nan)
    windows = data.shape[0] - period + 1
    if windows > 0:
        total = data[:windows].copy()
        for offset in range(1, period):
            total += data[offset : offset + windows]
        np.divide(total, period, out=out[period - 1 :])
    return out


def ema(values: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first SMA."""
    _check_period(period)
    data = _as_float_array(values)
    out = np.full(data.shape[0], np.nan)
    if data.shape[0] < period:
        return out
    alpha = 2.0 / (period + 1.0)
    return _recursive_smooth(data, period, alpha, out)


def _recursive_smooth(data: np.ndarray, period: int, alpha: float, out: np.ndarray) -> np.ndarray:
    value = float(data[:period].mean())
    out[period - 1] = value
    keep = 1.0 - alpha
    tail = data[period:].tolist()
    results = []
    append = results.append
    for price in tail:
        value = alpha * price + keep * value
        append(value)
    out[period:] = results
    return out


def wilder(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder's smoothing (alpha = 1 / period), used by RSI and ATR."""
    _check_period(period)
    data = _as_float_array(values)
    out = np.full(data.shape[0], np.nan)
    if data.shape[0] < period:
        return out
    return _recursive_smooth(data, period, 1.0 / period, out)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Relative strength index (Wilder), 0..100."""
    data = _as_float_array(close)
    out = np.full(data.shape[0], np.nan)
    if data.shape[0] <= period:
        return out
    change = np.diff(data)
    gains = wilder(np.clip(change, 0, None), period)
    losses = wilder(np.clip(-change, 0, None), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.where(losses == 0, np.inf, gains / losses)
        value = np.where(losses == 0, 100.0, 100.0 - 100.0 / (1.0 + strength))
    out[1:] = np.where(np.isnan(gains), np.nan, value)
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    high, low, close = _as_float_array(high), _as_float_array(low), _as_float_array(close)
    previous = np.concatenate(([np.nan], close[:-1]))
    ranges = np.vstack((high - low, np.abs(high - previous), np.abs(low - previous)))
    out = np.nanmax(ranges, axis=0) if ranges.shape[1] else high - low
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average true range (Wilder)."""
    return wilder(true_range(high, low, close), period)


def stddev(values: np.ndarray, period: int) -> np.ndarray:
    """Population standard deviation over a rolling window."""
    return _rolling(values, period, "std")


def bollinger(
    values: np.ndarray, period: int = 20, width: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, middle, upper) Bollinger bands."""
    middle = sma(values, period)
    deviation = stddev(values, period) * width
    return middle - deviation, middle, middle + deviation


def macd(
    values: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(macd line, signal line, histogram)."""
    line = ema(values, fast) - ema(values, slow)
    start = int(np.argmax(~np.isnan(line))) if np.any(~np.isnan(line)) else line.shape[0]
    signal_line = np.full(line.shape[0], np.nan)
    if line.shape[0] - start >= signal:
        signal_line[start:] = ema(line[start:], signal)
    return line, signal_line, line - signal_line


def highest(values: np.ndarray, period: int) -> np.ndarray:
    return _rolling(values, period, "max")


def lowest(values: np.ndarray, period: int) -> np.ndarray:
    return _rolling(values, period, "min")


def log_returns(values: np.ndarray) -> np.ndarray:
    data = _as_float_array(values)
    out = np.full(data.shape[0], np.nan)
    if data.shape[0] > 1:
        out[1:] = np.diff(np.log(data))
    return out


def realized_volatility(values: np.ndarray, period: int) -> np.ndarray:
    """Rolling standard deviation of log returns (per bar, not annualised)."""
    returns = log_returns(values)
    out = np.full(returns.shape[0], np.nan)
    if returns.shape[0] > period:
        out[period:] = (
            sliding_window_view(returns[1:], period).std(axis=1, ddof=1)
            if period > 1
            else np.abs(returns[1:])
        )
    return out
