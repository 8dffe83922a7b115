"""``metaexpert data download`` (real ccxt against the loopback Binance sandbox), ``data check`` and ``report``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from metaexpert.cli.app import app
from metaexpert.data import CandleStore
from tests.cli.test_end_to_end import CANDLES, DATA_DIR

pytestmark = pytest.mark.skipif(not CANDLES.is_file(), reason=f"no recorded candles at {CANDLES}")

FEBRUARY_2018_END_MS = 1_519_862_400_000  # 2018-03-01 00:00 UTC


@pytest.fixture(scope="module")
def sandbox():
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(
        data_dir=DATA_DIR,
        timeframe="1h",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        start_time_ms=FEBRUARY_2018_END_MS,
        tick_replay=False,
    )
    with SandboxServer(config) as server:
        yield server


def _url(server) -> str:
    return f"http://{server.host}:{server.port}"


@pytest.mark.network
def test_data_download_with_sandbox_stores_recorded_month_and_reports_its_gap(
    runner, sandbox, tmp_path
):
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1h",
            "--start",
            "2018-02-01",
            "--end",
            "2018-02-28",
            "--data",
            str(tmp_path),
            "--base-url",
            _url(sandbox),
            "--page-limit",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    stored = CandleStore(tmp_path).read("binance", "spot", "BTCUSDT", "1h")
    recorded = CandleStore(DATA_DIR, read_only=True).read(
        "binance", "spot", "BTCUSDT", "1h", 1_517_443_200_000, FEBRUARY_2018_END_MS
    )
    assert stored.equals(recorded) and stored.height == 639
    assert "639 candles downloaded, 639 new" in result.output
    assert "2018-02-08 01:00 UTC -> 2018-02-09 10:00 UTC (33 bar(s) missing)" in result.output
    again = runner.invoke(
        app,
        [
            "data",
            "download",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1h",
            "--start",
            "2018-02-01",
            "--end",
            "2018-02-28",
            "--data",
            str(tmp_path),
            "--base-url",
            _url(sandbox),
            "--no-progress",
        ],
    )
    assert again.exit_code == 0 and "639 candles downloaded, 0 new" in again.output


@pytest.mark.network
def test_data_download_with_unknown_symbol_exits_one_and_writes_nothing(runner, sandbox, tmp_path):
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "--symbol",
            "SOLUSDT",
            "--timeframe",
            "1h",
            "--start",
            "2018-02-20",
            "--end",
            "2018-02-21",
            "--data",
            str(tmp_path),
            "--base-url",
            _url(sandbox),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1
    assert "download of binance spot SOLUSDT 1h failed: BadSymbol" in result.output
    assert not list(tmp_path.rglob("*.parquet"))


def _good(rows: int = 24) -> pl.DataFrame:
    start = 1_704_067_200_000
    return pl.DataFrame(
        {
            "timestamp": [start + i * 3_600_000 for i in range(rows)],
            "open": [100.0] * rows,
            "high": [101.0] * rows,
            "low": [99.0] * rows,
            "close": [100.5] * rows,
            "volume": [1.0] * rows,
        }
    )


def test_data_check_with_valid_store_reports_gaps_and_exits_zero(runner, tmp_path):
    store = CandleStore(tmp_path)
    store.write("binance", "spot", "BTCUSDT", "1h", _good().filter(pl.int_range(pl.len()) != 5))
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "binance/spot/BTCUSDT-1h" in result.output
    assert (
        "1 gap(s), largest 2024-01-01 05:00 UTC -> 2024-01-01 06:00 UTC (1 bar(s) missing)"
        in result.output
    )
    gaps_fail = runner.invoke(app, ["data", "check", str(tmp_path), "--fail-on-gaps"])
    assert gaps_fail.exit_code == 1 and "1 have gaps" in gaps_fail.output


def test_data_check_with_stamped_file_edited_afterwards_finds_the_bad_bar(runner, tmp_path):
    store = CandleStore(tmp_path)
    store.write("binance", "spot", "BTCUSDT", "1h", _good())
    store.write("binance", "spot", "ETHUSDT", "1h", _good())
    path = store.path("binance", "spot", "ETHUSDT", "1h")
    _good().with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise(pl.col("low")).alias("low")
    ).write_parquet(path)
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "greater_than(0) on column 'low': 1 row(s) failed" in result.output
    assert "1 of 2 series failed validation" in result.output


def test_data_check_with_long_format_csv_checks_each_symbol(runner, tmp_path):
    good = _good().with_columns(pl.lit("BTC/USDT").alias("symbol"))
    bad = _good().reverse().with_columns(pl.lit("ETH/USDT").alias("symbol"))
    path = tmp_path / "candles.csv"
    pl.concat([good, bad]).write_csv(path)
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 1
    assert "candles.csv BTCUSDT" in result.output and "candles.csv ETHUSDT" in result.output
    assert "timestamps_strictly_increasing" in result.output


def test_data_check_with_missing_path_exits_one(runner, tmp_path):
    result = runner.invoke(app, ["data", "check", str(tmp_path / "nothing.csv")])
    assert result.exit_code == 1 and "no such file or folder" in result.output


@pytest.fixture
def stored_result(runner, tmp_path, monkeypatch) -> Path:
    from metaexpert.cli.new import write_expert

    monkeypatch.chdir(tmp_path)
    expert = write_expert("tiny_cross", tmp_path / "experts")
    output = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "backtest",
            str(expert),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-22",
            "--data",
            str(DATA_DIR),
            "--output",
            str(output),
            "--no-progress",
            "--no-html",
        ],
    )
    assert result.exit_code == 0, result.output
    yield output / "result.json"
    from metaexpert.observability.logging import active_logging_handle

    handle = active_logging_handle()
    if handle is not None:
        handle.stop()


def test_report_with_stored_result_renders_html_with_its_trades(runner, stored_result):
    stored = json.loads(stored_result.read_text())
    assert stored["closed_trades"], "the stored run must have trades to render"
    target = stored_result.parent / "again.html"
    result = runner.invoke(
        app,
        [
            "report",
            str(stored_result),
            "--output",
            str(target),
            "--timezone",
            "Europe/Berlin",
            "--data",
            str(DATA_DIR),
        ],
    )
    assert result.exit_code == 0, result.output
    html = target.read_text()
    assert "Europe/Berlin" in html and stored["expert_name"] in html
    assert html.count("<tr") >= len(stored["closed_trades"])
    assert "BTCUSDT" in html and "candlestick" in html, "with --data the price chart is drawn"
    plain = runner.invoke(app, ["report", str(stored_result)])
    assert plain.exit_code == 0 and (stored_result.parent / "report.html").is_file()


def test_report_with_file_that_is_not_a_result_exits_one(runner, tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"hello": 1}')
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 1 and "is not a MetaExpert backtest result" in result.output
    path.write_text("{not json")
    assert "is not JSON" in runner.invoke(app, ["report", str(path)]).output


@pytest.mark.network
def test_data_download_with_sandbox_futures_writes_futures_folder(runner, sandbox, tmp_path):
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1h",
            "--start",
            "2018-02-20",
            "--end",
            "2018-02-21",
            "--market-type",
            "futures",
            "--data",
            str(tmp_path),
            "--base-url",
            _url(sandbox),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    (series,) = CandleStore(tmp_path).available()
    assert (series.market_type, series.rows) == ("futures", 48)


def test_data_check_with_unreadable_series_file_reports_it_and_exits_one(runner, tmp_path):
    CandleStore(tmp_path).write("binance", "spot", "BTCUSDT", "1h", _good())
    broken = tmp_path / "binance" / "spot" / "ETHUSDT-1h.parquet"
    broken.write_bytes(b"not parquet at all")
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert (
        "cannot read candle file" in result.output
        and "1 of 2 series failed validation" in result.output
    )


@pytest.fixture(scope="module")
def corrupt_sandbox(tmp_path_factory):
    """A loopback Binance whose recorded candles were corrupted: one bar of February 2018 has low = -1."""
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    root = tmp_path_factory.mktemp("corrupt")
    recorded = pl.read_parquet(CANDLES).filter(
        pl.col("timestamp").is_between(1_517_443_200_000, FEBRUARY_2018_END_MS - 1)
    )
    bad = recorded.with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(-1.0).otherwise(pl.col("low")).alias("low")
    )
    (root / "binance" / "spot").mkdir(parents=True)
    bad.write_parquet(root / "binance" / "spot" / "BTCUSDT-1h.parquet")
    config = SandboxConfig(
        data_dir=root,
        timeframe="1h",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        start_time_ms=FEBRUARY_2018_END_MS,
        tick_replay=False,
    )
    with SandboxServer(config) as server:
        yield server


@pytest.mark.network
def test_data_download_of_corrupt_exchange_candles_refuses_with_report_and_writes_nothing(
    runner, corrupt_sandbox, tmp_path
):
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1h",
            "--start",
            "2018-02-01",
            "--end",
            "2018-02-28",
            "--data",
            str(tmp_path),
            "--base-url",
            _url(corrupt_sandbox),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "binance/spot BTCUSDT 1h (incoming)" in result.output
    assert "greater_than(0) on column 'low': 1 row(s) failed" in result.output
    assert not list(tmp_path.rglob("*.parquet"))


@pytest.mark.network
def test_ingest_tasks_with_corrupt_exchange_candles_refuse_and_write_nothing(
    corrupt_sandbox, tmp_path
):
    from metaexpert.data import CandleValidationError
    from tasks.candles import fetch_candles, store_candles
    from tasks.exchange_client import make_exchange_client

    client = make_exchange_client("binance", url_override=_url(corrupt_sandbox))
    frame = fetch_candles.fn(
        client, "BTC/USDT", "1h", 1_517_443_200_000, FEBRUARY_2018_END_MS, page_limit=500
    )
    with pytest.raises(CandleValidationError, match=r"greater_than\(0\) on column 'low'"):
        store_candles.fn(str(tmp_path), "binance", "spot", "BTCUSDT", "1h", frame)
    assert not list(tmp_path.rglob("*.parquet"))
