"""Building the ccxt client that ingestion talks to, optionally redirected to a loopback URL.

The URL override is how the pipelines reach the local Binance sandbox (or any mirror): every
REST endpoint of the client keeps its path and gets the override's scheme and host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.market import split_symbol

SUPPORTED_EXCHANGES = ("binance", "bybit", "okx")
_MARKET_TYPES = {"spot": "spot", "futures": "swap", "usdm": "swap", "swap": "swap"}
# Binance loads every market family on load_markets(); only ask for the one being ingested.
_BINANCE_MARKET_FAMILIES = {"spot": ["spot"], "swap": ["linear"]}


def make_exchange_client(
    exchange: str,
    *,
    market_type: str = "spot",
    url_override: str | None = None,
    timeout_ms: int = 10_000,
    options: dict[str, Any] | None = None,
) -> Any:
    """A public-data (no keys) synchronous ccxt client for ``exchange``.

    ``url_override`` (``http://127.0.0.1:PORT``) replaces scheme and host of every REST
    endpoint, keeping paths, so ccxt speaks its real protocol to a loopback server.
    """
    exchange_id = str(exchange).strip().lower()
    if exchange_id not in SUPPORTED_EXCHANGES:
        raise ConfigurationError(
            f"unsupported exchange {exchange!r}; expected one of {SUPPORTED_EXCHANGES}"
        )
    family = _market_family(market_type)
    client_options: dict[str, Any] = {"defaultType": family}
    if exchange_id == "binance":
        client_options.update(
            fetchMarkets={"types": _BINANCE_MARKET_FAMILIES[family]},
            fetchCurrencies=False,
            fetchMargins=False,
        )
    client_options.update(options or {})
    client = getattr(ccxt, exchange_id)(
        {"enableRateLimit": url_override is None, "timeout": timeout_ms, "options": client_options}
    )
    if url_override:
        redirect_client(client, url_override)
    return client


def redirect_client(client: Any, url_override: str) -> None:
    """Point every REST URL of ``client`` at ``url_override``'s scheme and host, in place."""
    target = urlsplit(url_override)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise ConfigurationError(
            f"invalid url_override {url_override!r}: expected e.g. 'http://127.0.0.1:8080'"
        )
    api = client.urls.get("api")
    if isinstance(api, str):
        client.urls["api"] = _rebase(api, target.scheme, target.netloc)
        return
    client.urls["api"] = {
        key: _rebase(value, target.scheme, target.netloc) if isinstance(value, str) else value
        for key, value in api.items()
    }


def _rebase(url: str, scheme: str, netloc: str) -> str:
    parts = urlsplit(url.replace("{hostname}", "placeholder.invalid"))
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def _market_family(market_type: str) -> str:
    key = str(market_type).strip().lower()
    if key not in _MARKET_TYPES:
        raise ConfigurationError(
            f"unsupported market type {market_type!r}; expected one of {sorted(_MARKET_TYPES)}"
        )
    return _MARKET_TYPES[key]


def is_perpetual_market(market_type: str) -> bool:
    """Whether ``market_type`` names the linear perpetuals (``futures``, ``usdm``, ``swap``)."""
    return _market_family(market_type) == "swap"


def ccxt_symbol(symbol: str, market_type: str = "spot") -> str:
    """The ccxt unified symbol of an exchange-native one: ``BTCUSDT`` -> ``BTC/USDT`` (spot)
    or ``BTC/USDT:USDT`` (linear perpetual). Already-unified symbols pass through."""
    if "/" in symbol:
        return symbol
    base, quote = split_symbol(symbol)
    if is_perpetual_market(market_type):
        return f"{base}/{quote}:{quote}"
    return f"{base}/{quote}"
