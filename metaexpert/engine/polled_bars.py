"""Bars built from polled prices, for a market whose venue serves no candles.

Bybit v5 has no candles of options (``/v5/market/kline`` takes spot, linear and inverse only;
ccxt's ``fetch_ohlcv`` refuses an option market), so a paper or live options expert on Bybit
would have no bars at all. The runtime builds them from what it polls anyway: each poll's mark
price (the ticker's ``markPrice``; the last price where the ticker has none) is one sample of
the bar of every subscribed timeframe it falls in. The first sample opens the bar, high and low
widen, the latest is its close; a bar closes at the first poll past its close time.

Rules a reader of the series should know:
- volume is 0: the ticker's volume is a 24-hour total, not the bar's;
- the first bar of each timeframe is dropped unless a poll fell on its open (it would start
  mid-bar and misstate open, high and low);
- an interval with no poll makes no bar (a gap, as venues leave where nothing traded);
- nothing is fetched: history starts with the run, so the runtime hands the expert no ``on_bar``
  until ``lookback_bars`` bars were built (it logs how long that takes), and a restart warms up
  again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from metaexpert.core.market import Bar, Tick
from metaexpert.core.timeframe import Timeframe


@dataclass(slots=True)
class _Forming:
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    complete: bool  # a poll fell on the bar's open: its open, high and low are the bar's own


class PolledBars:
    """Forming bars of the symbols whose venue serves no candles, per subscribed timeframe."""

    def __init__(self, symbols: Sequence[str], timeframes: Sequence[Timeframe]) -> None:
        self.symbols = frozenset(symbols)
        self.timeframes = tuple(timeframes)
        self._forming: dict[tuple[str, Timeframe], _Forming] = {}

    @staticmethod
    def price_of(tick: Tick) -> float:
        return tick.mark_price or tick.price

    def sample(self, tick: Tick) -> list[Bar]:
        """Add one polled ticker; returns the bars it closed (shorter timeframes first)."""
        price = self.price_of(tick)
        now = tick.timestamp
        closed: list[Bar] = []
        if price <= 0:
            return closed  # a ticker without a price is no sample
        for timeframe in self.timeframes:
            key = (tick.symbol, timeframe)
            start = timeframe.floor(now)
            forming = self._forming.get(key)
            if forming is not None and forming.timestamp < start:
                if forming.complete:
                    closed.append(self._bar(tick.symbol, timeframe, forming))
                forming = None
            if forming is None:
                self._forming[key] = _Forming(start, price, price, price, price, now == start)
            elif now >= forming.timestamp:  # a poll older than the bar (clock skew) is ignored
                forming.high = max(forming.high, price)
                forming.low = min(forming.low, price)
                forming.close = price
        return closed

    @staticmethod
    def _bar(symbol: str, timeframe: Timeframe, forming: _Forming) -> Bar:
        return Bar(
            symbol,
            str(timeframe),
            forming.timestamp,
            forming.open,
            forming.high,
            forming.low,
            forming.close,
            0.0,
        )
