"""BarSeries: the closed bars of one symbol and timeframe, as numpy views.

The engine owns the arrays and moves ``visible`` forward as bars close; handlers see only
closed bars, so nothing after "now" is reachable through a series. In a backtest the arrays
hold the whole replay up front and indicators are computed once over them (they are causal,
see ``metaexpert.core.indicators``), which makes ``bars.sma(20)`` an array lookup. In paper
and live mode bars are appended as they close and cached indicators are recomputed lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from metaexpert.core import indicators
from metaexpert.core.market import Bar


class BarSeries:
    __slots__ = (
        "_cache",
        "_cache_known",
        "_close",
        "_ema",
        "_high",
        "_known",
        "_low",
        "_open",
        "_sma",
        "_timestamps",
        "_volume",
        "symbol",
        "timeframe",
        "visible",
    )

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        timestamps: np.ndarray | None = None,
        open_: np.ndarray | None = None,
        high: np.ndarray | None = None,
        low: np.ndarray | None = None,
        close: np.ndarray | None = None,
        volume: np.ndarray | None = None,
        *,
        visible: int = 0,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        empty = np.empty(0)
        self._timestamps = np.asarray(
            timestamps if timestamps is not None else np.empty(0, np.int64), dtype=np.int64
        )
        self._open = np.asarray(open_ if open_ is not None else empty, dtype=np.float64)
        self._high = np.asarray(high if high is not None else empty, dtype=np.float64)
        self._low = np.asarray(low if low is not None else empty, dtype=np.float64)
        self._close = np.asarray(close if close is not None else empty, dtype=np.float64)
        self._volume = np.asarray(volume if volume is not None else empty, dtype=np.float64)
        self._known = self._timestamps.shape[0]
        self.visible = visible
        self._cache: dict[Any, Any] = {}
        # SMA and EMA again as lists of Python floats, in tables indexed by period: the
        # per-bar read ``bars.sma(20)`` is then two list indexes (no dict lookup with its
        # integer hash, no key tuple, no numpy scalar). Emptied whenever the bars change.
        self._sma: list[list[float] | None] = []
        self._ema: list[list[float] | None] = []
        self._cache_known = self._known

    # --------------------------------------------------------------- growth (live)
    def append(self, bar: Bar) -> None:
        """Add a newly closed bar (paper/live). Replaces the last bar if it has the same time."""
        if self._known and bar.timestamp == int(self._timestamps[self._known - 1]):
            index = self._known - 1
        else:
            if self._known and bar.timestamp < int(self._timestamps[self._known - 1]):
                raise ValueError(
                    f"bar at {bar.timestamp} is older than the last bar of {self.symbol} {self.timeframe}"
                )
            index = self._known
            if index >= self._timestamps.shape[0]:
                self._grow(max(64, index * 2))
            self._known += 1
        self._timestamps[index] = bar.timestamp
        self._open[index] = bar.open
        self._high[index] = bar.high
        self._low[index] = bar.low
        self._close[index] = bar.close
        self._volume[index] = bar.volume
        self.visible = self._known
        # A new bar, or the last one replaced (same time, newer values): recompute lazily.
        self._cache_known = -1
        self._sma.clear()
        self._ema.clear()

    def _grow(self, capacity: int) -> None:
        def resized(array: np.ndarray) -> np.ndarray:
            grown = np.empty(capacity, dtype=array.dtype)
            grown[: self._known] = array[: self._known]
            return grown

        self._timestamps = resized(self._timestamps)
        self._open = resized(self._open)
        self._high = resized(self._high)
        self._low = resized(self._low)
        self._close = resized(self._close)
        self._volume = resized(self._volume)

    # --------------------------------------------------------------- read access
    def __len__(self) -> int:
        return self.visible

    @property
    def timestamps(self) -> np.ndarray:
        return self._timestamps[: self.visible]

    @property
    def open(self) -> np.ndarray:
        return self._open[: self.visible]

    @property
    def high(self) -> np.ndarray:
        return self._high[: self.visible]

    @property
    def low(self) -> np.ndarray:
        return self._low[: self.visible]

    @property
    def close(self) -> np.ndarray:
        return self._close[: self.visible]

    @property
    def volume(self) -> np.ndarray:
        return self._volume[: self.visible]

    def __getitem__(self, index: int) -> Bar:
        """``bars[-1]`` is the last closed bar, ``bars[0]`` the oldest."""
        visible = self.visible
        if index < 0:
            index += visible
        if not 0 <= index < visible:
            raise IndexError(f"bar index out of range: {visible} closed bars available")
        return Bar(
            self.symbol,
            self.timeframe,
            int(self._timestamps[index]),
            float(self._open[index]),
            float(self._high[index]),
            float(self._low[index]),
            float(self._close[index]),
            float(self._volume[index]),
        )

    @property
    def last(self) -> Bar:
        return self[-1]

    @property
    def last_close(self) -> float:
        return float(self._close[self.visible - 1])

    # --------------------------------------------------------------- indicators
    # A compiled build (mypyc) checks every declared return type at run time, so a value
    # and a band (a tuple of values) come from two typed readers, ``_value`` and ``_bands``;
    # one reader declared ``-> float`` and returning a tuple passed in the pure build and
    # raised ``TypeError: float object expected`` in the compiled one.
    def _computed(self, key: Any, compute: Callable[[BarSeries], Any]) -> Any:
        """The arrays of an indicator over all known bars, computed once per ``key`` and cached."""
        cached = self._cache.get(key) if self._cache_known == self._known else None
        if cached is None:
            if self._cache_known != self._known:
                self._cache.clear()
                self._cache_known = self._known
            visible = self.visible
            self.visible = self._known
            try:
                cached = compute(self)
            finally:
                self.visible = visible
            self._cache[key] = cached
        return cached

    def _value(self, key: Any, compute: Callable[[BarSeries], np.ndarray]) -> float:
        return float(self._computed(key, compute)[self.visible - 1])

    def _bands(self, key: Any, compute: Callable[[BarSeries], Any]) -> tuple[float, float, float]:
        first, second, third = self._computed(key, compute)
        index = self.visible - 1
        return float(first[index]), float(second[index]), float(third[index])

    def indicator(self, key: Any, compute: Callable[[BarSeries], Any]) -> Any:
        """Value at the last closed bar of an indicator computed by ``compute`` over all known bars.

        ``compute`` receives a series whose arrays cover every bar the engine knows (in a
        backtest: the whole replay), so it must be causal. It returns one array (the result
        is a float) or a tuple of arrays (the result is a tuple of floats, like ``macd``).
        The arrays are cached per ``key``.
        """
        computed = self._computed(key, compute)
        index = self.visible - 1
        if isinstance(computed, tuple):
            return tuple([float(part[index]) for part in computed])
        return float(computed[index])

    def indicator_series(self, key: Any, compute: Callable[[BarSeries], Any]) -> Any:
        """The indicator's values up to the last closed bar (a view, no look-ahead); a tuple
        of views when ``compute`` returns a tuple of arrays."""
        computed = self._computed(key, compute)
        visible = self.visible
        if isinstance(computed, tuple):
            return tuple([part[:visible] for part in computed])
        return computed[:visible]

    def _as_floats(
        self,
        table: list[list[float] | None],
        kind: str,
        period: int,
        compute: Callable[[BarSeries], np.ndarray],
    ) -> float:
        """First read of an SMA/EMA: compute it, keep it as Python floats for the next reads
        (a numpy scalar would make comparisons return numpy bools, and
        ``state.get("above") is False`` would never match)."""
        value = self._value((kind, period), compute)  # rejects a period that is not positive
        if period >= len(table):
            table.extend([None] * (period + 1 - len(table)))
        table[period] = self._cache[(kind, period)].tolist()
        return value

    def sma(self, period: int) -> float:
        if 0 < period < len(self._sma):  # the per-bar fast path
            values = self._sma[period]
            if values is not None:
                return values[self.visible - 1]
        return self._as_floats(self._sma, "sma", period, lambda s: indicators.sma(s.close, period))

    def ema(self, period: int) -> float:
        if 0 < period < len(self._ema):
            values = self._ema[period]
            if values is not None:
                return values[self.visible - 1]
        return self._as_floats(self._ema, "ema", period, lambda s: indicators.ema(s.close, period))

    def rsi(self, period: int = 14) -> float:
        return self._value(("rsi", period), lambda s: indicators.rsi(s.close, period))

    def atr(self, period: int = 14) -> float:
        return self._value(
            ("atr", period), lambda s: indicators.atr(s.high, s.low, s.close, period)
        )

    def macd(self, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[float, float, float]:
        """(MACD line, signal line, histogram) at the last closed bar."""
        return self._bands(
            ("macd", fast, slow, signal), lambda s: indicators.macd(s.close, fast, slow, signal)
        )

    def bollinger(self, period: int = 20, width: float = 2.0) -> tuple[float, float, float]:
        """(lower, middle, upper) Bollinger bands at the last closed bar."""
        return self._bands(
            ("bollinger", period, width), lambda s: indicators.bollinger(s.close, period, width)
        )

    def volatility(self, period: int = 20) -> float:
        """Realised volatility (std of log returns per bar) over ``period`` bars."""
        return self._value(
            ("volatility", period), lambda s: indicators.realized_volatility(s.close, period)
        )
