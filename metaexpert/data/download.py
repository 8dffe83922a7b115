"""Candle download through a ccxt client, page by page, into a candle frame.

Pagination is explicit: ``since`` moves forward one page at a time and ``until`` is always
sent, because ccxt's own ``paginate`` without ``until`` returns only recent candles. Errors
raised by ccxt propagate unchanged: classifying them (retry or fail) is the caller's job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data.frame import concat_candles, empty_candles, rows_to_candle_frame

MAX_PAGES = 1_000_000


def _check_range(timeframe: Timeframe, start_ms: int, end_ms: int, page_limit: int) -> None:
    if start_ms < 0 or end_ms <= start_ms:
        raise ConfigurationError(
            f"invalid download range [{start_ms}, {end_ms}): end must be after start"
        )
    if page_limit <= 0:
        raise ConfigurationError(f"page_limit must be positive, got {page_limit}")
    if timeframe.is_calendar:
        raise ConfigurationError(
            "monthly candles are not downloaded page by page; use 1d and resample"
        )


def _page_params(end_ms: int, params: dict[str, Any] | None) -> dict[str, Any]:
    # ccxt's "until" is inclusive (Binance endTime): ask for bars opening before end_ms only.
    return {**(params or {}), "until": end_ms - 1}


def _next_since(rows: list[list[Any]], since: int, timeframe: Timeframe) -> int | None:
    """Where the next page starts, or None when the exchange returned nothing new."""
    if not rows:
        return None
    last = int(rows[-1][0])
    if last < since:
        return None
    return last + timeframe.milliseconds


def _finish(
    pages: list[pl.DataFrame],
    start_ms: int,
    end_ms: int,
    timeframe: Timeframe,
    complete_before_ms: int | None,
) -> pl.DataFrame:
    if not pages:
        return empty_candles()
    frame = concat_candles(pages).filter(
        (pl.col("timestamp") >= start_ms) & (pl.col("timestamp") < end_ms)
    )
    if complete_before_ms is not None:
        # The bar still forming on the exchange changes until it closes: leave it out.
        frame = frame.filter(pl.col("timestamp") + timeframe.milliseconds <= complete_before_ms)
    return frame


def download_candles(
    client: Any,
    ccxt_symbol: str,
    timeframe: str | Timeframe,
    start_ms: int,
    end_ms: int,
    *,
    page_limit: int = 1000,
    params: dict[str, Any] | None = None,
    complete_only: bool = True,
    clock_ms: Callable[[], int] | None = None,
    concurrency: int = 1,
    on_page: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """Candles opening in ``[start_ms, end_ms)`` from a synchronous ccxt client.

    ``on_page(rows)`` is called after every page with the number of rows it held (a progress
    bar's step; the total to expect is ``expected_bars(timeframe, start_ms, end_ms)``).

    ``params`` are passed to every ``fetch_ohlcv`` call (for example ``{"price": "mark"}``).
    With ``complete_only`` the bar still forming at ``clock_ms()`` (default: wall clock) is
    dropped. The result is sorted and de-duplicated by timestamp.

    ``concurrency > 1`` splits the range into that many contiguous chunks downloaded by as
    many threads sharing ``client``, so waiting on one page overlaps parsing another. ccxt's
    sync rate limiter is not thread-safe: keep 1 against a real exchange's rate limits, use
    more against a local mirror or the sandbox.
    """
    parsed = Timeframe.parse(timeframe)
    _check_range(parsed, start_ms, end_ms, page_limit)
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    chunks = _chunks(parsed, start_ms, end_ms, page_limit, concurrency)

    def one_chunk(bounds: tuple[int, int]) -> list[pl.DataFrame]:
        pages: list[pl.DataFrame] = []
        since: int | None = bounds[0]
        for _ in range(MAX_PAGES):
            if since is None or since >= bounds[1]:
                break
            rows = client.fetch_ohlcv(
                ccxt_symbol,
                str(parsed),
                since=since,
                limit=page_limit,
                params=_page_params(bounds[1], params),
            )
            pages.append(_to_frame(rows, ccxt_symbol))
            if on_page is not None:
                on_page(len(rows))
            since = _next_since(rows, since, parsed)
        return pages

    if len(chunks) == 1:
        pages = one_chunk(chunks[0])
    else:
        with ThreadPoolExecutor(
            max_workers=len(chunks), thread_name_prefix="download-candles"
        ) as pool:
            pages = [page for chunk_pages in pool.map(one_chunk, chunks) for page in chunk_pages]
    now = (clock_ms or _wall_clock_ms)() if complete_only else None
    return _finish(pages, start_ms, end_ms, parsed, now)


async def download_candles_async(
    client: Any,
    ccxt_symbol: str,
    timeframe: str | Timeframe,
    start_ms: int,
    end_ms: int,
    *,
    page_limit: int = 1000,
    params: dict[str, Any] | None = None,
    complete_only: bool = True,
    clock_ms: Callable[[], int] | None = None,
    concurrency: int = 1,
) -> pl.DataFrame:
    """``download_candles`` for a ``ccxt.async_support`` client (chunks run as concurrent tasks)."""
    parsed = Timeframe.parse(timeframe)
    _check_range(parsed, start_ms, end_ms, page_limit)
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")

    async def one_chunk(bounds: tuple[int, int]) -> list[pl.DataFrame]:
        pages: list[pl.DataFrame] = []
        since: int | None = bounds[0]
        for _ in range(MAX_PAGES):
            if since is None or since >= bounds[1]:
                break
            rows = await client.fetch_ohlcv(
                ccxt_symbol,
                str(parsed),
                since=since,
                limit=page_limit,
                params=_page_params(bounds[1], params),
            )
            pages.append(_to_frame(rows, ccxt_symbol))
            since = _next_since(rows, since, parsed)
        return pages

    chunk_pages = await asyncio.gather(
        *(
            one_chunk(bounds)
            for bounds in _chunks(parsed, start_ms, end_ms, page_limit, concurrency)
        )
    )
    now = (clock_ms or _wall_clock_ms)() if complete_only else None
    return _finish([page for pages in chunk_pages for page in pages], start_ms, end_ms, parsed, now)


def expected_bars(timeframe: str | Timeframe, start_ms: int, end_ms: int) -> int:
    """How many bars open in ``[start_ms, end_ms)`` if none is missing (fixed-length timeframes)."""
    parsed = Timeframe.parse(timeframe)
    if parsed.is_calendar or end_ms <= start_ms:
        return 0
    first = -(-start_ms // parsed.milliseconds) * parsed.milliseconds
    return max(0, -(-(end_ms - first) // parsed.milliseconds))


def _chunks(
    timeframe: Timeframe, start_ms: int, end_ms: int, page_limit: int, concurrency: int
) -> list[tuple[int, int]]:
    """Split ``[start_ms, end_ms)`` into up to ``concurrency`` contiguous ranges of whole pages."""
    page_ms = page_limit * timeframe.milliseconds
    pages = -(-(end_ms - start_ms) // page_ms)
    count = max(1, min(concurrency, pages))
    per_chunk = -(-pages // count) * page_ms
    bounds = []
    lower = start_ms
    while lower < end_ms:
        upper = min(end_ms, lower + per_chunk)
        bounds.append((lower, upper))
        lower = upper
    return bounds


def _to_frame(rows: Any, symbol: str) -> pl.DataFrame:
    if not isinstance(rows, list):
        raise DataError(
            f"fetch_ohlcv({symbol!r}) returned {type(rows).__name__}, expected a list of rows"
        )
    return rows_to_candle_frame(rows)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
