"""``metaexpert backtest FILE --data X``: a store folder, a CSV file or a Parquet file of candles."""

from __future__ import annotations

import json

import polars as pl
import pytest

from metaexpert.cli.app import app
from metaexpert.cli.new import write_expert
from tests.cli.test_end_to_end import CANDLES, DATA_DIR

pytestmark = pytest.mark.skipif(not CANDLES.is_file(), reason=f"no recorded candles at {CANDLES}")

START_MS, END_MS = 1_703_980_800_000, 1_706_400_000_000  # 2023-12-31 .. 2024-01-28 UTC


@pytest.fixture
def generated_expert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_expert("tiny_cross", tmp_path / "experts")
    yield path
    from metaexpert.observability.logging import active_logging_handle

    handle = active_logging_handle()
    if handle is not None:
        handle.stop()


def _backtest(runner, expert, data, output):
    return runner.invoke(
        app,
        [
            "backtest",
            str(expert),
            "--start",
            "2024-01-08",
            "--end",
            "2024-01-22",
            "--data",
            str(data),
            "--output",
            str(output),
            "--no-progress",
            "--no-html",
        ],
    )


def _trades(output) -> list:
    return json.loads((output / "result.json").read_text())["closed_trades"]


def test_backtest_with_csv_and_parquet_data_files_trades_as_store_folder(
    runner, generated_expert, tmp_path
):
    frame = pl.read_parquet(CANDLES).filter(pl.col("timestamp").is_between(START_MS, END_MS))
    csv, parquet = tmp_path / "btc.csv", tmp_path / "btc.parquet"
    frame.write_csv(csv)
    frame.with_columns(pl.lit("BTC/USDT").alias("symbol")).write_parquet(parquet)  # long format
    outcomes = {}
    for name, data in (("store", DATA_DIR), ("csv", csv), ("parquet", parquet)):
        result = _backtest(runner, generated_expert, data, tmp_path / name)
        assert result.exit_code == 0, result.output
        outcomes[name] = _trades(tmp_path / name)
    assert outcomes["store"], "the reference run must trade"
    assert outcomes["csv"] == outcomes["store"] == outcomes["parquet"]


def test_backtest_with_bad_csv_exits_one_with_the_validation_report_and_writes_nothing(
    runner, generated_expert, tmp_path
):
    frame = pl.read_parquet(CANDLES).filter(pl.col("timestamp").is_between(START_MS, END_MS))
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 200).then(-1.0).otherwise(pl.col("low")).alias("low")
    )
    csv = tmp_path / "bad.csv"
    bad.write_csv(csv)
    result = _backtest(runner, generated_expert, csv, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "greater_than(0) on column 'low'" in result.output and "bad.csv" in result.output
    assert not (tmp_path / "out").exists()


def test_backtest_with_data_file_of_other_type_exits_two(runner, generated_expert, tmp_path):
    path = tmp_path / "candles.json"
    path.write_text("[]")
    result = _backtest(runner, generated_expert, path, tmp_path / "out")
    assert result.exit_code == 2 and "neither a .csv nor a .parquet" in result.output
