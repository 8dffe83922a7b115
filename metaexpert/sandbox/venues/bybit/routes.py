"""The Bybit v5 venue: one REST implementation for the spot, linear and inverse categories.

Every v5 route takes ``category`` and answers ``{"retCode": 0, "retMsg": "OK", "result": ...}``;
the category picks the core market, so spot and derivative requests share each handler. The
account is unified (Bybit's UTA): spot balances are the wallet every market settles into
(``VenueApp.unified``), reduce-only is accepted in hedge mode, and ``/v5/user/query-api`` plus
``/v5/account/info`` report a UTA so ccxt takes its unified code paths. Point ccxt ``bybit`` at it
by overwriting ``urls['api']`` entries (they contain ``{hostname}``), see ``urls``.

About 540 lines, on purpose: one short handler per v5 endpoint, read as the table of what the
venue answers; the payload shapes themselves are in ``orders.py`` and ``payloads.py``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.faults import Fault
from metaexpert.sandbox.core.model import MarketSpec, SandboxOrder, fmt
from metaexpert.sandbox.core.rejects import Reject, RejectReason
from metaexpert.sandbox.core.service import Route, VenueApp, json_response
from metaexpert.sandbox.venues.bybit import orders as wire
from metaexpert.sandbox.venues.bybit import payloads
from metaexpert.sandbox.venues.bybit.auth import server_time_ms, verify
from metaexpert.sandbox.venues.bybit.errors import BybitError, from_reject, invalid, missing
from metaexpert.sandbox.venues.bybit.markets import CATEGORIES, INTERVALS, SPOT, bybit_markets

Json = dict[str, Any]


def ok(result: object, *, time_ms: int | None = None) -> web.Response:
    """A v5 answer; ``time`` is the server's clock, or ``time_ms`` (the replayed market's now,
    for market data whose rows carry no time of their own)."""
    stamp = server_time_ms() if time_ms is None else time_ms
    return json_response(
        {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": stamp}
    )


class BybitApp(VenueApp):
    venue = "bybit"
    unified = True
    hedge_reduce_only = True
    unique_client_ids = True

    def __init__(self, config: SandboxConfig) -> None:
        from metaexpert.sandbox.venues.bybit.streams import BybitStreams

        self.streams = BybitStreams(self)
        super().__init__(config)

    def markets(self, config: SandboxConfig) -> list[MarketSpec]:
        return bybit_markets(config)

    def on_event(self, event: Any) -> None:
        self.streams.on_event(event)

    def on_bars(self, produced: Any) -> None:
        self.streams.on_bars(produced)

    def on_ticks(self, data_market: str, symbol: str, recording: Any, events: Any) -> None:
        self.streams.on_ticks(data_market, symbol, recording, events)

    def routes(self) -> list[Route]:
        public = [
            ("/v5/market/time", self.market_time),
            ("/v5/market/instruments-info", self.instruments),
            ("/v5/market/tickers", self.tickers),
            ("/v5/market/kline", self.kline),
            ("/v5/market/mark-price-kline", self.kline),
            ("/v5/market/index-price-kline", self.kline),
            ("/v5/market/orderbook", self.orderbook),
            ("/v5/market/funding/history", self.funding_history),
        ]
        private_get = [
            ("/v5/user/query-api", self.query_api),
            ("/v5/account/info", self.account_info),
            ("/v5/account/wallet-balance", self.wallet_balance),
            ("/v5/account/fee-rate", self.fee_rate),
            ("/v5/asset/coin/query-info", self.coin_info),
            ("/v5/order/realtime", self.open_orders),
            ("/v5/order/history", self.order_history),
            ("/v5/execution/list", self.executions),
            ("/v5/position/list", self.positions),
        ]
        private_post = [
            ("/v5/order/create", self.create_order),
            ("/v5/order/amend", self.amend_order),
            ("/v5/order/cancel", self.cancel_order),
            ("/v5/order/cancel-all", self.cancel_all),
            ("/v5/position/set-leverage", self.set_leverage),
            ("/v5/position/switch-mode", self.switch_mode),
            ("/v5/account/set-margin-mode", self.set_margin_mode),
        ]
        return [
            *(("GET", path, handler) for path, handler in public + private_get),
            *(("POST", path, handler) for path, handler in private_post),
            *self.streams.routes(),
        ]

    # ------------------------------------------------------------------ venue hooks
    def render_reject(self, reject: Reject) -> BybitError:
        return from_reject(reject)

    def fault_error(self, fault: Fault) -> BybitError:
        retry = {"Retry-After": str(fault.retry_after_seconds)}
        if fault.kind == "rate_limit":
            reset = server_time_ms() + fault.retry_after_seconds * 1000
            return BybitError(
                10006,
                "Too many visits. Exceeded the API Rate Limit.",
                headers={
                    **retry,
                    "X-Bapi-Limit-Status": "0",
                    "X-Bapi-Limit-Reset-Timestamp": str(reset),
                },
            )
        if fault.kind == "ip_ban":
            return BybitError(10018, "access too frequent, IP banned", status=403, headers=retry)
        return BybitError(10016, "System error. Please try again later.", status=503)

    def internal_error(self) -> BybitError:
        return BybitError(10016, "Internal system error.", status=500)

    def not_served_error(self, request: web.Request) -> BybitError:
        return BybitError(
            10001,
            f"The MetaExpert sandbox does not serve {request.method} {request.path}; it speaks the "
            "Bybit v5 market, order, position and account endpoints only.",
            status=404,
        )

    @staticmethod
    def urls(http: str, ws: str) -> dict[str, Any]:
        private = f"{ws}/v5/private"
        return {
            "spot": http,
            "futures": http,
            "v2": http,
            "public": http,
            "private": http,
            "ws": {
                "public": {category: f"{ws}/v5/public/{category}" for category in CATEGORIES},
                "private": {
                    "spot": {"unified": private, "nonUnified": private},
                    "contract": private,
                    "usdc": private,
                },
            },
        }

    # ------------------------------------------------------------------ request helpers
    async def _request(self, request: web.Request, *, private: bool) -> tuple[str | None, Json]:
        body = await request.text() if request.method == "POST" else ""
        params: Json = dict(request.query)
        if body.strip():
            try:
                decoded = json.loads(body)
            except json.JSONDecodeError as exc:
                raise BybitError(10001, "params error: the body is not JSON") from exc
            if not isinstance(decoded, dict):
                raise BybitError(10001, "params error: the body must be a JSON object")
            params.update(decoded)
        if not private:
            return None, params
        payload = body if request.method == "POST" else request.query_string
        api_key = verify(
            request.headers, payload, self.exchange.secrets, self.config.recv_window_max_ms
        )
        return api_key, params

    def category(self, params: Json, *, required: bool = True) -> str:
        category = str(params.get("category") or "")
        if not category and not required:
            return ""
        if category not in CATEGORIES or category not in self.exchange.markets:
            raise BybitError(10001, f"params error: category invalid: {category!r}")
        return category

    def symbol(self, category: str, params: Json) -> str:
        symbol = str(params.get("symbol") or "")
        if not symbol:
            raise missing("symbol")
        return self.exchange.check_symbol(category, symbol)

    def _find(
        self, category: str, api_key: str, params: Json, *, on_cancel: bool = False
    ) -> SandboxOrder:
        raw_id, link = params.get("orderId"), params.get("orderLinkId")
        if not raw_id and not link:
            raise BybitError(10001, "params error: orderId or orderLinkId is required")
        order_id = None
        if raw_id:
            try:
                order_id = int(str(raw_id))
            except ValueError as exc:
                raise invalid("orderId", raw_id) from exc
        symbol = self.symbol(category, params) if params.get("symbol") else None
        return self.exchange.find_order(
            category, api_key, symbol, order_id, str(link) if link else None, on_cancel=on_cancel
        )

    @staticmethod
    def _limit(params: Json, default: int, maximum: int) -> int:
        try:
            limit = int(str(params.get("limit") or default))
        except ValueError as exc:
            raise invalid("limit", params.get("limit")) from exc
        if limit < 1 or limit > maximum:
            raise invalid("limit", limit)
        return limit

    # ------------------------------------------------------------------ public
    async def market_time(self, request: web.Request) -> web.Response:
        now_ns = time.time_ns()
        return ok({"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)})

    async def instruments(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        category = self.category(params)
        rules = self.exchange.symbols[category]
        names = [self.symbol(category, params)] if params.get("symbol") else list(rules)
        rows = [payloads.instrument(category, rules[name], self.exchange) for name in names]
        return ok({"category": category, "list": rows, "nextPageCursor": ""})

    async def tickers(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        category = self.category(params)
        names = (
            [self.symbol(category, params)]
            if params.get("symbol")
            else list(self.exchange.symbols[category])
        )
        return ok(
            {
                "category": category,
                "list": [payloads.ticker(self.exchange, category, s) for s in names],
            },
            time_ms=self.exchange.now,  # rows have no time; the replay's clock, as ``ts`` in streams
        )

    async def kline(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        category = self.category(params)
        symbol = self.symbol(category, params)
        interval = str(params.get("interval") or "")
        if interval not in INTERVALS:
            raise BybitError(10001, f"params error: interval invalid: {interval!r}")
        limit = self._limit(params, 200, 1000)
        start = int(str(params["start"])) if params.get("start") else None
        end = int(str(params["end"])) if params.get("end") else None
        klines = self.exchange.series_of(symbol).klines(
            Timeframe.parse(INTERVALS[interval]), start, end, limit
        )
        if start is not None and end is not None:
            klines = [k for k in klines if k.open_time <= end]
        rows = [payloads.kline_row(kline) for kline in reversed(klines)]  # newest first, as Bybit
        return ok({"category": category, "symbol": symbol, "list": rows})

    async def orderbook(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        category = self.category(params)
        symbol = self.symbol(category, params)
        limit = self._limit(params, 25, 1000 if category != SPOT else 200)
        update_id = self.replay.synthetic_update_id
        return ok(payloads.orderbook(self.exchange, category, symbol, limit, update_id))

    async def funding_history(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=False)
        category = self.category(params)
        symbol = self.symbol(category, params)
        seen: dict[int, Json] = {}
        for record in self.exchange.funding_rates:
            if record["symbol"] == symbol and record["market"] == category:
                seen[int(str(record["time"]))] = {
                    "symbol": symbol,
                    "fundingRate": fmt(float(str(record["rate"]))),
                    "fundingRateTimestamp": str(record["time"]),
                }
        rows = [seen[key] for key in sorted(seen, reverse=True)]
        return ok({"category": category, "list": rows[: self._limit(params, 200, 200)]})

    # ------------------------------------------------------------------ account
    async def query_api(self, request: web.Request) -> web.Response:
        api_key, _ = await self._request(request, private=True)
        can_trade = self.exchange.can_trade.get(api_key or "", False)
        return ok(
            {
                "id": "1",
                "note": "metaexpert-sandbox",
                "apiKey": api_key,
                "readOnly": 0 if can_trade else 1,
                "secret": "",
                "permissions": {
                    "ContractTrade": ["Order", "Position"],
                    "Spot": ["SpotTrade"],
                    "Wallet": ["AccountTransfer"],
                    "Options": [],
                    "Derivatives": [],
                    "Exchange": [],
                    "Earn": [],
                    "BlockTrade": [],
                    "Affiliate": [],
                },
                "ips": ["*"],
                "type": 1,
                "deadlineDay": -1,
                "expiredAt": "",
                "createdAt": "",
                "unified": 0,
                "uta": 1,
                "userID": 1,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "rsaPublicKey": "",
                "isMaster": True,
                "parentUid": "0",
                "kycLevel": "LEVEL_DEFAULT",
                "kycRegion": "",
            }
        )

    def _derivative_accounts(self, api_key: str) -> list[tuple[str, Any]]:
        return [
            (category, self.exchange.margin_accounts[category][api_key])
            for category in ("linear", "inverse")
            if category in self.exchange.margin_accounts
        ]

    def _margin_mode(self, api_key: str) -> str:
        """A unified account's one margin mode (REGULAR_MARGIN is cross)."""
        isolated = any(
            mode == "ISOLATED"
            for _, account in self._derivative_accounts(api_key)
            for mode in account.margin_type.values()
        )
        return "ISOLATED_MARGIN" if isolated else "REGULAR_MARGIN"

    async def set_margin_mode(self, request: web.Request) -> web.Response:
        """Unified accounts set cross or isolated margin for the whole account (every linear
        and inverse symbol), not per symbol; refused while a position or an order is open."""
        api_key, params = await self._request(request, private=True)
        wanted = str(params.get("setMarginMode") or "")
        if not wanted:
            raise missing("setMarginMode")
        margin_type = {"ISOLATED_MARGIN": "ISOLATED", "REGULAR_MARGIN": "CROSSED"}.get(wanted)
        if margin_type is None:
            raise invalid("setMarginMode", wanted)  # PORTFOLIO_MARGIN is not modelled
        if self._margin_mode(str(api_key)) == wanted:
            raise BybitError(110026, "Cross/isolated margin mode is not modified")
        for category, _ in self._derivative_accounts(str(api_key)):
            for symbol in self.exchange.symbols[category]:
                try:
                    self.exchange.margin.set_margin_type(
                        category, str(api_key), symbol, margin_type
                    )
                except Reject as reject:
                    if reject.reason is not RejectReason.MARGIN_MODE_UNCHANGED:
                        raise
        return ok({"reasons": []})

    async def account_info(self, request: web.Request) -> web.Response:
        api_key, _ = await self._request(request, private=True)
        return ok(
            {
                "unifiedMarginStatus": 5,
                "marginMode": self._margin_mode(str(api_key)),
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
                "updatedTime": str(self.exchange.now),
                "dcpStatus": "OFF",
                "timeWindow": 10,
                "smpGroup": 0,
            }
        )

    async def wallet_balance(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        account_type = str(params.get("accountType") or "")
        if account_type != "UNIFIED":
            raise BybitError(10001, f"accountType only support UNIFIED, got {account_type!r}")
        coins = [c for c in str(params.get("coin") or "").split(",") if c]
        return ok(payloads.wallet(self.exchange, str(api_key), coins or None))

    async def coin_info(self, request: web.Request) -> web.Response:
        """The coins of the served markets (ccxt's fetchCurrencies; one chain each)."""
        await self._request(request, private=True)
        coins = sorted(
            {
                c
                for rules in self.exchange.symbols.values()
                for r in rules.values()
                for c in (r.base_asset, r.quote_asset)
                if c != "USD"
            }
        )
        chain = {
            "chainType": "ERC20",
            "confirmation": "6",
            "withdrawFee": "0",
            "depositMin": "0",
            "withdrawMin": "0",
            "chain": "ETH",
            "chainDeposit": "1",
            "chainWithdraw": "1",
            "minAccuracy": "8",
            "withdrawPercentageFee": "0",
            "contractAddress": "",
        }
        rows = [
            {"name": coin, "coin": coin, "remainAmount": "1000000", "chains": [chain]}
            for coin in coins
        ]
        return ok({"rows": rows})

    async def fee_rate(self, request: web.Request) -> web.Response:
        _, params = await self._request(request, private=True)
        category = self.category(params)
        spec = self.exchange.markets[category]
        names = [self.symbol(category, params)] if params.get("symbol") else list(spec.rules)
        return ok(
            {
                "list": [
                    {
                        "symbol": s,
                        "takerFeeRate": fmt(spec.taker_fee),
                        "makerFeeRate": fmt(spec.maker_fee),
                    }
                    for s in names
                ]
            }
        )

    # ------------------------------------------------------------------ orders
    async def create_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        symbol = self.symbol(category, params)
        order_request = wire.parse_order(
            category, str(api_key), params, self.exchange.price(symbol, category)
        )
        try:
            order = self.exchange.place_order(order_request)
        except Reject as reject:
            raise from_reject(reject, rising=wire.rising_trigger(params)) from reject
        return ok({"orderId": str(order.order_id), "orderLinkId": order.client_order_id})

    async def amend_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        order = self._find(category, str(api_key), params)
        quantity = wire._decimal(params["qty"], "qty") if params.get("qty") else None
        price = wire._decimal(params["price"], "price") if params.get("price") else None
        trigger = (
            float(wire._decimal(params["triggerPrice"], "triggerPrice"))
            if params.get("triggerPrice")
            else None
        )
        if quantity is None and price is None and trigger is None:
            raise BybitError(10001, "params error: nothing to amend")
        self.exchange.amend(order, None, quantity, price, trigger)
        return ok({"orderId": str(order.order_id), "orderLinkId": order.client_order_id})

    async def cancel_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        order = self._find(category, str(api_key), params, on_cancel=True)
        self.exchange.cancel(order)
        return ok({"orderId": str(order.order_id), "orderLinkId": order.client_order_id})

    async def cancel_all(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        symbol = self.symbol(category, params) if params.get("symbol") else None
        wanted = str(params.get("orderFilter") or "")
        cancelled = [
            self.exchange.cancel(order)
            for order in self.exchange.open_orders(category, str(api_key), symbol)
            if self._matches_filter(order, wanted)
        ]
        rows = [{"orderId": str(o.order_id), "orderLinkId": o.client_order_id} for o in cancelled]
        return ok({"list": rows, "success": "1"})

    @staticmethod
    def _matches_filter(order: SandboxOrder, wanted: str) -> bool:
        waiting = order.is_conditional and not order.triggered
        if wanted == "StopOrder":
            return waiting
        if wanted == "Order":
            return not waiting
        return True

    def _rows(self, category: str, orders: list[SandboxOrder], params: Json) -> web.Response:
        limit = self._limit(params, 20, 50)
        rows = [
            wire.order_row(order, category) for order in sorted(orders, key=lambda o: -o.order_id)
        ]
        return ok({"category": category, "list": rows[:limit], "nextPageCursor": ""})

    async def open_orders(self, request: web.Request) -> web.Response:
        """realtime: open orders, and by id also orders closed recently (as Bybit keeps them)."""
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        symbol = self.symbol(category, params) if params.get("symbol") else None
        if params.get("orderId") or params.get("orderLinkId"):
            try:
                order = self._find(category, str(api_key), params)
            except Reject:
                return self._rows(category, [], params)
            return self._rows(category, [order], params)
        wanted = str(params.get("orderFilter") or ("Order" if category == SPOT else ""))
        orders = [
            o
            for o in self.exchange.open_orders(category, str(api_key), symbol)
            if self._matches_filter(o, wanted)
        ]
        return self._rows(category, orders, params)

    async def order_history(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        symbol = self.symbol(category, params) if params.get("symbol") else None
        orders = [
            o for o in self.exchange.all_orders(category, str(api_key), symbol) if not o.is_open
        ]
        if params.get("orderId") or params.get("orderLinkId"):
            orders = [
                o
                for o in orders
                if str(o.order_id) == str(params.get("orderId"))
                or o.client_order_id == params.get("orderLinkId")
            ]
        wanted = str(params.get("orderFilter") or "")
        orders = [o for o in orders if wanted != "StopOrder" or o.is_conditional]
        return self._rows(category, orders, params)

    async def executions(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        symbol = self.symbol(category, params) if params.get("symbol") else None
        fills = self.exchange.trades(category, str(api_key), symbol)
        if params.get("orderId"):
            fills = [f for f in fills if str(f.order_id) == str(params["orderId"])]
        orders = self.exchange.orders[category]
        rows = [wire.execution_row(f, orders[f.order_id], category) for f in reversed(fills)]
        return ok(
            {
                "category": category,
                "list": rows[: self._limit(params, 50, 100)],
                "nextPageCursor": "",
            }
        )

    # ------------------------------------------------------------------ positions
    async def positions(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        if category == SPOT:
            raise BybitError(10001, "params error: category only support linear, inverse or option")
        symbol = self.symbol(category, params) if params.get("symbol") else None
        margin = self.exchange.margin
        account = self.exchange.margin_accounts[category][str(api_key)]
        rows = []
        for position in self.exchange.positions(
            category, str(api_key), symbol, include_empty=symbol is not None
        ):
            mark = margin.mark(position)
            rows.append(
                wire.position_row(
                    position,
                    mark=mark,
                    leverage=margin.leverage(account, position.symbol),
                    unrealized=margin.unrealized(position),
                    liquidation=margin.liquidation_price(account, position),
                    margin=margin.position_margin(account, position),
                    value=margin.notional(category, position.symbol, abs(position.amount), mark),
                    isolated=account.margin_type.get(position.symbol, "CROSSED") == "ISOLATED",
                )
            )
        return ok({"category": category, "list": rows, "nextPageCursor": ""})

    async def set_leverage(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        symbol = self.symbol(category, params)
        buy, sell = params.get("buyLeverage"), params.get("sellLeverage")
        if buy in (None, "") or sell in (None, ""):
            raise missing("buyLeverage")
        try:
            leverage = float(str(buy))
        except ValueError as exc:
            raise invalid("buyLeverage", buy) from exc
        if str(buy) != str(sell):
            raise BybitError(10001, "buy leverage must equal sell leverage in one-way mode")
        account = self.exchange.margin_accounts[category][str(api_key)]
        if account.leverage.get(symbol) == int(leverage):
            raise BybitError(110043, "Set leverage not modified")
        self.exchange.margin.set_leverage(category, str(api_key), symbol, int(leverage))
        return ok({})

    async def switch_mode(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        category = self.category(params)
        mode = str(params.get("mode", ""))
        if mode not in ("0", "3"):
            raise invalid("mode", mode)
        self.exchange.margin.set_dual_side(category, str(api_key), mode == "3")
        return ok({})
