"""Time filters: trade only within UTC hours of the day and on chosen weekdays.

Both read the engine clock (``view.now_ms``): the replayed time in a backtest, the wall
clock in paper and live mode, so the same expert keeps the same schedule everywhere.
"""

from __future__ import annotations

from metaexpert.core.intent import OrderIntent
from metaexpert.core.portfolio import PortfolioView
from metaexpert.core.timeframe import DAY_MS, MINUTE_MS
from metaexpert.risk.base import RiskRule, Verdict
from metaexpert.risk.config import DAY_NAMES, RiskConfig, parse_trade_hours
from metaexpert.risk.registry import register_rule

_MINUTES_PER_DAY = 24 * 60
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def minute_of_day(timestamp_ms: int) -> int:
    return (timestamp_ms // MINUTE_MS) % _MINUTES_PER_DAY


def weekday(timestamp_ms: int) -> int:
    """0 = Monday ... 6 = Sunday, in UTC."""
    return (timestamp_ms // DAY_MS + _EPOCH_WEEKDAY) % 7


def within_hours(minute: int, start: int, end: int) -> bool:
    """True when ``minute`` is in [start, end); a window with start > end wraps midnight."""
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


@register_rule
class TradeHoursFilter(RiskRule):
    """Blocks entries outside ``trade_hours`` ("08:00-20:00" UTC, end exclusive, may wrap midnight)."""

    name = "trade_hours"
    priority = 30

    def __init__(self, hours: str) -> None:
        self.hours = hours
        self.start, self.end = parse_trade_hours(hours)

    @classmethod
    def from_config(cls, config: RiskConfig) -> TradeHoursFilter | None:
        return cls(config.trade_hours) if config.trade_hours is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        minute = minute_of_day(view.now_ms)
        if within_hours(minute, self.start, self.end):
            return None
        return Verdict.block(
            f"{minute // 60:02d}:{minute % 60:02d} UTC is outside trade_hours {self.hours}",
            minute_of_day=minute,
        )


@register_rule
class AllowedDaysFilter(RiskRule):
    """Blocks entries on UTC weekdays not listed in ``allowed_days``."""

    name = "allowed_days"
    priority = 31

    def __init__(self, days: list[str]) -> None:
        self.days = list(days)
        self.allowed = frozenset(DAY_NAMES.index(day) for day in days)

    @classmethod
    def from_config(cls, config: RiskConfig) -> AllowedDaysFilter | None:
        return cls(config.allowed_days) if config.allowed_days is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        day = weekday(view.now_ms)
        if day in self.allowed:
            return None
        return Verdict.block(
            f"{DAY_NAMES[day]} (UTC) is not in allowed_days {', '.join(self.days)}",
            weekday=DAY_NAMES[day],
        )
