"""The Binance venue: spot (/api/v3), USD-M (/fapi) and COIN-M (/dapi) REST on one port.

Why one parameterised implementation: spot and the futures markets answer the same requests
(exchangeInfo, klines, tickers, depth, trades, new/get/cancel order, open and all orders, fills,
listen keys) with small differences (limits, payload shapes, error codes); ``BinanceMarket``
describes those differences once and every shared route is registered per market. Futures-only
endpoints (positions, leverage, algo orders...) are in ``derivatives.py``, the websocket streams
in ``streams.py``, spot-only ones in ``spot.py``. Endpoints the sandbox does not serve (sapi,
papi, eapi...) answer 404 with code -5000 at once instead of timing out.

About 550 lines, on purpose: the routes every market shares and the venue's hooks (errors,
faults, URLs) read as one table of what Binance answers; splitting them would scatter a
market's differences over several files.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.faults import Fault
from metaexpert.sandbox.core.model import Fill, MarketSpec, SandboxOrder
from metaexpert.sandbox.core.rejects import Reject
from metaexpert.sandbox.core.service import (
    Handler,
    Params,
    Route,
    VenueApp,
    json_response,
    read_params,
)
from metaexpert.sandbox.venues.binance import orders as wire
from metaexpert.sandbox.venues.binance import payloads, spot
from metaexpert.sandbox.venues.binance.auth import server_time_ms, verify_signed_request
from metaexpert.sandbox.venues.binance.errors import (
    BinanceError,
    from_reject,
    internal_error,
    missing_parameter,
)
from metaexpert.sandbox.venues.binance.markets import COINM, INTERVALS, SPOT, USDM, binance_markets


@dataclass(frozen=True, slots=True)
class BinanceMarket:
    """How one Binance market differs on the shared routes."""

    name: str
    prefix: str  # "/api/v3", "/fapi/v1", "/dapi/v1"
    kline_limit: int
    depth_limits: range | tuple[int, ...]
    listen_key_path: str

    @property
    def futures(self) -> bool:
        return self.name != SPOT

    def order_body(self, order: SandboxOrder) -> dict[str, object]:
        return wire.futures_order(order) if self.futures else wire.spot_order(order)

    def fill_body(self, fill: Fill) -> dict[str, object]:
        return wire.futures_fill(fill) if self.futures else wire.spot_fill(fill)


FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
MARKETS = {
    SPOT: BinanceMarket(SPOT, "/api/v3", 1000, range(1, 5001), "/api/v3/userDataStream"),
    USDM: BinanceMarket(USDM, "/fapi/v1", 1500, FUTURES_DEPTH_LIMITS, "/fapi/v1/listenKey"),
    COINM: BinanceMarket(COINM, "/dapi/v1", 1500, FUTURES_DEPTH_LIMITS, "/dapi/v1/listenKey"),
}


def int_param(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]+$'."
        ) from exc


def window(
    items: list[Any],
    params: dict[str, str],
    time_of: Callable[[Any], int],
    id_of: Callable[[Any], int],
    id_param: str,
) -> list[Any]:
    """startTime/endTime/fromId/limit filtering shared by the history endpoints."""
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    from_id = int_param(params, id_param)
    limit = int_param(params, "limit", 500) or 500
    result = [
        item
        for item in items
        if (start is None or time_of(item) >= start)
        and (end is None or time_of(item) <= end)
        and (from_id is None or id_of(item) >= from_id)
    ]
    return result[:limit] if (start is not None or from_id is not None) else result[-limit:]


class SandboxApp(VenueApp):
    """The Binance venue (the name SandboxApp is kept: it is what ``SandboxServer.app`` returns)."""

    venue = "binance"

    def __init__(self, config: SandboxConfig) -> None:
        from metaexpert.sandbox.venues.binance.derivatives import DerivativeRoutes
        from metaexpert.sandbox.venues.binance.spot import SpotRoutes
        from metaexpert.sandbox.venues.binance.streams import BinanceStreams

        self.listen_keys: dict[str, tuple[str, str]] = {}  # listenKey -> (market, api key)
        self.streams = BinanceStreams(self)
        self.derivatives = DerivativeRoutes(self)
        self.spot = SpotRoutes(self)
        super().__init__(config)

    # ------------------------------------------------------------------ VenueApp
    def markets(self, config: SandboxConfig) -> list[MarketSpec]:
        return binance_markets(config)

    @staticmethod
    def market(name: str) -> BinanceMarket:
        return MARKETS[name]

    def served(self) -> list[BinanceMarket]:
        return [MARKETS[name] for name in self.exchange.markets]

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        for market in self.served():
            routes += self._market_routes(market)
        routes += self.spot.routes()
        for market in self.served():
            if market.futures:
                routes += self.derivatives.routes(market)
        return routes + self.streams.routes()

    def render_reject(self, reject: Reject) -> BinanceError:
        return from_reject(reject)

    def fault_error(self, fault: Fault) -> BinanceError:
        retry = {"Retry-After": str(fault.retry_after_seconds)}
        if fault.kind == "rate_limit":
            return BinanceError(
                -1003,
                "Too many requests; current limit of IP is 6000 requests per minute. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
                status=429,
                headers=retry,
            )
        if fault.kind == "ip_ban":
            until = server_time_ms() + fault.retry_after_seconds * 1000
            return BinanceError(
                -1003,
                f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                "Please use the websocket for live updates to avoid bans.",
                status=418,
                headers=retry,
            )
        return internal_error()

    def internal_error(self) -> BinanceError:
        return BinanceError(
            -1000, "An unknown error occurred while processing the request.", status=500
        )

    def not_served_error(self, request: web.Request) -> BinanceError:
        return BinanceError(
            -5000,
            f"The MetaExpert sandbox does not serve {request.method} {request.path}; "
            "it speaks the Binance spot (/api/v3), USD-M (/fapi) and COIN-M (/dapi) endpoints only.",
            status=404,
        )

    @staticmethod
    def urls(http: str, ws: str) -> dict[str, Any]:
        return {
            "public": f"{http}/api/v3",
            "private": f"{http}/api/v3",
            "v1": f"{http}/api/v1",
            "fapiPublic": f"{http}/fapi/v1",
            "fapiPublicV2": f"{http}/fapi/v2",
            "fapiPublicV3": f"{http}/fapi/v3",
            "fapiPrivate": f"{http}/fapi/v1",
            "fapiPrivateV2": f"{http}/fapi/v2",
            "fapiPrivateV3": f"{http}/fapi/v3",
            "fapiData": f"{http}/futures/data",
            "dapiPublic": f"{http}/dapi/v1",
            "dapiPrivate": f"{http}/dapi/v1",
            "dapiPrivateV2": f"{http}/dapi/v2",
            "dapiData": f"{http}/futures/data",
            # not served: pointed here so a stray call fails fast with a clear -5000 error
            "sapi": f"{http}/sapi/v1",
            "sapiV2": f"{http}/sapi/v2",
            "sapiV3": f"{http}/sapi/v3",
            "sapiV4": f"{http}/sapi/v4",
            "eapiPublic": f"{http}/eapi/v1",
            "eapiPrivate": f"{http}/eapi/v1",
            "papi": f"{http}/papi/v1",
            "papiV2": f"{http}/papi/v2",
            "ws": {
                "spot": f"{ws}/stream/ws",
                "margin": f"{ws}/stream/ws",
                "linear": f"{ws}/fstream/ws",
                "inverse": f"{ws}/dstream/ws",
                "ws-api": {"spot": f"{ws}/ws-api/v3", "linear": f"{ws}/ws-fapi/v1"},
            },
        }

    def on_event(self, event: Any) -> None:
        self.streams.on_event(event)

    def on_bars(self, produced: Any) -> None:
        self.streams.on_bars(produced)

    def on_ticks(self, data_market: str, symbol: str, recording: Any, events: Any) -> None:
        self.streams.on_ticks(data_market, symbol, recording, events)

    # ------------------------------------------------------------------ request helpers
    async def signed(self, request: web.Request) -> tuple[str, Params]:
        params = await read_params(request)
        api_key = verify_signed_request(
            request.headers.get("X-MBX-APIKEY"),
            params.raw_query,
            params.raw_body,
            params,
            self.exchange.secrets,
            self.config.recv_window_max_ms,
        )
        return api_key, params

    def api_key_only(self, request: web.Request) -> str:
        api_key = request.headers.get("X-MBX-APIKEY")
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        if api_key not in self.exchange.secrets:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        return api_key

    def symbol(self, market: BinanceMarket, params: dict[str, str], name: str = "symbol") -> str:
        value = params.get(name)
        if not value:
            raise missing_parameter("symbol")
        return self.exchange.check_symbol(market.name, value)

    def optional_symbol(self, market: BinanceMarket, params: dict[str, str]) -> str | None:
        return (
            self.exchange.check_symbol(market.name, params["symbol"])
            if params.get("symbol")
            else None
        )

    def symbols_param(self, market: BinanceMarket, params: dict[str, str]) -> list[str]:
        if "symbol" in params:
            return [self.exchange.check_symbol(market.name, params["symbol"])]
        if "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except json.JSONDecodeError as exc:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from exc
            return [self.exchange.check_symbol(market.name, str(name)) for name in names]
        return list(self.exchange.symbols[market.name])

    def one_or_all(
        self, market: BinanceMarket, params: dict[str, str], build: Callable[[str], object]
    ) -> web.Response:
        symbols = self.symbols_param(market, params)
        if "symbol" in params:
            return json_response(build(symbols[0]))
        return json_response([build(symbol) for symbol in symbols])

    def find(
        self,
        market: BinanceMarket,
        api_key: str,
        params: dict[str, str],
        *,
        on_cancel: bool = False,
    ) -> SandboxOrder:
        symbol = self.symbol(market, params)
        order_id, client_id = wire.order_id(params), params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise BinanceError(
                -1102,
                "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!",
            )
        return self.exchange.find_order(
            market.name, api_key, symbol, order_id, client_id, on_cancel=on_cancel
        )

    # ------------------------------------------------------------------ shared routes
    def _market_routes(self, market: BinanceMarket) -> list[Route]:
        def bind(method: Callable[[BinanceMarket, web.Request], Any]) -> Handler:
            async def handler(request: web.Request) -> web.StreamResponse:
                return await method(market, request)

            return handler

        p = market.prefix
        routes: list[Route] = [
            ("GET", f"{p}/ping", self.ping),
            ("GET", f"{p}/time", self.time),
            ("GET", f"{p}/exchangeInfo", bind(self.exchange_info)),
            ("GET", f"{p}/klines", bind(self.klines)),
            ("GET", f"{p}/ticker/price", bind(self.price)),
            ("GET", f"{p}/ticker/24hr", bind(self.ticker)),
            ("GET", f"{p}/ticker/bookTicker", bind(self.book_ticker)),
            ("GET", f"{p}/depth", bind(self.depth)),
            ("GET", f"{p}/trades", bind(self.trades)),
            ("GET", f"{p}/aggTrades", bind(self.agg_trades)),
            ("POST", f"{p}/order", bind(self.new_order)),
            ("GET", f"{p}/order", bind(self.get_order)),
            ("DELETE", f"{p}/order", bind(self.cancel_order)),
            ("GET", f"{p}/openOrders", bind(self.open_orders)),
            ("GET", f"{p}/allOrders", bind(self.all_orders)),
            ("GET", f"{p}/{'userTrades' if market.futures else 'myTrades'}", bind(self.my_trades)),
            ("POST", market.listen_key_path, bind(self.listen_key_new)),
            ("PUT", market.listen_key_path, bind(self.listen_key_keepalive)),
            ("DELETE", market.listen_key_path, bind(self.listen_key_delete)),
        ]
        if market.futures:
            routes += [
                ("GET", f"{p}/markPriceKlines", bind(self.klines)),
                ("GET", f"{p}/indexPriceKlines", bind(self.klines)),
                ("GET", f"{p}/openOrder", bind(self.get_order)),
                ("DELETE", f"{p}/allOpenOrders", bind(self.cancel_all)),
            ]
        else:
            routes += [
                ("GET", f"{p}/uiKlines", bind(self.klines)),
                ("DELETE", f"{p}/openOrders", bind(self.cancel_all)),
            ]
        return routes

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": server_time_ms()})

    async def exchange_info(self, market: BinanceMarket, request: web.Request) -> web.Response:
        return json_response(payloads.exchange_info(self.exchange, market.name, server_time_ms()))

    async def klines(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        symbol = self.symbol(market, params, "symbol" if params.get("symbol") else "pair")
        interval = params.get("interval")
        if not interval:
            raise missing_parameter("interval")
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = int_param(params, "limit", 500) or 500
        if limit < 1 or limit > market.kline_limit:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        series = self.exchange.series_of(symbol)
        klines = series.klines(
            Timeframe.parse(interval),
            int_param(params, "startTime"),
            int_param(params, "endTime"),
            limit,
        )
        return json_response([payloads.kline_row(kline) for kline in klines])

    async def price(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        return self.one_or_all(
            market, params, lambda s: payloads.price_ticker(self.exchange, market.name, s)
        )

    async def ticker(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        return self.one_or_all(
            market, params, lambda s: payloads.ticker_24h(self.exchange, market.name, s)
        )

    async def book_ticker(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        return self.one_or_all(
            market, params, lambda s: payloads.book_ticker(self.exchange, market.name, s)
        )

    async def depth(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        symbol = self.symbol(market, params)
        limit = int_param(params, "limit", 100) or 100
        if limit not in market.depth_limits:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        spec = self.exchange.markets[market.name]
        recording = self.recordings.get((spec.data_market, symbol))
        return json_response(
            payloads.depth_body(
                recording,
                self.exchange,
                market.name,
                symbol,
                limit,
                self.replay.synthetic_update_id,
            )
        )

    async def trades(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        symbol = self.symbol(market, params)
        limit = int_param(params, "limit", 500) or 500
        recording = self.recordings.get((self.exchange.markets[market.name].data_market, symbol))
        return json_response(payloads.recent_trades(recording, market.name, limit))

    async def agg_trades(self, market: BinanceMarket, request: web.Request) -> web.Response:
        params = await read_params(request)
        symbol = self.symbol(market, params)
        limit = int_param(params, "limit", 500) or 500
        recording = self.recordings.get((self.exchange.markets[market.name].data_market, symbol))
        rows = payloads.recent_trades(recording, market.name, limit)
        return json_response(
            [
                {
                    "a": row["id"],
                    "p": row["price"],
                    "q": row["qty"],
                    "f": row["id"],
                    "l": row["id"],
                    "T": row["time"],
                    "m": row["isBuyerMaker"],
                    "M": True,
                }
                for row in rows
            ]
        )

    # ------------------------------------------------------------------ orders (spot and futures)
    async def new_order(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.signed(request)
        if market.futures:
            order = self.exchange.place_order(
                wire.parse_futures_order(market.name, api_key, params, algo=False)
            )
            return json_response(wire.futures_order(order))
        order = self.exchange.place_order(wire.parse_spot_order(market.name, api_key, params))
        return json_response(
            spot.spot_order_response(order, params.get("newOrderRespType", "FULL"))
        )

    async def get_order(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.signed(request)
        order = self.find(market, api_key, params)
        if request.path.endswith("openOrder") and not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        return json_response(market.order_body(order))

    async def cancel_order(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.signed(request)
        order = self.find(market, api_key, params, on_cancel=True)
        self.exchange.cancel(order)
        if market.futures:
            return json_response(wire.futures_order(order))
        return json_response(spot.spot_cancel_body(order, params))

    async def open_orders(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.signed(request)
        symbol = self.optional_symbol(market, params)
        return json_response(
            [market.order_body(o) for o in self.exchange.open_orders(market.name, api_key, symbol)]
        )

    async def cancel_all(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.signed(request)
        symbol = self.symbol(market, params)
        cancelled = [
            self.exchange.cancel(order)
            for order in self.exchange.open_orders(market.name, api_key, symbol)
        ]
        if market.futures:
            return json_response(
                {"code": 200, "msg": "The operation of cancel all open order is done."}
            )
        return json_response([spot.spot_cancel_body(order, {}) for order in cancelled])

    def order_history(
        self,
        market: BinanceMarket,
        api_key: str,
        params: dict[str, str],
        *,
        algo: bool = False,
        cursor: str = "orderId",
    ) -> list[Any]:
        """allOrders / allAlgoOrders: one symbol's orders in the requested time or id window."""
        symbol = self.symbol(market, params)
        orders = self.exchange.all_orders(market.name, api_key, symbol, algo=algo)
        return window(orders, params, lambda o: o.time, lambda o: o.order_id, cursor)

    async def all_orders(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.signed(request)
        return json_response(
            [market.order_body(order) for order in self.order_history(market, api_key, params)]
        )

    async def my_trades(self, market: BinanceMarket, request: web.Request) -> web.Response:
        """myTrades / userTrades: one symbol's fills, optionally of one order, in the requested window."""
        api_key, params = await self.signed(request)
        fills = self.exchange.trades(market.name, api_key, self.symbol(market, params))
        if params.get("orderId"):
            fills = [fill for fill in fills if str(fill.order_id) == params["orderId"]]
        fills = window(fills, params, lambda f: f.time, lambda f: f.trade_id, "fromId")
        return json_response([market.fill_body(fill) for fill in fills])

    # ------------------------------------------------------------------ listen keys
    def _new_listen_key(self, market: str, api_key: str) -> str:
        for key, (owner_market, owner) in self.listen_keys.items():
            if owner_market == market and owner == api_key:
                return key
        key = secrets.token_urlsafe(45)[:60]
        self.listen_keys[key] = (market, api_key)
        return key

    async def listen_key_new(self, market: BinanceMarket, request: web.Request) -> web.Response:
        return json_response(
            {"listenKey": self._new_listen_key(market.name, self.api_key_only(request))}
        )

    async def listen_key_keepalive(
        self, market: BinanceMarket, request: web.Request
    ) -> web.Response:
        api_key = self.api_key_only(request)
        params = await read_params(request)
        key = params.get("listenKey")
        if key is None:
            for candidate, owner in self.listen_keys.items():
                if owner == (market.name, api_key):
                    return json_response({"listenKey": candidate})
        if key not in self.listen_keys or self.listen_keys[key][1] != api_key:
            raise BinanceError(-1125, "This listenKey does not exist.")
        return json_response({"listenKey": key} if market.futures else {})

    async def listen_key_delete(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key = self.api_key_only(request)
        params = await read_params(request)
        key = params.get("listenKey")
        doomed = [
            k
            for k, owner in self.listen_keys.items()
            if owner == (market.name, api_key) and key in (None, k)
        ]
        if key is not None and not doomed:
            raise BinanceError(-1125, "This listenKey does not exist.")
        for candidate in doomed:
            del self.listen_keys[candidate]
        return json_response({})
