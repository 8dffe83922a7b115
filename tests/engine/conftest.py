"""Fixtures for engine and runner tests: temporary candle stores and quiet experts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
import pytest

from metaexpert.data import CandleStore

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def candle_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write hand-made candles to a temporary store; returns a writer giving the store root.

    The download cache is pointed into the temporary folder too, so nothing outside it is
    read or written.
    """
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "store"

    def write(
        rows: Sequence[tuple[int, float, float, float, float, float]],
        *,
        symbol: str = "BTCUSDT",
        timeframe: str = "1h",
    ) -> Path:
        frame = pl.DataFrame(
            rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
        ).with_columns(pl.col("timestamp").cast(pl.Int64), pl.exclude("timestamp").cast(pl.Float64))
        CandleStore(root).write("binance", "spot", symbol, timeframe, frame)
        return root

    return write


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "binance" / "spot" / "BTCUSDT-1h.parquet").is_file():
        pytest.skip(f"recorded market data not found at {SHARED_DATA}")
    return SHARED_DATA
