"""The OKX v5 venue: one REST implementation for the SPOT and SWAP instrument types.

``instType`` / ``instId`` pick the core market; the account is unified (OKX's trading account:
spot balances are the wallet SWAP positions settle into). Plain orders go through
``trade/order`` and ``trade/batch-orders`` (ccxt's default), conditional, trigger and trailing
orders through the algo service (``trade/order-algo``, ``orders-algo-pending``, ``cancel-algos``,
``amend-algos``).
Private requests need the passphrase and the ``x-simulated-trading: 1`` header (``auth.py``).
Point ccxt ``okx`` at it with ``set_sandbox_mode(True)`` and ``urls['api']['rest']``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.faults import Fault
from metaexpert.sandbox.core.model import MarketSpec, SandboxOrder
from metaexpert.sandbox.core.rejects import Reject
from metaexpert.sandbox.core.service import Route, VenueApp, json_response
from metaexpert.sandbox.venues.okx import orders as wire
from metaexpert.sandbox.venues.okx.account import MarketAndAccountRoutes
from metaexpert.sandbox.venues.okx.auth import verify
from metaexpert.sandbox.venues.okx.errors import OkxError, from_reject, parameter
from metaexpert.sandbox.venues.okx.markets import SPOT, okx_markets

Json = dict[str, Any]


def ok(data: list[Any]) -> web.Response:
    return json_response({"code": "0", "msg": "", "data": data})


class OkxApp(MarketAndAccountRoutes, VenueApp):
    venue = "okx"
    unified = True
    hedge_reduce_only = True
    unique_client_ids = True

    def __init__(self, config: SandboxConfig) -> None:
        from metaexpert.sandbox.venues.okx.streams import OkxStreams

        self.streams = OkxStreams(self)
        super().__init__(config)

    def markets(self, config: SandboxConfig) -> list[MarketSpec]:
        return okx_markets(config)

    def on_event(self, event: Any) -> None:
        self.streams.on_event(event)

    def on_bars(self, produced: Any) -> None:
        self.streams.on_bars(produced)

    def on_ticks(self, data_market: str, symbol: str, recording: Any, events: Any) -> None:
        self.streams.on_ticks(data_market, symbol, recording, events)

    def routes(self) -> list[Route]:
        v = "/api/v5"
        get = {
            "public/time": self.server_time,
            "public/instruments": self.instruments,
            "market/ticker": self.ticker,
            "market/tickers": self.tickers,
            "market/candles": self.candles,
            "market/history-candles": self.candles,
            "market/books": self.books,
            "public/funding-rate": self.funding_rate,
            "account/balance": self.balance,
            "asset/currencies": self.currencies,
            "account/positions": self.positions,
            "account/config": self.config_view,
            "trade/order": self.get_order,
            "trade/orders-pending": self.pending,
            "trade/orders-history": self.history,
            "trade/orders-history-archive": self.history,
            "trade/fills": self.fills,
            "trade/fills-history": self.fills,
            "trade/order-algo": self.get_algo,
            "trade/orders-algo-pending": self.algo_pending,
            "trade/orders-algo-history": self.algo_history,
        }
        post = {
            "trade/order": self.place,
            "trade/batch-orders": self.place_batch,
            "trade/cancel-order": self.cancel,
            "trade/amend-order": self.amend,
            "trade/order-algo": self.place_algo,
            "trade/cancel-algos": self.cancel_algos,
            "trade/amend-algos": self.amend_algos,
            "account/set-leverage": self.set_leverage,
            "account/set-position-mode": self.set_position_mode,
        }
        return (
            self.streams.routes()
            + [("GET", f"{v}/{p}", h) for p, h in get.items()]
            + [("POST", f"{v}/{p}", h) for p, h in post.items()]
        )

    # ------------------------------------------------------------------ venue hooks
    def render_reject(self, reject: Reject) -> OkxError:
        return from_reject(reject)

    def fault_error(self, fault: Fault) -> OkxError:
        retry = {"Retry-After": str(fault.retry_after_seconds)}
        if fault.kind in ("rate_limit", "ip_ban"):
            return OkxError(50011, "Too Many Requests", status=429, headers=retry)
        return OkxError(
            50001, "Service temporarily unavailable. Please try again later.", status=503
        )

    def internal_error(self) -> OkxError:
        return OkxError(50000, "Internal error", status=500)

    def not_served_error(self, request: web.Request) -> OkxError:
        return OkxError(
            50000,
            f"The MetaExpert sandbox does not serve {request.method} {request.path}; it speaks "
            "the OKX v5 market, trade and account endpoints only.",
            status=404,
        )

    @staticmethod
    def urls(http: str, ws: str) -> dict[str, Any]:
        return {"rest": http, "ws": f"{ws}/ws/v5"}

    # ------------------------------------------------------------------ helpers
    async def _request(self, request: web.Request, *, private: bool) -> tuple[str, Any]:
        body = await request.text() if request.method == "POST" else ""
        params: Any = dict(request.query)
        if body.strip():
            try:
                params = json.loads(body)
            except json.JSONDecodeError as exc:
                raise OkxError(50002, "Json data format error") from exc
        if not private:
            return "", params
        path_qs = request.path + (f"?{request.query_string}" if request.query_string else "")
        passphrases = {a.api_key: a.passphrase for a in self.config.accounts}
        api_key = verify(
            request.headers, request.method, path_qs, body, self.exchange.secrets, passphrases
        )
        return api_key, params

    def market_of(self, params: Json) -> str:
        inst_id = str(params.get("instId") or "")
        if inst_id:
            for name, rules in self.exchange.symbols.items():
                if inst_id in rules:
                    return name
            raise OkxError(51001, "Instrument ID does not exist.")
        inst_type = str(params.get("instType") or "")
        if inst_type not in self.exchange.markets:
            raise parameter("instType")
        return inst_type

    def _td_mode(self, market: str, api_key: str, symbol: str) -> str:
        if market == SPOT:
            return "cash"
        account = self.exchange.margin_accounts[market][api_key]
        return "isolated" if account.margin_type.get(symbol) == "ISOLATED" else "cross"

    def _apply_td_mode(self, market: str, api_key: str, params: Json) -> None:
        """OKX picks the margin mode per order; the core keeps it per symbol, switched when flat."""
        wanted = str(params.get("tdMode") or "")
        if market == SPOT or wanted not in ("cross", "isolated"):
            return
        symbol = str(params["instId"])
        if self._td_mode(market, api_key, symbol) == wanted:
            return
        account = self.exchange.margin_accounts[market][api_key]
        if any(p.symbol == symbol for p in account.open_positions()):
            raise OkxError(51000, "Parameter tdMode error", row=self._row(params))
        account.margin_type[symbol] = "ISOLATED" if wanted == "isolated" else "CROSSED"

    def _lever(self, market: str, api_key: str, symbol: str) -> str:
        if market == SPOT:
            return ""
        return str(
            self.exchange.margin.leverage(self.exchange.margin_accounts[market][api_key], symbol)
        )

    def _order_row(self, order: SandboxOrder, api_key: str) -> Json:
        td = self._td_mode(order.market, api_key, order.symbol)
        return wire.order_row(
            order, order.market, td, self._lever(order.market, api_key, order.symbol)
        )

    @staticmethod
    def _row(params: Json) -> Json:
        return {"ordId": "", "clOrdId": str(params.get("clOrdId") or ""), "tag": ""}

    def _find(
        self, api_key: str, params: Json, *, algo: bool = False, on_cancel: bool = False
    ) -> SandboxOrder:
        market = self.market_of(params) if params.get("instId") else None
        id_key, client_key = ("algoId", "algoClOrdId") if algo else ("ordId", "clOrdId")
        raw_id, client = params.get(id_key), params.get(client_key)
        if not raw_id and not client:
            raise parameter(id_key)
        order_id = None
        if raw_id:
            try:
                order_id = int(str(raw_id))
            except ValueError as exc:
                raise parameter(id_key) from exc
        markets = [market] if market else list(self.exchange.markets)
        for name in markets:
            try:
                return self.exchange.find_order(
                    name,
                    api_key,
                    None,
                    order_id,
                    str(client) if client else None,
                    algo=algo,
                    on_cancel=on_cancel,
                )
            except Reject as reject:
                last = reject
        raise last

    # ------------------------------------------------------------------ orders
    def _place_one(self, api_key: str, params: Json, *, algo: bool = False) -> Json:
        row = (
            self._row(params)
            if not algo
            else {"algoId": "", "algoClOrdId": str(params.get("algoClOrdId") or "")}
        )
        try:
            market = self.market_of(params)
            self._apply_td_mode(market, api_key, params)
            reference = self.exchange.price(str(params["instId"]), market)
            parse = wire.parse_algo if algo else wire.parse_order
            order = self.exchange.place_order(parse(market, api_key, params, reference))
        except Reject as reject:
            raise from_reject(reject, row=row) from reject
        except OkxError as error:
            raise OkxError(error.code, error.message, row=row) from error
        if algo:
            return {
                "algoId": str(order.order_id),
                "algoClOrdId": order.client_order_id,
                "clOrdId": "",
                "sCode": "0",
                "sMsg": "",
                "tag": "",
            }
        return {
            "ordId": str(order.order_id),
            "clOrdId": order.client_order_id,
            "tag": "",
            "ts": str(int(time.time() * 1000)),
            "sCode": "0",
            "sMsg": "Order placed",
        }

    async def place(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        return ok([self._place_one(api_key, dict(params))])

    async def place_batch(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        if not isinstance(params, list) or not params:
            raise OkxError(50002, "Json data format error")
        return ok([self._place_one(api_key, dict(item)) for item in params])

    async def place_algo(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        return ok([self._place_one(api_key, dict(params), algo=True)])

    async def cancel(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        try:
            order = self._find(api_key, params, on_cancel=True)
            self.exchange.cancel(order)
        except Reject as reject:
            raise from_reject(reject, row=self._row(params)) from reject
        return ok(
            [
                {
                    "ordId": str(order.order_id),
                    "clOrdId": order.client_order_id,
                    "sCode": "0",
                    "sMsg": "",
                    "ts": str(int(time.time() * 1000)),
                }
            ]
        )

    async def cancel_algos(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        items = params if isinstance(params, list) else [params]
        rows = []
        for item in items:
            try:
                order = self._find(api_key, dict(item), algo=True, on_cancel=True)
                self.exchange.cancel(order)
            except Reject as reject:
                raise from_reject(
                    reject, row={"algoId": str(item.get("algoId") or ""), "algoClOrdId": ""}
                ) from reject
            rows.append(
                {
                    "algoId": str(order.order_id),
                    "algoClOrdId": order.client_order_id,
                    "sCode": "0",
                    "sMsg": "",
                }
            )
        return ok(rows)

    async def amend_algos(self, request: web.Request) -> web.Response:
        """A pending algo order's size or trigger (``newSz``, ``newSlTriggerPx``/``newTpTriggerPx``)."""
        api_key, params = await self._request(request, private=True)
        order = self._find(api_key, params, algo=True)
        quantity = wire._decimal(params["newSz"], "newSz") if params.get("newSz") else None
        trigger_key = next(
            (
                key
                for key in ("newSlTriggerPx", "newTpTriggerPx", "newTriggerPx")
                if params.get(key)
            ),
            None,
        )
        trigger = float(wire._decimal(params[trigger_key], trigger_key)) if trigger_key else None
        if quantity is None and trigger is None:
            raise parameter("newSz")
        try:
            self.exchange.amend(order, None, quantity, None, trigger)
        except Reject as reject:
            raise from_reject(reject, row=self._row(params)) from reject
        return ok(
            [
                {
                    "algoId": str(order.order_id),
                    "algoClOrdId": order.client_order_id,
                    "reqId": str(params.get("reqId") or ""),
                    "sCode": "0",
                    "sMsg": "",
                }
            ]
        )

    async def amend(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        order = self._find(api_key, params)
        quantity = wire._decimal(params["newSz"], "newSz") if params.get("newSz") else None
        price = wire._decimal(params["newPx"], "newPx") if params.get("newPx") else None
        try:
            self.exchange.amend(order, None, quantity, price)
        except Reject as reject:
            raise from_reject(reject, row=self._row(params)) from reject
        return ok(
            [
                {
                    "ordId": str(order.order_id),
                    "clOrdId": order.client_order_id,
                    "reqId": "",
                    "sCode": "0",
                    "sMsg": "",
                    "ts": str(int(time.time() * 1000)),
                }
            ]
        )

    async def get_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        self.market_of(params)
        return ok([self._order_row(self._find(api_key, params), api_key)])

    def _orders(
        self, api_key: str, params: Json, *, open_: bool, algo: bool = False
    ) -> list[SandboxOrder]:
        markets = (
            [self.market_of(params)]
            if (params.get("instId") or params.get("instType"))
            else list(self.exchange.markets)
        )
        inst = str(params.get("instId") or "") or None
        result = []
        for market in markets:
            source = (
                self.exchange.open_orders(market, api_key, inst, algo=algo)
                if open_
                else [
                    o
                    for o in self.exchange.all_orders(market, api_key, inst, algo=algo)
                    if not o.is_open
                ]
            )
            result += source
        return sorted(result, key=lambda o: -o.order_id)[: int(str(params.get("limit") or 100))]

    async def pending(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        return ok([self._order_row(o, api_key) for o in self._orders(api_key, params, open_=True)])

    async def history(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        return ok([self._order_row(o, api_key) for o in self._orders(api_key, params, open_=False)])

    async def fills(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        markets = (
            [self.market_of(params)]
            if (params.get("instId") or params.get("instType"))
            else list(self.exchange.markets)
        )
        rows = []
        for market in markets:
            for fill in reversed(
                self.exchange.trades(market, api_key, str(params.get("instId") or "") or None)
            ):
                if params.get("ordId") and str(fill.order_id) != str(params["ordId"]):
                    continue
                rows.append(
                    wire.fill_row(fill, self.exchange.orders[market][fill.order_id], market)
                )
        return ok(rows[: int(str(params.get("limit") or 100))])

    def _algo_rows(self, api_key: str, orders: list[SandboxOrder], params: Json) -> web.Response:
        wanted = {t for t in str(params.get("ordType") or "").split(",") if t}
        if not wanted:
            raise parameter("ordType")
        rows = [
            wire.algo_row(o, o.market, self._td_mode(o.market, api_key, o.symbol))
            for o in orders
            if o.type in wanted
        ]
        return ok(rows)

    async def algo_pending(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        return self._algo_rows(
            api_key, self._orders(api_key, params, open_=True, algo=True), params
        )

    async def algo_history(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        orders = self._orders(api_key, params, open_=False, algo=True)
        if params.get("state"):
            states = {"effective": "FINISHED", "canceled": "CANCELED", "order_failed": "EXPIRED"}
            orders = [o for o in orders if o.algo_status == states.get(str(params["state"]))]
        return self._algo_rows(api_key, orders, params)

    async def get_algo(self, request: web.Request) -> web.Response:
        api_key, params = await self._request(request, private=True)
        order = self._find(api_key, params, algo=True)
        return ok(
            [wire.algo_row(order, order.market, self._td_mode(order.market, api_key, order.symbol))]
        )
