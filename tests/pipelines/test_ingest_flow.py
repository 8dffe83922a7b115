from __future__ import annotations

import ccxt
import polars as pl
import pytest
from prefect.tasks import exponential_backoff

from flows.ingest import IngestionRejectedError, ingest
from metaexpert.core.errors import ConfigurationError
from metaexpert.data import CandleStore, CandleValidationError
from tasks.candles import fetch_candles

FEB_2018 = ("2018-02-01", "2018-03-01")  # contains the real 33-hour Binance outage of 2018-02-08
START_MS, END_MS = 1_517_443_200_000, 1_519_862_400_000


@pytest.fixture
def store_root(tmp_path) -> str:
    return str(tmp_path / "store")


def test_ingest_with_recorded_exchange_stores_the_range_and_reports_the_real_gap(
    prefect_harness, recorded_exchange, btc_1h, store_root
):
    exchange = recorded_exchange()
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        *FEB_2018,
        store_root,
        client=exchange,
        page_limit=200,
    )
    expected = btc_1h.filter(pl.col("timestamp").is_between(START_MS, END_MS - 1))
    stored = CandleStore(store_root).read("binance", "spot", "BTCUSDT", "1h")
    assert stored.equals(expected)
    (series,) = summary["series"]
    assert series["rows_added"] == expected.height == 639
    assert (series["gaps_found"], series["gaps_repaired"], series["gaps_left"]) == (1, 0, 1)
    assert series["bars_missing_left"] == 33
    assert series["left"] == ["2018-02-08 01:00 UTC -> 2018-02-09 10:00 UTC (33 bar(s) missing)"]
    # Running again changes nothing: ingestion is idempotent.
    again = ingest(
        "binance", "spot", ["BTCUSDT"], ["1h"], *FEB_2018, store_root, client=recorded_exchange()
    )
    assert again["rows_added"] == 0


def test_ingest_with_transient_hole_in_first_answer_repairs_it_from_the_exchange(
    prefect_harness, recorded_exchange, btc_1h, store_root
):
    hidden = {START_MS + 5 * 3_600_000, START_MS + 6 * 3_600_000, START_MS + 300 * 3_600_000}
    summary = ingest(
        "binance",
        "spot",
        ["BTCUSDT"],
        ["1h"],
        *FEB_2018,
        store_root,
        client=recorded_exchange(hide_once=hidden),
    )
    (series,) = summary["series"]
    assert (series["gaps_found"], series["gaps_repaired"], series["gaps_left"]) == (
        3,
        2,
        1,
    )  # the real outage stays
    stored = CandleStore(store_root).read("binance", "spot", "BTCUSDT", "1h")
    assert stored.equals(btc_1h.filter(pl.col("timestamp").is_between(START_MS, END_MS - 1)))


def test_ingest_with_corrupted_frame_rejects_with_pandera_report_and_writes_nothing(
    prefect_harness, recorded_exchange, store_root
):
    def corrupt(rows: pl.DataFrame) -> pl.DataFrame:
        return rows.with_columns(
            pl.when(pl.col("timestamp") == 1_517_472_000_000)  # 2018-02-01 08:00
            .then(pl.col("low") * 0.5)
            .otherwise(pl.col("high"))
            .alias("high")
        )

    with pytest.raises(CandleValidationError) as caught:
        ingest(
            "binance",
            "spot",
            ["BTCUSDT"],
            ["1h"],
            *FEB_2018,
            store_root,
            client=recorded_exchange(corrupt=corrupt),
        )
    assert isinstance(caught.value, IngestionRejectedError)
    text = str(caught.value)
    assert "nothing written" in text
    assert "high_at_least_open_and_close: 1 row(s) failed" in text
    assert "2018-02-01 08:00 UTC" in text
    assert CandleStore(store_root).available() == []


def test_fetch_candles_task_with_recoverable_errors_retries_then_succeeds(
    prefect_harness, recorded_exchange
):
    exchange = recorded_exchange(
        failures=[ccxt.OperationFailed('{"code":-1001}'), ccxt.RequestTimeout("t")]
    )
    fast = fetch_candles.with_options(
        retry_delay_seconds=exponential_backoff(backoff_factor=0.01), retry_jitter_factor=0
    )
    frame = fast(exchange, "BTC/USDT", "1h", START_MS, START_MS + 10 * 3_600_000)
    assert frame.height == 10
    assert exchange.calls == 3


def test_fetch_candles_task_with_bad_symbol_fails_fast_without_retry(
    prefect_harness, recorded_exchange
):
    exchange = recorded_exchange(failures=[ccxt.BadSymbol("-1121 Invalid symbol")])
    fast = fetch_candles.with_options(retry_delay_seconds=0)
    with pytest.raises(ccxt.BadSymbol):
        fast(exchange, "BTC/USDT", "1h", START_MS, START_MS + 3_600_000)
    assert exchange.calls == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((["BTCUSDT"], ["1h"], "2024-02-01", "2024-01-01"), "must be after start"),
        (([], ["1h"], "2024-01-01", "2024-02-01"), "at least one symbol"),
        ((["BTCUSDT"], ["1x"], "2024-01-01", "2024-02-01"), "invalid timeframe"),
        ((["BTCUSDT"], ["1h"], "yesterday", "2024-02-01"), "invalid date"),
    ],
)
def test_ingest_with_bad_parameters_raises_configuration_error_before_any_request(
    arguments, message, store_root
):
    with pytest.raises(ConfigurationError, match=message):
        ingest.fn("binance", "spot", *arguments, store_root)


def test_ingestion_rejected_error_with_pickle_round_trip_keeps_every_report():
    import pickle

    from metaexpert.data.validation import CheckFailure, ValidationReport

    reports = [
        ValidationReport(
            "binance/spot BTCUSDT 1h", 10, (CheckFailure("high_at_least_open_and_close", None, 1),)
        ),
        ValidationReport(
            "binance/spot ETHUSDT 1h", 10, (CheckFailure("greater_than(0)", "low", 2),)
        ),
    ]
    copy = pickle.loads(pickle.dumps(IngestionRejectedError(reports)))
    assert copy.reports == reports and "ETHUSDT" in str(copy)
