"""Timeframes ('1m' ... '1M') with parsing and bar-boundary arithmetic.

All arithmetic is on UTC epoch milliseconds. Minutes to days are fixed lengths; weeks
start on Monday 00:00 UTC (as on Binance); months are calendar months.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from metaexpert.core.errors import ConfigurationError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; the first Monday is 1970-01-05.
_FIRST_MONDAY_MS = 4 * DAY_MS

_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
_PATTERN = re.compile(r"^(\d+)([mhdwM])$")


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar length such as ``1m``, ``4h``, ``1d``, ``1w`` or ``1M``."""

    amount: int
    unit: str  # one of m, h, d, w, M

    @staticmethod
    def parse(value: str | Timeframe) -> Timeframe:
        if isinstance(value, Timeframe):
            return value
        return _parse(str(value))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def is_calendar(self) -> bool:
        """True for month-based timeframes, whose length varies."""
        return self.unit == "M"

    @property
    def milliseconds(self) -> int:
        """Length in milliseconds; for months the nominal 30 days (use ``next_open``)."""
        if self.unit == "M":
            return self.amount * 30 * DAY_MS
        return self.amount * _UNIT_MS[self.unit]

    def floor(self, timestamp_ms: int) -> int:
        """Open time of the bar that contains ``timestamp_ms``."""
        if self.unit == "M":
            moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
            months = moment.year * 12 + (moment.month - 1)
            months -= months % self.amount
            return _month_start_ms(months)
        length = self.milliseconds
        if self.unit == "w":
            return (timestamp_ms - _FIRST_MONDAY_MS) // length * length + _FIRST_MONDAY_MS
        return timestamp_ms // length * length

    def next_open(self, timestamp_ms: int) -> int:
        """Open time of the bar after the one that contains ``timestamp_ms``."""
        if self.unit == "M":
            moment = datetime.fromtimestamp(self.floor(timestamp_ms) / 1000, tz=UTC)
            months = moment.year * 12 + (moment.month - 1) + self.amount
            return _month_start_ms(months)
        return self.floor(timestamp_ms) + self.milliseconds

    def close_time(self, open_ms: int) -> int:
        """Time at which the bar opened at ``open_ms`` is complete (exclusive end)."""
        return self.next_open(open_ms)

    def is_boundary(self, timestamp_ms: int) -> bool:
        return self.floor(timestamp_ms) == timestamp_ms

    def is_multiple_of(self, other: Timeframe) -> bool:
        """True when bars of ``self`` are built exactly from whole bars of ``other``."""
        if other.unit == "M":
            return self.unit == "M" and self.amount % other.amount == 0
        if self.unit == "M":
            return DAY_MS % other.milliseconds == 0
        if self.unit == "w" and other.unit != "w":
            return DAY_MS % other.milliseconds == 0
        return (
            self.milliseconds % other.milliseconds == 0 and self.milliseconds >= other.milliseconds
        )


def _month_start_ms(months_since_year_zero: int) -> int:
    year, month_index = divmod(months_since_year_zero, 12)
    return int(datetime(year, month_index + 1, 1, tzinfo=UTC).timestamp() * 1000)


@lru_cache(maxsize=64)
def _parse(text: str) -> Timeframe:
    match = _PATTERN.match(text.strip())
    if not match:
        raise ConfigurationError(
            f"invalid timeframe {text!r}: expected a number followed by m, h, d, w or M "
            "(for example '1m', '15m', '4h', '1d', '1w', '1M')"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise ConfigurationError(f"invalid timeframe {text!r}: the amount must be positive")
    return Timeframe(amount, unit)
