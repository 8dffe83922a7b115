"""What every venue module provides, and the symbol parsing they share.

Each venue module (``binance``, ``bybit``, ``okx``) exposes the same small set of
functions (like an adapter in NautilusTrader): which ccxt class to use, how a user symbol
becomes a ccxt symbol, the order parameters for hedge mode / margin mode / reduce-only /
client order id, the leverage and margin-mode call parameters, how to recognise "already
set" answers, and how to point the client at testnet, demo or a local URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from metaexpert.core.enums import ContractType, Exchange, MarketType, PositionSide
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.market import split_symbol
from metaexpert.core.order import Order
from metaexpert.exchanges.mapping import AccountFigures

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class VenueModule(Protocol):
    """The functions each ``venues/<exchange>.py`` module defines."""

    EXCHANGE: Exchange
    DEFAULT_MAX_LEVERAGE: float
    SIDED_SETTINGS: bool
    OPTION_CANDLES: bool

    def client_class_name(self, config: Any) -> str: ...
    def client_options(self, config: Any) -> dict[str, Any]: ...
    def ccxt_symbol(
        self, symbol: str, market_type: MarketType, contract_type: ContractType | None
    ) -> str: ...
    def order_params(self, order: Order, config: Any) -> dict[str, Any]: ...
    def client_order_id_params(self, client_order_id: str) -> dict[str, Any]: ...
    def leverage_params(
        self, config: Any, position_side: PositionSide | None
    ) -> dict[str, Any]: ...
    def margin_mode_params(
        self,
        config: Any,
        margin_mode: Any,
        leverage: float | None,
        position_side: PositionSide | None,
    ) -> dict[str, Any]: ...
    def position_mode_params(self, config: Any) -> dict[str, Any]: ...
    def is_already_set(self, exc: BaseException) -> bool: ...
    def is_duplicate_client_order_id(self, exc: BaseException) -> bool: ...
    def acceptance_window_ms(self, client: Any) -> int | None: ...
    def configure_client(self, client: Any, config: Any) -> None: ...
    # Reading the venue's answers (conformance-tested against recorded payloads).
    def account_figures(self, info: Any, currency: str) -> AccountFigures | None: ...
    def normalize_order(self, snapshot: dict[str, Any]) -> dict[str, Any]: ...
    def normalize_position(self, raw: dict[str, Any]) -> dict[str, Any]: ...
    def normalize_trade(self, raw: dict[str, Any]) -> dict[str, Any] | None: ...
    def is_transient(self, exc: BaseException) -> bool: ...
    # Conditional (algo) orders: where the venue keeps them apart from plain orders.
    def conditional_params(self, order: Order, config: Any) -> dict[str, Any]: ...
    def conditional_listing_params(self, config: Any) -> dict[str, Any] | None: ...
    async def fetch_order(
        self, client: Any, order_id: str | None, symbol: str, params: dict[str, Any]
    ) -> Any: ...
    async def fetch_ticker(self, client: Any, symbol: str) -> dict[str, Any]: ...
    def order_book_depth(self, limit: int | None, config: Any) -> int | None: ...
    def amend_arguments(
        self, order: Order, order_type: str, params: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]: ...
    def modify_by_replace(self, order: Order, config: Any) -> bool: ...


@dataclass(frozen=True, slots=True)
class ParsedSymbol:
    """A user symbol broken into parts: enough to build any ccxt symbol."""

    base: str
    quote: str
    expiry: str | None = None  # YYMMDD
    strike: str | None = None
    option_kind: str | None = None  # "C" or "P"


def normalise_expiry(text: str) -> str:
    """``261225`` or ``26DEC25`` (Bybit) or ``20261225`` -> ``261225``."""
    text = text.upper()
    if re.fullmatch(r"\d{6}", text):
        return text
    if re.fullmatch(r"\d{8}", text):
        return text[2:]
    match = re.fullmatch(r"(\d{1,2})([A-Z]{3})(\d{2})", text)
    if match and match.group(2) in _MONTHS:
        day, month, year = match.groups()
        return f"{year}{_MONTHS.index(month) + 1:02d}{int(day):02d}"
    raise ConfigurationError(
        f"cannot read expiry {text!r}: expected YYMMDD (261225) or DDMMMYY (26DEC25)"
    )


def parse_user_symbol(symbol: str, *, default_option_quote: str = "USDT") -> ParsedSymbol:
    """Read ``BTCUSDT``, ``BTC/USDT``, ``BTC-USDT``, ``BTCUSDT_261225``, ``BTC-USD-SWAP``,
    ``BTC-261225-100000-C`` (option), ``BTC-USD-261225-100000-C`` (OKX option)."""
    text = symbol.strip().upper()
    if not text:
        raise ConfigurationError("empty symbol")
    parts = re.split(r"[-_]", text)
    if len(parts) >= 4 and parts[-1] in {"C", "P"}:
        option_kind, strike, expiry = parts[-1], parts[-2], parts[-3]
        head = parts[:-3]
        base = head[0]
        quote = head[1] if len(head) > 1 else default_option_quote
        return ParsedSymbol(base, quote, normalise_expiry(expiry), strike, option_kind)
    if len(parts) >= 2 and parts[-1] == "SWAP":
        parts = parts[:-1]
    if len(parts) >= 2 and parts[-1] == "PERP":
        parts = parts[:-1]
    expiry = None
    if len(parts) >= 2 and re.fullmatch(r"\d{6}|\d{8}|\d{1,2}[A-Z]{3}\d{2}", parts[-1]):
        expiry = normalise_expiry(parts[-1])
        parts = parts[:-1]
    joined = "-".join(parts)
    try:
        base, quote = split_symbol(joined)
    except ValueError:
        raise ConfigurationError(
            f"cannot read symbol {symbol!r}: expected a form like BTCUSDT or BTC/USDT"
        ) from None
    return ParsedSymbol(base, quote, expiry)


def unified_symbol(
    parsed: ParsedSymbol,
    market_type: MarketType,
    contract_type: ContractType | None,
    *,
    option_settle: str | None = None,
) -> str:
    """The ccxt symbol for a parsed user symbol and the configured market."""
    base, quote = parsed.base, parsed.quote
    if market_type is MarketType.SPOT:
        if parsed.expiry:
            raise ConfigurationError(f"{base}{quote} with an expiry is not a spot symbol")
        return f"{base}/{quote}"
    inverse = contract_type is ContractType.INVERSE
    if inverse and quote in {"USDT", "USDC"}:
        quote = "USD"
    settle = base if inverse else quote
    if market_type is MarketType.OPTIONS:
        if not parsed.strike:
            raise ConfigurationError(
                f"{base}{quote} is not an option symbol: expected BASE-YYMMDD-STRIKE-C/P"
            )
        settle = option_settle or settle
        return f"{base}/{quote}:{settle}-{parsed.expiry}-{parsed.strike}-{parsed.option_kind}"
    suffix = f"-{parsed.expiry}" if parsed.expiry else ""
    return f"{base}/{quote}:{settle}{suffix}"


def is_ccxt_symbol(symbol: str) -> bool:
    return "/" in symbol and (":" in symbol or symbol.count("/") == 1)


def override_rest_urls(api_urls: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Point every REST entry of ``urls['api']`` at ``base_url``, keeping each path.

    ``https://fapi.binance.com/fapi/v1`` becomes ``<base_url>/fapi/v1``; templated hosts
    (``https://api.{hostname}``) become ``<base_url>``. Websocket entries are left alone.
    """
    result: dict[str, Any] = {}
    for key, value in api_urls.items():
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            path = urlsplit(value.replace("{hostname}", "placeholder.invalid")).path
            result[key] = base_url + path
        else:
            result[key] = value
    return result


def merge_websocket_urls(current: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into ccxt's ``urls['api']['ws']`` (nested per market type)."""
    merged: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_websocket_urls(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_common_settings(client: Any, config: Any) -> None:
    """Testnet/demo switches, URL overrides, proxy and timeout: the same for every venue."""
    if config.testnet:
        client.set_sandbox_mode(True)
    if config.demo:
        client.enable_demo_trading(True)
    api = client.urls.get("api")
    if config.base_url and isinstance(api, dict):
        client.urls["api"] = override_rest_urls(api, config.base_url)
        api = client.urls["api"]
    if config.websocket_urls and isinstance(api, dict):
        overrides = config.websocket_urls
        api["ws"] = (
            overrides
            if isinstance(overrides, str)  # one URL for every stream (OKX's /ws/v5)
            else merge_websocket_urls(api.get("ws"), overrides)
        )
    if config.proxy:
        if config.proxy.startswith("socks"):
            client.socksProxy = config.proxy
        elif config.proxy.startswith("https"):
            client.httpsProxy = config.proxy
        else:
            client.httpProxy = config.proxy
    client.timeout = config.timeout_ms


def message_contains(exc: BaseException, *needles: str) -> bool:
    text = str(exc).lower()
    return any(needle.lower() in text for needle in needles)


# ------------------------------------------------------------- shared defaults
def keep_order(snapshot: dict[str, Any]) -> dict[str, Any]:
    return snapshot


def keep_position(raw: dict[str, Any]) -> dict[str, Any]:
    return raw


def keep_trade(raw: dict[str, Any]) -> dict[str, Any] | None:
    return raw


def number(value: Any) -> float:
    """A venue's numeric string as float ("" and None are 0.0)."""
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def find_entry(entries: Any, key: str, currency: str) -> dict[str, Any] | None:
    """The entry of ``entries`` (a list of dicts) whose ``key`` is ``currency``."""
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get(key) or "").upper() == currency.upper():
            return entry
    return None


async def fetch_order_directly(
    client: Any, order_id: str | None, symbol: str, params: dict[str, Any]
) -> Any:
    """``fetch_order`` where the venue answers one order by id or client order id."""
    return await client.fetch_order(order_id, symbol, params)


def amend_in_place(
    order: Order, order_type: str, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``editOrder``'s type and params: those the order was created with."""
    return order_type, params


def amends_everything(order: Order, config: Any) -> bool:
    """The venue amends every order in place (``modify_by_replace`` is never needed)."""
    return False


def any_order_book_depth(limit: int | None, config: Any) -> int | None:
    """The depth as asked: the venue streams any (Binance diff depth, OKX ``books``)."""
    return limit


async def fetch_ticker_directly(client: Any, symbol: str) -> dict[str, Any]:
    """``fetch_ticker`` where ccxt's ticker carries the venue's time."""
    ticker: dict[str, Any] = await client.fetch_ticker(symbol)
    return ticker
