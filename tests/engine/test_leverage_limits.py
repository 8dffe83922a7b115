"""Leverage against the venue's symbol limit, before the first bar, in every mode.

``leverage=1000`` used to be accepted; then the risk rule blocked every entry at run time
(1,299 log lines, 0 trades, exit 0). Backtests check the market specs the runner uses
(overridable with ``market_specs``), paper mode the markets ccxt loads from the loopback
sandbox. The start-up line names the defaults that matter (contract type, margin mode,
leverage) instead of applying them silently.
"""

from __future__ import annotations

import logging

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.data import CandleStore

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")


@pytest.fixture
def futures_store(tmp_path, monkeypatch):
    monkeypatch.setenv("METAEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    rows = [(START + i * HOUR, 100.0 + i % 3, 103.0, 98.0, 101.0 + i % 2, 10.0) for i in range(24)]
    frame = pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )
    frame = frame.with_columns(
        pl.col("timestamp").cast(pl.Int64), pl.exclude("timestamp").cast(pl.Float64)
    )
    CandleStore(tmp_path / "store").write("binance", "futures", "BTCUSDT", "1h", frame)
    return tmp_path / "store"


def _futures_expert(calls: list[str], **init) -> MetaExpert:
    expert = MetaExpert(
        exchange="binance", market_type="futures", log_to_file=False, log_to_console=False
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1h",
        lookback_bars=0,
        size_type="fixed_base",
        size_value=0.1,
        **init,
    )
    def init(ctx):
        calls.append("init")

    @expert.on_bar
    def bar(ctx, bars):
        calls.append("bar")
        if not ctx.positions():
            ctx.buy()

    return expert


def _backtest(expert, store, **options):
    options.setdefault(
        "simulation", {"funding": "none"}
    )  # the store holds candles, no funding rates
    return expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-01-01",
        report=False,
        configure_logs=False,
        data_dir=store,
        **options,
    )


def test_backtest_with_leverage_above_the_symbol_limit_fails_before_the_first_bar(futures_store):
    calls: list[str] = []
    expert = _futures_expert(calls, leverage=1000)
    with pytest.raises(
        ConfigurationError, match=r"leverage 1000 exceeds the maximum 125 of BTCUSDT"
    ):
        _backtest(expert, futures_store)
    assert calls == []


def test_backtest_with_market_spec_limit_names_that_limit(futures_store):
    expert = _futures_expert([], leverage=50)
    with pytest.raises(ConfigurationError, match=r"leverage 50 exceeds the maximum 20 of BTCUSDT"):
        _backtest(expert, futures_store, market_specs={"BTCUSDT": {"max_leverage": 20.0}})


def test_backtest_with_clamp_policy_trades_at_the_symbol_limit(futures_store, caplog):
    calls: list[str] = []
    expert = _futures_expert(calls, leverage=50, leverage_policy="clamp")
    with caplog.at_level(logging.INFO, logger="metaexpert"):
        result = _backtest(expert, futures_store, market_specs={"BTCUSDT": {"max_leverage": 20.0}})
    assert "bar" in calls and result.fills
    assert any(
        "lowered to its venue maximum 20x" in record.getMessage() for record in caplog.records
    )


def test_futures_backtest_without_settings_names_the_defaults_in_the_startup_line(
    futures_store, caplog
):
    expert = _futures_expert([])
    with caplog.at_level(logging.INFO, logger="metaexpert"):
        _backtest(expert, futures_store)
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("starting")
    ]
    assert lines == [
        (
            "starting backtest run of expert on 1h bars: BTCUSDT futures linear at 1x leverage "
            "(venue maximum 125x); margin mode isolated, position mode oneway"
        )
    ]


@pytest.mark.network
def test_paper_run_with_leverage_above_the_loaded_market_limit_fails_before_the_first_bar(
    tmp_path, monkeypatch
):
    from metaexpert.sandbox import SandboxConfig, SandboxServer

    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    config = SandboxConfig(timeframe="1m", spot_symbols=[], futures_symbols=["BTCUSDT"], speed=0.0)
    with SandboxServer(config) as sandbox:
        expert = MetaExpert(
            exchange="binance",
            market_type="futures",
            base_url=sandbox.base_url,
            log_to_file=False,
            log_to_console=False,
        )

        @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=0, leverage=1000)
        def init(ctx):
            calls.append("init")

        with pytest.raises(
            ConfigurationError, match=r"leverage 1000 exceeds the maximum 125 of BTCUSDT"
        ):
            expert.run("paper", max_steps=1, poll_interval=0.05, configure_logs=False)
    assert calls == []
