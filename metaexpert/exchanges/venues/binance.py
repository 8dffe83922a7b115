"""Binance through ccxt: spot (``binance``), USD-M (``binanceusdm``), COIN-M (``binancecoinm``).

Differences handled here:
* hedge mode needs ``positionSide`` LONG/SHORT on every futures order, and Binance rejects
  ``reduceOnly`` together with it (the side already says opening or closing);
* the client order id travels as ``newClientOrderId`` and is looked up as ``origClientOrderId``;
* "No need to change margin type / position side" answers mean the setting is already right;
* duplicate client ids come back as -2010 "Duplicate order sent." (spot) or -4116 (futures);
* markets are loaded for the configured type only, and without the private currency and
  margin endpoints when the REST URL is overridden (a local sandbox serves neither);
* equity (``account_figures``): futures accounts state per asset ``walletBalance``,
  ``unrealizedProfit`` and ``marginBalance`` (= wallet + unrealised); ccxt's ``total`` is
  the margin balance already, so adding ``totalUnrealizedProfit`` to it counted the PnL
  twice (recorded USD-M account: wallet 3.7296, unrealised 0.5424, margin 4.2720). Spot
  has no PnL: the coin's total is the equity;
* USD-M and COIN-M conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET ...) live in the
  separate algo-order API since late 2025: ccxt creates them there, and looks them up,
  cancels and lists them there when ``trigger=True`` is passed (client id ``clientAlgoId``).
Binance options are USDT-settled European options (ccxt ``defaultType='option'``).
"""

from __future__ import annotations

import re
from typing import Any

from metaexpert.core.enums import ContractType, Exchange, MarketType, PositionSide
from metaexpert.core.order import Order, position_leg
from metaexpert.exchanges.mapping import AccountFigures
from metaexpert.exchanges.venues.base import (
    amend_in_place,
    any_order_book_depth,
    apply_common_settings,
    fetch_order_directly,
    fetch_ticker_directly,
    find_entry,
    keep_order,
    keep_position,
    keep_trade,
    message_contains,
    number,
    parse_user_symbol,
    unified_symbol,
)

EXCHANGE = Exchange.BINANCE
SIDED_SETTINGS = False
DEFAULT_MAX_LEVERAGE = 125.0
#: Whether the venue serves candles of option markets (eapi/v1/klines serves option candles).
OPTION_CANDLES = True


def client_class_name(config: Any) -> str:
    if config.market_type is MarketType.FUTURES:
        return "binancecoinm" if config.contract_type is ContractType.INVERSE else "binanceusdm"
    return "binance"


def _market_types(config: Any) -> list[str]:
    if config.market_type is MarketType.SPOT:
        return ["spot"]
    if config.market_type is MarketType.OPTIONS:
        return ["option"]
    return ["inverse"] if config.contract_type is ContractType.INVERSE else ["linear"]


def client_options(config: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "fetchMarkets": {"types": _market_types(config)},
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    }
    if config.market_type is MarketType.OPTIONS:
        options["defaultType"] = "option"
    if config.base_url:
        options["fetchCurrencies"] = False
        options["fetchMargins"] = False
    return options


def ccxt_symbol(symbol: str, market_type: MarketType, contract_type: ContractType | None) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` | ``BTC/USDT:USDT``; ``BTCUSD_PERP`` -> ``BTC/USD:BTC``;
    ``BTCUSDT_261225`` -> ``BTC/USDT:USDT-261225``; ``BTC-261225-100000-C`` -> option."""
    parsed = parse_user_symbol(symbol, default_option_quote="USDT")
    return unified_symbol(parsed, market_type, contract_type)


def order_params(order: Order, config: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"newClientOrderId": order.client_order_id}
    if config.market_type is MarketType.SPOT:
        return params
    if config.hedged:
        params["positionSide"] = position_leg(
            order.side, order.reduce_only, order.position_side
        ).value.upper()
    elif order.reduce_only:
        params["reduceOnly"] = True
    return params


def client_order_id_params(client_order_id: str) -> dict[str, Any]:
    return {"origClientOrderId": client_order_id}


def leverage_params(config: Any, position_side: PositionSide | None) -> dict[str, Any]:
    return {}


def margin_mode_params(
    config: Any, margin_mode: Any, leverage: float | None, position_side: PositionSide | None
) -> dict[str, Any]:
    return {}


def position_mode_params(config: Any) -> dict[str, Any]:
    return {}


def is_already_set(exc: BaseException) -> bool:
    return message_contains(exc, "No need to change", "-4046", "-4059")


def is_duplicate_client_order_id(exc: BaseException) -> bool:
    return message_contains(exc, "Duplicate order sent", "ClientOrderId is duplicated", "-4116")


def acceptance_window_ms(client: Any) -> int | None:
    """Binance rejects a signed request that reaches the engine after ``recvWindow``: once it
    has passed, a request that timed out can no longer create an order."""
    return int(client.options.get("recvWindow", 10_000))


def configure_client(client: Any, config: Any) -> None:
    apply_common_settings(client, config)


normalize_order = keep_order
normalize_position = keep_position
normalize_trade = keep_trade
fetch_order = fetch_order_directly
fetch_ticker = fetch_ticker_directly
order_book_depth = any_order_book_depth
amend_arguments = amend_in_place


def modify_by_replace(order: Order, config: Any) -> bool:
    """USD-M and COIN-M conditional orders live on the algo API, which has no amend: they are
    moved by cancel and replace (``exchanges/modify.py``)."""
    return config.market_type is MarketType.FUTURES and order.order_type.is_conditional


def account_figures(info: Any, currency: str) -> AccountFigures | None:
    """USD-M / COIN-M: the asset's ``walletBalance``, ``marginBalance`` and ``unrealizedProfit``."""
    if not isinstance(info, dict):
        return None
    asset = find_entry(info.get("assets"), "asset", currency)
    if asset is None:
        return None
    return AccountFigures(
        balance=number(asset.get("walletBalance")),
        equity=number(asset.get("marginBalance")),
        unrealized_pnl=number(asset.get("unrealizedProfit")),
        used_margin=number(asset.get("initialMargin")),
    )


def is_transient(exc: BaseException) -> bool:
    """-1001 "Internal error; unable to process your request" and -1007 "Timeout waiting for
    response from backend server" leave a request's fate open (ccxt maps them itself)."""
    return bool(_TRANSIENT_CODES.search(str(exc)))


_TRANSIENT_CODES = re.compile(r'"code"\s*:\s*(-1001|-1007)\b')


def conditional_params(order: Order, config: Any) -> dict[str, Any]:
    if config.market_type is MarketType.FUTURES and order.order_type.is_conditional:
        return {"trigger": True}
    return {}


def conditional_listing_params(config: Any) -> dict[str, Any] | None:
    """Futures conditional orders are listed by the algo API, apart from plain open orders."""
    return {"trigger": True} if config.market_type is MarketType.FUTURES else None
