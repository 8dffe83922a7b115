"""Binance order requests and order/fill payloads: the wire names of spot and USD-M/COIN-M.

Why here and not in the core: ``STOP_LOSS_LIMIT``, ``positionSide``, ``clientAlgoId``,
``cummulativeQuoteQty`` are Binance's words. Requests are parsed into the core's
``OrderRequest`` (type names mapped onto ``OrderKind``) and core orders rendered back exactly as
Binance sends them, including the algo-order shape of conditional futures orders (since late
2025 Binance keeps STOP_MARKET / TAKE_PROFIT_MARKET / TRAILING_STOP_MARKET in a separate
algo-order service; ``STOP_MARKET`` sent to ``/fapi/v1/order`` is rejected with -4120).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from metaexpert.sandbox.core.model import Fill, OrderKind, OrderRequest, SandboxOrder, fmt
from metaexpert.sandbox.venues.binance.errors import BinanceError, bad_parameter, missing_parameter

SPOT_TYPES: dict[str, OrderKind] = {
    "LIMIT": OrderKind.LIMIT,
    "MARKET": OrderKind.MARKET,
    "STOP_LOSS": OrderKind.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderKind.STOP_LIMIT,
    "TAKE_PROFIT": OrderKind.TAKE_PROFIT_MARKET,
    "TAKE_PROFIT_LIMIT": OrderKind.TAKE_PROFIT_LIMIT,
    "LIMIT_MAKER": OrderKind.LIMIT,
}
FUTURES_PLAIN_TYPES: dict[str, OrderKind] = {"LIMIT": OrderKind.LIMIT, "MARKET": OrderKind.MARKET}
FUTURES_ALGO_TYPES: dict[str, OrderKind] = {
    "STOP": OrderKind.STOP_LIMIT,
    "STOP_MARKET": OrderKind.STOP_MARKET,
    "TAKE_PROFIT": OrderKind.TAKE_PROFIT_LIMIT,
    "TAKE_PROFIT_MARKET": OrderKind.TAKE_PROFIT_MARKET,
    "TRAILING_STOP_MARKET": OrderKind.TRAILING_STOP_MARKET,
}
PRICED_TYPES = {
    "LIMIT",
    "LIMIT_MAKER",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT_LIMIT",
    "STOP",
    "TAKE_PROFIT",
}
#: Spot's TAKE_PROFIT is a market order on trigger (USD-M's TAKE_PROFIT is the limit one): a
#: spot target sent without a price was refused with -1102 "Mandatory parameter 'price'".
SPOT_PRICED_TYPES = {"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise missing_parameter(name)
    return value


def decimal(value: object, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise bad_parameter(name) from exc
    if not result.is_finite():
        raise bad_parameter(name)
    return result


def order_id(params: dict[str, str], name: str = "orderId") -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_parameter(name) from exc


def _side(params: dict[str, str]) -> str:
    side = required(params, "side").upper()
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    return side


def parse_spot_order(market: str, api_key: str, params: dict[str, str]) -> OrderRequest:
    symbol = required(params, "symbol")
    side = _side(params)
    order_type = required(params, "type").upper()
    if order_type not in SPOT_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    if order_type in SPOT_PRICED_TYPES and not params.get("price"):
        raise missing_parameter("price")
    price = decimal(params["price"], "price") if order_type in SPOT_PRICED_TYPES else None
    stop_price = 0.0
    if order_type in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
        stop_price = float(decimal(required(params, "stopPrice"), "stopPrice"))
    quote_quantity = 0.0
    quantity: Decimal | None
    if order_type == "MARKET" and "quoteOrderQty" in params and "quantity" not in params:
        quote_quantity = float(decimal(params["quoteOrderQty"], "quoteOrderQty"))
        quantity = None
    else:
        quantity = decimal(required(params, "quantity"), "quantity")
    if order_type in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and not params.get(
        "timeInForce"
    ):
        raise missing_parameter("timeInForce")
    time_in_force = params.get("timeInForce", "GTC").upper()
    if time_in_force not in ("GTC", "IOC", "FOK"):
        raise BinanceError(-1115, "Invalid timeInForce.")
    return OrderRequest(
        market=market,
        api_key=api_key,
        symbol=symbol,
        side=side,
        kind=SPOT_TYPES[order_type],
        venue_type=order_type,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=time_in_force,
        client_order_id=params.get("newClientOrderId") or None,
        post_only=order_type == "LIMIT_MAKER",
        quote_quantity=quote_quantity,
    )


def parse_futures_order(
    market: str, api_key: str, params: dict[str, str], *, algo: bool
) -> OrderRequest:
    symbol = required(params, "symbol")
    side = _side(params)
    type_key = "type" if "type" in params or not algo else "orderType"
    order_type = required(params, type_key).upper()
    if algo:
        if params.get("algoType", "CONDITIONAL").upper() != "CONDITIONAL":
            raise BinanceError(-1116, "Invalid algoType.")
        if order_type not in FUTURES_ALGO_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        kind = FUTURES_ALGO_TYPES[order_type]
    elif order_type in FUTURES_ALGO_TYPES:
        raise BinanceError(
            -4120,
            "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
        )
    elif order_type not in FUTURES_PLAIN_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    else:
        kind = FUTURES_PLAIN_TYPES[order_type]
    position_side = params.get("positionSide", "BOTH").upper()
    if position_side not in ("BOTH", "LONG", "SHORT"):
        raise BinanceError(-4006, "Invalid position side.")
    reduce_only = params.get("reduceOnly", "false").lower() == "true"
    close_position = params.get("closePosition", "false").lower() == "true"
    needs_price = order_type in ("LIMIT", "STOP", "TAKE_PROFIT")
    if needs_price and not params.get("price"):
        raise missing_parameter("price")
    if order_type == "LIMIT" and not params.get("timeInForce"):
        raise missing_parameter("timeInForce")
    price = decimal(params["price"], "price") if needs_price else None
    stop_price, callback_rate, activation = 0.0, 0.0, 0.0
    if kind is OrderKind.TRAILING_STOP_MARKET:
        callback_rate = float(decimal(required(params, "callbackRate"), "callbackRate"))
        if not 0.1 <= callback_rate <= 10:
            raise BinanceError(-2007, "Invalid callBackRate.")
        raw_activation = params.get("activatePrice") or params.get("activationPrice")
        activation = float(decimal(raw_activation, "activatePrice")) if raw_activation else 0.0
    elif order_type in FUTURES_ALGO_TYPES:
        stop_price = float(
            decimal(required(params, "triggerPrice" if algo else "stopPrice"), "triggerPrice")
        )
    quantity = None if close_position else decimal(required(params, "quantity"), "quantity")
    time_in_force = params.get("timeInForce", "GTC").upper()
    if time_in_force not in ("GTC", "IOC", "FOK", "GTX", "GTD"):
        raise BinanceError(-1115, "Invalid timeInForce.")
    return OrderRequest(
        market=market,
        api_key=api_key,
        symbol=symbol,
        side=side,
        kind=kind,
        venue_type=order_type,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=time_in_force,
        client_order_id=params.get("clientAlgoId" if algo else "newClientOrderId") or None,
        position_side=position_side,
        reduce_only=reduce_only,
        close_position=close_position,
        post_only=kind is OrderKind.LIMIT and time_in_force == "GTX",
        algo=algo,
        callback_rate=callback_rate,
        activation_price=activation,
    )


# ---------------------------------------------------------------------- payloads
def spot_fill(fill: Fill) -> dict[str, object]:
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": fmt(fill.price),
        "qty": fmt(fill.quantity),
        "quoteQty": fmt(fill.quote_quantity),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time,
        "isBuyer": fill.side == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def futures_fill(fill: Fill) -> dict[str, object]:
    return {
        "buyer": fill.side == "BUY",
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "id": fill.trade_id,
        "maker": fill.is_maker,
        "orderId": fill.order_id,
        "price": fmt(fill.price),
        "qty": fmt(fill.quantity),
        "quoteQty": fmt(fill.quote_quantity),
        "realizedPnl": fmt(fill.realized_pnl),
        "side": fill.side,
        "positionSide": fill.position_side,
        "symbol": fill.symbol,
        "time": fill.time,
    }


def spot_order(order: SandboxOrder) -> dict[str, object]:
    working = order.time if (not order.is_conditional or order.triggered) else -1
    result: dict[str, object] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_quantity),
        "cummulativeQuoteQty": fmt(order.cumulative_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": fmt(order.stop_price),
        "icebergQty": "0",
        "time": order.time,
        "updateTime": order.update_time or order.time,
        "isWorking": working != -1,
        "workingTime": working,
        "origQuoteOrderQty": fmt(order.quote_order_quantity),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    return result


def spot_order_ack(order: SandboxOrder) -> dict[str, object]:
    """The ``newOrderRespType=FULL`` answer to a new spot order."""
    result = spot_order(order)
    for key in ("time", "updateTime", "isWorking", "icebergQty"):
        result.pop(key)
    result["transactTime"] = order.time
    result["fills"] = [
        {
            "price": fmt(fill.price),
            "qty": fmt(fill.quantity),
            "commission": fmt(fill.commission),
            "commissionAsset": fill.commission_asset,
            "tradeId": fill.trade_id,
        }
        for fill in order.fills
    ]
    if not order.is_conditional:
        result.pop("stopPrice")
    return result


def futures_order(order: SandboxOrder) -> dict[str, object]:
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "avgPrice": fmt(order.average_price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_quantity),
        "cumQty": fmt(order.executed_quantity),
        "cumQuote": fmt(order.cumulative_quote),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": order.position_side,
        "stopPrice": fmt(order.stop_price),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": order.time,
        "updateTime": order.update_time or order.time,
    }


def algo_order(order: SandboxOrder) -> dict[str, object]:
    return {
        "algoId": order.order_id,
        "clientAlgoId": order.client_order_id,
        "algoType": "CONDITIONAL",
        "orderType": order.type,
        "symbol": order.symbol,
        "side": order.side,
        "positionSide": order.position_side,
        "timeInForce": order.time_in_force,
        "quantity": fmt(order.quantity),
        "algoStatus": order.algo_status,
        "actualOrderId": "" if order.actual_order_id is None else str(order.actual_order_id),
        "triggerPrice": fmt(order.stop_price),
        "price": fmt(order.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": "CONTRACT_PRICE",
        "priceMatch": "NONE",
        "closePosition": order.close_position,
        "priceProtect": False,
        "reduceOnly": order.reduce_only,
        "createTime": order.time,
        "updateTime": order.update_time or order.time,
        "triggerTime": order.update_time if order.triggered else 0,
        "goodTillDate": 0,
        **_trailing(order),
    }


def _trailing(order: SandboxOrder) -> dict[str, object]:
    if order.kind is not OrderKind.TRAILING_STOP_MARKET:
        return {}
    return {"activatePrice": fmt(order.activation_price), "priceRate": fmt(order.callback_rate)}
