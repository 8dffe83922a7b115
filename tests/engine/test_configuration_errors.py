"""Configuration mistakes named at construction time, with the project's ConfigurationError.

Each case is one the issue found escaping as a bare TypeError/ValueError, or accepted and
breaking later; and the original MetaExpert template's spellings (bare decorators,
fractional percentages) either work or say what to write instead.
"""

from __future__ import annotations

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError

QUIET = {"log_to_file": False, "log_to_console": False}


def _expert(**settings) -> MetaExpert:
    return MetaExpert(**{**QUIET, **settings})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"symbol": 5}, r"symbol: must be a symbol such as 'BTCUSDT' or a list of them, not int"),
        ({"symbol": b"BTCUSDT"}, r"symbol: must be a symbol .* not bytes"),
        ({"symbol": ["BTCUSDT", 7]}, r"symbol: a symbol is text such as 'BTCUSDT', not int 7"),
        ({"symbol": ""}, r"symbol: '' is not a symbol"),
        (
            {"symbol": "BTCUSDT", "allowed_days": 5},
            r"allowed_days: must name days such as \['mon', 'tue'\]",
        ),
        ({"symbol": "BTCUSDT", "allowed_days": ["mon", 5]}, r"allowed_days: unknown day 5"),
        (
            {"symbol": "BTCUSDT", "lookback_bars": 10**400},
            r"lookback_bars: Input should be less than or equal to",
        ),
        (
            {"symbol": "BTCUSDT", "warmup_bars": 10**9},
            r"warmup_bars: Input should be less than or equal to",
        ),
        (
            {"symbol": "BTCUSDT", "lookback_bars": "100"},
            r"lookback_bars: Input should be a valid integer",
        ),
        (
            {"symbol": "BTCUSDT", "timeframe": "7m"},
            r"timeframe: binance has no 7m candles; use one of 1m, 3m, 5m",
        ),
        (
            {"symbol": "BTCUSDT", "timeframe": 60},
            r"timeframe: must be a timeframe such as '1h', not int",
        ),
        ({"symbol": "BTCUSDT", "leverage": True}, r"leverage: must be a number or text, not True"),
        (
            {"symbol": "BTCUSDT", "size_value": float("inf")},
            r"size_value: Input should be a finite number",
        ),
        (
            {"symbol": "BTCUSDT", "max_consecutive_errors": -1},
            r"max_consecutive_errors: Input should be greater",
        ),
    ],
)
def test_on_init_with_wrong_value_raises_configuration_error_naming_the_field(options, message):
    with pytest.raises(ConfigurationError, match=message):
        _expert().on_init(**options)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"api_key": "abc", "api_secret": "long-enough-secret"},
            r"api_key: is not an exchange credential",
        ),
        ({"api_key": 12345678}, r"api_key: must be text"),
        ({"exchange": b"binance"}, r"exchange: must be text, not bytes"),
        ({"testnet": "yes"}, r"testnet: Input should be a valid boolean"),
        ({"rate_limit": 10**400}, r"rate_limit: Input should be less than or equal to 100000"),
        ({"log_dir": 5}, r"log_dir: Input should be a valid string"),
        ({"notification_urls": "json://x"}, r"notification_urls: Input should be a valid list"),
        ({"display_timezone": "Mars/Olympus"}, r"unknown time zone 'Mars/Olympus'"),
    ],
)
def test_constructor_with_wrong_value_raises_configuration_error_naming_the_field(
    settings, message
):
    with pytest.raises(ConfigurationError, match=message):
        _expert(**settings)


def test_max_drawdown_pct_with_a_fraction_says_what_to_write_instead():
    with pytest.raises(
        ConfigurationError,
        match=r"max_drawdown_pct: 0.2 is read as 0.2 %, not 20 %.*"
        r"Write max_drawdown_pct=20 for 20 %, or max_drawdown_pct='0.2%'",
    ):
        _expert().on_init(symbol="BTCUSDT", max_drawdown_pct=0.2)


def test_percent_settings_with_percent_text_are_read_as_percent():
    expert = _expert()
    expert.on_init(symbol="BTCUSDT", max_drawdown_pct="0.5%", stop_loss_pct="2%")(lambda ctx: None)
    _, risk = expert.settings_for(TradeMode.BACKTEST)
    assert risk.max_drawdown_pct == 0.5 and risk.stop_loss_pct == 2.0


@pytest.mark.parametrize(
    "name",
    [
        "on_deinit",
        "on_tick",
        "on_order",
        "on_position",
        "on_transaction",
        "on_book",
        "on_error",
        "on_account",
        "on_risk",
        "on_backtest_init",
        "on_backtest",
        "on_backtest_pass",
        "on_backtest_deinit",
    ],
)
def test_simple_decorator_without_parentheses_registers_the_handler(name):
    expert = _expert()

    def handler(ctx, *args):
        return None

    assert getattr(expert, name)(handler) is handler  # @expert.on_deinit
    assert getattr(expert, name)()(handler) is handler  # @expert.on_deinit()
    event = name.removeprefix("on_")
    assert expert.handlers.get(event) == [handler, handler]


def test_bar_and_timer_decorators_without_parentheses_use_their_defaults():
    expert = _expert()

    def bar(ctx, bars):
        return None

    def timer(ctx):
        return None

    assert expert.on_bar(bar) is bar and expert.on_timer(timer) is timer
    assert expert.handlers.bar_handlers == {"1h": [bar]}
    assert str(expert.handlers.timers[0].interval) == "1m"


def test_decorator_with_a_non_function_raises_configuration_error_naming_it():
    with pytest.raises(
        ConfigurationError, match=r"@expert.on_deinit decorates a function, got str"
    ):
        _expert().on_deinit("cleanup")


def test_run_parameters_with_a_typo_name_the_declared_ones():
    expert = _expert()
    expert.on_init(symbol="BTCUSDT", period=14, threshold=0.5, name="trend")(lambda ctx: None)
    with pytest.raises(
        ConfigurationError,
        match=r"unknown strategy parameter 'perido' \(did you mean 'period'\?\); "
        r"on_init declares: name, period, threshold",
    ):
        expert.settings_for(TradeMode.BACKTEST, {"perido": 10})


@pytest.mark.parametrize(("value", "expected"), [("21", 21), (21.0, 21), (21, 21)])
def test_run_parameters_with_convertible_values_take_the_declared_type(value, expected):
    expert = _expert()
    expert.on_init(symbol="BTCUSDT", period=14, threshold=0.5, active=False, name="trend")(
        lambda ctx: None
    )
    strategy, _ = expert.settings_for(
        TradeMode.BACKTEST, {"period": value, "threshold": "1.5", "active": "yes", "name": 7}
    )
    assert strategy.parameters == {
        "period": expected,
        "threshold": 1.5,
        "active": True,
        "name": "7",
    }
    assert type(strategy.parameters["period"]) is int


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "period",
            "abc",
            r"strategy parameter period: 'abc' is not an integer \(on_init declares period=14\)",
        ),
        ("period", 2.5, r"strategy parameter period: 2.5 is not an integer"),
        ("period", True, r"strategy parameter period: True is not an integer"),
        ("threshold", "high", r"strategy parameter threshold: 'high' is not a number"),
        ("threshold", float("nan"), r"strategy parameter threshold: nan is not a number"),
        ("active", "maybe", r"strategy parameter active: 'maybe' is not true or false"),
        ("name", ["a"], r"strategy parameter name: \['a'\] is not text"),
    ],
)
def test_run_parameters_with_wrong_type_raise_configuration_error(name, value, message):
    expert = _expert()
    expert.on_init(symbol="BTCUSDT", period=14, threshold=0.5, active=False, name="trend")(
        lambda ctx: None
    )
    with pytest.raises(ConfigurationError, match=message):
        expert.settings_for(TradeMode.BACKTEST, {name: value})


def test_run_parameters_overriding_risk_and_strategy_settings_are_validated_by_their_models():
    expert = _expert()
    expert.on_init(symbol="BTCUSDT", period=14)(lambda ctx: None)
    strategy, risk = expert.settings_for(
        TradeMode.BACKTEST, {"stop_loss_pct": 3, "lookback_bars": 20}
    )
    assert risk.stop_loss_pct == 3 and strategy.lookback_bars == 20
    with pytest.raises(ConfigurationError, match="stop_loss_pct"):
        expert.settings_for(TradeMode.BACKTEST, {"stop_loss_pct": "x"})


def test_on_init_with_invalid_options_keeps_no_half_declared_strategy():
    expert = _expert()
    with pytest.raises(ConfigurationError):
        expert.on_init(symbol=5)
    with pytest.raises(ConfigurationError, match="no @expert.on_init"):
        expert.settings_for(TradeMode.BACKTEST)


def test_max_consecutive_errors_as_a_run_parameter_overrides_the_on_init_setting():
    expert = _expert()
    expert.on_init(symbol="BTCUSDT", max_consecutive_errors=2)(lambda ctx: None)
    assert expert.settings_for(TradeMode.BACKTEST)[0].max_consecutive_errors == 2
    strategy, _ = expert.settings_for(
        TradeMode.BACKTEST, {"max_consecutive_errors": 0}
    )  # -p max_consecutive_errors=0
    assert strategy.max_consecutive_errors == 0
