from __future__ import annotations

import pytest

from metaexpert.core.errors import ConfigurationError
from tasks.exchange_client import ccxt_symbol, make_exchange_client


def test_make_exchange_client_with_url_override_rebases_every_rest_url_keeping_paths():
    client = make_exchange_client("binance", url_override="http://127.0.0.1:9999")
    assert client.urls["api"]["public"] == "http://127.0.0.1:9999/api/v3"
    assert client.urls["api"]["fapiPublic"] == "http://127.0.0.1:9999/fapi/v1"
    assert all(
        url.startswith("http://127.0.0.1:9999/")
        for url in client.urls["api"].values()
        if isinstance(url, str)
    )
    assert client.options["fetchMarkets"]["types"] == ["spot"]


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
def test_make_exchange_client_with_hostname_template_urls_rebases_them(exchange):
    client = make_exchange_client(
        exchange, market_type="futures", url_override="http://127.0.0.1:8080"
    )
    urls = [url for url in client.urls["api"].values() if isinstance(url, str)]
    assert urls and all(
        url.startswith("http://127.0.0.1:8080") and "{hostname}" not in url for url in urls
    )


@pytest.mark.parametrize(
    ("exchange", "market_type", "url", "message"),
    [
        ("kraken", "spot", None, "unsupported exchange"),
        ("binance", "options", None, "unsupported market type"),
        ("binance", "spot", "ftp://host", "invalid url_override"),
    ],
)
def test_make_exchange_client_with_bad_settings_raises_configuration_error(
    exchange, market_type, url, message
):
    with pytest.raises(ConfigurationError, match=message):
        make_exchange_client(exchange, market_type=market_type, url_override=url)


@pytest.mark.parametrize(
    ("symbol", "market_type", "expected"),
    [
        ("BTCUSDT", "spot", "BTC/USDT"),
        ("ETHUSDC", "futures", "ETH/USDC:USDC"),
        ("BTC/USDT", "spot", "BTC/USDT"),
    ],
)
def test_ccxt_symbol_with_native_symbol_returns_unified_symbol(symbol, market_type, expected):
    assert ccxt_symbol(symbol, market_type) == expected
