"""Resampling candles to a longer timeframe, emitting only complete bars.

The engine uses this for multi-timeframe experts: a 4h bar built from 1h bars must exist only
once all four 1h bars exist, or a backtest would see the future (look-ahead) or trade on a
partial bar that a live run never sees.
"""

from __future__ import annotations

import polars as pl

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import CANDLE_COLUMNS, to_candle_frame
from metaexpert.data.grid import on_grid

_POLARS_UNITS = {"m": "m", "h": "h", "d": "d", "w": "w", "M": "mo"}


def polars_duration(timeframe: Timeframe) -> str:
    """The polars duration string of a timeframe (``4h`` -> ``4h``, ``1M`` -> ``1mo``)."""
    return f"{timeframe.amount}{_POLARS_UNITS[timeframe.unit]}"


def resample(
    frame: pl.DataFrame, source_timeframe: str | Timeframe, target_timeframe: str | Timeframe
) -> pl.DataFrame:
    """Aggregate ``frame`` (bars of ``source_timeframe``) into complete ``target_timeframe`` bars.

    open = first open, high = max, low = min, close = last close, volume = sum; the target bar's
    timestamp is its open time. A target bar with any source bar missing (a gap, or the still
    forming last bar) is left out.
    """
    source = Timeframe.parse(source_timeframe)
    target = Timeframe.parse(target_timeframe)
    if source.is_calendar or not target.is_multiple_of(source):
        raise ConfigurationError(
            f"cannot resample {source} candles to {target}: {target} bars are not built from whole {source} bars"
        )
    frame = to_candle_frame(frame)
    if source == target:
        return frame
    every = polars_duration(target)
    moments = frame.with_columns(
        pl.from_epoch("timestamp", time_unit="ms").cast(pl.Datetime("ms", "UTC")).alias("moment")
    )
    grouped = (
        moments.group_by_dynamic(
            "moment", every=every, period=every, closed="left", label="left", start_by="window"
        )
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().alias("bars"),
        )
        .with_columns(
            pl.col("moment").dt.epoch(time_unit="ms").alias("timestamp"),
            pl.col("moment").dt.offset_by(every).dt.epoch(time_unit="ms").alias("window_end"),
        )
    )
    complete = grouped.filter(
        pl.col("bars") == (pl.col("window_end") - pl.col("timestamp")) // source.milliseconds
    ).filter(on_grid("timestamp", target))
    return complete.select(CANDLE_COLUMNS)
