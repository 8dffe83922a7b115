"""Bybit v5 order requests (POST /v5/order/create JSON) and order, execution and position rows.

Conditional orders stay one order on Bybit: ``triggerPrice`` with ``triggerDirection`` 1 (fires
when the price rises to it) or 2 (falls to it); the order shows ``Untriggered`` until then,
then ``New``/``Filled`` under the same ``orderId``. So a rising trigger is a stop for a buy and a
take-profit for a sell (and the reverse for a falling one); ``stopOrderType`` says which.
``positionIdx`` 0/1/2 is one-way / hedge buy leg / hedge sell leg. A partially filled order
that is cancelled (or an IOC rest) reports ``PartiallyFilledCanceled``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from metaexpert.sandbox.core.model import (
    Fill,
    FuturesPosition,
    OrderKind,
    OrderRequest,
    SandboxOrder,
    fmt,
)
from metaexpert.sandbox.venues.bybit.errors import BybitError, invalid, missing
from metaexpert.sandbox.venues.bybit.markets import SPOT

POSITION_SIDES = {0: "BOTH", 1: "LONG", 2: "SHORT"}
POSITION_INDEX = {"BOTH": 0, "LONG": 1, "SHORT": 2}
TIME_IN_FORCE = {"GTC", "IOC", "FOK", "PostOnly"}


def _decimal(value: object, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise invalid(name, value) from exc
    if not result.is_finite() or result < 0:
        raise invalid(name, value)
    return result


def _bool(value: object) -> bool:
    return value is True or str(value).lower() == "true"


def rising_trigger(params: dict[str, object]) -> bool:
    return str(params.get("triggerDirection", "")) == "1"


def parse_order(
    category: str, api_key: str, params: dict[str, object], reference: float
) -> OrderRequest:
    """``reference`` is the current price (a spot market buy's qty is in the quote coin)."""
    symbol = str(params.get("symbol") or "")
    if not symbol:
        raise missing("symbol")
    side = str(params.get("side") or "")
    if side not in ("Buy", "Sell"):
        raise BybitError(10001, f"params error: side invalid: {side!r}")
    order_type = str(params.get("orderType") or "")
    if order_type not in ("Market", "Limit"):
        raise BybitError(10001, f"params error: orderType invalid: {order_type!r}")
    raw_qty = params.get("qty")
    if raw_qty in (None, ""):
        raise missing("qty")
    quantity: Decimal | None = _decimal(raw_qty, "qty")
    price = None
    if order_type == "Limit":
        if params.get("price") in (None, ""):
            raise missing("price")
        price = _decimal(params["price"], "price")
    time_in_force = str(params.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC"))
    if time_in_force not in TIME_IN_FORCE:
        raise invalid("timeInForce", time_in_force)
    quote_quantity = 0.0
    market_unit = str(params.get("marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin"))
    if category == SPOT and order_type == "Market" and market_unit == "quoteCoin":
        quote_quantity, quantity = float(quantity or 0), None
    kind = OrderKind.MARKET if order_type == "Market" else OrderKind.LIMIT
    stop_price = 0.0
    if params.get("triggerPrice") not in (None, ""):
        stop_price = float(_decimal(params["triggerPrice"], "triggerPrice"))
        direction = str(params.get("triggerDirection", ""))
        if direction not in ("1", "2"):
            direction = "1" if stop_price > reference else "2"
            params["triggerDirection"] = direction
        # rising: a buy stop / a sell take-profit; falling: a sell stop / a buy take-profit
        stop = (direction == "1") == (side == "Buy")
        if order_type == "Market":
            kind = OrderKind.STOP_MARKET if stop else OrderKind.TAKE_PROFIT_MARKET
        else:
            kind = OrderKind.STOP_LIMIT if stop else OrderKind.TAKE_PROFIT_LIMIT
    try:
        position_index = int(str(params.get("positionIdx", 0)))
    except ValueError as exc:
        raise invalid("positionIdx", params.get("positionIdx")) from exc
    if position_index not in POSITION_SIDES:
        raise invalid("positionIdx", position_index)
    reduce_only = _bool(params.get("reduceOnly")) or _bool(params.get("closeOnTrigger"))
    return OrderRequest(
        market=category,
        api_key=api_key,
        symbol=symbol,
        side=side.upper(),
        kind=kind,
        venue_type=order_type,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force="GTC" if time_in_force == "PostOnly" else time_in_force,
        client_order_id=str(params["orderLinkId"]) if params.get("orderLinkId") else None,
        position_side=POSITION_SIDES[position_index] if category != SPOT else "BOTH",
        reduce_only=reduce_only and category != SPOT,
        post_only=time_in_force == "PostOnly",
        quote_quantity=quote_quantity,
    )


def order_status(order: SandboxOrder) -> str:
    if order.is_conditional and not order.triggered:
        return "Untriggered" if order.is_open else "Deactivated"
    status = str(order.status)
    if status in ("CANCELED", "EXPIRED"):
        return "PartiallyFilledCanceled" if order.executed_quantity > 0 else "Cancelled"
    return {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled"}.get(
        status, "Cancelled"
    )


def _stop_order_type(order: SandboxOrder) -> str:
    if not order.is_conditional:
        return ""
    return "Stop"


def order_row(order: SandboxOrder, category: str) -> dict[str, object]:
    fee = sum(fill.commission for fill in order.fills)
    fee_coin = order.fills[0].commission_asset if order.fills else ""
    direction = 0
    if order.is_conditional:
        direction = 1 if order.is_stop == (order.side == "BUY") else 2
    return {
        "orderId": str(order.order_id),
        "orderLinkId": order.client_order_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": fmt(order.price),
        "qty": fmt(
            order.quantity if not order.quote_order_quantity else order.quote_order_quantity
        ),
        "side": "Buy" if order.side == "BUY" else "Sell",
        "isLeverage": "0" if category == SPOT else "",
        "positionIdx": POSITION_INDEX.get(order.position_side, 0),
        "orderStatus": order_status(order),
        "cancelType": "UNKNOWN",
        "rejectReason": "EC_NoError",
        "avgPrice": fmt(order.average_price)
        if order.executed_quantity
        else ("" if category == SPOT else "0"),
        "leavesQty": fmt(order.remaining if order.is_open else 0.0),
        "leavesValue": fmt(order.remaining * order.price if order.is_open else 0.0),
        "cumExecQty": fmt(order.executed_quantity),
        "cumExecValue": fmt(order.cumulative_quote),
        "cumExecFee": fmt(fee),
        "cumFeeDetail": {fee_coin: fmt(fee)} if fee_coin else {},
        "timeInForce": "PostOnly" if order.post_only else order.time_in_force,
        "orderType": "Market"
        if order.kind in (OrderKind.MARKET, OrderKind.STOP_MARKET, OrderKind.TAKE_PROFIT_MARKET)
        else "Limit",
        "stopOrderType": _stop_order_type(order),
        "orderIv": "",
        "marketUnit": "quoteCoin"
        if order.quote_order_quantity
        else ("baseCoin" if category == SPOT else ""),
        "triggerPrice": fmt(order.stop_price),
        "takeProfit": "0",
        "stopLoss": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": direction,
        "triggerBy": "LastPrice" if order.is_conditional else "",
        "lastPriceOnCreated": "",
        "reduceOnly": order.reduce_only,
        "closeOnTrigger": False,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "createdTime": str(order.time),
        "updatedTime": str(order.update_time or order.time),
    }


def execution_row(fill: Fill, order: SandboxOrder, category: str) -> dict[str, object]:
    return {
        "symbol": fill.symbol,
        "orderId": str(fill.order_id),
        "orderLinkId": order.client_order_id,
        "side": "Buy" if fill.side == "BUY" else "Sell",
        "orderPrice": fmt(order.price),
        "orderQty": fmt(order.quantity),
        "leavesQty": fmt(order.remaining),
        "createType": "CreateByUser",
        "orderType": "Market" if order.kind is OrderKind.MARKET else "Limit",
        "stopOrderType": _stop_order_type(order),
        "execFee": fmt(fill.commission),
        "feeCurrency": fill.commission_asset,
        "execId": str(fill.trade_id),
        "execPrice": fmt(fill.price),
        "execQty": fmt(fill.quantity),
        "execType": "Trade",
        "execValue": fmt(fill.quote_quantity),
        "execTime": str(fill.time),
        "isMaker": fill.is_maker,
        "feeRate": "0",
        "tradeIv": "",
        "markIv": "",
        "markPrice": fmt(fill.price),
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": fmt(fill.quantity if fill.realized_pnl else 0.0),
        "seq": fill.trade_id,
    }


def position_row(
    position: FuturesPosition,
    *,
    mark: float,
    leverage: int,
    unrealized: float,
    liquidation: float,
    margin: float,
    value: float,
    isolated: bool,
) -> dict[str, object]:
    side = "" if position.amount == 0 else ("Buy" if position.signed_amount > 0 else "Sell")
    return {
        "positionIdx": POSITION_INDEX.get(position.position_side, 0),
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": position.symbol,
        "side": side,
        "size": fmt(abs(position.amount)),
        "avgPrice": fmt(position.entry_price),
        "positionValue": fmt(abs(value)),
        "tradeMode": 1 if isolated else 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if position.amount else 0,
        "leverage": str(leverage),
        "positionBalance": fmt(margin),
        "markPrice": fmt(mark),
        "liqPrice": fmt(liquidation) if liquidation else "",
        "bustPrice": fmt(liquidation) if liquidation else "",
        "positionMM": "0",
        "positionIM": fmt(margin),
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": fmt(unrealized),
        "curRealisedPnl": fmt(position.realized_pnl),
        "cumRealisedPnl": fmt(position.realized_pnl),
        "seq": position.update_time,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(position.update_time),
        "updatedTime": str(position.update_time),
    }
