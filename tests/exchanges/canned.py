"""Canned, valid Bybit v5 and OKX v5 responses (shapes from the venues' API documentation)."""

from __future__ import annotations

import time
from typing import Any

from tests.exchanges.capture_server import CapturedRequest


def _now() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------------- bybit
def bybit_ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": _now()}


BYBIT_INSTRUMENTS = {
    "spot": [
        {
            "symbol": "BTCUSDT",
            "baseCoin": "BTC",
            "quoteCoin": "USDT",
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "both",
            "lotSizeFilter": {
                "basePrecision": "0.000001",
                "quotePrecision": "0.00000001",
                "minOrderQty": "0.000048",
                "maxOrderQty": "71.73956243",
                "minOrderAmt": "1",
                "maxOrderAmt": "2000000",
            },
            "priceFilter": {"tickSize": "0.01"},
        }
    ],
    "linear": [
        {
            "symbol": "BTCUSDT",
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": "BTC",
            "quoteCoin": "USDT",
            "settleCoin": "USDT",
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": "2",
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
            "lotSizeFilter": {
                "maxOrderQty": "100.000",
                "minOrderQty": "0.001",
                "qtyStep": "0.001",
                "postOnlyMaxOrderQty": "1000.000",
                "maxMktOrderQty": "100.000",
                "minNotionalValue": "5",
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "copyTrading": "both",
        }
    ],
    "inverse": [
        {
            "symbol": "BTCUSD",
            "contractType": "InversePerpetual",
            "status": "Trading",
            "baseCoin": "BTC",
            "quoteCoin": "USD",
            "settleCoin": "BTC",
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": "2",
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.50", "maxPrice": "999999.00", "tickSize": "0.50"},
            "lotSizeFilter": {
                "maxOrderQty": "1000000",
                "minOrderQty": "1",
                "qtyStep": "1",
                "postOnlyMaxOrderQty": "1000000",
                "maxMktOrderQty": "1000000",
                "minNotionalValue": "1",
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "copyTrading": "none",
        }
    ],
}


def bybit_instruments(request: CapturedRequest) -> dict[str, Any]:
    category = request.query.get("category", "linear")
    return bybit_ok(
        {"category": category, "list": BYBIT_INSTRUMENTS.get(category, []), "nextPageCursor": ""}
    )


def bybit_create_order(request: CapturedRequest) -> dict[str, Any]:
    return bybit_ok(
        {"orderId": "1321003749386327552", "orderLinkId": request.body.get("orderLinkId", "")}
    )


def bybit_routes() -> dict[str, Any]:
    return {
        "/v5/market/instruments-info": bybit_instruments,
        "/v5/order/create": bybit_create_order,
        "/v5/market/time": bybit_ok(
            {"timeSecond": str(_now() // 1000), "timeNano": str(_now() * 1_000_000)}
        ),
    }


BYBIT_DEFAULT = bybit_ok({})


# --------------------------------------------------------------------------- okx
def okx_ok(data: Any) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


OKX_INSTRUMENTS = {
    "SPOT": [
        {
            "instType": "SPOT",
            "instId": "BTC-USDT",
            "baseCcy": "BTC",
            "quoteCcy": "USDT",
            "settleCcy": "",
            "ctVal": "",
            "ctMult": "",
            "ctValCcy": "",
            "optType": "",
            "stk": "",
            "listTime": "1606468572000",
            "expTime": "",
            "lever": "10",
            "tickSz": "0.1",
            "lotSz": "0.00000001",
            "minSz": "0.00001",
            "ctType": "",
            "alias": "",
            "state": "live",
            "maxLmtSz": "9999999999",
            "maxMktSz": "1000000",
            "uly": "",
            "instFamily": "",
        }
    ],
    "SWAP": [
        {
            "instType": "SWAP",
            "instId": "BTC-USDT-SWAP",
            "uly": "BTC-USDT",
            "instFamily": "BTC-USDT",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": "USDT",
            "ctVal": "0.01",
            "ctMult": "1",
            "ctValCcy": "BTC",
            "optType": "",
            "stk": "",
            "listTime": "1606468572000",
            "expTime": "",
            "lever": "125",
            "tickSz": "0.1",
            "lotSz": "0.1",
            "minSz": "0.1",
            "ctType": "linear",
            "alias": "",
            "state": "live",
            "maxLmtSz": "100000000",
            "maxMktSz": "12000",
        },
        {
            "instType": "SWAP",
            "instId": "BTC-USD-SWAP",
            "uly": "BTC-USD",
            "instFamily": "BTC-USD",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": "BTC",
            "ctVal": "100",
            "ctMult": "1",
            "ctValCcy": "USD",
            "optType": "",
            "stk": "",
            "listTime": "1606468572000",
            "expTime": "",
            "lever": "100",
            "tickSz": "0.1",
            "lotSz": "1",
            "minSz": "1",
            "ctType": "inverse",
            "alias": "",
            "state": "live",
            "maxLmtSz": "100000000",
            "maxMktSz": "12000",
        },
    ],
    "FUTURES": [],
    "OPTION": [],
}


def okx_instruments(request: CapturedRequest) -> dict[str, Any]:
    return okx_ok(OKX_INSTRUMENTS.get(request.query.get("instType", "SPOT"), []))


def okx_create_order(request: CapturedRequest) -> dict[str, Any]:
    body = request.body.get("_list", [request.body])
    first = body[0] if body else {}
    return okx_ok(
        [
            {
                "clOrdId": first.get("clOrdId", ""),
                "ordId": "312269865356374016",
                "tag": "",
                "sCode": "0",
                "sMsg": "",
                "ts": str(_now()),
            }
        ]
    )


def okx_routes() -> dict[str, Any]:
    return {
        "/api/v5/public/instruments": okx_instruments,
        "/api/v5/trade/order": okx_create_order,
        "/api/v5/trade/batch-orders": okx_create_order,
        "/api/v5/public/time": okx_ok([{"ts": str(_now())}]),
        "/api/v5/account/set-leverage": okx_ok(
            [{"lever": "5", "mgnMode": "isolated", "instId": "BTC-USDT-SWAP", "posSide": "long"}]
        ),
        "/api/v5/account/set-position-mode": okx_ok([{"posMode": "long_short_mode"}]),
    }


OKX_DEFAULT = okx_ok([])
