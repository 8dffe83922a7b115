"""The facade's storage settings: what is recorded by default, backtest runs, schema checks."""

from __future__ import annotations

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.expert import default_data_dir
from metaexpert.storage import Database, SchemaOutOfDateError, StateStore

needs_data = pytest.mark.skipif(default_data_dir() is None, reason="shared market data not found")


def _backtest_expert(**settings):
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False, **settings
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1h",
        size_type="fixed_base",
        size_value=0.01,
        strategy_name="facade",
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1h")
    def bar(ctx, bars):
        ctx.close() if ctx.position() is not None else ctx.buy()

    return expert


@needs_data
def test_backtest_with_storage_url_records_run_and_every_fill(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    result = _backtest_expert(storage_url=url).run(
        "backtest",
        backtest_start="2024-03-01",
        backtest_end="2024-03-02",
        report=False,
        configure_logs=False,
    )
    assert len(result.fills) > 10
    store = StateStore(Database(url))
    runs = store.backtest_runs.list("facade")
    assert len(runs) == 1 and runs[0].status == "finished"
    assert runs[0].parameters["strategy"]["symbols"] == ["BTCUSDT"]
    assert runs[0].metrics, "the run's metrics are stored"
    expert = store.experts.find("facade", trade_mode="backtest")
    stored = {t.trade_id for t in store.trades.list(expert.expert_id)}
    assert stored == {t.trade_id for t in result.fills}
    store.database.dispose()


@needs_data
def test_backtest_without_storage_url_writes_no_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _backtest_expert().run(
        "backtest",
        backtest_start="2024-03-01",
        backtest_end="2024-03-01",
        report=False,
        configure_logs=False,
    )
    assert not (tmp_path / "var").exists(), "backtests record only with an explicit storage_url"


def test_recorder_with_upgrade_disabled_on_empty_database_names_the_command(tmp_path):
    expert = _backtest_expert(
        storage_url=f"sqlite:///{tmp_path / 'empty.sqlite'}", upgrade_schema=False
    )
    with pytest.raises(SchemaOutOfDateError, match="python -m metaexpert.storage upgrade"):
        expert.open_recorder(TradeMode.PAPER)


def test_recorder_with_default_url_in_paper_mode_uses_sqlite_file_under_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recorder = _backtest_expert().open_recorder(TradeMode.PAPER)
    try:
        assert recorder.store.database.backend == "sqlite"
        assert (tmp_path / "var" / "metaexpert.sqlite").is_file()
        assert (tmp_path / "var" / "journal" / "facade-paper").is_dir()
    finally:
        recorder.close()


def test_facade_with_bad_database_down_policy_raises_clear_error():
    with pytest.raises(ConfigurationError, match="on_database_down"):
        _backtest_expert(on_database_down="ignore")
