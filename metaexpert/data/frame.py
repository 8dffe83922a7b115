"""The candle frame: the one in-memory layout every part of MetaExpert shares for OHLCV data.

A candle frame is a polars DataFrame with exactly the columns of ``CANDLE_COLUMNS``:
``timestamp`` (Int64, bar open time in UTC epoch milliseconds) and ``open``, ``high``,
``low``, ``close``, ``volume`` (Float64, volume in the base asset). It is the layout of the
recorded Binance files, so stored data, downloaded data and resampled data are interchangeable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from metaexpert.core.clock import ms_to_datetime
from metaexpert.core.errors import DataError

# Bumped whenever a candle check is added or changed (data/validation.py): files the store stamped
# with an older schema are validated again.
SCHEMA_VERSION = 2

CANDLE_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
CANDLE_DTYPES: dict[str, pl.DataType] = {
    "timestamp": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}


def empty_candles() -> pl.DataFrame:
    """A candle frame with no rows (the neutral element of concatenation)."""
    return pl.DataFrame(schema=CANDLE_DTYPES)


def to_candle_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the candle columns, sorted by timestamp.

    Extra columns are dropped; a missing column is an error, not a silently-filled column.
    Duplicates are kept: de-duplication is a decision for the caller (see ``deduplicate``).
    """
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"expected a polars DataFrame of candles, got {type(frame).__name__}")
    missing = [name for name in CANDLE_COLUMNS if name not in frame.columns]
    if missing:
        raise DataError(
            f"candle frame is missing column(s) {missing}; expected columns {list(CANDLE_COLUMNS)}, "
            f"got {frame.columns}"
        )
    try:
        selected = frame.select(
            [pl.col(name).cast(dtype, strict=True) for name, dtype in CANDLE_DTYPES.items()]
        )
    except pl.exceptions.PolarsError as error:
        raise DataError(f"candle columns cannot be cast to {CANDLE_DTYPES}: {error}") from None
    if selected.get_column(
        "timestamp"
    ).is_sorted():  # the usual case (a stored file): a check, not a sort
        return selected.rechunk()
    return selected.sort("timestamp", maintain_order=True)


def coerce_candles(frame: pl.DataFrame) -> pl.DataFrame:
    """The candle columns of ``frame`` widened losslessly to the candle dtypes, order kept.

    Only conversions that cannot change a value are made: smaller integer and float types
    are widened, integer prices become floats, and a time-zone-aware ``Datetime`` timestamp
    becomes UTC epoch milliseconds. Anything else (text, naive datetimes, booleans) is left
    as it is for ``validate_candles`` to report; rows are never sorted, dropped or merged,
    so the validation sees the data as it was given. Extra columns are dropped.
    """
    columns: list[pl.Expr] = []
    for name in CANDLE_COLUMNS:
        if name not in frame.columns:
            continue
        dtype = frame.schema[name]
        column = pl.col(name)
        if name == "timestamp":
            if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
                column = column.dt.epoch(time_unit="ms")
            elif dtype.is_integer() and dtype != pl.UInt64():
                column = column.cast(pl.Int64)
        elif dtype.is_integer() or dtype == pl.Float32():
            column = column.cast(pl.Float64)
        columns.append(column.alias(name))
    return frame.select(columns)


def rows_to_candle_frame(rows: Sequence[Sequence[float | int | None]]) -> pl.DataFrame:
    """Build a candle frame from ccxt-style OHLCV rows ``[timestamp, open, high, low, close, volume]``."""
    if not rows:
        return empty_candles()
    widths = {len(row) for row in rows}
    if widths != {6}:
        raise DataError(
            f"OHLCV rows must have 6 fields [timestamp, open, high, low, close, volume], got widths {sorted(widths)}"
        )
    columns = list(zip(*rows, strict=True))
    data = {
        name: pl.Series(name, values, dtype=dtype, strict=False)
        for name, values, dtype in zip(CANDLE_COLUMNS, columns, CANDLE_DTYPES.values(), strict=True)
    }
    return pl.DataFrame(data).sort("timestamp", maintain_order=True)


def deduplicate(frame: pl.DataFrame, *, keep: str = "last") -> pl.DataFrame:
    """Keep one row per timestamp (``keep='last'``: the most recently received wins), sorted."""
    return frame.unique(subset="timestamp", keep=keep, maintain_order=True).sort("timestamp")


def concat_candles(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate candle frames, later frames winning on equal timestamps, sorted."""
    parts = [to_candle_frame(frame) for frame in frames]
    if not parts:
        return empty_candles()
    return deduplicate(pl.concat(parts, how="vertical"), keep="last")


def format_utc(timestamp_ms: int | None) -> str:
    """Readable UTC time for reports: ``2024-01-01 00:00 UTC``; an impossible value says so.

    A report must describe a bad timestamp, not crash on it: microseconds read as
    milliseconds land in the year 56,000, which ``datetime`` cannot represent.
    """
    if timestamp_ms is None:
        return "-"
    try:
        moment = ms_to_datetime(int(timestamp_ms))
    except (ValueError, OverflowError, OSError):
        return f"{timestamp_ms} (not a UTC epoch-millisecond time)"
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    return moment.strftime("%Y-%m-%d %H:%M UTC")
