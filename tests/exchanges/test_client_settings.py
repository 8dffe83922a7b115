"""How a configuration reaches the ccxt client: URLs, testnet/demo, proxy, passphrase, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.core.errors import ConfigurationError
from metaexpert.exchanges import CcxtGateway, ExchangeConfig


def _client(**values):
    gateway = CcxtGateway(ExchangeConfig.parse(**values))
    return gateway, gateway.client


def _close(gateway: CcxtGateway) -> None:
    asyncio.run(gateway.close())


def test_client_with_base_url_overrides_every_rest_entry_of_templated_hosts() -> None:
    for exchange in ("bybit", "okx"):
        gateway, client = _client(exchange=exchange, base_url="http://127.0.0.1:9999/")
        rest = {
            key: url
            for key, url in client.urls["api"].items()
            if isinstance(url, str) and url.startswith("http")
        }
        assert rest and all(url.startswith("http://127.0.0.1:9999") for url in rest.values())
        assert not any("{hostname}" in url for url in rest.values())
        _close(gateway)


def test_client_with_binance_market_types_picks_class_and_keeps_paths() -> None:
    gateway, spot = _client(exchange="binance", base_url="http://127.0.0.1:1")
    assert spot.id == "binance" and spot.urls["api"]["public"] == "http://127.0.0.1:1/api/v3"
    assert spot.options["fetchMarkets"]["types"] == ["spot"]
    _close(gateway)
    gateway, usdm = _client(
        exchange="binance", market_type="futures", base_url="http://127.0.0.1:1"
    )
    assert (
        usdm.id == "binanceusdm" and usdm.urls["api"]["fapiPrivate"] == "http://127.0.0.1:1/fapi/v1"
    )
    _close(gateway)
    gateway, coinm = _client(exchange="binance", market_type="futures", contract_type="inverse")
    assert coinm.id == "binancecoinm"
    _close(gateway)


def test_client_with_testnet_demo_proxy_and_passphrase_sets_ccxt_switches() -> None:
    gateway, testnet = _client(exchange="bybit", testnet=True, timeout_ms=2500)
    assert "api-testnet" in testnet.urls["api"]["public"] and testnet.timeout == 2500
    _close(gateway)
    gateway, demo = _client(exchange="binance", market_type="futures", demo=True)
    assert "demo-fapi" in demo.urls["api"]["fapiPublic"]
    _close(gateway)
    gateway, proxied = _client(
        exchange="okx", proxy="http://10.0.0.1:3128", api_passphrase="pass-phrase-x"
    )
    assert proxied.httpProxy == "http://10.0.0.1:3128" and proxied.password == "pass-phrase-x"
    _close(gateway)
    gateway, socks = _client(exchange="binance", proxy="socks5://10.0.0.1:1080")
    assert socks.socksProxy == "socks5://10.0.0.1:1080"
    _close(gateway)


def test_gateway_with_spot_config_refuses_derivative_settings() -> None:
    gateway, _ = _client(exchange="binance")

    async def scenario() -> None:
        with pytest.raises(ConfigurationError, match="leverage applies to futures and options"):
            await gateway.set_leverage("BTCUSDT", 3)
        await gateway.close()

    asyncio.run(scenario())


def test_gateway_with_unloaded_markets_explains_what_to_call() -> None:
    gateway, _ = _client(exchange="okx")
    with pytest.raises(ConfigurationError, match=r"await gateway.load_markets\(\) first"):
        gateway.market_spec("BTC-USDT")
    _close(gateway)


def test_metaexpert_with_demo_true_reaches_the_exchange_settings() -> None:
    """Issue 15: ``demo=True`` existed in the exchange settings but the constructor rejected it."""
    from metaexpert import MetaExpert
    from metaexpert.core.enums import TradeMode

    expert = MetaExpert(
        exchange="bybit",
        market_type="futures",
        contract_type="linear",
        demo=True,
        log_to_file=False,
        log_to_console=False,
    )
    assert expert.exchange_config(TradeMode.PAPER).demo is True


def test_metaexpert_live_exchange_settings_carry_the_durable_queue_path(tmp_path) -> None:
    from metaexpert import MetaExpert
    from metaexpert.core.enums import TradeMode

    expert = MetaExpert(
        exchange="binance",
        api_key="k" * 24,
        api_secret="s" * 24,
        journal_dir=str(tmp_path),
        log_to_file=False,
        log_to_console=False,
    )
    assert (
        expert.exchange_config(TradeMode.LIVE).order_queue_path
        == tmp_path / "orders-binance-spot.sqlite"
    )
    assert expert.exchange_config(TradeMode.PAPER).order_queue_path is None
