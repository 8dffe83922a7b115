"""Volatility controls: a volatility band filter (with alerts) and a price-move circuit breaker.

The filter reads ATR or realised volatility from the BarSeries' cached causal indicators
(an array lookup per call in a backtest). The breaker keeps, per symbol, monotonic
deques of the highs and lows seen within its window, so each bar or tick costs O(1)
amortised however long the run.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from metaexpert.core.enums import RiskEventAction
from metaexpert.core.intent import OrderIntent, RiskAction
from metaexpert.core.market import Bar, Tick
from metaexpert.core.portfolio import PortfolioView
from metaexpert.core.timeframe import MINUTE_MS, Timeframe
from metaexpert.risk.base import RiskJournal, RiskRule, Verdict, volatility_pct
from metaexpert.risk.config import CircuitBreakerConfig, RiskConfig, VolatilityFilterConfig
from metaexpert.risk.registry import register_rule


@register_rule
class VolatilityFilter(RiskRule):
    """Blocks entries while volatility (% of price) is outside [min_pct, max_pct] or unknown.

    After each closed bar it also watches the band and raises one alert when a symbol
    leaves it and one when it returns.
    """

    name = "volatility_filter"
    priority = 70

    def __init__(self, settings: VolatilityFilterConfig) -> None:
        self.settings = settings
        self.low = settings.min_pct if settings.min_pct is not None else -math.inf
        self.high = settings.max_pct if settings.max_pct is not None else math.inf
        self._outside: dict[str, bool] = {}

    @classmethod
    def from_config(cls, config: RiskConfig) -> VolatilityFilter | None:
        return cls(config.volatility_filter) if config.volatility_filter is not None else None

    def measure(self, symbol: str, view: PortfolioView) -> float:
        settings = self.settings
        return volatility_pct(view, symbol, settings.measure, settings.period, settings.timeframe)

    def describe_band(self) -> str:
        return (
            f"[{self.settings.min_pct if self.settings.min_pct is not None else 0:g}, "
            f"{self.settings.max_pct if self.settings.max_pct is not None else math.inf:g}]%"
        )

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        value = self.measure(intent.symbol, view)
        if math.isnan(value):
            return Verdict.block(
                f"{self.settings.measure} volatility of {intent.symbol} not known yet "
                f"(needs {self.settings.period + 1} closed bars)"
            )
        if self.low <= value <= self.high:
            return None
        return Verdict.block(
            f"{self.settings.measure} volatility {value:.4f}% of {intent.symbol} is outside "
            f"volatility_filter {self.describe_band()}",
            volatility_pct=value,
        )

    def on_bar(self, bar: Bar, view: PortfolioView, journal: RiskJournal) -> None:
        if self.settings.timeframe is not None and bar.timeframe != self.settings.timeframe:
            return
        value = self.measure(bar.symbol, view)
        if math.isnan(value):
            return
        outside = not (self.low <= value <= self.high)
        if outside == self._outside.get(bar.symbol, False):
            return
        self._outside[bar.symbol] = outside
        action = RiskEventAction.VOLATILITY_ALERT if outside else RiskEventAction.VOLATILITY_NORMAL
        where = "left" if outside else "returned to"
        journal.record(
            self.name,
            action,
            view.now_ms,
            symbol=bar.symbol,
            alert=True,
            reason=f"{self.settings.measure} volatility {value:.4f}% of {bar.symbol} {where} {self.describe_band()}",
            volatility_pct=value,
        )


@dataclass(slots=True)
class _Window:
    """Sliding-window max and min of prices via monotonic deques of (timestamp, price)."""

    highs: deque[tuple[int, float]] = field(default_factory=deque)
    lows: deque[tuple[int, float]] = field(default_factory=deque)

    def add(self, timestamp: int, high: float, low: float, horizon: int) -> None:
        highs, lows = self.highs, self.lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((timestamp, high))
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((timestamp, low))
        while highs[0][0] < horizon:
            highs.popleft()
        while lows[0][0] < horizon:
            lows.popleft()

    def range_pct(self) -> float:
        low = self.lows[0][1]
        return (self.highs[0][1] - low) / low * 100.0 if low > 0 else 0.0

    def clear(self) -> None:
        self.highs.clear()
        self.lows.clear()


@register_rule
class CircuitBreaker(RiskRule):
    """Pauses entries on a symbol when its price range within the window exceeds ``move_pct``.

    The move that trips the breaker is then forgotten (the window restarts); entries
    resume ``cooldown_minutes`` after the trip unless a new move trips it again.
    """

    name = "circuit_breaker"
    priority = 22

    def __init__(self, settings: CircuitBreakerConfig) -> None:
        self.settings = settings
        self.window_ms = int(settings.window_minutes * MINUTE_MS)
        self.cooldown_ms = int(settings.cooldown_minutes * MINUTE_MS)
        self._windows: dict[str, _Window] = {}
        self.open_until: dict[str, int] = {}
        self._reasons: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: RiskConfig) -> CircuitBreaker | None:
        return cls(config.circuit_breaker) if config.circuit_breaker is not None else None

    @property
    def halted(self) -> bool:
        return bool(self.open_until)

    def observe(self, view: PortfolioView, journal: RiskJournal) -> None:
        if not self.open_until:
            return
        now = view.now_ms
        for symbol, until in list(self.open_until.items()):
            if now >= until:
                del self.open_until[symbol]
                journal.record(
                    self.name,
                    RiskEventAction.BREAKER_CLOSED,
                    now,
                    symbol=symbol,
                    alert=True,
                    reason=f"circuit breaker on {symbol} closed after {self.settings.cooldown_minutes:g} min cool-down",
                )

    def _feed(
        self, symbol: str, timestamp: int, high: float, low: float, now: int, journal: RiskJournal
    ) -> None:
        window = self._windows.get(symbol)
        if window is None:
            window = self._windows[symbol] = _Window()
        window.add(timestamp, high, low, timestamp - self.window_ms)
        move = window.range_pct()
        if move <= self.settings.move_pct:
            return
        window.clear()
        reopened = symbol in self.open_until
        self.open_until[symbol] = now + self.cooldown_ms
        reason = (
            f"{symbol} moved {move:.2f}% within {self.settings.window_minutes:g} min "
            f"(circuit_breaker move_pct {self.settings.move_pct:g}): entries paused for "
            f"{self.settings.cooldown_minutes:g} min"
        )
        self._reasons[symbol] = reason
        journal.record(
            self.name,
            RiskEventAction.BREAKER_EXTENDED if reopened else RiskEventAction.BREAKER_OPENED,
            now,
            symbol=symbol,
            reason=reason,
            alert=True,
            move_pct=move,
            open_until=self.open_until[symbol],
        )
        if not reopened:
            journal.act(RiskAction("cancel_entries", self.name, reason, symbol=symbol))

    def on_bar(self, bar: Bar, view: PortfolioView, journal: RiskJournal) -> None:
        close_time = Timeframe.parse(bar.timeframe).close_time(bar.timestamp)
        self._feed(bar.symbol, close_time, bar.high, bar.low, max(view.now_ms, close_time), journal)

    def on_tick(self, tick: Tick, view: PortfolioView, journal: RiskJournal) -> None:
        self._feed(
            tick.symbol,
            tick.timestamp,
            tick.price,
            tick.price,
            max(view.now_ms, tick.timestamp),
            journal,
        )

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        until = self.open_until.get(intent.symbol)
        if until is None or view.now_ms >= until:
            return None
        return Verdict.block(self._reasons[intent.symbol], open_until=until)
