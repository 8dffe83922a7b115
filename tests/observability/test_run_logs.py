"""What a run writes to its logs: fills and round trips in trades.log, fatal errors in the
error log, one line per repeated risk block, and log lines above a live progress bar.

Before: nothing logged at the TRADE level (trades.log stayed empty), a fatal error reached
only standard error, ``make demo`` printed 22 INFO/WARNING lines about weekend blocks (some
after the metrics table, one glued onto the progress bar).
"""

from __future__ import annotations

import io

import polars as pl
import pytest
from rich.console import Console
from rich.progress import Progress

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.data import CandleStore
from metaexpert.observability.logging import (
    LoggingConfig,
    active_logging_handle,
    configure_logging,
    console_logs_to,
    get_logger,
    log_fatal,
)

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")  # a Monday


@pytest.fixture(autouse=True)
def _stop_logging():
    yield
    handle = active_logging_handle()
    if handle is not None:
        handle.stop()


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    rows = [
        (START + i * HOUR, 100.0 + i % 7, 108.0, 99.0, 100.0 + (i * 3) % 7, 10.0)
        for i in range(24 * 7)
    ]
    frame = pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )
    frame = frame.with_columns(
        pl.col("timestamp").cast(pl.Int64), pl.exclude("timestamp").cast(pl.Float64)
    )
    CandleStore(tmp_path / "store").write("binance", "spot", "BTCUSDT", "1h", frame)
    return tmp_path / "store"


def _flip_expert(log_dir, **init) -> MetaExpert:
    """Buys when flat and sells when long: a fill on every bar, a round trip every two."""
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_console=False, log_dir=str(log_dir)
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1h",
        lookback_bars=0,
        size_type="fixed_quote",
        size_value=100,
        **init,
    )
    def init(ctx):
        pass

    @expert.on_bar
    def bar(ctx, bars):
        if ctx.positions():
            ctx.close()
        else:
            ctx.buy()

    return expert


def _run(expert, store, end="2024-01-07"):
    result = expert.run(
        "backtest", backtest_start="2024-01-01", backtest_end=end, report=False, data_dir=store
    )
    active_logging_handle().stop()  # drain the queue, close the files
    return result


def test_backtest_with_fills_writes_every_fill_and_round_trip_to_the_trades_log(store, tmp_path):
    result = _run(_flip_expert(tmp_path / "logs"), store)
    lines = (tmp_path / "logs" / "trades.log").read_text(encoding="utf-8").splitlines()
    fills = [line for line in lines if "metaexpert.trades: fill " in line]
    trips = [line for line in lines if "metaexpert.trades: round trip " in line]
    assert len(result.fills) > 20 and len(fills) == len(result.fills)
    assert len(result.closed_trades) > 10 and len(trips) == len(result.closed_trades)
    assert all(" TRADE " in line for line in lines)
    first = result.closed_trades[0]
    assert f"pnl {first.pnl:+.2f} USDT" in trips[0] and "2024-01-01 01:00" in trips[0]


def test_backtest_with_weekend_blocks_logs_one_line_per_rule_and_a_count(store, tmp_path):
    expert = _flip_expert(tmp_path / "logs", allowed_days=["mon", "tue", "wed", "thu", "fri"])
    result = _run(expert, store)
    blocked = result.risk_counts["allowed_days"]
    assert blocked > 5
    text = (tmp_path / "logs" / "expert.log").read_text(encoding="utf-8")
    assert text.count("risk allowed_days blocked BTCUSDT") == 1
    assert text.count("rejected: risk rule allowed_days") == 0  # the block itself is the one line
    assert f"risk allowed_days blocked an entry: {blocked} times in this run" in text


def test_log_fatal_with_configured_logging_reaches_the_error_log_and_not_the_console(tmp_path):
    console = io.StringIO()
    configure_logging(LoggingConfig(log_dir=tmp_path, rich_console=False), console_stream=console)
    get_logger("engine").info("running")
    try:
        raise ConfigurationError("no candles for BTCUSDT")
    except ConfigurationError as error:
        log_fatal(error)
    active_logging_handle().stop()
    errors = (tmp_path / "errors.log").read_text(encoding="utf-8")
    assert "the run ended on an error: ConfigurationError: no candles for BTCUSDT" in errors
    assert "Traceback" in errors
    assert "no candles" not in console.getvalue() and "running" in console.getvalue()


def test_cli_backtest_with_data_error_after_start_writes_it_to_the_error_log(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from metaexpert.cli.app import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    expert_file = tmp_path / "lonely.py"
    expert_file.write_text(
        "from metaexpert import MetaExpert\n"
        "expert = MetaExpert(exchange='binance', market_type='spot', log_to_console=False)\n"
        "@expert.on_init(symbol='BTCUSDT', timeframe='1h', lookback_bars=0)\n"
        "def init(ctx):\n    pass\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            str(expert_file),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--data",
            str(tmp_path / "empty"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1
    errors = (tmp_path / "logs" / "errors.log").read_text(encoding="utf-8")
    assert "CRITICAL" in errors and "the run ended on an error" in errors


def test_log_lines_with_a_live_progress_bar_print_through_its_console_above_the_bar(tmp_path):
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=100, color_system=None)
    with Progress(console=console, auto_refresh=False) as bar, console_logs_to(bar.console):
        task = bar.add_task("backtest", total=10)
        configure_logging(
            LoggingConfig(log_dir=tmp_path, log_to_file=False)
        )  # as the facade does in run()
        for step in range(10):
            get_logger("engine").warning("weekend block %d", step)
            bar.update(task, completed=step + 1)
            bar.refresh()
    text = output.getvalue()
    lines = [line for line in text.replace("\r", "\n").splitlines() if "weekend block" in line]
    assert len(lines) == 10
    assert not [line for line in lines if "━" in line or "%" in line]  # never glued to the bar
    handler = next(h for h in active_logging_handle().handlers if type(h).__name__ == "RichHandler")
    assert handler.console is not console  # back on standard error once the bar is gone


def test_expert_script_with_uncaught_run_error_writes_it_to_the_error_log(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "empty").mkdir()
    script = tmp_path / "script_expert.py"
    script.write_text(
        "from metaexpert import MetaExpert\n"
        "expert = MetaExpert(exchange='binance', market_type='spot', log_to_console=False)\n"
        "@expert.on_init(symbol='BTCUSDT', timeframe='1h', lookback_bars=0)\n"
        "def init(ctx):\n    pass\n"
        "if __name__ == '__main__':\n"
        "    expert.run('backtest', backtest_start='2024-01-01', backtest_end='2024-01-02',\n"
        f"               data_dir={str(tmp_path / 'empty')!r})\n"
    )
    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={
            "PYTHONPATH": str(root),
            "METAEXPERT_CACHE_DIR": str(tmp_path / "c"),
            "PATH": "/usr/bin:/bin",
        },
    )
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr  # the usual traceback on the terminal
    errors = (tmp_path / "logs" / "errors.log").read_text(encoding="utf-8")
    assert "CRITICAL" in errors and "uncaught error" in errors
