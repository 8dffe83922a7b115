"""The real facade behind the CLI: a generated expert backtested on recorded Binance candles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from metaexpert.cli.app import app
from metaexpert.cli.new import write_expert
from metaexpert.cli.options import DATA_DIR_ENVIRONMENT_VARIABLE, repository_root

DATA_DIR = Path(
    os.environ.get(DATA_DIR_ENVIRONMENT_VARIABLE) or repository_root().parent / "shared" / "data"
)
CANDLES = DATA_DIR / "binance" / "spot" / "BTCUSDT-1h.parquet"

pytestmark = pytest.mark.skipif(not CANDLES.is_file(), reason=f"no recorded candles at {CANDLES}")


@pytest.fixture
def generated_expert(tmp_path, monkeypatch):
    """A template expert in a temp folder (its logs land there too); logging stopped after."""
    monkeypatch.chdir(tmp_path)
    path = write_expert("tiny_cross", tmp_path / "experts")
    yield path
    from metaexpert.observability.logging import active_logging_handle

    handle = active_logging_handle()
    if handle is not None:
        handle.stop()


def test_backtest_with_generated_expert_on_real_candles_writes_reports(
    runner, generated_expert, tmp_path
):
    output = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "backtest",
            str(generated_expert),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-22",
            "--capital",
            "5000",
            "--data",
            str(DATA_DIR),
            "--output",
            str(output),
            "--param",
            "fast_period=5",
            "--param",
            "slow_period=20",
            "--timezone",
            "Europe/Berlin",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((output / "result.json").read_text())
    assert report["symbols"] == ["BTCUSDT"] and report["timeframe"] == "1h"
    assert report["initial_capital"] == 5000
    assert report["run"]["bars_processed"] == 22 * 24  # the end date is inclusive
    assert report["parameters"]["fast_period"] == 5
    assert report["closed_trades"], "an EMA 5/20 cross trades within three weeks of 2024"
    html = (output / "report.html").read_text()
    assert "Europe/Berlin" in html
    assert "Final equity" in result.stdout
    assert (tmp_path / "logs" / "expert.log").is_file()


def test_backtest_with_unknown_symbol_on_real_facade_exits_one_line(
    runner, generated_expert, tmp_path
):
    result = runner.invoke(
        app,
        [
            "backtest",
            str(generated_expert),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-03",
            "--data",
            str(DATA_DIR),
            "--symbol",
            "NOPEUSDT",
            "--no-progress",
            "--output",
            str(tmp_path / "never"),
        ],
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "no candles" in result.stderr and "(DataError)" in result.stderr
    assert not (tmp_path / "never").exists()


def test_backtest_with_start_before_history_exits_with_insufficient_history(
    runner, generated_expert
):
    result = runner.invoke(
        app,
        [
            "backtest",
            str(generated_expert),
            "--start",
            "2017-08-17",
            "--end",
            "2017-08-20",
            "--data",
            str(DATA_DIR),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1
    assert "(InsufficientHistoryError)" in result.stderr


@pytest.mark.slow
def test_demo_with_shared_data_backtests_the_example_year(runner, tmp_path, monkeypatch):
    from metaexpert.cli.demo import example_path

    if not example_path().is_file():
        pytest.skip(f"the example expert is not there yet: {example_path()}")
    monkeypatch.chdir(tmp_path)
    try:
        result = runner.invoke(
            app, ["demo", "--data", str(DATA_DIR), "--output", str(tmp_path / "demo")]
        )
    finally:
        from metaexpert.observability.logging import active_logging_handle

        handle = active_logging_handle()
        if handle is not None:
            handle.stop()
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "demo" / "result.json").read_text())
    assert report["start"]["utc"].startswith("2024-01-01")
    assert report["initial_capital"] == 10_000
    assert report["run"]["bars_processed"] > 8_000
    assert "open the report:" in result.stdout


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
@pytest.mark.parametrize("market_type", ["spot", "futures"])
def test_generated_expert_with_real_facade_imports_and_registers_handlers(
    tmp_path, exchange, market_type
):
    from metaexpert.cli.loader import load_expert
    from metaexpert.engine.handlers import EVENTS

    path = write_expert(
        f"gen_{exchange}_{market_type}", tmp_path, exchange=exchange, market_type=market_type
    )
    expert = load_expert(path).expert
    assert str(expert.config.exchange) == exchange
    assert str(expert.config.market_type) == market_type
    registered = set(expert.handlers.handlers)
    if expert.handlers.bar_handlers:
        registered.add("bar")
    if expert.handlers.timers:
        registered.add("timer")
    assert registered == set(EVENTS)
