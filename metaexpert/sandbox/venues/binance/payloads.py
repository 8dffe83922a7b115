"""Public market-data payloads in Binance's exact shapes (REST bodies and stream events).

Why one module: the same ticker, kline or depth shape is sent by REST and by websocket and must
not drift between the two.

About 500 lines: every Binance market-data shape (REST and stream) of three markets.
"""

from __future__ import annotations

import math

from metaexpert.core.timeframe import DAY_MS
from metaexpert.sandbox.config import SymbolConfig
from metaexpert.sandbox.core.exchange import SandboxExchange
from metaexpert.sandbox.core.margin import FUNDING_INTERVAL_MS
from metaexpert.sandbox.core.market_data import DepthEvent, Kline, TickRecording
from metaexpert.sandbox.core.model import fmt
from metaexpert.sandbox.venues.binance.markets import COINM, SPOT, USDM

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
]


def _decimals(step: float) -> int:
    text = fmt(step, 10)
    return len(text.split(".")[1]) if "." in text else 0


def spot_symbol_info(rule: SymbolConfig) -> dict[str, object]:
    return {
        "symbol": rule.symbol,
        "status": "TRADING",
        "baseAsset": rule.base_asset,
        "baseAssetPrecision": 8,
        "quoteAsset": rule.quote_asset,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(rule.min_price),
                "maxPrice": fmt(rule.max_price),
                "tickSize": fmt(rule.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(rule.min_quantity),
                "maxQty": fmt(rule.max_quantity),
                "stepSize": fmt(rule.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0",
                "maxQty": fmt(rule.max_quantity),
                "stepSize": "0",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(rule.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def futures_symbol_info(
    rule: SymbolConfig, contract_size: float | None = None
) -> dict[str, object]:
    """A USD-M symbol, or with ``contract_size`` a COIN-M perpetual (margined in the base coin)."""
    info = _futures_symbol_info(rule)
    if contract_size is not None:
        info.update(
            {
                "pair": rule.symbol.split("_")[0],
                "marginAsset": rule.base_asset,
                "contractSize": int(contract_size),
                "contractStatus": "TRADING",
                "equalQtyPrecision": 4,
            }
        )
        info.pop("status", None)
        info["filters"] = [f for f in info["filters"] if f["filterType"] != "MIN_NOTIONAL"]  # type: ignore[index]
    return info


def _futures_symbol_info(rule: SymbolConfig) -> dict[str, object]:
    return {
        "symbol": rule.symbol,
        "pair": rule.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": rule.base_asset,
        "quoteAsset": rule.quote_asset,
        "marginAsset": rule.quote_asset,
        "pricePrecision": _decimals(rule.tick_size),
        "quantityPrecision": _decimals(rule.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(rule.min_price),
                "maxPrice": fmt(rule.max_price),
                "tickSize": fmt(rule.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(rule.min_quantity),
                "maxQty": fmt(rule.max_quantity),
                "stepSize": fmt(rule.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(rule.min_quantity),
                "maxQty": fmt(rule.max_quantity),
                "stepSize": fmt(rule.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": fmt(rule.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "permissionSets": ["GRID", "COPY"],
    }


def exchange_info(exchange: SandboxExchange, market: str, server_time: int) -> dict[str, object]:
    rules = exchange.symbols[market].values()
    if market == SPOT:
        symbols = [spot_symbol_info(rule) for rule in rules]
        return {
            "timezone": "UTC",
            "serverTime": server_time,
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": symbols,
        }
    if market == COINM:
        sizes = exchange.markets[market].contract_size
        return {
            "timezone": "UTC",
            "serverTime": server_time,
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [futures_symbol_info(rule, sizes.get(rule.symbol, 1.0)) for rule in rules],
        }
    assets = sorted({rule.quote_asset for rule in rules})
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "futuresType": "U_MARGINED",
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
        "assets": [
            {"asset": asset, "marginAvailable": True, "autoAssetExchange": "-10000"}
            for asset in assets
        ],
        "symbols": [futures_symbol_info(rule) for rule in rules],
    }


def ticker_24h(exchange: SandboxExchange, market: str, symbol: str) -> dict[str, object]:
    series = exchange.series_of(symbol)
    open_, high, low, _close, volume, open_time = series.window(DAY_MS)
    last = exchange.price(symbol, market)
    high, low = max(high, last), min(low, last)
    change = last - open_
    result: dict[str, object] = {
        "symbol": symbol,
        "priceChange": fmt(change),
        "priceChangePercent": fmt(change / open_ * 100 if open_ else 0.0, 3),
        "weightedAvgPrice": fmt((high + low + last) / 3),
        "lastPrice": fmt(last),
        "lastQty": "0",
        "openPrice": fmt(open_),
        "highPrice": fmt(high),
        "lowPrice": fmt(low),
        "volume": fmt(volume),
        "quoteVolume": fmt(volume * (high + low + last) / 3),
        "openTime": open_time,
        "closeTime": exchange.now - 1,
        "firstId": 0,
        "lastId": 0,
        "count": 0,
    }
    if market == SPOT:
        bid, ask = exchange.bid_ask(symbol, market)
        result.update(
            {
                "prevClosePrice": fmt(open_),
                "bidPrice": fmt(bid),
                "bidQty": "1",
                "askPrice": fmt(ask),
                "askQty": "1",
            }
        )
    return result


def book_ticker(exchange: SandboxExchange, market: str, symbol: str) -> dict[str, object]:
    bid, ask = exchange.bid_ask(symbol, market)
    result: dict[str, object] = {
        "symbol": symbol,
        "bidPrice": fmt(bid),
        "bidQty": "1",
        "askPrice": fmt(ask),
        "askQty": "1",
    }
    if market != SPOT:
        result["time"] = exchange.now
    return result


def price_ticker(exchange: SandboxExchange, market: str, symbol: str) -> dict[str, object]:
    result: dict[str, object] = {"symbol": symbol, "price": fmt(exchange.price(symbol, market))}
    if market != SPOT:
        result["time"] = exchange.now
    return result


def premium_index(exchange: SandboxExchange, symbol: str, market: str = USDM) -> dict[str, object]:
    now = exchange.now
    mark = exchange.price(symbol, market)
    return {
        "symbol": symbol,
        "markPrice": fmt(mark),
        "indexPrice": fmt(mark),
        "estimatedSettlePrice": fmt(mark),
        "lastFundingRate": fmt(exchange.config.funding_rate),
        "interestRate": "0.00010000",
        "nextFundingTime": (now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS,
        "time": now,
    }


def mark_price_event(
    exchange: SandboxExchange, symbol: str, market: str = USDM
) -> dict[str, object]:
    index = premium_index(exchange, symbol, market)
    return {
        "e": "markPriceUpdate",
        "E": exchange.now,
        "s": symbol,
        "p": index["markPrice"],
        "i": index["indexPrice"],
        "P": index["estimatedSettlePrice"],
        "r": index["lastFundingRate"],
        "T": index["nextFundingTime"],
    }


def kline_event(
    symbol: str, interval: str, kline: Kline, closed: bool, event_time: int
) -> dict[str, object]:
    row = kline_row(kline)
    return {
        "e": "kline",
        "E": event_time,
        "s": symbol,
        "k": {
            "t": kline.open_time,
            "T": kline.close_time,
            "s": symbol,
            "i": interval,
            "f": 0,
            "L": 0,
            "o": row[1],
            "c": row[4],
            "h": row[2],
            "l": row[3],
            "v": row[5],
            "n": 0,
            "x": closed,
            "q": row[7],
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }


def depth_body(
    recording: TickRecording | None,
    exchange: SandboxExchange,
    market: str,
    symbol: str,
    limit: int,
    synthetic_update_id: int,
) -> dict[str, object]:
    if recording is not None:
        bids, asks = recording.book.top(limit)
        last_id = recording.book.last_update_id
    else:
        bids, asks = synthetic_book(exchange, market, symbol, limit)
        last_id = synthetic_update_id
    body: dict[str, object] = {
        "lastUpdateId": last_id,
        "bids": [[fmt(price), fmt(quantity)] for price, quantity in bids],
        "asks": [[fmt(price), fmt(quantity)] for price, quantity in asks],
    }
    if market != SPOT:
        body = {
            "lastUpdateId": last_id,
            "E": exchange.now,
            "T": exchange.now,
            "bids": body["bids"],
            "asks": body["asks"],
        }
    return body


def synthetic_book(
    exchange: SandboxExchange, market: str, symbol: str, limit: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A plain ladder around the replay price, for symbols without a depth recording."""
    tick = exchange.symbols[market][symbol].tick_size
    bid, ask = exchange.bid_ask(symbol, market)
    best_bid = (bid // tick) * tick
    best_ask = max(-((-ask) // tick) * tick, best_bid + tick)
    depth = min(limit, 100)
    bids = [
        (round(best_bid - index * tick, 8), round(1.0 + index * 0.5, 8)) for index in range(depth)
    ]
    asks = [
        (round(best_ask + index * tick, 8), round(1.0 + index * 0.5, 8)) for index in range(depth)
    ]
    return bids, asks


def depth_event(market: str, symbol: str, event: DepthEvent) -> dict[str, object]:
    payload: dict[str, object] = {
        "e": "depthUpdate",
        "E": event.event_time,
        "s": symbol,
        "U": event.first_update_id,
        "u": event.last_update_id,
        "b": [[fmt(price), fmt(quantity)] for price, quantity in event.bids],
        "a": [[fmt(price), fmt(quantity)] for price, quantity in event.asks],
    }
    if market != SPOT:
        payload["T"] = event.event_time
        payload["pu"] = event.previous_update_id
    return payload


def trade_event(
    market: str, symbol: str, row: dict[str, object], aggregated: bool
) -> dict[str, object]:
    price, quantity = fmt(float(row["price"])), fmt(float(row["qty"]))
    trade_id = int(row["trade_id"])
    if aggregated:
        payload: dict[str, object] = {
            "e": "aggTrade",
            "E": int(row["event_time_ms"]),
            "s": symbol,
            "a": trade_id,
            "p": price,
            "q": quantity,
            "f": trade_id,
            "l": trade_id,
            "T": int(row["trade_time_ms"]),
            "m": bool(row["is_buyer_maker"]),
        }
        if market == SPOT:
            payload["M"] = True
        return payload
    payload = {
        "e": "trade",
        "E": int(row["event_time_ms"]),
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": quantity,
        "T": int(row["trade_time_ms"]),
        "m": bool(row["is_buyer_maker"]),
    }
    if market == SPOT:
        payload["M"] = True
    else:
        payload["X"] = "MARKET"
    return payload


def book_ticker_event(
    market: str, symbol: str, row: dict[str, object], local_ns: int
) -> dict[str, object]:
    payload: dict[str, object] = {
        "u": int(row["update_id"]),
        "s": symbol,
        "b": fmt(float(row["bid"])),
        "B": fmt(float(row["bid_qty"])),
        "a": fmt(float(row["ask"])),
        "A": fmt(float(row["ask_qty"])),
    }
    if market != SPOT:
        event_ms = local_ns // 1_000_000
        payload = {
            "e": "bookTicker",
            "u": payload["u"],
            "E": event_ms,
            "T": event_ms,
            "s": symbol,
            "b": payload["b"],
            "B": payload["B"],
            "a": payload["a"],
            "A": payload["A"],
        }
    return payload


def recent_trades(
    recording: TickRecording | None, market: str, limit: int
) -> list[dict[str, object]]:
    if recording is None:
        return []
    end = recording.trades_replayed
    result = []
    for index in range(max(0, end - limit), end):
        row = recording.trade_row(index)
        item: dict[str, object] = {
            "id": int(row["trade_id"]),
            "price": fmt(float(row["price"])),
            "qty": fmt(float(row["qty"])),
            "quoteQty": fmt(float(row["price"]) * float(row["qty"])),
            "time": int(row["trade_time_ms"]),
            "isBuyerMaker": bool(row["is_buyer_maker"]),
        }
        if market == SPOT:
            item["isBestMatch"] = True
        result.append(item)
    return result


def _fmt8(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


def kline_row(kline: Kline) -> list[object]:
    """One kline as /klines serves it (quote volume estimated from the bar's mid price)."""
    quote_volume = kline.volume * (kline.open + kline.close) / 2.0
    return [
        kline.open_time,
        _fmt8(kline.open),
        _fmt8(kline.high),
        _fmt8(kline.low),
        _fmt8(kline.close),
        _fmt8(kline.volume),
        kline.close_time,
        _fmt8(quote_volume),
        0,
        "0",
        "0",
        "0",
    ]
