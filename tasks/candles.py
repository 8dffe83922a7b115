"""Prefect tasks over ``metaexpert.data``: fetch, detect gaps, repair, validate, store (candles
and perpetuals' funding rates).

Thin wrappers: the behaviour lives in the library; here live the retry and caching policy.
Frames are large and clients are not hashable, so no task caches or persists results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from metaexpert.data import (
    CandleStore,
    GapReport,
    RepairResult,
    download_candles,
    gap_report,
)
from metaexpert.data import repair_gaps as repair_gaps_in_frame
from metaexpert.data import validate_candles as validate_candle_frame
from metaexpert.data.funding import download_funding_rates, write_funding
from tasks.retry import RETRIES, RETRY_DELAYS, RETRY_JITTER_FACTOR, retry_on_recoverable

_NO_RESULTS = {"cache_policy": NO_CACHE, "persist_result": False}
#: Downloads retry what the exchange may answer later (429, 5xx, timeouts), nothing else.
_RETRIED = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_on_recoverable,
}


@task(
    name="fetch-candles", task_run_name="fetch {ccxt_symbol} {timeframe}", **_RETRIED, **_NO_RESULTS
)
def fetch_candles(
    client: Any,
    ccxt_symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    page_limit: int = 1000,
    concurrency: int = 1,
) -> pl.DataFrame:
    """Download candles opening in ``[start_ms, end_ms)``; recoverable exchange errors are retried."""
    return download_candles(
        client,
        ccxt_symbol,
        timeframe,
        start_ms,
        end_ms,
        page_limit=page_limit,
        concurrency=concurrency,
    )


@task(name="detect-gaps", task_run_name="gaps {timeframe}", **_NO_RESULTS)
def detect_gaps(
    frame: pl.DataFrame, timeframe: str, start_ms: int | None = None, end_ms: int | None = None
) -> GapReport:
    """The gaps of ``frame`` over ``[start_ms, end_ms)`` (edges included when bounds are given)."""
    return gap_report(frame, timeframe, start_ms=start_ms, end_ms=end_ms)


@task(
    name="repair-gaps",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER_FACTOR,
    retry_condition_fn=retry_on_recoverable,
    task_run_name="repair {ccxt_symbol} {timeframe}",
    **_NO_RESULTS,
)
def repair_gaps(
    frame: pl.DataFrame,
    client: Any,
    ccxt_symbol: str,
    timeframe: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    page_limit: int = 1000,
) -> RepairResult:
    """Re-fetch each gap from the exchange; what it still lacks stays a reported gap."""

    def fetch(symbol: str, frame_timeframe: str, gap_start: int, gap_end: int) -> pl.DataFrame:
        return download_candles(
            client, symbol, frame_timeframe, gap_start, gap_end, page_limit=page_limit
        )

    return repair_gaps_in_frame(
        frame, timeframe, fetch, symbol=ccxt_symbol, start_ms=start_ms, end_ms=end_ms
    )


@task(name="validate-candles", task_run_name="validate {label}", **_NO_RESULTS)
def validate_candles(frame: pl.DataFrame, timeframe: str, label: str) -> pl.DataFrame:
    """Raise ``CandleValidationError`` with the readable pandera report, or return the frame."""
    return validate_candle_frame(frame, timeframe, label=label)


@task(
    name="store-candles",
    task_run_name="store {exchange}/{market_type} {symbol} {timeframe}",
    **_NO_RESULTS,
)
def store_candles(
    store_root: str,
    exchange: str,
    market_type: str,
    symbol: str,
    timeframe: str,
    frame: pl.DataFrame,
) -> int:
    """Idempotent upsert into the Parquet store; returns the number of new bars."""
    return CandleStore(store_root).write(exchange, market_type, symbol, timeframe, frame)


@task(
    name="fetch-funding-rates",
    task_run_name="fetch funding {ccxt_symbol}",
    **_RETRIED,
    **_NO_RESULTS,
)
def fetch_funding_rates(
    client: Any, ccxt_symbol: str, start_ms: int, end_ms: int, page_limit: int = 1000
) -> pl.DataFrame:
    """Download (and validate) a perpetual's funding events in ``[start_ms, end_ms)``."""
    return download_funding_rates(client, ccxt_symbol, start_ms, end_ms, page_limit=page_limit)


@task(name="store-funding-rates", task_run_name="store funding {exchange} {symbol}", **_NO_RESULTS)
def store_funding_rates(
    store_root: str, exchange: str, market_type: str, symbol: str, frame: pl.DataFrame
) -> int:
    """Merge into ``<SYMBOL>-funding.parquet`` beside the candles; returns the new rates."""
    return write_funding(Path(store_root), exchange, market_type, symbol, frame)
