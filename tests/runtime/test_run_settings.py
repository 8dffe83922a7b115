"""``MetaExpert.run``: one switch between modes, each mode's settings typed and checked."""

from __future__ import annotations

import pytest

from metaexpert import MetaExpert
from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.run_settings import BacktestRunSettings, TradingRunSettings


def _expert() -> MetaExpert:
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", size_type="fixed_base", size_value=0.01)
    def init(ctx):
        pass

    return expert


def test_run_with_misspelt_setting_raises_configuration_error_naming_it_and_the_known_ones():
    with pytest.raises(
        ConfigurationError, match=r"unknown setting\(s\) \['backtest_strat'\].*backtest_start"
    ):
        _expert().run("backtest", backtest_strat="2024-01-01", backtest_end="2024-01-02")


def test_run_with_backtest_setting_in_paper_mode_says_it_belongs_to_another_mode():
    with pytest.raises(
        ConfigurationError, match=r"\['backtest_start'\].*apply to another mode.*max_steps"
    ):
        _expert().run("paper", backtest_start="2024-01-01", max_steps=1)


def test_run_with_settings_object_of_other_mode_raises_configuration_error():
    with pytest.raises(
        ConfigurationError, match="a paper run takes TradingRunSettings, not BacktestRunSettings"
    ):
        _expert().run("paper", BacktestRunSettings(backtest_start="2024-01-01"))


def test_run_with_bad_value_raises_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError, match="max_steps"):
        _expert().run("paper", TradingRunSettings(), max_steps=0)


def test_plan_with_keyword_and_object_settings_carries_the_same_values():
    expert = _expert()
    from_keywords = expert.plan(
        "backtest",
        BacktestRunSettings(initial_capital=5_000, simulation={"fill_market_on": "close"}),
    )
    assert from_keywords.initial_capital == 5_000
    assert from_keywords.simulation.fill_market_on == "close"
    assert from_keywords.exchange is None and from_keywords.persistence is None, (
        "a plain backtest records nothing"
    )
    paper = expert.plan("paper", TradingRunSettings(symbol="ETHUSDT"))
    assert (
        paper.strategy.symbol == "ETHUSDT"
        and paper.exchange is not None
        and paper.persistence is not None
    )
