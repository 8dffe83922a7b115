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
  (``METAEXPERT_BYBIT_<SUBACCOUNT>_API_KEY``); the API itself takes no subaccount header.
"""

from __future__ import annotations

from typing import Any

from metaexpert.core.enums import ContractType, Exchange, MarketType, PositionSide
from metaexpert.core.order import Order, position_leg
from metaexpert.exchanges.venues.base import (
    apply_common_settings,
    message_contains,
    parse_user_symbol,
    unified_symbol,
)

EXCHANGE = Exchange.BYBIT
SIDED_SETTINGS = False
DEFAULT_MAX_LEVERAGE = 100.0


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
    return 1 if position_leg(order.side, order.reduce_only, order.position_side) is PositionSide.LONG else 2


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
