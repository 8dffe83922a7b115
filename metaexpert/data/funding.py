"""Funding rates of perpetuals: downloaded through ccxt, validated, stored beside the candles.

A perpetual backtest books funding from ``<root>/<exchange>/<market_type>/<SYMBOL>-funding.parquet``
(``backtest/funding.py``); until now only the recorded files in ``../shared/data`` had any,
so a user could not fetch the funding of another symbol or period. Here, as candles are:

* ``download_funding_rates`` pages ccxt's ``fetchFundingRateHistory`` forward (``since`` moves
  past the last funding time, ``until`` is always sent) into a frame of ``timestamp`` (the
  funding time, epoch ms), ``funding_rate`` (a fraction per period, > 0: longs pay) and
  ``mark_price`` (null where the venue states none; Binance gives it in ``info``);
* ``checked_funding`` refuses what is not a funding series, naming the file and the row: an
  empty or non-integer time, a missing or non-finite rate, a rate beyond
  ``MAX_ABS_RATE`` (venues cap at 0.3 to 3 % a period), two rates for one funding time;
* ``write_funding`` merges into the stored file (the incoming row wins where both have a
  time), validates the merged series and replaces the file atomically under the same lock
  as candle files, so a failed download leaves the store as it was.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.data.store import _locked, normalize_symbol

#: A funding rate beyond this fraction per period is a broken file, not a market.
MAX_ABS_RATE = 0.05
MAX_PAGES = 100_000
FUNDING_SCHEMA = {"timestamp": pl.Int64, "funding_rate": pl.Float64, "mark_price": pl.Float64}


def funding_path(root: Path, exchange: str, market_type: str, symbol: str) -> Path:
    """Where a symbol's funding rates are stored (and where backtests look for them)."""
    return (
        Path(root)
        / exchange.lower()
        / market_type.lower()
        / f"{normalize_symbol(symbol)}-funding.parquet"
    )


def _mark(row: dict[str, Any]) -> float | None:
    info = row.get("info") if isinstance(row.get("info"), dict) else {}
    for value in (row.get("markPrice"), info.get("markPrice")):
        if value not in (None, ""):
            number = float(value)
            return number if number > 0 else None
    return None


def rows_to_funding_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """ccxt funding-rate history rows as a funding frame (unvalidated, in the given order)."""
    return pl.DataFrame(
        {
            "timestamp": [row.get("timestamp") for row in rows],
            "funding_rate": [row.get("fundingRate") for row in rows],
            "mark_price": [_mark(row) for row in rows],
        },
        schema=FUNDING_SCHEMA,
        strict=False,
    )


def download_funding_rates(
    client: Any,
    market_symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    page_limit: int = 1000,
    on_page: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """The funding events of ``market_symbol`` (a ccxt symbol) in ``[start_ms, end_ms)``, sorted
    and validated. ``client`` is a synchronous ccxt client; its errors propagate unchanged."""
    if start_ms < 0 or end_ms <= start_ms:
        raise ConfigurationError(
            f"invalid funding download range [{start_ms}, {end_ms}): end must be after start"
        )
    if page_limit <= 0:
        raise ConfigurationError(f"page_limit must be positive, got {page_limit}")
    rows: list[dict[str, Any]] = []
    since = start_ms
    for _ in range(MAX_PAGES):
        page = client.fetch_funding_rate_history(
            market_symbol, since, page_limit, {"until": end_ms - 1}
        )
        fresh = [
            row
            for row in page or []
            if row.get("timestamp") is not None and since <= int(row["timestamp"]) < end_ms
        ]
        if on_page is not None:
            on_page(len(fresh))
        if not fresh:
            break
        rows.extend(fresh)
        since = max(int(row["timestamp"]) for row in fresh) + 1
        if since >= end_ms:
            break
    frame = rows_to_funding_frame(rows).unique("timestamp", keep="last").sort("timestamp")
    return checked_funding(frame, label=f"{market_symbol} funding rates")


def checked_funding(frame: pl.DataFrame, *, label: str) -> pl.DataFrame:
    """``frame`` as a funding series (``timestamp``, ``funding_rate``, ``mark_price``), or a
    ``DataError`` naming ``label`` and the first bad row."""
    missing = {"timestamp", "funding_rate"} - set(frame.columns)
    if missing:
        raise DataError(
            f"{label} lacks the column(s) {', '.join(sorted(missing))} "
            "(expected timestamp, funding_rate)"
        )
    if "mark_price" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("mark_price"))
    try:
        frame = frame.select(
            pl.col("timestamp").cast(pl.Int64),
            pl.col("funding_rate").cast(pl.Float64),
            pl.col("mark_price").cast(pl.Float64),
        )
    except pl.exceptions.PolarsError as error:
        raise DataError(
            f"{label}: timestamp must be integer ms and funding_rate a number ({error})"
        ) from None
    if frame.get_column("timestamp").null_count() or frame.get_column("funding_rate").null_count():
        raise DataError(f"{label} has empty timestamps or rates")
    times = frame.get_column("timestamp").to_list()
    for index in range(1, len(times)):
        if times[index] <= times[index - 1]:
            what = "two rates for" if times[index] == times[index - 1] else "out of order at"
            raise DataError(f"{label} has {what} the funding time {times[index]}")
    for time_ms, rate in zip(times, frame.get_column("funding_rate").to_list(), strict=True):
        if not math.isfinite(rate) or abs(rate) > MAX_ABS_RATE:
            raise DataError(
                f"{label}: rate {rate!r} at {time_ms} is not a funding rate "
                f"(expected a finite fraction within +-{MAX_ABS_RATE:g} per period)"
            )
    return frame


def read_funding(path: Path) -> pl.DataFrame:
    """A stored funding file, validated."""
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise DataError(f"cannot read funding file {path}: {error}") from None
    return checked_funding(frame.sort("timestamp"), label=f"funding file {path}")


def write_funding(
    root: Path, exchange: str, market_type: str, symbol: str, frame: pl.DataFrame
) -> int:
    """Merge ``frame`` into the stored funding rates of ``symbol``; returns the rows added."""
    path = funding_path(root, exchange, market_type, symbol)
    label = f"{exchange}/{market_type} {normalize_symbol(symbol)} funding rates"
    incoming = checked_funding(frame, label=f"{label} (incoming)")
    if incoming.is_empty():
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        existing = read_funding(path) if path.is_file() else incoming.clear()
        merged = pl.concat([existing, incoming]).unique("timestamp", keep="last").sort("timestamp")
        merged = checked_funding(merged, label=label)
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.stem}-", suffix=".parquet.tmp", dir=path.parent
        )
        os.close(descriptor)
        try:
            merged.write_parquet(temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return merged.height - existing.height
