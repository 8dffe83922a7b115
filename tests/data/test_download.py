from __future__ import annotations

import asyncio

import ccxt
import polars as pl
import pytest

from metaexpert.core.errors import ConfigurationError
from metaexpert.data import download_candles, download_candles_async

HOUR = 3_600_000


class RecordedExchange:
    """Answers fetch_ohlcv like Binance's klines endpoint (startTime/endTime inclusive, limit)
    from recorded candles, and records every call so tests can check the pagination."""

    def __init__(
        self, candles: pl.DataFrame, *, overlap: int = 0, error: Exception | None = None
    ) -> None:
        self.candles = candles
        self.calls: list[dict] = []
        self.overlap = overlap  # re-send the last N bars of the previous page, as some exchanges do
        self.error = error

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None, params=None):
        self.calls.append(
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "since": since,
                "limit": limit,
                "params": dict(params or {}),
            }
        )
        if self.error is not None:
            raise self.error
        until = (params or {}).get("until")
        start = since - self.overlap * HOUR
        rows = self.candles.filter(pl.col("timestamp") >= start)
        if until is not None:
            rows = rows.filter(pl.col("timestamp") <= until)
        return [list(row) for row in rows.head(limit).iter_rows()]


class AsyncRecordedExchange(RecordedExchange):
    async def fetch_ohlcv(self, *args, **kwargs):  # type: ignore[override]
        await asyncio.sleep(0)
        return RecordedExchange.fetch_ohlcv(self, *args, **kwargs)


@pytest.fixture
def year_2022(btc_1h):
    return btc_1h.filter(pl.col("timestamp").is_between(1_640_995_200_000, 1_672_531_200_000 - 1))


def test_download_candles_with_pages_reproduces_recorded_range_and_always_sends_until(year_2022):
    exchange = RecordedExchange(year_2022)
    start, end = year_2022["timestamp"][10], year_2022["timestamp"][2510]
    frame = download_candles(exchange, "BTC/USDT", "1h", start, end, page_limit=1000)
    assert frame.equals(year_2022.slice(10, 2500))
    assert [call["since"] for call in exchange.calls] == [
        start,
        start + 1000 * HOUR,
        start + 2000 * HOUR,
    ]
    assert all(
        call["params"]["until"] == end - 1 and call["limit"] == 1000 for call in exchange.calls
    )


def test_download_candles_with_overlapping_pages_deduplicates(year_2022):
    exchange = RecordedExchange(year_2022, overlap=3)
    start, end = year_2022["timestamp"][100], year_2022["timestamp"][400]
    frame = download_candles(exchange, "BTC/USDT", "1h", start, end, page_limit=50)
    assert frame.equals(year_2022.slice(100, 300))


def test_download_candles_with_bar_still_forming_drops_it(year_2022):
    exchange = RecordedExchange(year_2022)
    start = year_2022["timestamp"][0]
    now = start + 5 * HOUR + 1_000  # the 05:00 bar is still open
    frame = download_candles(
        exchange, "BTC/USDT", "1h", start, start + 10 * HOUR, clock_ms=lambda: now
    )
    assert frame["timestamp"].to_list() == [start + i * HOUR for i in range(5)]
    kept = download_candles(
        exchange,
        "BTC/USDT",
        "1h",
        start,
        start + 10 * HOUR,
        complete_only=False,
        clock_ms=lambda: now,
    )
    assert kept.height == 10


def test_download_candles_with_empty_history_returns_empty_frame_after_one_call(year_2022):
    exchange = RecordedExchange(year_2022.head(0))
    frame = download_candles(exchange, "BTC/USDT", "1h", 0, 10 * HOUR)
    assert frame.height == 0 and frame.columns == [
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]
    assert len(exchange.calls) == 1


def test_download_candles_with_ccxt_error_passes_it_up_unchanged(year_2022):
    error = ccxt.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}')
    with pytest.raises(ccxt.BadSymbol) as caught:
        download_candles(RecordedExchange(year_2022, error=error), "NOPE/USDT", "1h", 0, HOUR)
    assert caught.value is error


@pytest.mark.parametrize(("start", "end", "limit"), [(10, 10, 1000), (-5, 10, 1000), (0, HOUR, 0)])
def test_download_candles_with_bad_range_raises_configuration_error(start, end, limit):
    with pytest.raises(ConfigurationError):
        download_candles(
            RecordedExchange(pl.DataFrame()), "BTC/USDT", "1h", start, end, page_limit=limit
        )


def test_download_candles_async_with_pages_matches_sync_result(year_2022):
    start, end = year_2022["timestamp"][0], year_2022["timestamp"][1234]
    sync = download_candles(
        RecordedExchange(year_2022), "BTC/USDT", "1h", start, end, page_limit=500
    )
    result = asyncio.run(
        download_candles_async(
            AsyncRecordedExchange(year_2022), "BTC/USDT", "1h", start, end, page_limit=500
        )
    )
    assert result.equals(sync) and result.height == 1234


@pytest.mark.parametrize("concurrency", [2, 3, 50])
def test_download_candles_with_concurrency_returns_same_frame_as_sequential(year_2022, concurrency):
    start, end = year_2022["timestamp"][7], year_2022["timestamp"][2999]
    sequential = download_candles(
        RecordedExchange(year_2022), "BTC/USDT", "1h", start, end, page_limit=400
    )
    exchange = RecordedExchange(year_2022)
    parallel = download_candles(
        exchange, "BTC/USDT", "1h", start, end, page_limit=400, concurrency=concurrency
    )
    assert parallel.equals(sequential) and parallel.height == 2992
    assert all(call["params"]["until"] <= end - 1 for call in exchange.calls)
    assert len(exchange.calls) <= 8 + min(concurrency, 8)  # one extra empty page per chunk at most


def test_download_candles_async_with_concurrency_matches_sync_result(year_2022):
    start, end = year_2022["timestamp"][0], year_2022["timestamp"][3000]
    result = asyncio.run(
        download_candles_async(
            AsyncRecordedExchange(year_2022),
            "BTC/USDT",
            "1h",
            start,
            end,
            page_limit=500,
            concurrency=3,
        )
    )
    assert result.equals(year_2022.head(3000))
