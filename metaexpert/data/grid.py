"""Vectorised timeframe-grid arithmetic on polars expressions.

``core.timeframe.Timeframe`` answers grid questions for one timestamp; these expressions answer
them for a whole column at once, which is what gap detection and validation need on a year of
1m candles. Fixed-length timeframes (minutes to weeks) are pure integer arithmetic; months
go through polars' calendar functions.
"""

from __future__ import annotations

import polars as pl

from metaexpert.core.timeframe import DAY_MS, Timeframe

# 1970-01-05 was the first Monday after the epoch; weekly bars open on Mondays (as on Binance).
_FIRST_MONDAY_MS = 4 * DAY_MS


def _origin_ms(timeframe: Timeframe) -> int:
    return _FIRST_MONDAY_MS if timeframe.unit == "w" else 0


def bar_number(column: str | pl.Expr, timeframe: Timeframe) -> pl.Expr:
    """Index of the bar containing each timestamp, counted from the epoch (consecutive bars differ by 1)."""
    expr = pl.col(column) if isinstance(column, str) else column
    if timeframe.is_calendar:
        moment = pl.from_epoch(expr, time_unit="ms")
        months = moment.dt.year().cast(pl.Int64) * 12 + moment.dt.month().cast(pl.Int64) - 1
        return months // timeframe.amount
    length = timeframe.milliseconds
    return (expr - _origin_ms(timeframe)) // length


def on_grid(column: str | pl.Expr, timeframe: Timeframe) -> pl.Expr:
    """True where the timestamp is exactly a bar open time of ``timeframe``."""
    expr = pl.col(column) if isinstance(column, str) else column
    if timeframe.is_calendar:
        moment = pl.from_epoch(expr, time_unit="ms")
        month_start = moment.dt.truncate("1mo").dt.epoch(time_unit="ms")
        months = moment.dt.year().cast(pl.Int64) * 12 + moment.dt.month().cast(pl.Int64) - 1
        return (month_start == expr) & (months % timeframe.amount == 0)
    return (expr - _origin_ms(timeframe)) % timeframe.milliseconds == 0
