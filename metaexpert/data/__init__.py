"""Candle data: the candle frame, validation, gaps and their repair, the Parquet store,
download through ccxt and resampling. Importable without Prefect.

    store = CandleStore("../shared/data", read_only=True)          # or any writable folder
    bars = store.read("binance", "spot", "BTCUSDT", "1h", start_ms, end_ms)
    validate_candles(bars, "1h")                                   # CandleValidationError with a report
    bars = checked_candles(user_frame, "1h", label="my.csv")       # widen losslessly, validate, then sort
    gaps = find_gaps(bars, "1h")                                   # [Gap(start_ms, end_ms, missing)]
    four_hours = resample(bars, "1h", "4h")                        # complete bars only
    fresh = download_candles(client, "BTC/USDT", "1h", start_ms, end_ms)
    result = repair_gaps(bars, "1h", fetch, symbol="BTC/USDT")     # re-fetch, never invent
    added = CandleStore("data/candles").write("binance", "spot", "BTCUSDT", "1h", result.frame)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metaexpert.data.download import download_candles, download_candles_async
    from metaexpert.data.frame import (
        CANDLE_COLUMNS,
        CANDLE_DTYPES,
        coerce_candles,
        concat_candles,
        empty_candles,
        rows_to_candle_frame,
        to_candle_frame,
    )
    from metaexpert.data.gaps import Gap, GapReport, find_gaps, gap_report
    from metaexpert.data.repair import CandleFetcher, RepairResult, repair_gaps
    from metaexpert.data.resample import resample
    from metaexpert.data.store import CandleStore, StoredSeries, normalize_symbol
    from metaexpert.data.validation import (
        CandleSchema,
        CandleValidationError,
        ValidationReport,
        candle_schema,
        checked_candles,
        validate_candles,
    )

# Imported on first use (PEP 562): a backtest reads candles through the store and must not pay
# for pandera and pandas (about a second), which only validation and downloads need.
_SOURCES: dict[str, str] = {
    "CANDLE_COLUMNS": "frame",
    "CANDLE_DTYPES": "frame",
    "CandleFetcher": "repair",
    "CandleSchema": "validation",
    "CandleStore": "store",
    "CandleValidationError": "validation",
    "Gap": "gaps",
    "GapReport": "gaps",
    "RepairResult": "repair",
    "StoredSeries": "store",
    "ValidationReport": "validation",
    "candle_schema": "validation",
    "checked_candles": "validation",
    "coerce_candles": "frame",
    "concat_candles": "frame",
    "download_candles": "download",
    "download_candles_async": "download",
    "empty_candles": "frame",
    "find_gaps": "gaps",
    "gap_report": "gaps",
    "normalize_symbol": "store",
    "repair_gaps": "repair",
    "resample": "resample",
    "rows_to_candle_frame": "frame",
    "to_candle_frame": "frame",
    "validate_candles": "validation",
}

__all__ = [
    "CANDLE_COLUMNS",
    "CANDLE_DTYPES",
    "CandleFetcher",
    "CandleSchema",
    "CandleStore",
    "CandleValidationError",
    "Gap",
    "GapReport",
    "RepairResult",
    "StoredSeries",
    "ValidationReport",
    "candle_schema",
    "checked_candles",
    "coerce_candles",
    "concat_candles",
    "download_candles",
    "download_candles_async",
    "empty_candles",
    "find_gaps",
    "gap_report",
    "normalize_symbol",
    "repair_gaps",
    "resample",
    "rows_to_candle_frame",
    "to_candle_frame",
    "validate_candles",
]


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'metaexpert.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"metaexpert.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
