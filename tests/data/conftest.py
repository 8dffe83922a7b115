"""Fixtures for candle-data tests: the recorded Binance data, read in place (never copied)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SPOT = SHARED_DATA / "binance" / "spot"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SPOT.is_dir():
        pytest.skip(f"recorded market data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def btc_1h(shared_data: Path) -> pl.DataFrame:
    return pl.read_parquet(shared_data / "binance" / "spot" / "BTCUSDT-1h.parquet")


@pytest.fixture(scope="session")
def btc_1m(shared_data: Path) -> pl.DataFrame:
    return pl.read_parquet(shared_data / "binance" / "spot" / "BTCUSDT-1m.parquet")


@pytest.fixture(scope="session")
def btc_5m(shared_data: Path) -> pl.DataFrame:
    return pl.read_parquet(shared_data / "binance" / "spot" / "BTCUSDT-5m.parquet")
