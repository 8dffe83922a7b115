"""Building a real ccxt client pointed at the sandbox (URL override only, nothing patched).

Why a helper: pointing binance at a loopback server needs four settings that are easy to miss
(urls, the market types to load, and switching off the currency and margin-pair loads that call
private endpoints the sandbox does not serve); getting them in one place keeps every test and
every helper honest about what it changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metaexpert.sandbox.server import SandboxServer

SUPPORTED = {
    "binance": "spot",
    "binanceusdm": "linear",
    "binancecoinm": "inverse",
    "bybit": "unified",
    "okx": "unified",
}
VENUE_OF = {
    "binance": "binance",
    "binanceusdm": "binance",
    "binancecoinm": "binance",
    "bybit": "bybit",
    "okx": "okx",
}


def make_ccxt_client(
    exchange_id: str,
    sandbox: SandboxServer,
    api_key: str | None = None,
    secret: str | None = None,
    async_: bool = False,
    options: dict[str, Any] | None = None,
    **config: Any,
) -> Any:
    """A ccxt ``binance`` (spot) or ``binanceusdm`` (USD-M) client talking to ``sandbox``.

    ``async_=True`` returns the ccxt.pro client (websockets included); remember to ``await
    client.close()``. ``config`` is passed to the ccxt constructor (``timeout`` in ms, ...).
    """
    if exchange_id not in SUPPORTED:
        raise ValueError(f"the sandbox serves {sorted(SUPPORTED)}, got {exchange_id!r}")
    venue = getattr(sandbox.config, "venue", "binance")
    if VENUE_OF[exchange_id] != venue:
        raise ValueError(
            f"this sandbox serves the {venue} venue; {exchange_id!r} talks to {VENUE_OF[exchange_id]}"
        )
    if async_:
        import ccxt.pro as ccxt_module
    else:
        import ccxt as ccxt_module  # type: ignore[no-redef]
    market_type = SUPPORTED[exchange_id]
    settings: dict[str, Any] = {"enableRateLimit": False, **config}
    if api_key is not None:
        settings["apiKey"] = api_key
    if secret is not None:
        settings["secret"] = secret
    client = getattr(ccxt_module, exchange_id)(settings)
    if exchange_id == "bybit":
        return _point_bybit(client, sandbox, options)
    if exchange_id == "okx":
        return _point_okx(client, sandbox, options)
    urls = sandbox.urls({"spot": "spot", "linear": "usdm", "inverse": "coinm"}[market_type])
    websocket_urls = urls.pop("ws")
    for key, value in urls.items():
        client.urls["api"][key] = value
    if "ws" in client.urls["api"]:
        client.urls["api"]["ws"].update(
            {key: value for key, value in websocket_urls.items() if key != "ws-api"}
        )
        client.urls["api"]["ws"]["ws-api"] = {
            **client.urls["api"]["ws"].get("ws-api", {}),
            **websocket_urls["ws-api"],
        }
    client.options["fetchMarkets"] = {"types": [market_type]}
    client.options["fetchCurrencies"] = False
    client.options["fetchMargins"] = False
    client.options["defaultType"] = "spot" if market_type == "spot" else "swap"
    client.options.update(options or {})
    return client


def _point_bybit(client: Any, sandbox: SandboxServer, options: dict[str, Any] | None) -> Any:
    """Bybit: every ``urls['api']`` entry contains ``{hostname}``, so each is overwritten
    (the websocket ones too, for a ccxt.pro client)."""
    urls = sandbox.urls()
    websocket_urls = urls.pop("ws")
    for key, value in urls.items():
        client.urls["api"][key] = value
    if "ws" in client.urls["api"]:
        client.urls["api"]["ws"] = websocket_urls
    types = ["spot", "linear", "inverse"]
    if sandbox.config.option_underlyings:
        types.append("option")
    client.options["fetchMarkets"] = {"types": types, "options": ["BTC"]}
    client.options["fetchCurrencies"] = False
    client.options["loadAllOptions"] = False
    client.options.update(options or {})
    return client


def _point_okx(client: Any, sandbox: SandboxServer, options: dict[str, Any] | None) -> Any:
    """OKX: demo trading (the ``x-simulated-trading: 1`` header), the REST url, and the
    passphrase of the sandbox account the key belongs to."""
    client.set_sandbox_mode(True)
    urls = sandbox.urls()
    client.urls["api"]["rest"] = urls["rest"]
    if "ws" in client.urls["api"]:
        client.urls["api"]["ws"] = urls["ws"]
    for account in sandbox.config.accounts:
        if account.api_key == client.apiKey and not client.password:
            client.password = account.passphrase
    types = ["spot", "swap"] + (["option"] if sandbox.config.option_underlyings else [])
    client.options["fetchMarkets"] = {"types": types}
    client.options["defaultUnderlying"] = [
        f"{name[:-4]}-USD" for name in sandbox.config.option_underlyings
    ]
    client.options.update(options or {})
    return client
