"""OKX v5 public market data and account endpoints (a mixin of ``OkxApp``, split by concern).

Instruments (``ctVal`` contracts for SWAP), tickers, candles (newest first; ``after`` pages to
older bars, ``before`` to newer), books, funding, the unified ``account/balance`` (equity = wallet
+ unrealised PnL per coin), ``account/config`` (posMode), positions, leverage and position mode.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from metaexpert.core.timeframe import DAY_MS, Timeframe
from metaexpert.sandbox.core.margin import FUNDING_INTERVAL_MS
from metaexpert.sandbox.core.model import fmt
from metaexpert.sandbox.venues.okx import orders as wire
from metaexpert.sandbox.venues.okx.errors import parameter
from metaexpert.sandbox.venues.okx.markets import BARS, OPTION, SWAP

if TYPE_CHECKING:
    from metaexpert.sandbox.venues.okx.routes import OkxApp

    _Base = OkxApp
else:
    _Base = object

Json = dict[str, Any]


# OKX's instrument types; the sandbox lists SPOT, SWAP and (with option underlyings) OPTION.
INSTRUMENT_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


def ok(data: list[Any]) -> web.Response:
    from metaexpert.sandbox.core.service import json_response

    return json_response({"code": "0", "msg": "", "data": data})


class MarketAndAccountRoutes(_Base):
    # ------------------------------------------------------------------ public
    async def server_time(self, request: web.Request) -> web.Response:
        return ok([{"ts": str(int(time.time() * 1000))}])

    async def instruments(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        if (
            params.get("instType") in INSTRUMENT_TYPES
            and params["instType"] not in self.exchange.markets
        ):
            return ok([])  # a valid type this sandbox lists nothing of (OKX answers the same way)
        market = self.market_of({"instType": params.get("instType")})
        spec = self.exchange.markets[market]
        rows = []
        for inst, rule in spec.rules.items():
            if params.get("instId") and params["instId"] != inst:
                continue
            swap = market == SWAP
            if market == OPTION:
                rows.append(self._option_instrument(inst, rule, spec))
                continue
            rows.append(
                {
                    "instType": market,
                    "instId": inst,
                    "uly": f"{rule.base_asset}-{rule.quote_asset}" if swap else "",
                    "instFamily": f"{rule.base_asset}-{rule.quote_asset}" if swap else "",
                    "baseCcy": "" if swap else rule.base_asset,
                    "quoteCcy": "" if swap else rule.quote_asset,
                    "settleCcy": rule.quote_asset if swap else "",
                    "ctVal": fmt(spec.contract_size.get(inst, 1.0)) if swap else "",
                    "ctMult": "1" if swap else "",
                    "ctValCcy": rule.base_asset if swap else "",
                    "optType": "",
                    "stk": "",
                    "listTime": "1606468572000",
                    "expTime": "",
                    "lever": str(self.config.max_leverage) if swap else "10",
                    "tickSz": fmt(rule.tick_size),
                    "lotSz": fmt(rule.step_size),
                    "minSz": fmt(rule.min_quantity),
                    "ctType": "linear" if swap else "",
                    "alias": "",
                    "state": "live",
                    "maxLmtSz": fmt(rule.max_quantity),
                    "maxMktSz": fmt(rule.max_quantity),
                    "maxLmtAmt": "20000000",
                    "maxMktAmt": "1000000",
                    "maxTwapSz": "",
                    "maxIcebergSz": "",
                    "maxTriggerSz": fmt(rule.max_quantity),
                    "maxStopSz": fmt(rule.max_quantity),
                    "ruleType": "normal",
                    "category": "1",
                }
            )
        return ok(rows)

    def _option_instrument(self, inst: str, rule: Any, spec: Any) -> Json:
        option = spec.options[inst]
        return {
            "instType": OPTION,
            "instId": inst,
            "uly": f"{rule.base_asset}-USD",
            "instFamily": f"{rule.base_asset}-USD",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": rule.base_asset,
            "ctVal": fmt(spec.contract_size[inst]),
            "ctMult": "1",
            "ctValCcy": rule.base_asset,
            "optType": "C" if option.is_call else "P",
            "stk": fmt(option.strike),
            "listTime": "1747267200000",
            "expTime": str(option.expiry_ms),
            "lever": "",
            "tickSz": fmt(rule.tick_size),
            "lotSz": fmt(rule.step_size),
            "minSz": fmt(rule.min_quantity),
            "ctType": "",
            "alias": "",
            "state": "live",
            "maxLmtSz": fmt(rule.max_quantity),
            "maxMktSz": fmt(rule.max_quantity),
            "maxLmtAmt": "",
            "maxMktAmt": "",
            "maxTwapSz": "",
            "maxIcebergSz": "",
            "maxTriggerSz": "",
            "maxStopSz": "",
            "ruleType": "normal",
            "category": "1",
        }

    def _ticker(self, market: str, inst: str) -> Json:
        series = self.exchange.series_of(inst)
        open_, high, low, _close, volume, _ = series.window(DAY_MS)
        last = self.exchange.price(inst, market)
        bid, ask = self.exchange.bid_ask(inst, market)
        size = self.exchange.markets[market].contract_size.get(inst, 1.0)
        return {
            "instType": market,
            "instId": inst,
            "last": fmt(last),
            "lastSz": "0",
            "askPx": fmt(ask),
            "askSz": "1",
            "bidPx": fmt(bid),
            "bidSz": "1",
            "open24h": fmt(open_),
            "high24h": fmt(max(high, last)),
            "low24h": fmt(min(low, last)),
            "volCcy24h": fmt(volume if market == SWAP else volume * last),
            "vol24h": fmt(volume / size if market == SWAP else volume),
            "ts": str(self.exchange.now),
            "sodUtc0": fmt(open_),
            "sodUtc8": fmt(open_),
        }

    async def ticker(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        market = self.market_of(params)
        return ok([self._ticker(market, str(params["instId"]))])

    async def tickers(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        if (
            params.get("instType") in INSTRUMENT_TYPES
            and params["instType"] not in self.exchange.markets
        ):
            return ok([])  # a valid type this sandbox lists nothing of (OKX answers the same way)
        market = self.market_of({"instType": params.get("instType")})
        return ok([self._ticker(market, inst) for inst in self.exchange.symbols[market]])

    async def candles(self, request: web.Request) -> web.Response:
        """Newest first; ``after`` = older than, ``before`` = newer than (ms), as OKX pages."""
        _, params = await self._request(request, private=False)
        self.market_of(params)
        bar = str(params.get("bar") or "1m")
        if bar not in BARS:
            raise parameter("bar")
        try:
            limit = int(str(params.get("limit") or 100))
        except ValueError as exc:
            raise parameter("limit") from exc
        if limit < 1 or limit > 300:
            raise parameter("limit")
        after = int(str(params["after"])) - 1 if params.get("after") else None
        before = int(str(params["before"])) + 1 if params.get("before") else None
        inst = str(params["instId"])
        series = self.exchange.series_of(inst)
        klines = series.klines(Timeframe.parse(BARS[bar]), before, after, limit)
        klines = self.exchange.klines_of(inst, klines)
        size = self.exchange.markets[self.market_of(params)].contract_size.get(
            str(params["instId"]), 1.0
        )
        rows = [
            [
                str(k.open_time),
                fmt(k.open),
                fmt(k.high),
                fmt(k.low),
                fmt(k.close),
                fmt(k.volume / size),
                fmt(k.volume),
                fmt(k.volume * k.close),
                "1" if k.close_time < self.exchange.now else "0",
            ]
            for k in reversed(klines)
        ]
        return ok(rows)

    async def books(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        market = self.market_of(params)
        inst = str(params["instId"])
        depth = int(str(params.get("sz") or 5))
        tick = self.exchange.symbols[market][inst].tick_size
        bid, ask = self.exchange.bid_ask(inst, market)
        best_bid = int(bid / tick + 1e-9)
        best_ask = max(int(ask / tick - 1e-9 + 0.999999), best_bid + 1)
        return ok(
            [
                {
                    "bids": [[fmt((best_bid - i) * tick), "1", "0", "1"] for i in range(depth)],
                    "asks": [[fmt((best_ask + i) * tick), "1", "0", "1"] for i in range(depth)],
                    "ts": str(self.exchange.now),
                }
            ]
        )

    async def funding_rate(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        market = self.market_of(params)
        now = self.exchange.now
        nxt = (now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        rate = fmt(self.config.funding_rate)
        return ok(
            [
                {
                    "instType": market,
                    "instId": params["instId"],
                    "fundingRate": rate,
                    "nextFundingRate": rate,
                    "fundingTime": str(nxt),
                    "nextFundingTime": str(nxt + FUNDING_INTERVAL_MS),
                    "method": "current_period",
                    "ts": str(now),
                }
            ]
        )

    # ------------------------------------------------------------------ account
    async def currencies(self, request: web.Request) -> web.Response:
        """``asset/currencies`` (funding account, private): ccxt asks for it on ``load_markets`` unless
        in demo mode, so a client without the demo header meets the real 50101 here, not a 404."""
        await self._request(request, private=True)
        coins = sorted(
            {
                a
                for spec in self.exchange.markets.values()
                for r in spec.rules.values()
                for a in (r.base_asset, r.quote_asset)
            }
        )
        return ok(
            [
                {
                    "ccy": c,
                    "name": c,
                    "chain": f"{c}-{c}",
                    "canDep": True,
                    "canWd": True,
                    "canInternal": True,
                    "minWd": "0",
                    "minFee": "0",
                    "maxFee": "0",
                    "wdTickSz": "8",
                    "mainNet": True,
                }
                for c in coins
            ]
        )

    async def balance(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        wanted = [c for c in str(params.get("ccy") or "").split(",") if c]
        return ok([self.balance_row(api_key, wanted)])

    def balance_row(self, api_key: str, wanted: list[str]) -> Json:
        """The unified account: equity = wallet + unrealised PnL per coin (REST and the stream)."""
        details, total_eq, imr = [], 0.0, 0.0
        for ccy, c in self.exchange.margin.unified_coins(api_key).items():
            if wanted and ccy not in wanted:
                continue
            eq = c["wallet"] + c["upl"]
            total_eq += eq * c["usd"]
            imr += (c["position_im"] + c["order_im"]) * c["usd"]
            frozen = c["locked"] + c["position_im"] + c["order_im"]
            details.append(
                {
                    "ccy": ccy,
                    "eq": fmt(eq),
                    "cashBal": fmt(c["wallet"]),
                    "availBal": fmt(c["available"]),
                    "availEq": fmt(c["available"]),
                    "frozenBal": fmt(frozen),
                    "ordFrozen": fmt(c["locked"] + c["order_im"]),
                    "upl": fmt(c["upl"]),
                    "isoEq": "0",
                    "disEq": fmt(eq * c["usd"]),
                    "eqUsd": fmt(eq * c["usd"]),
                    "uTime": str(self.exchange.now),
                    "liab": "",
                    "crossLiab": "",
                    "isoLiab": "",
                    "mgnRatio": "",
                    "interest": "",
                    "twap": "0",
                    "maxLoan": "",
                    "notionalLever": "",
                    "stgyEq": "0",
                    "isoUpl": "",
                    "spotInUseAmt": "",
                    "borrowFroz": "",
                    "imr": fmt(c["position_im"]),
                    "mmr": "0",
                }
            )
        return {
            "totalEq": fmt(total_eq),
            "isoEq": "0",
            "adjEq": fmt(total_eq),
            "ordFroz": "0",
            "imr": fmt(imr),
            "mmr": "0",
            "notionalUsd": "0",
            "mgnRatio": "",
            "borrowFroz": "",
            "upl": "0",
            "uTime": str(self.exchange.now),
            "details": details,
        }

    async def config_view(self, request: web.Request) -> web.Response:
        api_key, _ = await self._request(request, private=True)
        dual = any(a[api_key].dual_side for a in self.exchange.margin_accounts.values())
        return ok(
            [
                {
                    "uid": "1",
                    "mainUid": "1",
                    "acctLv": "2",
                    "posMode": "long_short_mode" if dual else "net_mode",
                    "autoLoan": False,
                    "greeksType": "PA",
                    "level": "Lv1",
                    "levelTmp": "",
                    "ctIsoMode": "automatic",
                    "mgnIsoMode": "automatic",
                    "spotOffsetType": "",
                    "roleType": "0",
                    "traderInsts": [],
                    "opAuth": "0",
                    "kycLv": "0",
                    "label": "metaexpert-sandbox",
                    "ip": "",
                    "perm": "read_only,trade",
                }
            ]
        )

    async def positions(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        if params.get("instType") not in (None, "", SWAP, OPTION, "ANY"):
            return ok([])
        inst = str(params.get("instId") or "") or None
        if inst is not None:
            self.market_of(params)
        return ok(self.position_rows(api_key, inst))

    def position_rows(self, api_key: str, inst: str | None) -> list[Json]:
        margin = self.exchange.margin
        rows = []
        for market in (m for m in (SWAP, OPTION) if m in self.exchange.margin_accounts):
            account = self.exchange.margin_accounts[market][api_key]
            if inst is not None and inst not in self.exchange.symbols[market]:
                continue
            for position in self.exchange.positions(market, api_key, inst, include_empty=False):
                mark = margin.mark(position)
                row = wire.position_row(
                    position,
                    mark=mark,
                    lever=margin.leverage(account, position.symbol),
                    upl=margin.unrealized(position),
                    liquidation=margin.liquidation_price(account, position),
                    margin=margin.position_margin(account, position),
                    notional=margin.notional(market, position.symbol, abs(position.amount), mark),
                    isolated=account.margin_type.get(position.symbol) == "ISOLATED",
                    settle=margin.settle_asset(market, position.symbol),
                )
                rows.append({**row, "instType": market})
        return rows

    async def set_leverage(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        market = self.market_of(params)
        try:
            lever = int(float(str(params.get("lever"))))
        except ValueError as exc:
            raise parameter("lever") from exc
        self.exchange.margin.set_leverage(market, api_key, str(params["instId"]), lever)
        return ok(
            [
                {
                    "lever": str(lever),
                    "mgnMode": params.get("mgnMode", "cross"),
                    "instId": params["instId"],
                    "posSide": params.get("posSide", "net"),
                }
            ]
        )

    async def set_position_mode(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        mode = str(params.get("posMode") or "")
        if mode not in ("long_short_mode", "net_mode"):
            raise parameter("posMode")
        account = self.exchange.margin_accounts[SWAP][api_key]
        if account.dual_side != (mode == "long_short_mode"):
            self.exchange.margin.set_dual_side(SWAP, api_key, mode == "long_short_mode")
        return ok([{"posMode": mode}])
