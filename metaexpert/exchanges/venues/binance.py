"""Binance through ccxt: spot (``binance``), USD-M (``binanceusdm``), COIN-M (``binancecoinm``).

Differences handled here:
* hedge mode needs ``positionSide`` LONG/SHORT on every futures order, and Binance rejects
  ``reduceOnly`` together with it (the side already says opening or closing);
* the client order id travels as ``newClientOrderId`` and is looked up as ``origClientOrderId``;
* "No need to change margin type / position side" answers mean the setting is already right;
* duplicate client ids come back as -2010 "Duplicate order sent." (spot) or -4116 (futures);
* markets are loaded for the configured type only, and without the private currency and
  margin endpoints when the REST URL is overridden (a local sandbox serves neither).
Binance options are USDT-settled European options (ccxt ``defaultType='option'``).
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

EXCHANGE = Exchange.BINANCE
SIDED_SETTINGS = False
DEFAULT_MAX_LEVERAGE = 125.0


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
        params["positionSide"] = position_leg(order.side, order.reduce_only, order.position_side).value.upper()
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
