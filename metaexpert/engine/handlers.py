"""The expert's event handlers, as registered by the facade's decorators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import Timeframe

Handler = Callable[..., Any]

#: Every event an expert can handle, and the arguments its handler receives after ``ctx``.
EVENTS: dict[str, str] = {
    "init": "",
    "deinit": "reason: str",
    "tick": "tick: Tick",
    "bar": "bars: BarSeries",
    "timer": "",
    "order": "event: OrderEvent",
    "position": "event: PositionEvent",
    "transaction": "event: TradeEvent",
    "book": "book: OrderBook",
    "error": "event: ErrorEvent",
    "account": "event: AccountEvent",
    "risk": "event: RiskEvent",
    "backtest_init": "",
    "backtest": "result: BacktestResult -> float (fitness)",
    "backtest_pass": "result: BacktestResult",
    "backtest_deinit": "",
}


@dataclass(slots=True)
class TimerSpec:
    interval: Timeframe
    handler: Handler
    next_fire_ms: int = 0


@dataclass(slots=True)
class HandlerRegistry:
    handlers: dict[str, list[Handler]] = field(default_factory=dict)
    bar_handlers: dict[str, list[Handler]] = field(default_factory=dict)
    timers: list[TimerSpec] = field(default_factory=list)
    init_options: dict[str, Any] = field(default_factory=dict)

    def add(self, event: str, handler: Handler) -> None:
        if event not in EVENTS or event in ("bar", "timer"):
            raise ConfigurationError(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
        if not callable(handler):
            raise ConfigurationError(f"handler for {event!r} must be callable, got {handler!r}")
        self.handlers.setdefault(event, []).append(handler)

    def add_bar(self, timeframe: str, handler: Handler) -> None:
        self.bar_handlers.setdefault(str(Timeframe.parse(timeframe)), []).append(handler)

    def add_timer(self, interval: str, handler: Handler) -> None:
        self.timers.append(TimerSpec(Timeframe.parse(interval), handler))

    def get(self, event: str) -> list[Handler]:
        return self.handlers.get(event, [])

    def has(self, event: str) -> bool:
        return bool(self.handlers.get(event))
