"""Candle-data speed: gap detection, validation, resampling, store I/O and sandbox ingestion.

Run: ``.venv/bin/python -m bench.bench_data`` (``--skip-ingest`` for the library part only,
``--no-flow`` to time the sandbox download without the Prefect flow).

The year of 1m candles (525,600 bars, 2025) is built from the real BTCUSDT 1m recording
(90 days) laid end to end, its prices rescaled at each seam so bars stay consistent, and
punched with the real Binance outages of 2019 (from the BTCUSDT 1h file) mapped to the same
day and hour of 2025, so gap detection has real gaps to find. Nothing is written into
the repository: the synthetic year goes to a temporary folder, which also serves as the
sandbox's data directory for the ingestion benchmark.

Targets: gap detection on the year < 50 ms; ingestion of the year from the sandbox < 60 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from metaexpert.core.timeframe import HOUR_MS, MINUTE_MS
from metaexpert.data import (
    CandleStore,
    download_candles,
    find_gaps,
    resample,
    validate_candles,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YEAR_START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
YEAR_MINUTES = 525_600
OUTAGE_YEAR_START_MS = 1_546_300_800_000  # 2019-01-01 00:00 UTC
GAP_TARGET_MS = 50.0
INGEST_TARGET_S = 60.0
CONCURRENCY = 4


def build_year(shared: Path) -> pl.DataFrame:
    """A year of 1m bars from the real recording, with the real 2019 outages punched in."""
    real = pl.read_parquet(shared / "binance" / "spot" / "BTCUSDT-1m.parquet")
    pieces, offset, scale = [], 0, 1.0
    while offset < YEAR_MINUTES:
        take = min(real.height, YEAR_MINUTES - offset)
        piece = real.head(take).with_columns(
            (pl.lit(YEAR_START_MS) + (pl.int_range(pl.len()) + offset) * MINUTE_MS).alias(
                "timestamp"
            ),
            # Two decimals, like Binance's BTCUSDT tick size: the sandbox serves prices as text.
            *[
                (pl.col(name) * scale).round(2).alias(name)
                for name in ("open", "high", "low", "close")
            ],
        )
        pieces.append(piece)
        # Next copy starts where this one closed, so the seam has no price jump.
        scale *= real["close"][take - 1] / real["open"][0]
        offset += take
    year = pl.concat(pieces)
    hourly = pl.read_parquet(shared / "binance" / "spot" / "BTCUSDT-1h.parquet")
    outages = [
        gap
        for gap in find_gaps(hourly, "1h")
        if OUTAGE_YEAR_START_MS <= gap.start_ms < OUTAGE_YEAR_START_MS + 365 * 24 * HOUR_MS
    ]
    shift = YEAR_START_MS - OUTAGE_YEAR_START_MS
    missing = pl.lit(False)
    for gap in outages:
        missing = missing | pl.col("timestamp").is_between(
            gap.start_ms + shift, gap.end_ms + shift - 1
        )
    return year.filter(~missing)


def timed(function: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time in milliseconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def bench_library(year: pl.DataFrame, folder: Path) -> None:
    print(f"synthetic year: {year.height:,} 1m bars ({YEAR_MINUTES - year.height:,} missing)")
    gap_ms, gaps = timed(lambda: find_gaps(year, "1m"), 21)
    verdict = "OK" if gap_ms < GAP_TARGET_MS else "SLOWER THAN TARGET"
    print(
        f"find_gaps, 1 year of 1m:        {gap_ms:8.1f} ms  ({len(gaps)} gaps; target < {GAP_TARGET_MS:.0f} ms: {verdict})"
    )
    validate_ms, _ = timed(lambda: validate_candles(year, "1m"), 5)
    print(f"validate_candles, 1 year of 1m: {validate_ms:8.1f} ms")
    resample_ms, hourly = timed(lambda: resample(year, "1m", "1h"), 5)
    print(
        f"resample 1m -> 1h:              {resample_ms:8.1f} ms  ({hourly.height:,} complete 1h bars)"
    )
    store = CandleStore(folder / "bench-store")
    started = time.perf_counter()
    store.write("binance", "spot", "BTCUSDT", "1m", year)
    print(f"store.write (new file):         {(time.perf_counter() - started) * 1000:8.1f} ms")
    started = time.perf_counter()
    added = store.write("binance", "spot", "BTCUSDT", "1m", year)
    print(
        f"store.write (same rows again):  {(time.perf_counter() - started) * 1000:8.1f} ms  ({added} added)"
    )
    read_ms, _ = timed(lambda: store.read("binance", "spot", "BTCUSDT", "1m"), 5)
    print(f"store.read (whole year):        {read_ms:8.1f} ms")
    month_ms, month = timed(
        lambda: store.read(
            "binance",
            "spot",
            "BTCUSDT",
            "1m",
            YEAR_START_MS + 180 * 24 * HOUR_MS,
            YEAR_START_MS + 211 * 24 * HOUR_MS,
        ),
        5,
    )
    print(f"store.read (one month):         {month_ms:8.1f} ms  ({month.height:,} rows)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_sandbox(data_dir: str, port: int, start_time_ms: int) -> None:
    from metaexpert.sandbox import SandboxConfig
    from metaexpert.sandbox.server import run_sandbox

    run_sandbox(
        config=SandboxConfig(
            data_dir=Path(data_dir),
            port=port,
            timeframe="1m",
            spot_symbols=["BTCUSDT"],
            futures_symbols=[],
            start_time_ms=start_time_ms,
            tick_replay=False,
        )
    )


@contextmanager
def sandbox_process(data_dir: Path, start_time_ms: int) -> Iterator[str]:
    """The sandbox in its own process, like a remote exchange (no GIL shared with the client)."""
    port = _free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_sandbox, args=(str(data_dir), port, start_time_ms), daemon=True
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v3/ping", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or not process.is_alive():
                    raise RuntimeError("the sandbox process did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.join(10)


def bench_ingest(year: pl.DataFrame, folder: Path, *, with_flow: bool) -> None:
    from tasks.exchange_client import make_exchange_client

    data_dir = folder / "sandbox-data"
    (data_dir / "binance" / "spot").mkdir(parents=True)
    year.write_parquet(data_dir / "binance" / "spot" / "BTCUSDT-1m.parquet")
    end_ms = YEAR_START_MS + YEAR_MINUTES * MINUTE_MS
    with sandbox_process(data_dir, end_ms - MINUTE_MS) as url:
        client = make_exchange_client("binance", url_override=url)
        for concurrency in (1, CONCURRENCY):
            started = time.perf_counter()
            frame = download_candles(
                client, "BTC/USDT", "1m", YEAR_START_MS, end_ms, concurrency=concurrency
            )
            seconds = time.perf_counter() - started
            same = frame.equals(year)
            print(
                f"download 1 year of 1m (library, 1000/page, {concurrency} thread(s)): {seconds:6.1f} s  "
                f"({frame.height:,} rows, {frame.height / seconds:,.0f} rows/s, identical to source: {same})"
            )
        if not with_flow:
            return
        import os

        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from flows.ingest import ingest

        # On a busy 2-core machine the temporary server can need more than the default 20 s.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            started = time.perf_counter()
            ingest(
                "binance",
                "spot",
                ["BTCUSDT"],
                ["1m"],
                YEAR_START_MS,
                YEAR_START_MS + HOUR_MS,
                str(folder / "warmup-store"),
                url_override=url,
            )
            print(
                f"Prefect temporary server + first small flow run: {time.perf_counter() - started:6.1f} s"
            )
            started = time.perf_counter()
            summary = ingest(
                "binance",
                "spot",
                ["BTCUSDT"],
                ["1m"],
                YEAR_START_MS,
                end_ms,
                str(folder / "ingest-store"),
                url_override=url,
                download_concurrency=CONCURRENCY,
            )
            seconds = time.perf_counter() - started
        verdict = "OK" if seconds < INGEST_TARGET_S else "SLOWER THAN TARGET"
        (series,) = summary["series"]
        print(
            f"ingest flow, 1 year of 1m from the sandbox ({CONCURRENCY} threads): {seconds:6.1f} s  (target < {INGEST_TARGET_S:.0f} s: "
            f"{verdict}; {series['rows_added']:,} rows stored, gaps found {series['gaps_found']}, "
            f"repaired {series['gaps_repaired']}, left {series['gaps_left']})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ingest", action="store_true", help="library benchmarks only")
    parser.add_argument(
        "--no-flow", action="store_true", help="time the sandbox download without Prefect"
    )
    args = parser.parse_args(argv)
    if not (SHARED / "binance" / "spot").is_dir():
        raise SystemExit(f"recorded market data not found at {SHARED}")
    year = build_year(SHARED)
    validate_candles(year, "1m")
    with tempfile.TemporaryDirectory(prefix="bench-data-") as temporary:
        folder = Path(temporary)
        bench_library(year, folder)
        if not args.skip_ingest:
            bench_ingest(year, folder, with_flow=not args.no_flow)


if __name__ == "__main__":
    main()
