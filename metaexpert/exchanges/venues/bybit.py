"""Bybit (v5 unified API) through ccxt.

Differences handled here:
* hedge mode uses ``positionIdx`` 1 (long) / 2 (short); one-way derivatives use 0; spot
  sends none;
* ``reduceOnly`` is allowed in both position modes;
* the client order id is ``orderLinkId`` (looked up the same way);
* switching margin mode on a classic account needs the leverage; on a unified account it
  is account-wide; "not modified" answers (110025, 110026, 110043, 34036) mean already set;
* demo trading (``enable_demo_trading``) and testnet exist; both URLs contain
  ``{hostname}``, so an override replaces the whole entry;
* sub-accounts have their own API key pair: the subaccount name selects credentials
  (``METAEXPERT_BYBIT_<SUBACCOUNT>_API_KEY``); the API itself takes no subaccount header;
* equity (``account_figures``): the unified account states per coin ``walletBalance``,
  ``unrealisedPnl`` and ``equity`` (= wallet + unrealised); ccxt's ``total`` is the wallet
  balance, so equity taken from it ignored the PnL (recorded: USDT wallet 3322.2590,
  unrealised -17.9613, equity 3304.2977);
* ``fetch_order`` raises on unified accounts unless ``acknowledged``; ccxt points to
  fetchOpenOrder / fetchClosedOrder, which take an order id only. Orders are looked up in
  the open list, then the order history, both filtered by ``orderLinkId`` or ``orderId``;
* ``PartiallyFilledCanceled`` (an IOC/market remainder cancelled after a partial fill) is
  ``closed`` in ccxt; it is a cancellation with a partial fill. A spot market buy sized in
  the quote coin (``marketUnit=quoteCoin``) states ``qty`` in USDT: its base amount is the
  filled quantity;
* retCode 10016 ("System error. Please try again later"), 10019, 170007 and 170146/170147
  (timeouts) and a 503 are transient: the order may exist, so it is looked up, never
  rejected locally;
* executions of type ``Funding``/``Settle`` are funding payments, not fills;
* an order's ``cumExecFee`` names no currency: spot fees are charged in the coin received
  (base on a buy: the recorded 0.001614 BTC buy paid 0.000001614 BTC), derivative fees in
  the settlement coin;
* a classic account's ``tradeMode`` 0/1 names the position's margin mode (cross/isolated);
* order-book streams come in fixed depths (spot 1, 50, 200; derivatives 1, 50, 200, 1000;
  ccxt refuses any other ``limit``): a depth asked for is rounded up to the next one, and the
  book is cut back to it;
* a REST ticker carries no time: ``/v5/market/tickers`` states it once for the whole answer
  (``time``), which ccxt's ``fetchTicker`` drops, so the local clock stood in for the venue's
  (against a replaying sandbox, hours apart). The ticker is read with ccxt's own request and
  parser and stamped with that ``time``; websocket tickers carry ``ts`` and are left as ccxt
  parses them.
"""

from __future__ import annotations

import re
from typing import Any

import ccxt

from metaexpert.core.enums import ContractType, Exchange, MarketType, PositionSide
from metaexpert.core.order import Order, position_leg
from metaexpert.exchanges.mapping import AccountFigures
from metaexpert.exchanges.venues.base import (
    amend_in_place,
    amends_everything,
    apply_common_settings,
    find_entry,
    message_contains,
    number,
    parse_user_symbol,
    unified_symbol,
)

EXCHANGE = Exchange.BYBIT
SIDED_SETTINGS = False
DEFAULT_MAX_LEVERAGE = 100.0
#: Whether the venue serves candles of option markets (v5 market/kline takes spot, linear and
#: inverse only; ccxt sends an option as linear and Bybit answers 10001 'symbol invalid').
OPTION_CANDLES = False


def client_class_name(config: Any) -> str:
    return "bybit"


def client_options(config: Any) -> dict[str, Any]:
    if config.market_type is MarketType.SPOT:
        default_type, sub_type, types = "spot", None, ["spot"]
    elif config.market_type is MarketType.OPTIONS:
        default_type, sub_type, types = "option", None, ["option"]
    else:
        sub_type = "inverse" if config.contract_type is ContractType.INVERSE else "linear"
        default_type, types = "swap", [sub_type]
    options: dict[str, Any] = {
        "defaultType": default_type,
        "fetchMarkets": {"types": types},
        "fetchCurrencies": False,
        # Bybit migrated accounts to the unified trading account; stating it avoids two
        # private probing requests on every start.
        "enableUnifiedAccount": True,
        "enableUnifiedMargin": False,
    }
    if sub_type:
        options["defaultSubType"] = sub_type
    return options


def ccxt_symbol(symbol: str, market_type: MarketType, contract_type: ContractType | None) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` | ``BTC/USDT:USDT``; ``BTCUSD`` inverse -> ``BTC/USD:BTC``;
    ``BTC-26DEC25-100000-C`` -> ``BTC/USDC:USDC-251226-100000-C``."""
    parsed = parse_user_symbol(symbol, default_option_quote="USDC")
    return unified_symbol(parsed, market_type, contract_type)


def _position_index(order: Order) -> int:
    """Bybit's hedge-mode ``positionIdx``: 1 for the long leg, 2 for the short leg."""
    return (
        1
        if position_leg(order.side, order.reduce_only, order.position_side) is PositionSide.LONG
        else 2
    )


def order_params(order: Order, config: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"orderLinkId": order.client_order_id}
    if config.market_type is MarketType.SPOT:
        return params
    params["positionIdx"] = _position_index(order) if config.hedged else 0
    if order.reduce_only:
        params["reduceOnly"] = True
    return params


def client_order_id_params(client_order_id: str) -> dict[str, Any]:
    return {"orderLinkId": client_order_id}


def leverage_params(config: Any, position_side: PositionSide | None) -> dict[str, Any]:
    return {}


def margin_mode_params(
    config: Any, margin_mode: Any, leverage: float | None, position_side: PositionSide | None
) -> dict[str, Any]:
    return {"leverage": leverage} if leverage else {}


def position_mode_params(config: Any) -> dict[str, Any]:
    return {}


def is_already_set(exc: BaseException) -> bool:
    return message_contains(exc, "110025", "110026", "110043", "34036", "not modified")


def is_duplicate_client_order_id(exc: BaseException) -> bool:
    return message_contains(exc, "110072", "OrderLinkedID is duplicate", "orderLinkId is duplicate")


def acceptance_window_ms(client: Any) -> int | None:
    """Bybit rejects requests older than ``recv_window`` (ccxt option ``recvWindow``)."""
    return int(client.options.get("recvWindow", 5_000))


def configure_client(client: Any, config: Any) -> None:
    apply_common_settings(client, config)


def account_figures(info: Any, currency: str) -> AccountFigures | None:
    """Unified account: the coin's ``walletBalance``, ``equity`` and ``unrealisedPnl``."""
    if not isinstance(info, dict):
        return None
    result = info.get("result") or {}
    accounts = result.get("list") if isinstance(result, dict) else None
    if not isinstance(accounts, list) or not accounts or not isinstance(accounts[0], dict):
        return None
    coin = find_entry(accounts[0].get("coin"), "coin", currency)
    if coin is None:
        return None
    wallet = number(coin.get("walletBalance"))
    equity = number(coin.get("equity")) if coin.get("equity") not in (None, "") else wallet
    return AccountFigures(
        balance=wallet, equity=equity, unrealized_pnl=number(coin.get("unrealisedPnl"))
    )


_CANCELLED_AFTER_FILL = frozenset({"PartiallyFilledCanceled", "PartiallyFilledCancelled"})


def normalize_order(snapshot: dict[str, Any]) -> dict[str, Any]:
    info = snapshot.get("info") if isinstance(snapshot.get("info"), dict) else {}
    status = str(info.get("orderStatus") or "")
    fixed = dict(snapshot)
    if status in _CANCELLED_AFTER_FILL:
        fixed["status"] = "canceled"
    if str(info.get("marketUnit") or "") == "quoteCoin" and str(fixed.get("status")) in {
        "closed",
        "canceled",
    }:
        fixed["amount"] = fixed.get("filled")
        fixed["remaining"] = 0.0
    if not fixed.get("fee") and number(info.get("cumExecFee")):
        fixed["fee"] = {"cost": number(info.get("cumExecFee")), "currency": _fee_currency(fixed)}
    return fixed


def _fee_currency(snapshot: dict[str, Any]) -> str:
    """Bybit charges spot fees in the coin received (base on a buy, quote on a sell) and
    derivative fees in the settlement coin; ``cumExecFee`` itself names no currency."""
    symbol = str(snapshot.get("symbol") or "")
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    if settle:
        return settle.split("-")[0]
    return base if str(snapshot.get("side")) == "buy" else quote


def normalize_position(raw: dict[str, Any]) -> dict[str, Any]:
    info = raw.get("info") if isinstance(raw.get("info"), dict) else {}
    if raw.get("marginMode") is None and str(info.get("tradeMode")) in {"0", "1"}:
        fixed = dict(raw)
        fixed["marginMode"] = "cross" if str(info.get("tradeMode")) == "0" else "isolated"
        return fixed
    return raw


def normalize_trade(raw: dict[str, Any]) -> dict[str, Any] | None:
    info = raw.get("info") if isinstance(raw.get("info"), dict) else {}
    if str(info.get("execType") or "Trade") in {"Funding", "Settle", "Delivery", "BustTrade"}:
        return None
    return raw


_TRANSIENT_CODES = re.compile(r'"retCode"\s*:\s*"?(10016|10019|170007|170146|170147)\b')


def is_transient(exc: BaseException) -> bool:
    return bool(_TRANSIENT_CODES.search(str(exc)))


def conditional_params(order: Order, config: Any) -> dict[str, Any]:
    """Spot conditional orders sit behind ``orderFilter=StopOrder``; derivatives lists hold all."""
    if config.market_type is MarketType.SPOT and order.order_type.is_conditional:
        return {"trigger": True}
    return {}


def conditional_listing_params(config: Any) -> dict[str, Any] | None:
    return {"trigger": True} if config.market_type is MarketType.SPOT else None


async def fetch_order(
    client: Any, order_id: str | None, symbol: str, params: dict[str, Any]
) -> Any:
    """Open orders first, then the order history, by ``orderLinkId`` or ``orderId``."""
    query = dict(params)
    link = query.get("orderLinkId")
    if order_id:
        query["orderId"] = order_id
    for listing in (client.fetch_open_orders, client.fetch_canceled_and_closed_orders):
        for snapshot in await listing(symbol, None, None, dict(query)):
            if (link and snapshot.get("clientOrderId") == link) or (
                order_id and snapshot.get("id") == order_id
            ):
                return snapshot
    raise ccxt.OrderNotFound(
        f"bybit order {order_id or link} not found among open orders or order history"
    )


async def fetch_ticker(client: Any, symbol: str) -> dict[str, Any]:
    """ccxt's ``fetchTicker`` request and parser, stamped with the answer's ``time``."""
    if client.markets is None:
        await client.load_markets()
    market = client.market(symbol)
    category, params = client.get_bybit_type("fetchTicker", market, {})
    response = await client.publicGetV5MarketTickers(
        {**params, "symbol": market["id"], "category": category}
    )
    result = response.get("result") if isinstance(response, dict) else None
    rows = result.get("list") if isinstance(result, dict) else None
    raw = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}
    ticker: dict[str, Any] = client.parse_ticker(raw, market)
    stamp = response.get("time") if isinstance(response, dict) else None
    if ticker.get("timestamp") is None and stamp is not None:
        ticker["timestamp"] = int(stamp)
        ticker["datetime"] = client.iso8601(int(stamp))
    return ticker


_BOOK_DEPTHS = {MarketType.SPOT: (1, 50, 200)}
_DERIVATIVE_BOOK_DEPTHS = (1, 50, 200, 1000)


def order_book_depth(limit: int | None, config: Any) -> int | None:
    """The smallest depth Bybit streams that holds ``limit`` levels (the largest beyond it)."""
    if limit is None:
        return None
    depths = _BOOK_DEPTHS.get(config.market_type, _DERIVATIVE_BOOK_DEPTHS)
    return next((depth for depth in depths if depth >= limit), depths[-1])


amend_arguments = amend_in_place
modify_by_replace = amends_everything
