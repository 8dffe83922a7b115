"""RiskConfig validation: bad input gets a specific message, at the edge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from metaexpert.core.enums import SizeType
from metaexpert.core.errors import ConfigurationError
from metaexpert.risk import RiskConfig
from metaexpert.risk.config import parse_trade_hours


def test_config_with_defaults_sizes_ten_percent_of_equity() -> None:
    config = RiskConfig()
    assert config.size_type is SizeType.PERCENT_EQUITY
    assert config.size_value == 10.0
    assert config.stop_loss_pct is None


def test_config_with_nested_dicts_builds_nested_models() -> None:
    config = RiskConfig(
        size_type="risk_based",
        size_value=1.0,
        stop_loss_pct=2.0,
        volatility_filter={"measure": "realized", "period": 20, "max_pct": 5.0},
        trend_filter={"indicator": "sma", "period": 50},
        circuit_breaker={"move_pct": 5, "window_minutes": 60, "cooldown_minutes": 120},
        volatility_sizing={"target_pct": 1.0},
    )
    assert config.volatility_filter.measure == "realized"
    assert config.trend_filter.period == 50
    assert config.circuit_breaker.cooldown_minutes == 120
    assert config.volatility_sizing.measure == "atr"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"stop_loss_pct": -1}, "stop_loss_pct"),
        ({"stop_loss_pct": 100}, "less than 100"),
        ({"trailing_stop_pct": 0}, "trailing_stop_pct"),
        ({"size_value": 0}, "size_value"),
        ({"size_type": "percent_equity", "size_value": 150}, "must be in (0, 100]"),
        ({"leverage": 0.5}, "leverage"),
        ({"leverage_policy": "ignore"}, "leverage_policy"),
        ({"trade_hours": "8-20"}, "HH:MM-HH:MM"),
        ({"trade_hours": "25:00-03:00"}, "invalid time 25:00"),
        ({"trade_hours": "10:00-10:00"}, "empty"),
        ({"allowed_days": ["mon", "funday"]}, "unknown day 'funday'"),
        ({"max_open_positions": 0}, "max_open_positions"),
        ({"volatility_filter": {"period": 14}}, "needs min_pct, max_pct or both"),
        ({"volatility_filter": {"min_pct": 5, "max_pct": 1}}, "must be below max_pct"),
        ({"volatility_filter": {"max_pct": 5, "timeframe": "7x"}}, "invalid timeframe"),
        ({"circuit_breaker": {"move_pct": 5}}, "window_minutes"),
        ({"trailing_activation_pct": 1.0}, "needs trailing_stop_pct"),
        ({"flatten_on_max_drawdown": True}, "needs max_drawdown_pct"),
        ({"stop_loss": 2.0}, "stop_loss"),
    ],
)
def test_config_with_bad_value_raises_configuration_error_naming_it(
    options: dict, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RiskConfig.from_options(options)
    assert fragment in str(caught.value)


def test_config_with_direct_construction_raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        RiskConfig(max_drawdown_pct=0)


def test_config_with_day_names_normalises_and_deduplicates() -> None:
    config = RiskConfig(allowed_days="Monday, tue,mon")
    assert config.allowed_days == ["mon", "tue"]


def test_config_split_options_with_mixed_keywords_separates_risk_settings() -> None:
    config, rest = RiskConfig.split_options(
        {"symbol": "BTCUSDT", "timeframe": "1h", "stop_loss_pct": 2.0}
    )
    assert config.stop_loss_pct == 2.0
    assert rest == {"symbol": "BTCUSDT", "timeframe": "1h"}


def test_trade_hours_with_midnight_wrap_parses_to_minutes() -> None:
    assert parse_trade_hours("22:00-02:30") == (22 * 60, 2 * 60 + 30)
    assert parse_trade_hours("00:00-24:00") == (0, 24 * 60)
