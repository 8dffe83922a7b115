"""Malformed candles are refused with the validation report before any order, in every mode.

Each case is written as a raw Parquet file (as another tool would leave it) and then used
by a backtest with a database and a report folder configured, and written through the
ingestion path (``CandleStore.write`` and the ``store-candles`` Prefect task). Every case
must raise ``CandleValidationError`` naming the file or series and the failed check, and
leave no order, no database row, no report file and no candle file behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.data import CandleStore, CandleValidationError

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BARS = 48


def good(rows: int = BARS) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [T0 + i * HOUR for i in range(rows)],
            "open": [100.0 + i % 5 for i in range(rows)],
            "high": [106.0 + i % 5 for i in range(rows)],
            "low": [95.0 + i % 5 for i in range(rows)],
            "close": [101.0 + i % 5 for i in range(rows)],
            "volume": [10.0] * rows,
        }
    )


def _at(row: int, column: str, value: float) -> Callable[[], pl.DataFrame]:
    def build() -> pl.DataFrame:
        frame = good()
        return frame.with_columns(
            pl.when(pl.int_range(pl.len()) == row)
            .then(pl.lit(value))
            .otherwise(pl.col(column))
            .alias(column)
        )

    return build


def _duplicate() -> pl.DataFrame:
    frame = good()
    return pl.concat([frame.head(10), frame.slice(9)])  # row 9 twice, in order


def _unsorted() -> pl.DataFrame:
    frame = good()
    return pl.concat([frame.slice(20), frame.head(20)])


# case -> (raw frame, a check name the report must contain)
CASES: dict[str, tuple[Callable[[], pl.DataFrame], str]] = {
    "nan_close": (_at(5, "close", float("nan")), "prices_and_volume_finite"),
    "inf_high": (_at(5, "high", float("inf")), "prices_and_volume_finite"),
    "negative_low": (_at(30, "low", -1.0), "greater_than(0)"),
    "high_below_low": (lambda: _at(7, "high", 90.0)(), "high_at_least_open_and_close"),
    "duplicate_timestamps": (_duplicate, "field_uniqueness"),
    "unsorted_timestamps": (_unsorted, "timestamps_strictly_increasing"),
    "missing_column": (lambda: good().drop("volume"), "column_in_dataframe"),
    "wrong_dtype": (lambda: good().with_columns(pl.col("close").cast(pl.String)), "dtype"),
    "microsecond_timestamps": (
        lambda: good().with_columns(pl.col("timestamp") * 1000),
        "timestamps_in_epoch_milliseconds",
    ),
    "naive_timestamps": (
        lambda: good().with_columns(pl.from_epoch("timestamp", time_unit="ms")),
        "naive",
    ),
    "empty": (lambda: good().head(0), "not_empty"),
}


def _raw_store(root: Path, frame: pl.DataFrame) -> Path:
    path = root / "binance" / "spot" / "BTCUSDT-1h.parquet"
    path.parent.mkdir(parents=True)
    frame.write_parquet(path)
    return path


def _trading_expert(database: Path) -> tuple[MetaExpert, list[object]]:
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        log_to_file=False,
        log_to_console=False,
        storage_url=f"sqlite:///{database}",
    )

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1h", lookback_bars=0, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1h")
    def bar(ctx, bars):
        ctx.close() if ctx.position() is not None else ctx.buy()

    events: list[object] = []
    return expert, events


@pytest.mark.parametrize("case", sorted(CASES))
def test_backtest_with_malformed_candles_refuses_before_any_order_and_writes_nothing(
    tmp_path, monkeypatch, case
):
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    build, check = CASES[case]
    path = _raw_store(tmp_path / "store", build())
    database = tmp_path / "runs.sqlite"
    expert, events = _trading_expert(database)
    output = tmp_path / "report"
    with pytest.raises(CandleValidationError) as caught:
        expert.run(
            "backtest",
            backtest_start="2024-01-01",
            backtest_end="2024-01-02",
            data_dir=tmp_path / "store",
            output_dir=output,
            configure_logs=False,
            observers=[events.append],
        )
    text = str(caught.value)
    assert str(path) in text, text
    assert check in text, text
    assert events == [], "no engine event (order, fill) may happen"
    assert not output.exists(), "no report for a run that failed validation"
    assert not database.exists(), "no database (no run row) for a run that failed validation"
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("case", sorted(set(CASES) - {"empty"}))
def test_store_write_with_malformed_candles_refuses_and_writes_no_file(tmp_path, case):
    build, check = CASES[case]
    store = CandleStore(tmp_path / "store")
    with pytest.raises(CandleValidationError) as caught:
        store.write("binance", "spot", "BTCUSDT", "1h", build())
    assert "binance/spot BTCUSDT 1h" in str(caught.value) and check in str(caught.value)
    assert not list((tmp_path / "store").rglob("*.parquet")), "nothing may be written"


@pytest.mark.parametrize("case", sorted(set(CASES) - {"empty"}))
def test_store_write_with_malformed_candles_keeps_existing_file_unchanged(tmp_path, case):
    build, _ = CASES[case]
    store = CandleStore(tmp_path / "store")
    earlier = good(5).with_columns(pl.col("timestamp") - 10 * HOUR)
    store.write("binance", "spot", "BTCUSDT", "1h", earlier)
    path = store.path("binance", "spot", "BTCUSDT", "1h")
    before = path.read_bytes()
    with pytest.raises(CandleValidationError):
        store.write("binance", "spot", "BTCUSDT", "1h", build())
    assert path.read_bytes() == before


def test_store_write_with_empty_frame_writes_nothing(tmp_path):
    assert (
        CandleStore(tmp_path / "store").write("binance", "spot", "BTCUSDT", "1h", good().head(0))
        == 0
    )
    assert not list((tmp_path / "store").rglob("*.parquet"))


@pytest.mark.parametrize("case", ["negative_low", "unsorted_timestamps", "microsecond_timestamps"])
def test_store_candles_task_with_malformed_candles_refuses_and_writes_nothing(tmp_path, case):
    from tasks.candles import store_candles

    build, check = CASES[case]
    with pytest.raises(CandleValidationError, match=re.escape(check)):
        store_candles.fn(str(tmp_path / "store"), "binance", "spot", "BTCUSDT", "1h", build())
    assert not list((tmp_path / "store").rglob("*.parquet"))


def test_store_read_of_stamped_file_skips_validation_and_edited_file_is_checked_again(tmp_path):
    store = CandleStore(tmp_path / "store")
    store.write("binance", "spot", "BTCUSDT", "1h", good())
    path = store.path("binance", "spot", "BTCUSDT", "1h")
    assert "metaexpert.validation" in pl.read_parquet_metadata(path)
    assert store.read("binance", "spot", "BTCUSDT", "1h").height == BARS
    # Another tool rewrites the file with a bad bar (and without the stamp): it is validated again.
    _at(3, "low", -1.0)().write_parquet(path)
    with pytest.raises(CandleValidationError, match="greater_than"):
        store.read("binance", "spot", "BTCUSDT", "1h")


def test_store_read_with_validate_false_returns_bad_rows_for_quality_reports(tmp_path):
    path = _raw_store(tmp_path / "store", _at(3, "low", -1.0)())
    frame = CandleStore(tmp_path / "store", read_only=True).read(
        "binance", "spot", "BTCUSDT", "1h", validate=False
    )
    assert frame.height == BARS and frame["low"].min() == -1.0
    assert path.is_file()
