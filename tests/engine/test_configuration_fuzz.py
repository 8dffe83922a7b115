"""Fuzzing the facade's configuration: every rejection is the project's ConfigurationError naming the field.

Bad configuration used to escape as bare ``TypeError``/``ValueError`` (``on_init(symbol=5)``,
``allowed_days=5``, an API key shorter than 4 characters) or to be accepted and break later
(``symbol=b"BTCUSDT"``, ``lookback_bars=10**400``). Hypothesis draws a value of any shape for
each constructor and ``on_init`` field; whatever happens, only ``ConfigurationError`` may be
raised, and its message must name the field that was given.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaexpert import MetaExpert
from metaexpert.core.errors import ConfigurationError
from metaexpert.expert import ExpertConfig
from metaexpert.observability.masking import clear_secrets
from metaexpert.risk import RiskConfig

_QUIET = {"log_to_file": False, "log_to_console": False}

#: Values of every shape a user might type by mistake, and plausible good ones.
_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=10),
    st.integers(),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.2, 2.0, 20.0, 100.0, 1e308, -1.0, float("nan")]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "BTCUSDT",
            "btc/usdt",
            "1h",
            "7m",
            "5m",
            "spot",
            "futures",
            "linear",
            "hedge",
            "binance",
            "okx",
            "bybit",
            "isolated",
            "cross",
            "mon,tue",
            "08:00-20:00",
            "24:00-01:00",
            "percent_equity",
            "fixed_quote",
            "risk_based",
            "UTC",
            "Mars/Olympus",
            "abc",
            "ab",
            "\x00",
            "error",
            "clamp",
            "ema",
            "atr",
        ]
    ),
    st.binary(max_size=8),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(
            [
                "jurisdiction",
                "rule_sets",
                "verifier",
                "period",
                "target_pct",
                "move_pct",
                "window_minutes",
                "cooldown_minutes",
                "min_pct",
                "max_pct",
                "timeframe",
            ]
        ),
        st.one_of(
            st.none(), st.integers(), st.floats(), st.text(max_size=4), st.lists(st.integers())
        ),
        max_size=3,
    ),
    st.sampled_from(
        [
            object(),
            {"target_pct": 1.0},
            {"move_pct": 5, "window_minutes": 60, "cooldown_minutes": 60},
            {"min_pct": 1.0},
            {"period": 50},
            ["mon", 5],
            ("BTCUSDT", "ETHUSDT"),
        ]
    ),
)

_CONSTRUCTOR_FIELDS = sorted(ExpertConfig.model_fields)
_INIT_FIELDS = sorted(
    {
        "symbol",
        "timeframe",
        "lookback_bars",
        "warmup_bars",
        "strategy_id",
        "strategy_name",
        "comment",
        "max_consecutive_errors",
    }
    | set(RiskConfig.model_fields)
)


def _names_a_field(error: ConfigurationError, fields: list[str]) -> bool:
    text = str(error)
    return any(name in text for name in fields)


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_CONSTRUCTOR_FIELDS), _ANY_VALUE, min_size=1, max_size=3))
def test_constructor_with_random_fields_rejects_only_with_configuration_error_naming_a_field(
    fields,
):
    try:
        MetaExpert(**{**_QUIET, **fields})
    except ConfigurationError as error:
        assert _names_a_field(error, list(fields)), f"{error} names none of {sorted(fields)}"
    finally:
        # drawn "credentials" such as 'fixed_quote' are registered for masking: forget them, or the
        # session's artefact scan would find these ordinary words in files other tests write
        clear_secrets()


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["spot", "futures"]),
    st.dictionaries(st.sampled_from(_INIT_FIELDS), _ANY_VALUE, min_size=1, max_size=3),
)
def test_on_init_with_random_fields_rejects_only_with_configuration_error_naming_a_field(
    market_type, fields
):
    expert = MetaExpert(market_type=market_type, **_QUIET)
    options = {"symbol": "BTCUSDT", **fields}
    try:
        expert.on_init(**options)(lambda ctx: None)
    except ConfigurationError as error:
        assert _names_a_field(error, list(fields)), f"{error} names none of {sorted(fields)}"
    else:
        strategy, risk = expert.settings_for(expert_mode_backtest())
        assert all(isinstance(symbol, str) and symbol.isalnum() for symbol in strategy.symbols)
        assert strategy.lookback_bars < 10**7 and strategy.warmup_bars < 10**7
        assert math.isfinite(risk.size_value) and math.isfinite(risk.leverage)


def expert_mode_backtest():
    from metaexpert.core.enums import TradeMode

    return TradeMode.BACKTEST
