from __future__ import annotations

import polars as pl
import pytest

from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.data import CandleStore, CandleValidationError


@pytest.fixture
def store(tmp_path) -> CandleStore:
    return CandleStore(tmp_path / "candles")


def test_candle_store_with_shared_folder_reads_layout_and_lists_six_series(shared_data):
    store = CandleStore(shared_data, read_only=True)
    series = store.available()
    assert {(s.symbol, s.timeframe) for s in series} == {
        (sym, tf) for sym in ("BTCUSDT", "ETHUSDT") for tf in ("1h", "5m", "1m")
    }
    btc = next(s for s in series if s.symbol == "BTCUSDT" and s.timeframe == "1h")
    assert (btc.exchange, btc.market_type, btc.rows) == ("binance", "spot", 74_464)
    assert btc.first_ms == 1_502_942_400_000


def test_candle_store_read_with_bounds_returns_half_open_range(shared_data, btc_5m):
    store = CandleStore(shared_data, read_only=True)
    start, end = btc_5m["timestamp"][1000], btc_5m["timestamp"][1500]
    frame = store.read("binance", "spot", "BTC/USDT", "5m", start, end)
    assert frame.equals(btc_5m.slice(1000, 500))


def test_candle_store_read_with_unknown_symbol_lists_what_the_store_has(shared_data):
    store = CandleStore(shared_data, read_only=True)
    with pytest.raises(DataError, match="it has for binance/spot: BTCUSDT-1h, BTCUSDT-1m"):
        store.read("binance", "spot", "SOLUSDT", "1h")
    with pytest.raises(DataError, match="nothing for bybit/spot"):
        store.read("bybit", "spot", "BTCUSDT", "1h")


def test_candle_store_write_with_read_only_store_refuses(shared_data, btc_1h):
    with pytest.raises(DataError, match="read-only"):
        CandleStore(shared_data, read_only=True).write(
            "binance", "spot", "BTCUSDT", "1h", btc_1h.head(2)
        )


def test_candle_store_write_twice_with_same_frame_adds_rows_once_and_keeps_file(store, btc_1h):
    frame = btc_1h.head(500)
    assert store.write("binance", "spot", "BTCUSDT", "1h", frame) == 500
    path = store.path("binance", "spot", "BTCUSDT", "1h")
    first = path.stat().st_mtime_ns
    assert store.write("binance", "spot", "BTCUSDT", "1h", frame) == 0
    assert path.stat().st_mtime_ns == first
    assert store.read("binance", "spot", "BTCUSDT", "1h").equals(frame)
    assert [p.name for p in path.parent.iterdir() if p.suffix != ".lock"] == ["BTCUSDT-1h.parquet"]


def test_candle_store_write_with_overlap_merges_by_timestamp_and_counts_new_rows(store, btc_1h):
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.slice(0, 300))
    corrected = btc_1h.slice(200, 300).with_columns(pl.col("volume") + 1.0)
    assert store.write("binance", "spot", "BTCUSDT", "1h", corrected) == 200
    stored = store.read("binance", "spot", "BTCUSDT", "1h")
    assert stored.height == 500
    assert stored.slice(0, 200).equals(btc_1h.slice(0, 200))
    assert stored.slice(200, 300)["volume"].to_list() == corrected["volume"].to_list()


def test_candle_store_write_with_corrupted_frame_raises_and_leaves_file_untouched(store, btc_1h):
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.head(10))
    before = store.path("binance", "spot", "BTCUSDT", "1h").read_bytes()
    bad = btc_1h.slice(10, 5).with_columns((pl.col("low") * 0 - 1).alias("low"))
    with pytest.raises(CandleValidationError, match="greater_than"):
        store.write("binance", "spot", "BTCUSDT", "1h", bad)
    assert store.path("binance", "spot", "BTCUSDT", "1h").read_bytes() == before


def test_candle_store_write_with_frame_off_the_series_grid_is_rejected(store, btc_1m):
    with pytest.raises(CandleValidationError, match="timestamps_on_1h_grid"):
        store.write("binance", "spot", "BTCUSDT", "1h", btc_1m.head(120))
    assert not store.exists("binance", "spot", "BTCUSDT", "1h")


@pytest.mark.parametrize(
    ("exchange", "symbol"),
    [("../etc", "BTCUSDT"), ("binance", "../../x"), ("binance", "BTC/USDT:USDT"), ("", "BTCUSDT")],
)
def test_candle_store_path_with_unsafe_names_raises_configuration_error(store, exchange, symbol):
    with pytest.raises(ConfigurationError):
        store.path(exchange, "spot", symbol, "1h")


def test_candle_store_available_with_filters_and_written_series(store, btc_1h, btc_5m):
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.head(24))
    store.write("binance", "futures", "BTCUSDT", "5m", btc_5m.head(12))
    assert [(s.market_type, s.timeframe, s.rows) for s in store.available()] == [
        ("futures", "5m", 12),
        ("spot", "1h", 24),
    ]
    assert [s.market_type for s in store.available("binance", "futures")] == ["futures"]
    assert store.available("okx") == []
