"""Shared Prefect fixtures for pipeline tests.

One ``prefect_test_harness`` per session (starting it costs 10-15 s), with result storage in
a temporary folder (the harness does not isolate it), server telemetry off, and the flow
heartbeat switched off (it costs about 1 s per flow run). Later flows (evaluate, backtest,
optimize, compliance, archive) reuse ``prefect_harness``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest

from tests.notify.conftest import alert_inbox  # noqa: F401 - the loopback json:// endpoint, shared

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-results")
    previous = os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    try:
        with (
            temporary_settings(updates={PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(storage)}),
            prefect_test_harness(server_startup_timeout=120),
            temporary_settings(
                updates={
                    PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                    # tasks called on their own (retry tests) log outside a flow
                    PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore",
                }
            ),
        ):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_SERVER_ANALYTICS_ENABLED", None)
        else:
            os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = previous


@pytest.fixture
def prefect_database(tmp_path: Path) -> Iterator[str | None]:
    """A fresh PostgreSQL database for a real Prefect server (asyncpg URL), dropped afterwards;
    None (the server's own sqlite file) where PostgreSQL is not reachable, except in CI."""
    from tests.storage.conftest import POSTGRES_SERVER

    try:
        admin = psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("METAEXPERT_REQUIRE_POSTGRES") == "1":
            raise
        yield None
        return
    name = f"prefect_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "binance" / "spot").is_dir():
        pytest.skip(f"recorded market data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def btc_1h(shared_data: Path) -> pl.DataFrame:
    return pl.read_parquet(shared_data / "binance" / "spot" / "BTCUSDT-1h.parquet")


class RecordedExchange:
    """A duck-typed ccxt client answering ``fetch_ohlcv`` from recorded candles.

    ``failures`` is a list of exceptions raised by the first calls, in order, to exercise the
    retry policy; ``corrupt`` transforms every page before it is returned.
    """

    def __init__(
        self,
        candles: dict[str, pl.DataFrame],
        *,
        failures: list[Exception] | None = None,
        corrupt=None,
        hide_once: set[int] | None = None,
    ) -> None:
        self.candles = candles
        self.failures = list(failures or [])
        self.corrupt = corrupt
        self.hide_once = set(hide_once or ())  # bars missing from the first answer only
        self.calls = 0

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None, params=None):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        rows = self.candles[f"{symbol} {timeframe}"].filter(pl.col("timestamp") >= since)
        rows = rows.filter(pl.col("timestamp") <= params["until"]).head(limit)
        if self.corrupt is not None:
            rows = self.corrupt(rows)
        hidden = self.hide_once & set(rows["timestamp"].to_list())
        if hidden:
            self.hide_once -= hidden
            rows = rows.filter(~pl.col("timestamp").is_in(list(hidden)))
        return [list(row) for row in rows.iter_rows()]


@pytest.fixture
def recorded_exchange(btc_1h: pl.DataFrame):
    def build(**options) -> RecordedExchange:
        return RecordedExchange({"BTC/USDT 1h": btc_1h}, **options)

    return build


FEBRUARY_2018_END_MS = 1_519_862_400_000  # 2018-03-01 00:00 UTC


@pytest.fixture(scope="module")
def sandbox_1h(shared_data: Path):
    """A loopback Binance replaying the recorded 1h candles, its clock at 2018-03-01 00:00 UTC."""
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(
        data_dir=shared_data,
        timeframe="1h",
        spot_symbols=["BTCUSDT", "ETHUSDT"],
        futures_symbols=["BTCUSDT"],
        start_time_ms=FEBRUARY_2018_END_MS,
        tick_replay=False,
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def sandbox_1m(shared_data: Path):
    """A loopback Binance replaying the recorded 1m candles, its clock at 2025-06-04 00:00 UTC."""
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(
        data_dir=shared_data,
        timeframe="1m",
        spot_symbols=["BTCUSDT", "ETHUSDT"],
        futures_symbols=["BTCUSDT"],
        start_time_ms=1_748_995_200_000,
        tick_replay=False,
    )
    with SandboxServer(config) as server:
        yield server


def sandbox_url(server) -> str:
    return f"http://{server.host}:{server.port}"
