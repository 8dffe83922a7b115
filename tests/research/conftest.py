"""Synthetic candles with a known best strategy, in a temporary candle store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from metaexpert.data import CandleStore

HOUR_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC (a multiple of 48 hours since the epoch? no: phases use ts // 1h % 48)
PERIOD = 48
EXPERTS = Path(__file__).parent / "experts"


def sine_candles(bars: int, *, start_ms: int = START_MS) -> pl.DataFrame:
    """Close follows 100 + 10 sin(2 pi k / 48) with k = hour index since the epoch, so phase 36 is the trough."""
    stamps = start_ms + HOUR_MS * np.arange(bars, dtype=np.int64)
    phase = (stamps // HOUR_MS) % PERIOD
    close = 100.0 + 10.0 * np.sin(2 * math.pi * phase / PERIOD)
    previous = np.concatenate(([close[0]], close[:-1]))
    return pl.DataFrame(
        {
            "timestamp": stamps,
            "open": previous,
            "high": np.maximum(previous, close) + 0.05,
            "low": np.minimum(previous, close) - 0.05,
            "close": close,
            "volume": np.full(bars, 1_000.0),
        }
    )


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic-candles")
    CandleStore(root).write("binance", "spot", "BTCUSDT", "1h", sine_candles(PERIOD * 40))
    return root


@pytest.fixture
def cycle_expert_file() -> Path:
    return EXPERTS / "cycle_timer.py"


@pytest.fixture
def recorder_expert_file() -> Path:
    return EXPERTS / "bar_recorder.py"
