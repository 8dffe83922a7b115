"""Backtests on a user's own candles: frames (polars, pandas), dicts, CSV and Parquet files, store folders.

Each input is cut from the recorded Binance data (read in place) and must give exactly the
trades of the same candles read from a store folder; a bad input is refused with the
validation report before any order.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.backtest.data_source import FrameCandleSource, candle_source_for
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.data import CandleStore, CandleValidationError

START_MS = 1_706_745_600_000  # 2024-02-01 00:00 UTC
END_MS = 1_707_004_800_000  # 2024-02-04 00:00 UTC
HOUR = 3_600_000


def _slice(frame: pl.DataFrame, lookback_hours: int = 30) -> pl.DataFrame:
    return frame.filter(
        pl.col("timestamp").is_between(START_MS - lookback_hours * HOUR, END_MS - 1)
    )


@pytest.fixture(scope="module")
def btc(shared_data) -> pl.DataFrame:
    return _slice(pl.read_parquet(shared_data / "binance" / "spot" / "BTCUSDT-1h.parquet"))


@pytest.fixture(scope="module")
def eth(shared_data) -> pl.DataFrame:
    return _slice(pl.read_parquet(shared_data / "binance" / "spot" / "ETHUSDT-1h.parquet"))


def _expert(symbols: str | list[str] = "BTCUSDT") -> MetaExpert:
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )

    @expert.on_init(
        symbol=symbols, timeframe="1h", lookback_bars=20, size_type="fixed_quote", size_value=100.0
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1h")
    def bar(ctx, bars):
        if bars.close[-1] > bars.sma(10):
            if ctx.position(bars.symbol) is None:
                ctx.buy(symbol=bars.symbol)
        elif ctx.position(bars.symbol) is not None:
            ctx.close(bars.symbol)

    return expert


def _run(expert: MetaExpert, **options):
    return expert.run(
        "backtest",
        backtest_start="2024-02-01",
        backtest_end="2024-02-03",
        report=False,
        configure_logs=False,
        **options,
    )


def _trades(result) -> list[tuple]:
    return [(fill.symbol, fill.side, fill.timestamp, round(fill.price, 6)) for fill in result.fills]


@pytest.fixture(scope="module")
def reference(btc, tmp_path_factory) -> list[tuple]:
    root = tmp_path_factory.mktemp("store")
    CandleStore(root).write("binance", "spot", "BTCUSDT", "1h", btc)
    result = _run(_expert(), data_dir=root)
    assert len(result.fills) >= 4, (
        "the reference run must trade for the comparison to mean anything"
    )
    return _trades(result)


def test_run_with_polars_frame_trades_as_store_folder(btc, reference):
    assert _trades(_run(_expert(), data=btc)) == reference


def test_run_with_polars_lazyframe_and_extra_columns_trades_as_store_folder(btc, reference):
    frame = btc.with_columns(pl.lit(7).alias("trades")).lazy()
    assert _trades(_run(_expert(), data=frame)) == reference


def test_run_with_pandas_frame_on_utc_datetime_index_trades_as_store_folder(btc, reference):
    pandas = pytest.importorskip("pandas")
    frame = btc.to_pandas()
    frame.index = pandas.to_datetime(frame.pop("timestamp"), unit="ms", utc=True)
    frame.columns = [
        name.capitalize() for name in frame.columns
    ]  # "Open", "High" ... as many sources write
    assert _trades(_run(_expert(), data=frame)) == reference


def test_run_with_csv_file_trades_as_store_folder(btc, reference, tmp_path):
    path = tmp_path / "btc.csv"
    btc.write_csv(path)
    assert _trades(_run(_expert(), data=path)) == reference


def test_run_with_csv_file_of_iso_utc_times_trades_as_store_folder(btc, reference, tmp_path):
    path = tmp_path / "btc-iso.csv"
    btc.with_columns(
        pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC")
    ).write_csv(path)
    assert _trades(_run(_expert(), data=str(path))) == reference


def test_run_with_finer_frame_resamples_to_the_expert_timeframe(shared_data, reference):
    five = _slice(pl.read_parquet(shared_data / "binance" / "spot" / "BTCUSDT-5m.parquet"))
    result = _run(_expert(), data=five)
    assert _trades(result) == reference
    assert "5m resampled to 1h" in result.parameters["data_source"]["BTCUSDT"]


def test_run_with_long_format_parquet_of_two_symbols_trades_both(btc, eth, tmp_path):
    long = pl.concat(
        [
            btc.with_columns(pl.lit("BTC/USDT").alias("symbol")),
            eth.with_columns(pl.lit("ETH/USDT").alias("symbol")),
        ]
    )
    path = tmp_path / "long.parquet"
    long.write_parquet(path)
    from_file = _run(_expert(["BTCUSDT", "ETHUSDT"]), data=path)
    from_dict = _run(_expert(["BTCUSDT", "ETHUSDT"]), data={"BTCUSDT": btc, "ETH/USDT": eth})
    assert {fill.symbol for fill in from_file.fills} == {"BTCUSDT", "ETHUSDT"}
    assert _trades(from_file) == _trades(from_dict)


def test_run_with_store_folder_as_data_trades_as_data_dir(btc, reference, tmp_path):
    CandleStore(tmp_path / "store").write("binance", "spot", "BTCUSDT", "1h", btc)
    assert _trades(_run(_expert(), data=tmp_path / "store")) == reference


def test_run_with_frame_with_negative_low_refuses_before_any_order(btc, tmp_path):
    bad = btc.with_columns(
        pl.when(pl.int_range(pl.len()) == 40).then(-1.0).otherwise(pl.col("low")).alias("low")
    )
    events: list[object] = []
    with pytest.raises(CandleValidationError) as caught:
        _run(_expert(), data=bad, observers=[events.append], output_dir=tmp_path / "out")
    assert "data frame (BTCUSDT)" in str(caught.value) and "greater_than(0) on column 'low'" in str(
        caught.value
    )
    assert events == [] and not (tmp_path / "out").exists()


def test_run_with_pandas_naive_datetimes_refuses_with_time_zone_advice(btc):
    pytest.importorskip("pandas")
    frame = btc.with_columns(pl.from_epoch("timestamp", time_unit="ms")).to_pandas()
    with pytest.raises(CandleValidationError, match="naive datetimes have no time zone"):
        _run(_expert(), data=frame)


def test_run_with_unsorted_frame_refuses_instead_of_sorting(btc):
    with pytest.raises(CandleValidationError, match="timestamps_strictly_increasing"):
        _run(_expert(), data=btc.reverse())


def test_candle_source_with_one_unnamed_frame_for_two_symbols_names_the_fix(btc):
    with pytest.raises(ConfigurationError, match="add a 'symbol' column or pass a dict"):
        _run(_expert(["BTCUSDT", "ETHUSDT"]), data=btc)


def test_candle_source_with_dict_missing_a_symbol_lists_what_it_holds(btc):
    with pytest.raises(DataError, match="no candles for ETHUSDT; it holds BTCUSDT"):
        _run(_expert(["BTCUSDT", "ETHUSDT"]), data={"BTCUSDT": btc})


def test_candle_source_with_coarser_frame_than_expert_needs_refuses(btc):
    daily = pl.DataFrame(
        {
            "timestamp": [START_MS + i * 86_400_000 for i in range(5)],
            "open": [1.0] * 5,
            "high": [2.0] * 5,
            "low": [0.5] * 5,
            "close": [1.5] * 5,
            "volume": [1.0] * 5,
        }
    )
    source = FrameCandleSource({None: daily}, label="daily")
    with pytest.raises(
        ConfigurationError, match="the candles are 1d bars; the expert needs 1h bars"
    ):
        source.load("binance", "spot", "BTCUSDT", "1h", START_MS, END_MS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (42, "got int"),
        (Path("/nonexistent/candles.csv"), "no such file or folder"),
        ({5: None}, "dict keys must be symbols"),
    ],
)
def test_candle_source_for_with_unusable_data_raises_configuration_error(data, message):
    with pytest.raises(ConfigurationError, match=message):
        candle_source_for(data)


def test_candle_source_for_with_other_file_type_names_the_accepted_ones(tmp_path):
    path = tmp_path / "candles.json"
    path.write_text("[]")
    with pytest.raises(ConfigurationError, match="expected a .parquet or .csv file"):
        candle_source_for(path)


def test_run_with_data_in_paper_mode_raises_configuration_error(btc):
    with pytest.raises(
        ConfigurationError,
        match=r"paper.*unknown setting\(s\) \[.data.\] \(data apply to another mode\)",
    ):
        _expert().run("paper", data=btc, configure_logs=False)
