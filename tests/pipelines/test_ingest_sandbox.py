"""Ingestion end to end: real ccxt over HTTP to the loopback Binance sandbox, real Prefect runs."""

from __future__ import annotations

import time

import ccxt
import polars as pl
import pytest

from flows.ingest import ingest
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.data import CandleStore
from metaexpert.data.funding import funding_path
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


def test_ingest_with_funding_stores_the_sandbox_funding_rates_beside_the_candles(
    prefect_harness, shared_data, tmp_path
):
    # Issue 18: funding rates were not ingested at all (only the recorded files had any).
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(
        data_dir=shared_data,
        timeframe="1h",
        spot_symbols=[],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        start_time_ms=parse_date_ms("2024-03-01"),
        tick_replay=False,
        funding_rate=0.0002,
    )
    with SandboxServer(config) as sandbox:
        sandbox.advance(50)  # two days and two hours: 6 funding times passed
        summary = ingest(
            "binance",
            "futures",
            ["BTCUSDT"],
            ["1h"],
            "2024-03-01",
            "2024-03-03",
            str(tmp_path),
            url_override=sandbox_url(sandbox),
            funding=True,
        )
        venue = [
            (r["time"], r["rate"])
            for r in sandbox.ledger()["funding_rates"]
            if parse_date_ms("2024-03-01") <= r["time"] < parse_date_ms("2024-03-03")
        ]
    assert len(venue) >= 5
    (entry,) = summary["funding"]
    assert entry == {"symbol": "BTCUSDT", "rates_fetched": len(venue), "rates_added": len(venue)}
    stored = pl.read_parquet(funding_path(tmp_path, "binance", "futures", "BTCUSDT"))
    assert list(zip(stored["timestamp"], stored["funding_rate"], strict=True)) == venue
    assert summary["rows_added"] == 48
    with pytest.raises(ConfigurationError, match="funding=True needs a perpetual"):
        ingest.fn(
            "binance",
            "spot",
            ["BTCUSDT"],
            ["1h"],
            "2024-03-01",
            "2024-03-03",
            str(tmp_path),
            funding=True,
        )
