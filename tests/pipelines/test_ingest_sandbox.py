"""Ingestion end to end: real ccxt over HTTP to the loopback Binance sandbox, real Prefect runs."""

from __future__ import annotations

import time

import ccxt
import polars as pl
import pytest

from flows.ingest import ingest
from metaexpert.data import CandleStore
from tests.pipelines.conftest import sandbox_url

pytestmark = pytest.mark.network

FEB_START, FEB_END = "2018-02-01", "2018-03-01"


def recorded(shared_data, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pl.DataFrame:
    return CandleStore(shared_data, read_only=True).read(
        "binance", "spot", symbol, timeframe, start_ms, end_ms
    )


def test_ingest_with_sandbox_reproduces_recorded_month_of_1h_and_its_real_gap(
    prefect_harness, sandbox_1h, shared_data, tmp_path
):
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        FEB_START,
        FEB_END,
        str(tmp_path),
        url_override=sandbox_url(sandbox_1h),
        page_limit=100,
    )
    stored = CandleStore(tmp_path).read("binance", "spot", "BTCUSDT", "1h")
    assert stored.equals(
        recorded(shared_data, "BTCUSDT", "1h", summary["start_ms"], summary["end_ms"])
    )
    (series,) = summary["series"]
    assert (
        series["rows_added"],
        series["gaps_found"],
        series["gaps_repaired"],
        series["gaps_left"],
    ) == (639, 1, 0, 1)
    assert series["left"] == ["2018-02-08 01:00 UTC -> 2018-02-09 10:00 UTC (33 bar(s) missing)"]


def test_ingest_with_sandbox_1m_two_symbols_three_days_matches_recorded(
    prefect_harness, sandbox_1m, shared_data, tmp_path
):
    start, end = "2025-06-01", "2025-06-04"
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT", "ETHUSDT"],
        ["1m", "5m"],
        start,
        end,
        str(tmp_path),
        url_override=sandbox_url(sandbox_1m),
    )
    assert summary["rows_added"] == 2 * (3 * 1440 + 3 * 288)
    assert summary["gaps_found"] == 0
    store = CandleStore(tmp_path)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        stored = store.read("binance", "spot", symbol, "1m")
        assert stored.equals(
            recorded(shared_data, symbol, "1m", summary["start_ms"], summary["end_ms"])
        )
    # 5m bars are aggregated by the sandbox from 1m; they must match the recorded 5m file.
    five = store.read("binance", "spot", "BTCUSDT", "5m")
    reference = recorded(shared_data, "BTCUSDT", "5m", summary["start_ms"], summary["end_ms"])
    assert five.select("timestamp", "open", "high", "low", "close").equals(
        reference.select("timestamp", "open", "high", "low", "close")
    )


def test_ingest_with_sandbox_futures_market_uses_usdm_endpoints(
    prefect_harness, sandbox_1h, shared_data, tmp_path
):
    summary = ingest(
        "binance",
        "futures",
        ["BTCUSDT"],
        ["1h"],
        "2018-02-20",
        FEB_END,
        str(tmp_path),
        url_override=sandbox_url(sandbox_1h),
    )
    assert summary["rows_added"] == 9 * 24
    assert CandleStore(tmp_path).available()[0].market_type == "futures"


@pytest.mark.parametrize("kind", ["unavailable", "rate_limit"])  # 503/-1001 (OperationFailed), 429
def test_ingest_with_sandbox_transient_faults_retries_and_completes(
    prefect_harness, sandbox_1h, tmp_path, kind
):
    sandbox_1h.clear_faults()
    before = len(sandbox_1h.fault_history())
    sandbox_1h.inject({"kind": kind, "count": 2, "path": "klines"})
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        "2018-02-25",
        FEB_END,
        str(tmp_path),
        url_override=sandbox_url(sandbox_1h),
        retry_backoff_seconds=0.01,
    )
    assert summary["rows_added"] == 4 * 24
    assert len(sandbox_1h.fault_history()) - before == 2


def test_ingest_with_sandbox_unknown_symbol_fails_fast_and_writes_nothing(
    prefect_harness, sandbox_1h, tmp_path
):
    started = time.monotonic()
    with pytest.raises(ccxt.BadSymbol):
        ingest(
            "binance",
            "spot",
            ["SOLUSDT"],
            ["1h"],
            FEB_START,
            FEB_END,
            str(tmp_path),
            url_override=sandbox_url(sandbox_1h),
            retry_backoff_seconds=3600,
        )
    assert time.monotonic() - started < 1800  # a single retry would have waited an hour
    assert CandleStore(tmp_path).available() == []


def test_download_candles_async_with_async_ccxt_client_matches_recorded(sandbox_1h, shared_data):
    import asyncio

    import ccxt.async_support as ccxt_async

    from metaexpert.data import download_candles_async
    from tasks.exchange_client import redirect_client

    async def run() -> pl.DataFrame:
        client = ccxt_async.binance(
            {
                "enableRateLimit": False,
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                    "fetchMargins": False,
                },
            }
        )
        redirect_client(client, sandbox_url(sandbox_1h))
        try:
            return await download_candles_async(
                client,
                "BTC/USDT",
                "1h",
                1_519_171_200_000,
                1_519_862_400_000,
                page_limit=50,
                concurrency=2,
            )
        finally:
            await client.close()

    frame = asyncio.run(run())
    assert frame.height == 8 * 24
    assert frame.equals(
        recorded(shared_data, "BTCUSDT", "1h", 1_519_171_200_000, 1_519_862_400_000)
    )
