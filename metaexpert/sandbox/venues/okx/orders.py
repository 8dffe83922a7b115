"""OKX v5 order requests and rows: plain orders (``trade/order``, ``trade/batch-orders``) and
algo orders (``trade/order-algo``: ``conditional`` stop-loss / take-profit, ``trigger``,
``move_order_stop`` trailing), ``posSide`` (net / long / short) and ``tdMode`` (cash / cross /
isolated).

An algo order lives in OKX's algo service under its ``algoId`` (state ``live``) until it fires;
then it is ``effective`` and the order it placed has its own ``ordId`` (``ordIdList``). A spot
market buy counts ``sz`` in the quote coin unless ``tgtCcy=base_ccy``, as on OKX.
"""

from __future__ import annotations

import zlib
from decimal import Decimal, InvalidOperation

from metaexpert.sandbox.core.model import (
    Fill,
    FuturesPosition,
    OrderKind,
    OrderRequest,
    SandboxOrder,
    fmt,
)
from metaexpert.sandbox.venues.okx.errors import OkxError, parameter
from metaexpert.sandbox.venues.okx.markets import SPOT

POS_SIDES = {"net": "BOTH", "long": "LONG", "short": "SHORT"}
OKX_POS_SIDE = {"BOTH": "net", "LONG": "long", "SHORT": "short"}
PLAIN_TYPES = {"market", "limit", "post_only", "fok", "ioc", "optimal_limit_ioc"}
ALGO_TYPES = {"conditional", "trigger", "move_order_stop"}
Json = dict[str, object]


def _decimal(value: object, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise parameter(name) from exc
    if not result.is_finite() or result < 0:
        raise parameter(name)
    return result


def _text(params: Json, name: str, required: bool = True) -> str:
    value = params.get(name)
    if value in (None, "") and required:
        raise OkxError(51000, f"Parameter {name} error")
    return "" if value is None else str(value)


def _common(market: str, params: Json) -> tuple[str, str, str, bool]:
    side = _text(params, "side")
    if side not in ("buy", "sell"):
        raise parameter("side")
    td_mode = _text(params, "tdMode")
    if td_mode not in (("cash",) if market == SPOT else ("cross", "isolated")):
        raise parameter("tdMode")
    pos_side = str(params.get("posSide") or "net")
    if pos_side not in POS_SIDES or (market == SPOT and pos_side != "net"):
        raise parameter("posSide")
    reduce_only = str(params.get("reduceOnly", "false")).lower() == "true"
    return side, td_mode, pos_side, reduce_only


def parse_order(market: str, api_key: str, params: Json, reference: float) -> OrderRequest:
    _text(params, "instId")
    side, _td_mode, pos_side, reduce_only = _common(market, params)
    ord_type = _text(params, "ordType")
    if ord_type not in PLAIN_TYPES:
        raise parameter("ordType")
    quantity: Decimal | None = _decimal(_text(params, "sz"), "sz")
    price = None
    if ord_type not in ("market", "optimal_limit_ioc"):
        price = _decimal(_text(params, "px"), "px")
    quote_quantity = 0.0
    market_order = ord_type in ("market", "optimal_limit_ioc")
    if (
        market == SPOT
        and market_order
        and side == "buy"
        and params.get("tgtCcy", "quote_ccy") != "base_ccy"
    ):
        quote_quantity, quantity = float(quantity or 0), None
    time_in_force = {"fok": "FOK", "ioc": "IOC", "optimal_limit_ioc": "IOC"}.get(ord_type, "GTC")
    return OrderRequest(
        market=market,
        api_key=api_key,
        symbol=str(params["instId"]),
        side=side.upper(),
        kind=OrderKind.MARKET if market_order else OrderKind.LIMIT,
        venue_type=ord_type,
        quantity=quantity,
        price=price,
        time_in_force=time_in_force,
        client_order_id=str(params.get("clOrdId") or "") or None,
        position_side=POS_SIDES[pos_side],
        reduce_only=reduce_only,
        post_only=ord_type == "post_only",
        quote_quantity=quote_quantity,
    )


def parse_algo(market: str, api_key: str, params: Json, reference: float) -> OrderRequest:
    _text(params, "instId")
    side, _td_mode, pos_side, reduce_only = _common(market, params)
    ord_type = _text(params, "ordType")
    if ord_type not in ALGO_TYPES:
        raise parameter("ordType")
    quantity = _decimal(_text(params, "sz"), "sz")
    buy = side == "buy"
    callback = activation = 0.0
    if ord_type == "move_order_stop":
        callback = float(_decimal(_text(params, "callbackRatio"), "callbackRatio")) * 100.0
        activation = (
            float(_decimal(params["activePx"], "activePx")) if params.get("activePx") else 0.0
        )
        kind, trigger, order_px = OrderKind.TRAILING_STOP_MARKET, 0.0, "-1"
    elif ord_type == "trigger":
        trigger = float(_decimal(_text(params, "triggerPx"), "triggerPx"))
        order_px = _text(params, "orderPx")
        rising = trigger > reference
        stop = rising == buy
        kind = _kind(stop, order_px)
    elif params.get("slTriggerPx"):
        trigger = float(_decimal(params["slTriggerPx"], "slTriggerPx"))
        order_px = str(params.get("slOrdPx") or "-1")
        kind = _kind(True, order_px)
    elif params.get("tpTriggerPx"):
        trigger = float(_decimal(params["tpTriggerPx"], "tpTriggerPx"))
        order_px = str(params.get("tpOrdPx") or "-1")
        kind = _kind(False, order_px)
    else:
        raise parameter("slTriggerPx")
    price = None if order_px == "-1" else _decimal(order_px, "orderPx")
    return OrderRequest(
        market=market,
        api_key=api_key,
        symbol=str(params["instId"]),
        side=side.upper(),
        kind=kind,
        venue_type=ord_type,
        quantity=quantity,
        price=price,
        stop_price=trigger,
        client_order_id=str(params.get("algoClOrdId") or "") or None,
        position_side=POS_SIDES[pos_side],
        reduce_only=reduce_only,
        algo=True,
        callback_rate=callback,
        activation_price=activation,
    )


def _kind(stop: bool, order_px: str) -> OrderKind:
    if order_px == "-1":
        return OrderKind.STOP_MARKET if stop else OrderKind.TAKE_PROFIT_MARKET
    return OrderKind.STOP_LIMIT if stop else OrderKind.TAKE_PROFIT_LIMIT


def _state(order: SandboxOrder) -> str:
    status = str(order.status)
    if status in ("CANCELED", "EXPIRED"):
        return "canceled"
    return {"NEW": "live", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled"}.get(
        status, "canceled"
    )


def order_row(order: SandboxOrder, inst_type: str, td_mode: str, lever: str) -> Json:
    fee = -sum(fill.commission for fill in order.fills)
    last = order.fills[-1] if order.fills else None
    ord_type = (
        order.type
        if order.type in PLAIN_TYPES
        else ("market" if order.kind is OrderKind.MARKET else "limit")
    )
    return {
        "instType": inst_type,
        "instId": order.symbol,
        "ccy": "",
        "ordId": str(order.order_id),
        "clOrdId": order.client_order_id,
        "tag": "",
        "px": fmt(order.price) if order.price else "",
        "pxUsd": "",
        "pxVol": "",
        "pxType": "",
        "sz": fmt(order.quote_order_quantity or order.quantity),
        "pnl": fmt(sum(f.realized_pnl for f in order.fills)),
        "ordType": ord_type,
        "side": order.side.lower(),
        "posSide": OKX_POS_SIDE.get(order.position_side, "net"),
        "tdMode": td_mode,
        "accFillSz": fmt(order.executed_quantity),
        "fillPx": fmt(last.price) if last else "",
        "tradeId": str(last.trade_id) if last else "",
        "fillSz": fmt(last.quantity) if last else "0",
        "fillTime": str(last.time) if last else "",
        "avgPx": fmt(order.average_price) if order.executed_quantity else "",
        "state": _state(order),
        "lever": lever,
        "attachAlgoClOrdId": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tpOrdPx": "",
        "slTriggerPx": "",
        "slTriggerPxType": "",
        "slOrdPx": "",
        "stpId": "",
        "stpMode": "",
        "feeCcy": order.fills[0].commission_asset if order.fills else "",
        "fee": fmt(fee),
        "rebateCcy": "",
        "rebate": "0",
        "tgtCcy": "quote_ccy" if order.quote_order_quantity else "",
        "source": "",
        "category": "normal",
        "reduceOnly": "true" if order.reduce_only else "false",
        "isTpLimit": "false",
        "cancelSource": "",
        "quickMgnType": "",
        "algoClOrdId": "",
        "algoId": "",
        "uTime": str(order.update_time or order.time),
        "cTime": str(order.time),
    }


def algo_row(order: SandboxOrder, inst_type: str, td_mode: str) -> Json:
    state = {"NEW": "live", "FINISHED": "effective"}.get(order.algo_status, "canceled")
    trigger, order_px = fmt(order.stop_price), fmt(order.price) if order.price else "-1"
    stop = order.is_stop
    row: Json = {
        "instType": inst_type,
        "instId": order.symbol,
        "ccy": "",
        "ordId": "",
        "ordIdList": [str(order.actual_order_id)] if order.actual_order_id else [],
        "algoId": str(order.order_id),
        "clOrdId": "",
        "sz": fmt(order.quantity),
        "closeFraction": "",
        "ordType": order.type,
        "side": order.side.lower(),
        "posSide": OKX_POS_SIDE.get(order.position_side, "net"),
        "tdMode": td_mode,
        "tgtCcy": "",
        "state": state,
        "lever": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tpOrdPx": "",
        "slTriggerPx": "",
        "slTriggerPxType": "",
        "slOrdPx": "",
        "triggerPx": "",
        "triggerPxType": "",
        "ordPx": "",
        "actualSz": fmt(order.quantity) if state == "effective" else "",
        "actualPx": "",
        "actualSide": "",
        "triggerTime": str(order.update_time) if order.triggered else "",
        "pxVar": "",
        "pxSpread": "",
        "szLimit": "",
        "pxLimit": "",
        "tag": "",
        "timeInterval": "",
        "callbackRatio": "",
        "callbackSpread": "",
        "activePx": "",
        "moveTriggerPx": "",
        "reduceOnly": "true" if order.reduce_only else "false",
        "quickMgnType": "",
        "last": "",
        "failCode": "",
        "algoClOrdId": order.client_order_id,
        "amendPxOnTriggerType": "",
        "cTime": str(order.time),
        "uTime": str(order.update_time or order.time),
    }
    if order.type == "trigger":
        row.update({"triggerPx": trigger, "triggerPxType": "last", "ordPx": order_px})
    elif order.type == "move_order_stop":
        row.update(
            {
                "callbackRatio": fmt(order.callback_rate / 100.0),
                "activePx": fmt(order.activation_price) if order.activation_price else "",
                "moveTriggerPx": trigger,
            }
        )
    elif stop:
        row.update({"slTriggerPx": trigger, "slTriggerPxType": "last", "slOrdPx": order_px})
    else:
        row.update({"tpTriggerPx": trigger, "tpTriggerPxType": "last", "tpOrdPx": order_px})
    return row


def fill_row(fill: Fill, order: SandboxOrder, inst_type: str) -> Json:
    return {
        "instType": inst_type,
        "instId": fill.symbol,
        "tradeId": str(fill.trade_id),
        "ordId": str(fill.order_id),
        "clOrdId": order.client_order_id,
        "billId": str(fill.trade_id),
        "subType": "1",
        "tag": "",
        "fillPx": fmt(fill.price),
        "fillSz": fmt(fill.quantity),
        "fillIdxPx": "",
        "fillPnl": fmt(fill.realized_pnl),
        "fillPxVol": "",
        "fillPxUsd": "",
        "fillMarkVol": "",
        "fillFwdPx": "",
        "fillMarkPx": "",
        "side": fill.side.lower(),
        "posSide": OKX_POS_SIDE.get(fill.position_side, "net"),
        "execType": "M" if fill.is_maker else "T",
        "feeCcy": fill.commission_asset,
        "fee": fmt(-fill.commission),
        "ts": str(fill.time),
        "fillTime": str(fill.time),
    }


def position_row(
    position: FuturesPosition,
    *,
    mark: float,
    lever: int,
    upl: float,
    liquidation: float,
    margin: float,
    notional: float,
    isolated: bool,
    settle: str,
) -> Json:
    amount = position.signed_amount if position.position_side == "BOTH" else abs(position.amount)
    return {
        "adl": "1",
        "availPos": fmt(abs(position.amount)) if position.position_side != "BOTH" else "",
        "avgPx": fmt(position.entry_price),
        "cTime": str(position.update_time),
        "ccy": settle,
        "deltaBS": "",
        "deltaPA": "",
        "gammaBS": "",
        "gammaPA": "",
        "imr": fmt(margin) if not isolated else "",
        "instId": position.symbol,
        "instType": "SWAP",
        "interest": "0",
        "idxPx": fmt(mark),
        "last": fmt(mark),
        "usdPx": "",
        "bePx": fmt(position.entry_price),
        "lever": str(lever),
        "liab": "",
        "liabCcy": "",
        "liqPx": fmt(liquidation) if liquidation else "",
        "markPx": fmt(mark),
        "margin": fmt(margin) if isolated else "",
        "mgnMode": "isolated" if isolated else "cross",
        "mgnRatio": "",
        "mmr": "0",
        "notionalUsd": fmt(abs(notional)),
        "optVal": "",
        "pendingCloseOrdLiabVal": "",
        "pos": fmt(amount),
        "posCcy": "",
        "posId": str(zlib.crc32(f"{position.symbol}:{position.position_side}".encode())),
        "posSide": OKX_POS_SIDE.get(position.position_side, "net"),
        "quoteBal": "",
        "spotInUseAmt": "",
        "spotInUseCcy": "",
        "thetaBS": "",
        "thetaPA": "",
        "tradeId": "",
        "bizRefId": "",
        "bizRefType": "",
        "uTime": str(position.update_time),
        "upl": fmt(upl),
        "uplLastPx": fmt(upl),
        "uplRatio": fmt(upl / margin if margin else 0.0),
        "uplRatioLastPx": fmt(upl / margin if margin else 0.0),
        "vegaBS": "",
        "vegaPA": "",
        "realizedPnl": fmt(position.realized_pnl),
        "pnl": fmt(position.realized_pnl),
        "fee": "0",
        "fundingFee": "0",
        "liqPenalty": "0",
        "closeOrderAlgo": [],
    }
