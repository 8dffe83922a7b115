"""Bybit v5 market-data and account payloads: instruments, tickers, klines, order book, wallet.

Shapes follow the v5 responses ccxt records (``instruments-info`` lists with ``lotSizeFilter``
and ``priceFilter``, kline rows newest first as strings, ``wallet-balance`` of a UNIFIED
account with one ``coin`` row per coin). Equity of a unified account is its wallet plus the
unrealised PnL of its positions, counted per coin and in USD at the replayed prices.
"""

from __future__ import annotations

import math

from metaexpert.core.timeframe import DAY_MS
from metaexpert.sandbox.config import SymbolConfig
from metaexpert.sandbox.core.exchange import SandboxExchange
from metaexpert.sandbox.core.market_data import Kline
from metaexpert.sandbox.core.model import fmt
from metaexpert.sandbox.venues.bybit.markets import INVERSE, LINEAR, OPTION, SPOT


def option_instrument(rule: SymbolConfig, exchange: SandboxExchange) -> dict[str, object]:
    spec = exchange.markets[OPTION].options[rule.symbol]
    return {
        "symbol": rule.symbol,
        "optionsType": "Call" if spec.is_call else "Put",
        "status": "Trading",
        "baseCoin": rule.base_asset,
        "quoteCoin": "USD",
        "settleCoin": rule.quote_asset,
        "launchTime": "1747267200000",
        "deliveryTime": str(spec.expiry_ms),
        "deliveryFeeRate": "0.00015",
        "priceFilter": {
            "minPrice": fmt(rule.min_price),
            "maxPrice": "10000000",
            "tickSize": fmt(rule.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt(rule.max_quantity),
            "minOrderQty": fmt(rule.min_quantity),
            "qtyStep": fmt(rule.step_size),
        },
        "displayName": "",
    }


def option_ticker(exchange: SandboxExchange, symbol: str) -> dict[str, object]:
    from metaexpert.sandbox.core.options import delta

    spec = exchange.markets[OPTION].options[symbol]
    underlying = exchange.price(spec.underlying)
    mark = exchange.price(symbol, OPTION)
    vol = fmt(exchange.config.option_volatility)
    return {
        "symbol": symbol,
        "bid1Price": fmt(mark),
        "bid1Size": "1",
        "bid1Iv": vol,
        "ask1Price": fmt(mark),
        "ask1Size": "1",
        "ask1Iv": vol,
        "lastPrice": fmt(mark),
        "highPrice24h": fmt(mark),
        "lowPrice24h": fmt(mark),
        "markPrice": fmt(mark),
        "indexPrice": fmt(underlying),
        "markIv": vol,
        "underlyingPrice": fmt(underlying),
        "openInterest": "0",
        "turnover24h": "0",
        "volume24h": "0",
        "totalVolume": "0",
        "totalTurnover": "0",
        "delta": fmt(delta(spec, underlying, exchange.now, exchange.config.option_volatility)),  # type: ignore[arg-type]
        "gamma": "0",
        "vega": "0",
        "theta": "0",
        "predictedDeliveryPrice": "0",
        "change24h": "0",
    }


def instrument(category: str, rule: SymbolConfig, exchange: SandboxExchange) -> dict[str, object]:
    if category == OPTION:
        return option_instrument(rule, exchange)
    price_filter = {
        "tickSize": fmt(rule.tick_size),
        "minPrice": fmt(rule.min_price),
        "maxPrice": fmt(rule.max_price),
    }
    if category == SPOT:
        return {
            "symbol": rule.symbol,
            "baseCoin": rule.base_asset,
            "quoteCoin": rule.quote_asset,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "utaOnly",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": fmt(rule.step_size),
                "quotePrecision": "0.00000001",
                "minOrderQty": fmt(rule.min_quantity),
                "maxOrderQty": fmt(rule.max_quantity),
                "minOrderAmt": fmt(rule.min_notional),
                "maxOrderAmt": "8000000",
            },
            "priceFilter": {"tickSize": fmt(rule.tick_size)},
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        }
    settle = rule.base_asset if category == INVERSE else rule.quote_asset
    return {
        "symbol": rule.symbol,
        "contractType": "InversePerpetual" if category == INVERSE else "LinearPerpetual",
        "status": "Trading",
        "baseCoin": rule.base_asset,
        "quoteCoin": rule.quote_asset,
        "settleCoin": settle,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{exchange.config.max_leverage}.00",
            "leverageStep": "0.01",
        },
        "priceFilter": price_filter,
        "lotSizeFilter": {
            "maxOrderQty": fmt(rule.max_quantity),
            "minOrderQty": fmt(rule.min_quantity),
            "qtyStep": fmt(rule.step_size),
            "postOnlyMaxOrderQty": fmt(rule.max_quantity),
            "maxMktOrderQty": fmt(rule.max_quantity),
            "minNotionalValue": fmt(rule.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
    }


def ticker(exchange: SandboxExchange, category: str, symbol: str) -> dict[str, object]:
    if category == OPTION:
        return option_ticker(exchange, symbol)
    series = exchange.series_of(symbol)
    open_, high, low, _close, volume, _open_time = series.window(DAY_MS)
    last = exchange.price(symbol, category)
    bid, ask = exchange.bid_ask(symbol, category)
    high, low = max(high, last), min(low, last)
    row: dict[str, object] = {
        "symbol": symbol,
        "bid1Price": fmt(bid),
        "bid1Size": "1",
        "ask1Price": fmt(ask),
        "ask1Size": "1",
        "lastPrice": fmt(last),
        "prevPrice24h": fmt(open_),
        "price24hPcnt": fmt((last - open_) / open_ if open_ else 0.0, 4),
        "highPrice24h": fmt(high),
        "lowPrice24h": fmt(low),
        "turnover24h": fmt(volume * (high + low + last) / 3),
        "volume24h": fmt(volume),
    }
    if category in (LINEAR, INVERSE):
        from metaexpert.sandbox.core.margin import FUNDING_INTERVAL_MS

        now = exchange.now
        row.update(
            {
                "indexPrice": fmt(last),
                "markPrice": fmt(last),
                "prevPrice1h": fmt(open_),
                "openInterest": "0",
                "openInterestValue": "0",
                "fundingRate": fmt(exchange.config.funding_rate),
                "nextFundingTime": str((now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS),
                "predictedDeliveryPrice": "",
                "basisRate": "",
                "deliveryFeeRate": "",
                "deliveryTime": "0",
            }
        )
    else:
        row["usdIndexPrice"] = fmt(last)
    return row


def kline_row(kline: Kline) -> list[str]:
    turnover = kline.volume * (kline.open + kline.close) / 2.0
    return [
        str(kline.open_time),
        fmt(kline.open),
        fmt(kline.high),
        fmt(kline.low),
        fmt(kline.close),
        fmt(kline.volume),
        fmt(turnover),
    ]


def orderbook(
    exchange: SandboxExchange, category: str, symbol: str, limit: int, update_id: int
) -> dict[str, object]:
    tick = exchange.symbols[category][symbol].tick_size
    bid, ask = exchange.bid_ask(symbol, category)
    best_bid = math.floor(bid / tick + 1e-9)
    best_ask = max(math.ceil(ask / tick - 1e-9), best_bid + 1)  # a book is never crossed or locked
    bids = [[fmt((best_bid - i) * tick), "1"] for i in range(limit)]
    asks = [[fmt((best_ask + i) * tick), "1"] for i in range(limit)]
    return {
        "s": symbol,
        "b": bids,
        "a": asks,
        "ts": exchange.now,
        "u": update_id,
        "seq": update_id,
        "cts": exchange.now,
    }


def wallet(exchange: SandboxExchange, api_key: str, coins: list[str] | None) -> dict[str, object]:
    """One UNIFIED account: spot balances are the wallet; positions add PnL and margin per coin."""
    rows = []
    total_equity = total_wallet = total_available = total_im = 0.0
    for asset, c in exchange.margin.unified_coins(api_key).items():
        if coins and asset not in coins:
            continue
        im = c["position_im"] + c["order_im"]
        total_equity += (c["wallet"] + c["upl"]) * c["usd"]
        total_wallet += c["wallet"] * c["usd"]
        total_available += c["available"] * c["usd"]
        total_im += im * c["usd"]
        rows.append(
            {
                "coin": asset,
                "equity": fmt(c["wallet"] + c["upl"]),
                "usdValue": fmt((c["wallet"] + c["upl"]) * c["usd"]),
                "walletBalance": fmt(c["wallet"]),
                "free": "",
                "locked": fmt(c["locked"]),
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "availableToWithdraw": fmt(c["available"]),
                "availableToBorrow": "",
                "bonus": "0",
                "accruedInterest": "0",
                "totalOrderIM": fmt(c["order_im"]),
                "totalPositionIM": fmt(c["position_im"]),
                "totalPositionMM": "0",
                "unrealisedPnl": fmt(c["upl"]),
                "cumRealisedPnl": "0",
                "marginCollateral": True,
                "collateralSwitch": True,
            }
        )
    return {
        "list": [
            {
                "accountType": "UNIFIED",
                "accountIMRate": "0",
                "accountMMRate": "0",
                "accountLTV": "0",
                "totalEquity": fmt(total_equity),
                "totalWalletBalance": fmt(total_wallet),
                "totalMarginBalance": fmt(total_equity),
                "totalAvailableBalance": fmt(total_available),
                "totalPerpUPL": fmt(total_equity - total_wallet),
                "totalInitialMargin": fmt(total_im),
                "totalMaintenanceMargin": "0",
                "coin": rows,
            }
        ]
    }
