"""ExchangeConfig: every invalid combination fails at the edge with a message naming the cause."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import ContractType, MarginMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.exchanges import ExchangeConfig

KEYS = {"api_key": "AKIA-looking-key-0123456789", "api_secret": "s3cr3t-value-abcdefghijklmnop"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"exchange": "kraken"}, "unknown exchange 'kraken': supported are binance, bybit, okx"),
        ({"exchange": "binance", "contract_type": "linear"}, "does not apply to spot markets"),
        (
            {"exchange": "binance", "position_mode": "hedge"},
            "position_mode='hedge' needs market_type='futures'",
        ),
        (
            {"exchange": "okx", "market_type": "options", "contract_type": "linear"},
            "okx has no linear options",
        ),
        (
            {"exchange": "binance", "market_type": "options", "contract_type": "inverse"},
            "binance has no inverse options",
        ),
        (
            {"exchange": "bybit", "trade_mode": "live"},
            "live trading on bybit needs api_key and api_secret",
        ),
        (
            {"exchange": "okx", "trade_mode": "live", **KEYS},
            "live trading on okx needs api_passphrase",
        ),
        (
            {"exchange": "binance", "testnet": True, "demo": True},
            "testnet and demo cannot be combined",
        ),
        ({"exchange": "okx", "demo": True}, "okx has no demo trading mode"),
        ({"exchange": "binance", "trade_mode": "backtest"}, "needs no exchange gateway"),
        ({"exchange": "binance", "base_url": "localhost:8080"}, "is not a URL"),
        ({"exchange": "binance", "rate_limit_per_minute": 0}, "rate_limit_per_minute"),
    ],
)
def test_exchange_config_with_invalid_values_raises_named_cause(
    values: dict, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ExchangeConfig.parse(**values)
    assert expected in str(caught.value)


def test_exchange_config_with_futures_defaults_linear_isolated() -> None:
    config = ExchangeConfig.parse(exchange="BINANCE", market_type="futures")
    assert config.contract_type is ContractType.LINEAR
    assert config.margin_mode is MarginMode.ISOLATED
    okx_options = ExchangeConfig.parse(exchange="okx", market_type="options")
    assert okx_options.contract_type is ContractType.INVERSE


def test_exchange_config_with_keys_masks_them_in_repr_and_dump() -> None:
    config = ExchangeConfig.parse(
        exchange="okx", trade_mode="live", api_passphrase="pass-phrase-42", **KEYS
    )
    text = repr(config) + str(config) + str(config.model_dump())
    for secret in (*KEYS.values(), "pass-phrase-42"):
        assert secret not in text
    assert config.has_credentials


def test_exchange_config_with_paper_mode_needs_no_keys() -> None:
    config = ExchangeConfig.parse(exchange="bybit", market_type="futures", contract_type="inverse")
    assert not config.has_credentials
