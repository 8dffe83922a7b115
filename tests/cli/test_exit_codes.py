"""Exit codes and messages of ``metaexpert backtest`` for runs that end on an error.

A handler failing on every bar, ``-p period=abc`` and ``stop_on_error`` used to exit 0 after
thousands of lines; a misspelt ``-p perido=10`` was silently ignored. The expert files are
real (the facade), the candles hand-made in a temporary store.
"""

from __future__ import annotations

import textwrap

import polars as pl
import pytest

from metaexpert.cli.app import app
from metaexpert.core.clock import parse_date_ms
from metaexpert.data import CandleStore

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")

EXPERT = textwrap.dedent("""
    from metaexpert import MetaExpert

    expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=0, period=14, use_filter=False)
    def init(ctx):
        pass

    @expert.on_bar("1h")
    def bar(ctx, bars):
        BODY
""")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    rows = [(START + i * HOUR, 100.0, 101.0, 99.0, 100.5, 10.0) for i in range(48)]
    frame = pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )
    frame = frame.with_columns(
        pl.col("timestamp").cast(pl.Int64), pl.exclude("timestamp").cast(pl.Float64)
    )
    CandleStore(tmp_path / "store").write("binance", "spot", "BTCUSDT", "1h", frame)
    return tmp_path / "store"


def _backtest(runner, tmp_path, store, body: str, *extra: str):
    path = tmp_path / "my_expert.py"
    path.write_text(EXPERT.replace("BODY", body))
    return runner.invoke(
        app,
        [
            "backtest",
            str(path),
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--data",
            str(store),
            "--output",
            str(tmp_path / "out"),
            "--no-progress",
            "--no-html",
            *extra,
        ],
    )


def test_backtest_with_handler_failing_every_bar_exits_one_with_a_short_reason(
    runner, tmp_path, store
):
    result = _backtest(runner, tmp_path, store, "return 1 / 0")
    assert result.exit_code == 1, result.output
    assert "stopped after 5 consecutive errors in on_bar: ZeroDivisionError" in result.output
    assert "handler:on_bar: ZeroDivisionError: division by zero (5 times)" in result.output
    assert len(result.output.splitlines()) < 60


def test_backtest_with_stop_on_error_exits_one(runner, tmp_path, store):
    result = _backtest(
        runner,
        tmp_path,
        store,
        "if len(bars) == 3:\n            raise RuntimeError('fatal')",
        "--stop-on-error",
    )
    assert result.exit_code == 1, result.output
    assert "stopped after an error in on_bar: fatal" in result.output


def test_backtest_with_one_failing_bar_and_no_stop_still_exits_one(runner, tmp_path, store):
    result = _backtest(
        runner, tmp_path, store, "if len(bars) == 3:\n            raise RuntimeError('once')"
    )
    assert result.exit_code == 1, result.output
    assert "the run had 1 handler error" in result.output


def test_backtest_with_clean_handler_exits_zero(runner, tmp_path, store):
    result = _backtest(
        runner,
        tmp_path,
        store,
        "assert ctx.params.period == 21 and ctx.params.use_filter is True",
        "-p",
        "period=21",
        "-p",
        "use_filter=yes",
    )
    assert result.exit_code == 0, result.output


def test_backtest_with_parameter_of_wrong_type_exits_one_naming_it(runner, tmp_path, store):
    result = _backtest(runner, tmp_path, store, "pass", "-p", "period=abc")
    assert result.exit_code == 1, result.output
    assert (
        "strategy parameter period: 'abc' is not an integer (on_init declares period=14)"
        in result.output
    )


def test_backtest_with_misspelt_parameter_exits_one_naming_the_declared_ones(
    runner, tmp_path, store
):
    result = _backtest(runner, tmp_path, store, "pass", "-p", "perido=10")
    assert result.exit_code == 1, result.output
    assert (
        "unknown strategy parameter 'perido' (did you mean 'period'?); on_init declares: period, use_filter"
        in " ".join(result.output.split())
    )


@pytest.mark.network
def test_run_paper_with_handler_failing_every_tick_exits_one_after_the_consecutive_limit(
    tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from metaexpert.sandbox import SandboxConfig, SandboxServer

    monkeypatch.chdir(tmp_path)
    expert_file = tmp_path / "broken_ticker.py"
    expert_file.write_text(
        textwrap.dedent("""
        from metaexpert import MetaExpert

        expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)

        @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=3, max_consecutive_errors=3)
        def init(ctx):
            pass

        @expert.on_tick
        def tick(ctx, tick):
            raise LookupError("no such indicator")
    """)
    )
    config = SandboxConfig(timeframe="1m", spot_symbols=["BTCUSDT"], futures_symbols=[], speed=0.0)
    with SandboxServer(config) as sandbox:
        result = CliRunner().invoke(
            app,
            [
                "run",
                str(expert_file),
                "--mode",
                "paper",
                "--steps",
                "10",
                "--poll-interval",
                "0.05",
                "--base-url",
                sandbox.base_url,
            ],
        )
    assert result.exit_code == 1, result.output
    assert (
        "stopped after 3 consecutive errors in on_tick: LookupError: no such indicator"
        in result.output
    )


def _run_script(tmp_path, store, body: str):
    """The expert file as a user runs it: ``python my_expert.py`` with ``expert.run()`` at the end."""
    import subprocess
    import sys

    run = (
        "\nexpert.run('backtest', backtest_start='2024-01-01', backtest_end='2024-01-02', "
        f"data={str(store)!r}, report=False)\n"
    )
    path = tmp_path / "my_expert.py"
    path.write_text(EXPERT.replace("BODY", body) + run)
    return subprocess.run(
        [sys.executable, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_python_expert_script_with_failing_handler_exits_one_with_the_reason(tmp_path, store):
    done = _run_script(tmp_path, store, "return 1 / 0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: the run had 5 handler errors; stopped after 5 consecutive errors" in done.stderr
    assert "handler:on_bar: ZeroDivisionError: division by zero (5 times)" in done.stderr
    assert "Traceback" not in done.stderr.split("error: the run had")[1]


def test_python_expert_script_with_clean_handler_exits_zero(tmp_path, store):
    done = _run_script(tmp_path, store, "pass")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error:" not in done.stderr
