from __future__ import annotations

import polars as pl
import pytest

from metaexpert.core.errors import DataError
from metaexpert.data import CandleValidationError, validate_candles

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def good(rows: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [T0 + i * HOUR for i in range(rows)],
            "open": [100.0 + i for i in range(rows)],
            "high": [110.0 + i for i in range(rows)],
            "low": [90.0 + i for i in range(rows)],
            "close": [105.0 + i for i in range(rows)],
            "volume": [1.5] * rows,
        }
    )


def failure(frame: pl.DataFrame, timeframe: str = "1h") -> CandleValidationError:
    with pytest.raises(CandleValidationError) as caught:
        validate_candles(frame, timeframe, label="binance/spot BTCUSDT 1h")
    return caught.value


@pytest.mark.parametrize(
    ("name", "timeframe"),
    [("BTCUSDT-1h", "1h"), ("BTCUSDT-5m", "5m"), ("BTCUSDT-1m", "1m"), ("ETHUSDT-5m", "5m")],
)
def test_validate_candles_with_real_binance_files_returns_frame(shared_data, name, timeframe):
    frame = pl.read_parquet(shared_data / "binance" / "spot" / f"{name}.parquet")
    assert validate_candles(frame, timeframe) is frame


def test_validate_candles_with_high_below_close_names_check_row_and_utc_time():
    frame = good().with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(100.0).otherwise(pl.col("high")).alias("high")
    )
    error = failure(frame)
    text = str(error)
    assert "binance/spot BTCUSDT 1h" in text
    assert "high_at_least_open_and_close: 1 row(s) failed" in text
    assert "row 2 at 2024-01-01 02:00 UTC" in text
    assert isinstance(error, DataError)
    assert [f.check for f in error.report.failures] == ["high_at_least_open_and_close"]


def test_validate_candles_with_low_above_open_reports_low_check():
    frame = good().with_columns(pl.lit(101.5).alias("low"))
    error = failure(frame)
    checks = {f.check: f.failed_rows for f in error.report.failures}
    assert checks == {
        "low_at_most_open_and_close": 2
    }  # rows 0 and 1 open at 100 and 101, below 101.5


def test_validate_candles_with_duplicates_and_disorder_reports_both_checks():
    frame = pl.concat([good(), good().head(1)])
    checks = {f.check: f.failed_rows for f in failure(frame).report.failures}
    assert checks["field_uniqueness"] == 2
    assert checks["timestamps_strictly_increasing"] == 1


def test_validate_candles_with_off_grid_timestamp_reports_grid_check_for_timeframe():
    frame = good().with_columns(
        (
            pl.col("timestamp") + pl.when(pl.int_range(pl.len()) == 3).then(60_000).otherwise(0)
        ).alias("timestamp")
    )
    error = failure(frame)
    assert [f.check for f in error.report.failures] == ["timestamps_on_1h_grid"]
    assert "2024-01-01 03:01 UTC" in str(error)
    validate_candles(frame, "1m")  # the same frame is fine on the 1m grid


def test_validate_candles_with_nan_zero_price_and_negative_volume_reports_each_column():
    frame = good().with_columns(
        pl.Series("close", [105.0, float("nan"), 107.0, 108.0]),
        pl.Series("open", [100.0, 101.0, 102.0, 103.0]),
        pl.Series("volume", [1.0, 1.0, -2.0, 1.0]),
    )
    frame = frame.with_columns(pl.Series("low", [0.0, 91.0, 92.0, 93.0]))
    columns = {f.column for f in failure(frame).report.failures}
    assert {"close", "low", "volume"} <= columns


def test_validate_candles_with_missing_column_reports_layout_without_row_noise():
    error = failure(good().drop("volume"))
    assert len(error.report.failures) == 1
    assert "missing column(s) ['volume']" in str(error)


def test_validate_candles_with_wrong_dtype_and_extra_column_reports_layout():
    frame = good().with_columns(pl.col("open").cast(pl.Float32), pl.lit(1).alias("trades"))
    text = str(failure(frame))
    assert "Float32" in text and "trades" in text


def test_validate_candles_with_many_bad_rows_counts_all_and_shows_first_five():
    frame = good(50).with_columns(pl.lit(-1.0).alias("volume"))
    report = failure(frame).report
    (volume,) = [f for f in report.failures if f.column == "volume"]
    assert volume.failed_rows == 50
    assert len(volume.examples) == 5
    assert volume.examples[0].startswith("row 0 at 2024-01-01 00:00 UTC")


def test_validate_candles_with_non_dataframe_raises_data_error():
    with pytest.raises(DataError, match="expected a polars DataFrame"):
        validate_candles([1, 2, 3], "1h")  # type: ignore[arg-type]


def test_validate_candles_with_empty_frame_passes():
    empty = good().head(0)
    assert validate_candles(empty, "1h").height == 0


def test_validate_candles_with_monthly_grid_accepts_month_starts_only():
    months = [1_704_067_200_000, 1_706_745_600_000, 1_709_251_200_000]  # 2024-01/02/03-01
    frame = good(3).with_columns(pl.Series("timestamp", months))
    validate_candles(frame, "1M")
    shifted = frame.with_columns(pl.col("timestamp") + 86_400_000)
    assert [f.check for f in failure(shifted, "1M").report.failures] == ["timestamps_on_1M_grid"]


def test_candle_validation_error_with_pickle_round_trip_keeps_report():
    import pickle

    error = failure(good().with_columns(pl.lit(-1.0).alias("volume")))
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.report == error.report


def test_validate_candles_with_microsecond_timestamps_reports_unit_instead_of_crashing():
    frame = good().with_columns(pl.col("timestamp") * 1000)
    error = failure(
        frame
    )  # raised ValueError("year 56134 is out of range") while describing the rows
    assert [f.check for f in error.report.failures] == ["timestamps_in_epoch_milliseconds"]
    assert "microseconds or nanoseconds" in str(error) and "timestamp=1704067200000000" in str(
        error
    )


def test_validate_candles_with_naive_datetime_column_advises_utc():
    frame = good().with_columns(pl.from_epoch("timestamp", time_unit="ms"))
    assert "naive datetimes have no time zone" in str(failure(frame))


def test_checked_candles_with_aware_datetimes_and_int_prices_widens_losslessly():
    from metaexpert.data import checked_candles

    frame = good().with_columns(
        pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC"),
        pl.lit(2, dtype=pl.Int32).alias("volume"),
        pl.col("open").cast(pl.Float32),
    )
    assert checked_candles(frame, "1h").equals(good().with_columns(pl.lit(2.0).alias("volume")))


def test_checked_candles_with_empty_frame_and_allow_empty_false_reports_not_empty():
    from metaexpert.data import checked_candles

    with pytest.raises(CandleValidationError, match="not_empty"):
        checked_candles(good().head(0), "1h", allow_empty=False)
