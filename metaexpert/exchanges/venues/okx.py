"""OKX (v5) through ccxt.

Differences handled here:
* every order names its trade mode ``tdMode``: ``cash`` on spot, ``isolated`` or ``cross``
  on derivatives;
* hedge (long/short) mode needs ``posSide`` long/short, and OKX refuses ``reduceOnly``
  there (the side says it); one-way (net) mode uses ``posSide=net`` and may reduce-only;
* the client order id is ``clOrdId``; duplicates answer 51016 "Duplicated clOrdId";
* leverage is set per margin mode (and per side for isolated hedge positions); a margin
  mode switch is a leverage call and needs the leverage;
* the API passphrase is ccxt's ``password``; there is no demo mode, testnet is the
  simulated-trading header (``set_sandbox_mode``); the REST URL contains ``{hostname}``.
* equity (``account_figures``): the trading account states per currency ``cashBal``,
  ``upl`` and ``eq`` (= cash + unrealised); ccxt's ``total`` is ``eq``;
* conditional orders (stop-loss, take-profit, trigger) are algo orders: created through
  ``order-algo``, looked up, cancelled (``cancel-algos``) and listed
  (``orders-algo-pending``) when ``trigger=True`` is passed, by ``algoClOrdId``, and amended
  in the algo book (``amend-algos``: ccxt's editOrder with the type ``conditional``);
* ``sCode`` 50001 (service temporarily unavailable), 50004 (endpoint timeout) and 50013
  (system busy) are transient.
OKX options are coin-margined (``BTC-USD-261225-100000-C`` -> ``BTC/USD:BTC-...``).
"""

from __future__ import annotations

import re
from typing import Any

from metaexpert.core.enums import ContractType, Exchange, MarginMode, MarketType, PositionSide
from metaexpert.core.order import Order, position_leg
from metaexpert.exchanges.mapping import AccountFigures
from metaexpert.exchanges.venues.base import (
    amends_everything,
    any_order_book_depth,
    apply_common_settings,
    fetch_order_directly,
    fetch_ticker_directly,
    find_entry,
    keep_position,
    keep_trade,
    message_contains,
    number,
    parse_user_symbol,
    unified_symbol,
)

EXCHANGE = Exchange.OKX
DEFAULT_MAX_LEVERAGE = 125.0
#: Whether the venue serves candles of option markets (market/candles serves option instIds).
OPTION_CANDLES = True
# Isolated leverage (and so the margin-mode switch) is set per position side in hedge mode.
SIDED_SETTINGS = True


def client_class_name(config: Any) -> str:
    return "okx"


def client_options(config: Any) -> dict[str, Any]:
    if config.market_type is MarketType.SPOT:
        default_type, types = "spot", ["spot"]
    elif config.market_type is MarketType.OPTIONS:
        default_type, types = "option", ["option"]
    else:
        default_type, types = "swap", ["swap", "future"]
    return {"defaultType": default_type, "fetchMarkets": {"types": types}}


def ccxt_symbol(symbol: str, market_type: MarketType, contract_type: ContractType | None) -> str:
    """``BTC-USDT`` -> ``BTC/USDT`` | ``BTC/USDT:USDT``; ``BTC-USD-SWAP`` inverse ->
    ``BTC/USD:BTC``; ``BTC-USD-261225-100000-C`` -> ``BTC/USD:BTC-261225-100000-C``."""
    parsed = parse_user_symbol(symbol, default_option_quote="USD")
    return unified_symbol(parsed, market_type, contract_type)


def _trade_mode(config: Any) -> str:
    if config.market_type is MarketType.SPOT:
        return "cash"
    return str(config.margin_mode.value)


def order_params(order: Order, config: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"clOrdId": order.client_order_id, "tdMode": _trade_mode(config)}
    if order.order_type.is_conditional:
        # The algo service keys its orders by ``algoClOrdId`` (``clOrdId`` there is the
        # deprecated field ccxt still fills): without it a stop cannot be looked up by client id.
        params["algoClOrdId"] = order.client_order_id
    if config.market_type is MarketType.SPOT:
        return params
    if config.hedged:
        params["posSide"] = position_leg(order.side, order.reduce_only, order.position_side).value
    else:
        params["posSide"] = "net"
        if order.reduce_only:
            params["reduceOnly"] = True
    return params


def client_order_id_params(client_order_id: str) -> dict[str, Any]:
    return {"clOrdId": client_order_id}


def leverage_params(config: Any, position_side: PositionSide | None) -> dict[str, Any]:
    params: dict[str, Any] = {"marginMode": str(config.margin_mode.value)}
    if config.hedged and config.margin_mode is MarginMode.ISOLATED and position_side is not None:
        params["posSide"] = position_side.value
    return params


def margin_mode_params(
    config: Any, margin_mode: Any, leverage: float | None, position_side: PositionSide | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"lever": int(leverage)} if leverage else {}
    isolated = margin_mode is not None and MarginMode(margin_mode) is MarginMode.ISOLATED
    if config.hedged and isolated and position_side is not None:
        params["posSide"] = position_side.value
    return params


def position_mode_params(config: Any) -> dict[str, Any]:
    return {}


def is_already_set(exc: BaseException) -> bool:
    return message_contains(exc, "already", "not modified", "No need to change")


def is_duplicate_client_order_id(exc: BaseException) -> bool:
    return message_contains(exc, "51016", "Duplicated clOrdId")


def acceptance_window_ms(client: Any) -> int | None:
    """OKX drops a request after its ``expTime`` header only when one is sent; ccxt sends
    none by default, so a short settling pause is all that can be offered."""
    return 2_000


def configure_client(client: Any, config: Any) -> None:
    apply_common_settings(client, config)
    if config.api_passphrase is not None:
        client.password = config.api_passphrase.get_secret_value()


def normalize_order(snapshot: dict[str, Any]) -> dict[str, Any]:
    """An algo order's client id is its ``algoClOrdId``; ccxt reads only ``clOrdId``, which the
    algo service leaves empty, so a stop listed at restart had no client id (not this run's)."""
    info = snapshot.get("info") if isinstance(snapshot.get("info"), dict) else {}
    if not snapshot.get("clientOrderId") and info.get("algoClOrdId"):
        return {**snapshot, "clientOrderId": str(info["algoClOrdId"])}
    return snapshot


normalize_position = keep_position
normalize_trade = keep_trade
fetch_order = fetch_order_directly
fetch_ticker = fetch_ticker_directly
order_book_depth = any_order_book_depth


modify_by_replace = amends_everything


def amend_arguments(
    order: Order, order_type: str, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A stop or target lives in the algo book: ccxt amends it there (``amend-algos``) when the
    type is ``conditional``, with the new order price of the leg (-1: at market). As a plain
    order it was sent to ``amend-order``, which answered 51603 "Order does not exist"."""
    if not order.order_type.is_conditional:
        return order_type, params
    leg_price = order.price if order.order_type.has_limit_price and order.price else -1
    fixed = dict(params)
    if "stopLossPrice" in fixed:
        fixed["newSlOrdPx"] = leg_price
    if "takeProfitPrice" in fixed:
        fixed["newTpOrdPx"] = leg_price
    return "conditional", fixed


def account_figures(info: Any, currency: str) -> AccountFigures | None:
    """Trading account: the currency's ``cashBal``, ``eq`` and ``upl``."""
    if not isinstance(info, dict):
        return None
    data = info.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    detail = find_entry(data[0].get("details"), "ccy", currency)
    if detail is None or "cashBal" not in detail:
        return None
    return AccountFigures(
        balance=number(detail.get("cashBal")),
        equity=number(detail.get("eq")),
        unrealized_pnl=number(detail.get("upl")),
    )


_TRANSIENT_CODES = re.compile(r'"s?[cC]ode"\s*:\s*"(50001|50004|50013)"')


def is_transient(exc: BaseException) -> bool:
    return bool(_TRANSIENT_CODES.search(str(exc)))


def conditional_params(order: Order, config: Any) -> dict[str, Any]:
    return {"trigger": True} if order.order_type.is_conditional else {}


def conditional_listing_params(config: Any) -> dict[str, Any] | None:
    return {"trigger": True, "ordType": "conditional"}
