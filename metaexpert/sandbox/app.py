"""The aiohttp application: Binance spot (/api/v3) and USD-M (/fapi/v1..v3) REST, websocket
streams, the websocket API user-data subscription, and the /sandbox admin API.

Why one process and one port: ccxt only needs its base URLs rewritten; spot and futures paths do
not collide (``/api`` vs ``/fapi``, ``/ws`` vs ``/fstream``), so one loopback port serves both.
Websocket paths: spot ``/ws``, ``/ws/<streams>``, ``/stream?streams=`` (also under ``/stream/ws``
so ccxt recognises the URL as spot); futures the same under ``/fstream`` plus ccxt's
``/fstream/{public,market,private}/ws``; websocket API ``/ws-api/v3`` and ``/ws-fapi/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from metaexpert.sandbox import payloads
from metaexpert.sandbox.auth import server_time_ms, verify_signed_request, verify_ws_api_params
from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.engine import SandboxExchange
from metaexpert.sandbox.errors import BinanceError, internal_error, missing_parameter
from metaexpert.sandbox.faults import Fault, FaultInjector
from metaexpert.sandbox.market_data import TickEvent, TickRecording, find_tick_directory
from metaexpert.sandbox.orders import SPOT, USDM, SandboxOrder
from metaexpert.sandbox.streams import Connection, StreamHub

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SPOT_DEPTH_LIMITS = range(1, 5001)
FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
ALL_MARKET_STREAMS = {"!ticker@arr", "!miniTicker@arr", "!markPrice@arr", "!markPrice@arr@1s"}


class Params(dict[str, str]):
    """Request parameters (query + form body) plus the raw strings the signature covers."""

    raw_query: str = ""
    raw_body: str = ""


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]+$'."
        ) from exc


class SandboxApp:
    """Owns the exchange, the stream hub, the fault rules and the replay of recorded data."""

    def __init__(self, config: SandboxConfig, exchange: SandboxExchange | None = None) -> None:
        self.config = config
        self.hub = StreamHub()
        self.exchange = exchange or SandboxExchange(config)
        self.exchange.listener = self._on_user_event
        self.faults = FaultInjector(seed=config.seed)
        self.listen_keys: dict[str, tuple[str, str]] = {}  # listenKey -> (market, api key)
        self.recordings: dict[tuple[str, str], TickRecording] = {}
        if config.tick_replay:
            for market, symbols in ((SPOT, config.spot_symbols), (USDM, config.futures_symbols)):
                for symbol in symbols:
                    directory = find_tick_directory(config.data_dir, market, symbol)
                    if directory is not None:
                        self.recordings[(market, symbol)] = TickRecording(symbol, directory)
        starts = [recording.first_ns for recording in self.recordings.values() if len(recording)]
        self.tick_clock_ns = min(starts) if starts else 0
        self.synthetic_update_id = 1
        self._replay_task: asyncio.Task[None] | None = None
        self.app = self._build()

    # ------------------------------------------------------------------ application
    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._fault_middleware, self._error_middleware])
        route = app.router.add_route
        for method, path, handler in self._routes():
            route(method, path, handler)
        route("*", "/{tail:.*}", self.not_served)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def _routes(self) -> list[tuple[str, str, Handler]]:
        spot, fut = "/api/v3", "/fapi/v1"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", f"{spot}/ping", self.ping),
            ("GET", f"{spot}/time", self.time),
            ("GET", f"{spot}/exchangeInfo", self.spot_exchange_info),
            ("GET", f"{spot}/klines", self.spot_klines),
            ("GET", f"{spot}/uiKlines", self.spot_klines),
            ("GET", f"{spot}/ticker/price", self.spot_price),
            ("GET", f"{spot}/ticker/24hr", self.spot_ticker),
            ("GET", f"{spot}/ticker/bookTicker", self.spot_book_ticker),
            ("GET", f"{spot}/depth", self.spot_depth),
            ("GET", f"{spot}/trades", self.spot_trades),
            ("GET", f"{spot}/aggTrades", self.spot_agg_trades),
            ("GET", f"{spot}/avgPrice", self.spot_avg_price),
            ("POST", f"{spot}/order", self.spot_new_order),
            ("POST", f"{spot}/order/test", self.spot_test_order),
            ("GET", f"{spot}/order", self.spot_get_order),
            ("DELETE", f"{spot}/order", self.spot_cancel_order),
            ("POST", f"{spot}/order/cancelReplace", self.spot_cancel_replace),
            ("GET", f"{spot}/openOrders", self.spot_open_orders),
            ("DELETE", f"{spot}/openOrders", self.spot_cancel_all),
            ("GET", f"{spot}/allOrders", self.spot_all_orders),
            ("GET", f"{spot}/myTrades", self.spot_my_trades),
            ("GET", f"{spot}/account", self.spot_account),
            ("POST", f"{spot}/userDataStream", self.spot_listen_key_new),
            ("PUT", f"{spot}/userDataStream", self.listen_key_keepalive),
            ("DELETE", f"{spot}/userDataStream", self.listen_key_delete),
            ("GET", f"{fut}/ping", self.ping),
            ("GET", f"{fut}/time", self.time),
            ("GET", f"{fut}/exchangeInfo", self.futures_exchange_info),
            ("GET", f"{fut}/klines", self.futures_klines),
            ("GET", f"{fut}/markPriceKlines", self.futures_klines),
            ("GET", f"{fut}/indexPriceKlines", self.futures_klines),
            ("GET", f"{fut}/ticker/24hr", self.futures_ticker),
            ("GET", f"{fut}/ticker/price", self.futures_price),
            ("GET", "/fapi/v2/ticker/price", self.futures_price),
            ("GET", f"{fut}/ticker/bookTicker", self.futures_book_ticker),
            ("GET", f"{fut}/depth", self.futures_depth),
            ("GET", f"{fut}/trades", self.futures_trades),
            ("GET", f"{fut}/aggTrades", self.futures_agg_trades),
            ("GET", f"{fut}/premiumIndex", self.futures_premium_index),
            ("GET", f"{fut}/fundingRate", self.futures_funding_history),
            ("POST", f"{fut}/order", self.futures_new_order),
            ("PUT", f"{fut}/order", self.futures_modify_order),
            ("GET", f"{fut}/order", self.futures_get_order),
            ("DELETE", f"{fut}/order", self.futures_cancel_order),
            ("GET", f"{fut}/openOrder", self.futures_get_order),
            ("GET", f"{fut}/openOrders", self.futures_open_orders),
            ("DELETE", f"{fut}/allOpenOrders", self.futures_cancel_all),
            ("GET", f"{fut}/allOrders", self.futures_all_orders),
            ("POST", f"{fut}/algoOrder", self.futures_new_algo_order),
            ("GET", f"{fut}/algoOrder", self.futures_get_algo_order),
            ("DELETE", f"{fut}/algoOrder", self.futures_cancel_algo_order),
            ("GET", f"{fut}/openAlgoOrders", self.futures_open_algo_orders),
            ("DELETE", f"{fut}/algoOpenOrders", self.futures_cancel_all_algo),
            ("GET", f"{fut}/allAlgoOrders", self.futures_all_algo_orders),
            ("GET", f"{fut}/userTrades", self.futures_user_trades),
            ("POST", f"{fut}/leverage", self.futures_leverage),
            ("POST", f"{fut}/marginType", self.futures_margin_type),
            ("GET", f"{fut}/positionSide/dual", self.futures_get_dual),
            ("POST", f"{fut}/positionSide/dual", self.futures_set_dual),
            ("GET", f"{fut}/leverageBracket", self.futures_leverage_bracket),
            ("GET", f"{fut}/symbolConfig", self.futures_symbol_config),
            ("GET", f"{fut}/commissionRate", self.futures_commission_rate),
            ("POST", f"{fut}/listenKey", self.futures_listen_key_new),
            ("PUT", f"{fut}/listenKey", self.listen_key_keepalive),
            ("DELETE", f"{fut}/listenKey", self.listen_key_delete),
            ("GET", "/fapi/v2/balance", self.futures_balance),
            ("GET", "/fapi/v3/balance", self.futures_balance),
            ("GET", "/fapi/v2/account", self.futures_account),
            ("GET", "/fapi/v3/account", self.futures_account),
            ("GET", "/fapi/v2/positionRisk", self.futures_position_risk),
            ("GET", "/fapi/v3/positionRisk", self.futures_position_risk),
            # websockets
            ("GET", "/ws", self.ws_spot),
            ("GET", "/ws/{streams:.*}", self.ws_spot),
            ("GET", "/stream", self.ws_spot_combined),
            ("GET", "/stream/ws", self.ws_spot),
            ("GET", "/stream/ws/{streams:.*}", self.ws_spot),
            ("GET", "/fstream/ws", self.ws_futures),
            ("GET", "/fstream/ws/{streams:.*}", self.ws_futures),
            ("GET", "/fstream/stream", self.ws_futures_combined),
            ("GET", "/fstream/{category:public|market|private}/ws", self.ws_futures),
            ("GET", "/fstream/{category:public|market|private}/ws/{streams:.*}", self.ws_futures),
            ("GET", "/fstream/{category:public|market|private}/stream", self.ws_futures_combined),
            ("GET", "/ws-api/v3", self.ws_api_spot),
            ("GET", "/ws-fapi/v1", self.ws_api_futures),
            # admin
            ("GET", "/sandbox/status", self.admin_status),
            ("GET", "/sandbox/ledger", self.admin_ledger),
            ("POST", "/sandbox/advance", self.admin_advance),
            ("POST", "/sandbox/advance_ticks", self.admin_advance_ticks),
            ("POST", "/sandbox/price", self.admin_price),
            ("GET", "/sandbox/faults", self.admin_faults),
            ("POST", "/sandbox/faults", self.admin_add_fault),
            ("DELETE", "/sandbox/faults", self.admin_clear_faults),
            ("POST", "/sandbox/drop_websockets", self.admin_drop_websockets),
        ]
        return routes

    async def _on_startup(self, _app: web.Application) -> None:
        if self.config.speed > 0:
            self._replay_task = asyncio.get_running_loop().create_task(self._replay_forever())

    async def _on_shutdown(self, _app: web.Application) -> None:
        if self._replay_task is not None:
            self._replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay_task
        await self.hub.close_all()

    # ------------------------------------------------------------------ middlewares
    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except BinanceError as error:
            return _json(error.body(), status=error.status, headers=error.headers or None)
        except web.HTTPException:
            raise
        except Exception:  # a bug in the sandbox must still answer like Binance does
            logger.exception("sandbox handler failed on %s %s", request.method, request.path)
            return _json(
                {"code": -1000, "msg": "An unknown error occurred while processing the request."},
                status=500,
            )

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/sandbox"):
            if (
                self.config.admin_token
                and request.headers.get("X-Sandbox-Token") != self.config.admin_token
            ):
                return _json({"error": "missing or wrong X-Sandbox-Token"}, status=403)
            return await handler(request)
        fault = self.faults.match(request.method, request.path)
        if fault is None:
            return await handler(request)
        return await self._apply_fault(fault, request, handler)

    async def _apply_fault(
        self, fault: Fault, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        retry = {"Retry-After": str(fault.retry_after_seconds)}
        if fault.kind == "rate_limit":
            return _json(
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit of IP is 6000 requests per "
                    "minute. Please use WebSocket Streams for live updates to avoid polling the API.",
                },
                status=429,
                headers=retry,
            )
        if fault.kind == "ip_ban":
            until = server_time_ms() + fault.retry_after_seconds * 1000
            return _json(
                {
                    "code": -1003,
                    "msg": f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                    "Please use the websocket for live updates to avoid bans.",
                },
                status=418,
                headers=retry,
            )
        if fault.kind == "unavailable":
            error = internal_error()
            return _json(error.body(), status=error.status)
        if fault.kind == "latency":
            await asyncio.sleep(fault.latency_seconds)
            return await handler(request)
        if fault.kind == "drop_connection":
            self._abort(request)
            return web.Response(status=204)
        response = await handler(request)  # the request takes effect on the exchange
        if fault.kind == "timeout_after_accept":
            await asyncio.sleep(fault.latency_seconds)
            return response
        self._abort(request)  # drop_after_accept
        return response

    @staticmethod
    def _abort(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()

    # ------------------------------------------------------------------ request helpers
    async def _params(self, request: web.Request) -> Params:
        params = Params(request.query)
        params.raw_query = request.query_string
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            body = await request.text()
            params.raw_body = body
            params.update(dict(parse_qsl(body, keep_blank_values=True)))
        return params

    async def _signed(self, request: web.Request) -> tuple[str, Params]:
        params = await self._params(request)
        api_key = verify_signed_request(
            request.headers.get("X-MBX-APIKEY"),
            params.raw_query,
            params.raw_body,
            params,
            self.exchange.secrets,
            self.config.recv_window_max_ms,
        )
        return api_key, params

    def _api_key_only(self, request: web.Request) -> str:
        api_key = request.headers.get("X-MBX-APIKEY")
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        if api_key not in self.exchange.secrets:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        return api_key

    def _symbols_param(self, market: str, params: dict[str, str]) -> list[str]:
        if "symbol" in params:
            return [self.exchange.check_symbol(market, params["symbol"])]
        if "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except json.JSONDecodeError as exc:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from exc
            return [self.exchange.check_symbol(market, str(name)) for name in names]
        return list(self.exchange.symbols[market])

    def _one_or_all(
        self, market: str, params: dict[str, str], build: Callable[[str], object]
    ) -> web.Response:
        symbols = self._symbols_param(market, params)
        if "symbol" in params:
            return _json(build(symbols[0]))
        return _json([build(symbol) for symbol in symbols])

    async def not_served(self, request: web.Request) -> web.Response:
        """Anything else (sapi, dapi, papi...): a clear permanent error rather than a hang."""
        return _json(
            {
                "code": -5000,
                "msg": f"The MetaExpert sandbox does not serve {request.method} {request.path}; "
                "it speaks the Binance spot (/api/v3) and USD-M futures (/fapi) endpoints only.",
            },
            status=404,
        )

    # ------------------------------------------------------------------ public endpoints
    async def ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": server_time_ms()})

    async def spot_exchange_info(self, request: web.Request) -> web.Response:
        return _json(payloads.exchange_info(self.exchange, SPOT, server_time_ms()))

    async def futures_exchange_info(self, request: web.Request) -> web.Response:
        return _json(payloads.exchange_info(self.exchange, USDM, server_time_ms()))

    async def _klines(self, request: web.Request, market: str, max_limit: int) -> web.Response:
        params = await self._params(request)
        symbol = self.exchange.check_symbol(market, params.get("symbol") or params.get("pair"))
        interval = params.get("interval")
        if not interval:
            raise missing_parameter("interval")
        limit = _int(params, "limit", 500) or 500
        if limit < 1 or limit > max_limit:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        series = self.exchange.series[symbol]
        klines = series.klines(interval, _int(params, "startTime"), _int(params, "endTime"), limit)
        return _json([kline.to_binance() for kline in klines])

    async def spot_klines(self, request: web.Request) -> web.Response:
        return await self._klines(request, SPOT, 1000)

    async def futures_klines(self, request: web.Request) -> web.Response:
        return await self._klines(request, USDM, 1500)

    async def spot_price(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(
            SPOT, params, lambda s: payloads.price_ticker(self.exchange, SPOT, s)
        )

    async def futures_price(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(
            USDM, params, lambda s: payloads.price_ticker(self.exchange, USDM, s)
        )

    async def spot_ticker(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(SPOT, params, lambda s: payloads.ticker_24h(self.exchange, SPOT, s))

    async def futures_ticker(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(USDM, params, lambda s: payloads.ticker_24h(self.exchange, USDM, s))

    async def spot_book_ticker(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(
            SPOT, params, lambda s: payloads.book_ticker(self.exchange, SPOT, s)
        )

    async def futures_book_ticker(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(
            USDM, params, lambda s: payloads.book_ticker(self.exchange, USDM, s)
        )

    async def spot_avg_price(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        symbol = self.exchange.check_symbol(SPOT, params.get("symbol"))
        return _json(
            {
                "mins": 5,
                "price": payloads.fmt(self.exchange.price(symbol)),
                "closeTime": self.exchange.now,
            }
        )

    async def _depth(self, request: web.Request, market: str) -> web.Response:
        params = await self._params(request)
        symbol = self.exchange.check_symbol(market, params.get("symbol"))
        limit = _int(params, "limit", 100) or 100
        allowed = SPOT_DEPTH_LIMITS if market == SPOT else FUTURES_DEPTH_LIMITS
        if limit not in allowed:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        recording = self.recordings.get((market, symbol))
        return _json(
            payloads.depth_body(
                recording, self.exchange, market, symbol, limit, self.synthetic_update_id
            )
        )

    async def spot_depth(self, request: web.Request) -> web.Response:
        return await self._depth(request, SPOT)

    async def futures_depth(self, request: web.Request) -> web.Response:
        return await self._depth(request, USDM)

    async def _trades(self, request: web.Request, market: str) -> web.Response:
        params = await self._params(request)
        symbol = self.exchange.check_symbol(market, params.get("symbol"))
        limit = _int(params, "limit", 500) or 500
        return _json(payloads.recent_trades(self.recordings.get((market, symbol)), market, limit))

    async def _agg_trades(self, request: web.Request, market: str) -> web.Response:
        params = await self._params(request)
        symbol = self.exchange.check_symbol(market, params.get("symbol"))
        limit = _int(params, "limit", 500) or 500
        rows = payloads.recent_trades(self.recordings.get((market, symbol)), market, limit)
        return _json(
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

    async def spot_agg_trades(self, request: web.Request) -> web.Response:
        return await self._agg_trades(request, SPOT)

    async def futures_agg_trades(self, request: web.Request) -> web.Response:
        return await self._agg_trades(request, USDM)

    async def spot_trades(self, request: web.Request) -> web.Response:
        return await self._trades(request, SPOT)

    async def futures_trades(self, request: web.Request) -> web.Response:
        return await self._trades(request, USDM)

    async def futures_premium_index(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        return self._one_or_all(USDM, params, lambda s: payloads.premium_index(self.exchange, s))

    async def futures_funding_history(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        symbols = self._symbols_param(USDM, params)
        seen: dict[tuple[str, int], dict[str, object]] = {}
        for record in self.exchange.funding:
            if record["symbol"] in symbols:
                key = (str(record["symbol"]), int(record["time"]))  # type: ignore[arg-type]
                seen[key] = {
                    "symbol": record["symbol"],
                    "fundingTime": record["time"],
                    "fundingRate": payloads.fmt(float(record["rate"])),  # type: ignore[arg-type]
                    "markPrice": payloads.fmt(self.exchange.price(key[0])),
                }
        return _json(list(seen.values()))

    # ------------------------------------------------------------------ spot private
    async def spot_new_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        order = self.exchange.place_spot_order(api_key, params)
        return _json(self._spot_order_response(order, params.get("newOrderRespType", "FULL")))

    @staticmethod
    def _spot_order_response(order: SandboxOrder, response_type: str) -> dict[str, object]:
        full = order.to_spot_ack()
        if response_type.upper() == "ACK":
            return {
                key: full[key]
                for key in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
            }
        if response_type.upper() == "RESULT":
            full.pop("fills")
        return full

    async def spot_test_order(self, request: web.Request) -> web.Response:
        _api_key, params = await self._signed(request)
        self.exchange.check_symbol(SPOT, params.get("symbol"))
        for name in ("side", "type"):
            if not params.get(name):
                raise missing_parameter(name)
        return _json({})

    async def spot_get_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(SPOT, params.get("symbol"))
        order = self.exchange.find_order(
            SPOT, api_key, symbol, params.get("orderId"), params.get("origClientOrderId")
        )
        return _json(order.to_spot())

    async def spot_cancel_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(SPOT, params.get("symbol"))
        order = self.exchange.find_order(
            SPOT,
            api_key,
            symbol,
            params.get("orderId"),
            params.get("origClientOrderId"),
            on_cancel=True,
        )
        self.exchange.cancel(order)
        return _json(self._spot_cancel_body(order, params))

    @staticmethod
    def _spot_cancel_body(order: SandboxOrder, params: dict[str, str]) -> dict[str, object]:
        body = order.to_spot()
        for key in (
            "time",
            "updateTime",
            "isWorking",
            "icebergQty",
            "workingTime",
            "origQuoteOrderQty",
        ):
            body.pop(key, None)
        body["origClientOrderId"] = order.client_order_id
        body["clientOrderId"] = params.get("newClientOrderId") or secrets.token_hex(11)
        body["transactTime"] = order.update_time
        return body

    async def spot_cancel_replace(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(SPOT, params.get("symbol"))
        mode = params.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise missing_parameter("cancelReplaceMode")
        cancel_id = params.get("cancelOrderId")
        cancel_client_id = params.get("cancelOrigClientOrderId")
        try:
            old = self.exchange.find_order(
                SPOT, api_key, symbol, cancel_id, cancel_client_id, on_cancel=True
            )
            self.exchange.cancel(old)
        except BinanceError as error:
            body = {
                "code": -2022 if mode == "STOP_ON_FAILURE" else -2021,
                "msg": "Order cancel-replace failed.",
                "data": {
                    "cancelResult": "FAILURE",
                    "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": error.body(),
                    "newOrderResponse": None,
                },
            }
            return _json(body, status=400)
        new_params = {
            key: value
            for key, value in params.items()
            if key not in ("cancelReplaceMode", "cancelOrderId", "cancelOrigClientOrderId")
        }
        new = self.exchange.place_spot_order(api_key, new_params)
        return _json(
            {
                "cancelResult": "SUCCESS",
                "newOrderResult": "SUCCESS",
                "cancelResponse": self._spot_cancel_body(old, {}),
                "newOrderResponse": self._spot_order_response(
                    new, params.get("newOrderRespType", "FULL")
                ),
            }
        )

    async def spot_open_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = (
            self.exchange.check_symbol(SPOT, params["symbol"]) if params.get("symbol") else None
        )
        return _json(
            [order.to_spot() for order in self.exchange.open_orders(SPOT, api_key, symbol)]
        )

    async def spot_cancel_all(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(SPOT, params.get("symbol"))
        result = []
        for order in self.exchange.open_orders(SPOT, api_key, symbol):
            self.exchange.cancel(order)
            result.append(self._spot_cancel_body(order, {}))
        return _json(result)

    def _order_history(self, market: str, api_key: str, params: dict[str, str], *, algo: bool = False,
                       cursor: str = "orderId") -> list[Any]:
        """allOrders / allAlgoOrders: one symbol's orders in the requested time or id window."""
        symbol = self.exchange.check_symbol(market, params.get("symbol"))
        orders = self.exchange.all_orders(market, api_key, symbol, algo=algo)
        return _window(orders, params, lambda o: o.time, lambda o: o.order_id, cursor)

    def _fill_history(self, market: str, api_key: str, params: dict[str, str]) -> list[Any]:
        """myTrades / userTrades: one symbol's fills, optionally of one order, in the requested window."""
        symbol = self.exchange.check_symbol(market, params.get("symbol"))
        fills = self.exchange.trades(market, api_key, symbol)
        if params.get("orderId"):
            fills = [fill for fill in fills if str(fill.order_id) == params["orderId"]]
        return _window(fills, params, lambda f: f.time, lambda f: f.trade_id, "fromId")

    async def spot_all_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        return _json([order.to_spot() for order in self._order_history(SPOT, api_key, params)])

    async def spot_my_trades(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        return _json([fill.to_spot() for fill in self._fill_history(SPOT, api_key, params)])

    async def spot_account(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        account = self.exchange.spot_accounts[api_key]
        balances = account.balances()
        if params.get("omitZeroBalances", "false").lower() == "true":
            balances = [row for row in balances if float(row["free"]) or float(row["locked"])]
        can_trade = self.exchange.can_trade[api_key]
        return _json(
            {
                "makerCommission": int(self.config.spot_maker_fee * 10_000),
                "takerCommission": int(self.config.spot_taker_fee * 10_000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": payloads.fmt(self.config.spot_maker_fee),
                    "taker": payloads.fmt(self.config.spot_taker_fee),
                    "buyer": "0",
                    "seller": "0",
                },
                "canTrade": can_trade,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.exchange.now,
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 1,
            }
        )

    # ------------------------------------------------------------------ futures private
    async def futures_new_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        order = self.exchange.place_futures_order(api_key, params)
        return _json(order.to_futures())

    async def futures_modify_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        order = self.exchange.modify_futures_order(api_key, params)
        return _json(order.to_futures())

    async def futures_get_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        order = self.exchange.find_order(
            USDM, api_key, symbol, params.get("orderId"), params.get("origClientOrderId")
        )
        if request.path.endswith("openOrder") and not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        return _json(order.to_futures())

    async def futures_cancel_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        order = self.exchange.find_order(
            USDM,
            api_key,
            symbol,
            params.get("orderId"),
            params.get("origClientOrderId"),
            on_cancel=True,
        )
        self.exchange.cancel(order)
        return _json(order.to_futures())

    async def futures_open_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = (
            self.exchange.check_symbol(USDM, params["symbol"]) if params.get("symbol") else None
        )
        return _json(
            [order.to_futures() for order in self.exchange.open_orders(USDM, api_key, symbol)]
        )

    async def futures_cancel_all(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        for order in self.exchange.open_orders(USDM, api_key, symbol):
            self.exchange.cancel(order)
        return _json({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def futures_all_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        return _json([order.to_futures() for order in self._order_history(USDM, api_key, params)])

    async def futures_new_algo_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        order = self.exchange.place_futures_order(api_key, params, algo=True)
        return _json(order.to_algo())

    async def futures_get_algo_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        order = self._find_algo(api_key, params, on_cancel=False)
        return _json(order.to_algo())

    def _find_algo(self, api_key: str, params: dict[str, str], *, on_cancel: bool) -> SandboxOrder:
        algo_id, client_id = params.get("algoId"), params.get("clientAlgoId")
        symbol = params.get("symbol")
        if symbol is None:
            for order in self.exchange.orders[USDM].values():
                if order.is_algo and (
                    str(order.order_id) == algo_id or order.client_order_id == client_id
                ):
                    symbol = order.symbol
                    break
            else:
                raise BinanceError(
                    -2011 if on_cancel else -2013,
                    "Unknown order sent." if on_cancel else "Order does not exist.",
                )
        symbol = self.exchange.check_symbol(USDM, symbol)
        return self.exchange.find_order(
            USDM, api_key, symbol, algo_id, client_id, algo=True, on_cancel=on_cancel
        )

    async def futures_cancel_algo_order(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        order = self._find_algo(api_key, params, on_cancel=True)
        self.exchange.cancel(order)
        return _json(
            {
                "algoId": order.order_id,
                "clientAlgoId": order.client_order_id,
                "code": "200",
                "msg": "success",
            }
        )

    async def futures_open_algo_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = (
            self.exchange.check_symbol(USDM, params["symbol"]) if params.get("symbol") else None
        )
        return _json(
            [
                order.to_algo()
                for order in self.exchange.open_orders(USDM, api_key, symbol, algo=True)
            ]
        )

    async def futures_cancel_all_algo(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        for order in self.exchange.open_orders(USDM, api_key, symbol, algo=True):
            self.exchange.cancel(order)
        return _json({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def futures_all_algo_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        orders = self._order_history(USDM, api_key, params, algo=True, cursor="algoId")
        return _json([order.to_algo() for order in orders])

    async def futures_user_trades(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        return _json([fill.to_futures() for fill in self._fill_history(USDM, api_key, params)])

    async def futures_leverage(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        leverage = _int(params, "leverage")
        if leverage is None:
            raise missing_parameter("leverage")
        self.exchange.set_leverage(api_key, symbol, leverage)
        return _json({"leverage": leverage, "maxNotionalValue": "1000000000", "symbol": symbol})

    async def futures_margin_type(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        margin_type = params.get("marginType")
        if not margin_type:
            raise missing_parameter("marginType")
        self.exchange.set_margin_type(api_key, symbol, margin_type)
        return _json({"code": 200, "msg": "success"})

    async def futures_get_dual(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        return _json({"dualSidePosition": self.exchange.futures_accounts[api_key].dual_side})

    async def futures_set_dual(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        raw = params.get("dualSidePosition")
        if raw is None or raw.lower() not in ("true", "false"):
            raise missing_parameter("dualSidePosition")
        self.exchange.set_dual_side(api_key, raw.lower() == "true")
        return _json({"code": 200, "msg": "success"})

    async def futures_leverage_bracket(self, request: web.Request) -> web.Response:
        _api_key, params = await self._signed(request)
        symbols = self._symbols_param(USDM, params)
        mmr = self.config.maintenance_margin_rate
        rows = [
            {
                "symbol": symbol,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": self.config.max_leverage,
                        "notionalCap": 1_000_000_000,
                        "notionalFloor": 0,
                        "maintMarginRatio": mmr,
                        "cum": 0.0,
                    }
                ],
            }
            for symbol in symbols
        ]
        return _json(rows[0] if "symbol" in params else rows)

    async def futures_symbol_config(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        account = self.exchange.futures_accounts[api_key]
        rows = []
        for symbol in self._symbols_param(USDM, params):
            margin_type = account.margin_type.get(symbol, "CROSSED")
            rows.append(
                {
                    "symbol": symbol,
                    "marginType": "ISOLATED" if margin_type == "ISOLATED" else "CROSSED",
                    "isAutoAddMargin": "false",
                    "leverage": account.leverage.get(symbol, self.config.default_leverage),
                    "maxNotionalValue": "1000000000",
                }
            )
        return _json(rows)

    async def futures_commission_rate(self, request: web.Request) -> web.Response:
        _api_key, params = await self._signed(request)
        symbol = self.exchange.check_symbol(USDM, params.get("symbol"))
        return _json(
            {
                "symbol": symbol,
                "makerCommissionRate": payloads.fmt(self.config.futures_maker_fee),
                "takerCommissionRate": payloads.fmt(self.config.futures_taker_fee),
            }
        )

    async def futures_balance(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        view = self.exchange.futures_account_view(api_key)
        rows = [
            {
                "accountAlias": "SandboxAlias",
                "asset": asset["asset"],
                "balance": asset["walletBalance"],
                "crossWalletBalance": asset["crossWalletBalance"],
                "crossUnPnl": asset["crossUnPnl"],
                "availableBalance": asset["availableBalance"],
                "maxWithdrawAmount": asset["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": asset["updateTime"],
            }
            for asset in view["assets"]
        ]  # type: ignore[union-attr]
        return _json(rows)

    async def futures_account(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        return _json(self.exchange.futures_account_view(api_key))

    async def futures_position_risk(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = (
            self.exchange.check_symbol(USDM, params["symbol"]) if params.get("symbol") else None
        )
        include_empty = request.path.startswith("/fapi/v2")
        return _json(self.exchange.position_rows(api_key, symbol, include_empty=include_empty))

    # ------------------------------------------------------------------ listen keys
    def _new_listen_key(self, market: str, api_key: str) -> str:
        for key, (owner_market, owner) in self.listen_keys.items():
            if owner_market == market and owner == api_key:
                return key
        key = secrets.token_urlsafe(45)[:60]
        self.listen_keys[key] = (market, api_key)
        return key

    async def spot_listen_key_new(self, request: web.Request) -> web.Response:
        return _json({"listenKey": self._new_listen_key(SPOT, self._api_key_only(request))})

    async def futures_listen_key_new(self, request: web.Request) -> web.Response:
        return _json({"listenKey": self._new_listen_key(USDM, self._api_key_only(request))})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        api_key = self._api_key_only(request)
        params = await self._params(request)
        key = params.get("listenKey")
        if key is None:
            market = USDM if request.path.startswith("/fapi") else SPOT
            for candidate, owner in self.listen_keys.items():
                if owner == (market, api_key):
                    return _json({"listenKey": candidate})
        if key not in self.listen_keys or self.listen_keys[key][1] != api_key:
            raise BinanceError(-1125, "This listenKey does not exist.")
        return _json({} if request.path.startswith("/api") else {"listenKey": key})

    async def listen_key_delete(self, request: web.Request) -> web.Response:
        api_key = self._api_key_only(request)
        params = await self._params(request)
        key = params.get("listenKey")
        market = USDM if request.path.startswith("/fapi") else SPOT
        doomed = [
            k
            for k, owner in self.listen_keys.items()
            if owner == (market, api_key) and (key is None or k == key)
        ]
        if key is not None and not doomed:
            raise BinanceError(-1125, "This listenKey does not exist.")
        for candidate in doomed:
            del self.listen_keys[candidate]
        return _json({})

    # ------------------------------------------------------------------ websockets
    async def ws_spot(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, SPOT, combined=False)

    async def ws_spot_combined(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, SPOT, combined=True)

    async def ws_futures(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, USDM, combined=False)

    async def ws_futures_combined(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, USDM, combined=True)

    def _add_stream(self, connection: Connection, stream: str) -> None:
        if stream in self.listen_keys:
            if self.listen_keys[stream][0] != connection.market:
                raise ValueError(f"listenKey belongs to the other market: {stream}")
            connection.listen_keys.add(stream)
            return
        if stream in ALL_MARKET_STREAMS:
            connection.streams.add(stream)
            return
        symbol = stream.split("@", 1)[0].upper()
        if "@" not in stream or symbol not in self.exchange.symbols[connection.market]:
            raise ValueError(f"Invalid request: unknown stream {stream}")
        connection.streams.add(stream)

    async def _stream_socket(
        self, request: web.Request, market: str, *, combined: bool
    ) -> web.WebSocketResponse:
        initial: list[str] = []
        if request.match_info.get("streams"):
            # ccxt appends a connection index (``/ws/0``); it names no stream.
            initial = [s for s in request.match_info["streams"].split("/") if s and not s.isdigit()]
        if combined:
            initial = [s for s in request.query.get("streams", "").split("/") if s]
        listen_key = request.query.get("listenKey")
        if listen_key:
            initial.append(listen_key)
        for stream in initial:
            if stream not in self.listen_keys and "@" not in stream:
                raise BinanceError(-1125, "This listenKey does not exist.")
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        connection = Connection(ws=ws, market=market, combined=combined, path=request.path)
        for stream in initial:
            with contextlib.suppress(ValueError):
                self._add_stream(connection, stream)
        # Registered before the handshake completes: nothing published after the client sees
        # "101 Switching Protocols" can be missed (it waits in the queue for the writer).
        self.hub.add(connection)
        try:
            await ws.prepare(request)
        except BaseException:
            self.hub.remove(connection)
            raise
        writer = asyncio.get_running_loop().create_task(connection.writer())
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                self._control(connection, message.data)
        finally:
            self.hub.remove(connection)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        return ws

    def _control(self, connection: Connection, data: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS as Binance's stream servers answer them."""
        try:
            message = json.loads(data)
            request_id = message.get("id")
            method = message.get("method")
            params = message.get("params", [])
        except (json.JSONDecodeError, AttributeError):
            connection.push(
                json.dumps(
                    {"error": {"code": 3, "msg": "Invalid JSON: expected value"}, "id": None}
                )
            )
            return
        try:
            if method == "SUBSCRIBE":
                for stream in params:
                    self._add_stream(connection, str(stream))
                result: object = None
            elif method == "UNSUBSCRIBE":
                for stream in params:
                    connection.streams.discard(str(stream))
                    connection.listen_keys.discard(str(stream))
                result = None
            elif method == "LIST_SUBSCRIPTIONS":
                result = sorted(connection.streams | connection.listen_keys)
            elif method in ("SET_PROPERTY", "GET_PROPERTY"):
                result = connection.combined if method == "GET_PROPERTY" else None
            else:
                raise ValueError(f"Invalid request: unknown method {method}")
        except ValueError as error:
            connection.push(json.dumps({"error": {"code": 2, "msg": str(error)}, "id": request_id}))
            return
        connection.push(json.dumps({"result": result, "id": request_id}))

    async def ws_api_spot(self, request: web.Request) -> web.WebSocketResponse:
        return await self._api_socket(request, SPOT)

    async def ws_api_futures(self, request: web.Request) -> web.WebSocketResponse:
        return await self._api_socket(request, USDM)

    async def _api_socket(self, request: web.Request, market: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        connection = Connection(ws=ws, market=market, combined=False, path=request.path)
        await ws.prepare(request)
        self.hub.add(connection)
        writer = asyncio.get_running_loop().create_task(connection.writer())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    connection.push(json.dumps(self._api_call(connection, message.data)))
        finally:
            self.hub.remove(connection)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        return ws

    def _api_call(self, connection: Connection, data: str) -> dict[str, object]:
        """The websocket API requests the sandbox answers (user data stream subscription, ping, time)."""
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            return {"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON."}}
        request_id, method = message.get("id"), message.get("method")
        params = message.get("params") or {}
        base: dict[str, object] = {"id": request_id, "rateLimits": []}
        try:
            if method == "ping":
                result: object = {}
            elif method == "time":
                result = {"serverTime": server_time_ms()}
            elif method == "userDataStream.subscribe.signature":
                api_key = verify_ws_api_params(
                    params, self.exchange.secrets, self.config.recv_window_max_ms
                )
                subscription_id = self.hub.next_subscription_id()
                connection.user_subscriptions[subscription_id] = api_key
                result = {"subscriptionId": subscription_id}
            elif method == "userDataStream.unsubscribe":
                wanted = params.get("subscriptionId")
                for subscription_id in list(connection.user_subscriptions):
                    if wanted is None or int(wanted) == subscription_id:
                        del connection.user_subscriptions[subscription_id]
                result = {}
            else:
                raise BinanceError(
                    -1100, f"Unsupported websocket API method in the sandbox: {method}"
                )
        except BinanceError as error:
            return {**base, "status": error.status, "error": error.body()}
        return {**base, "status": 200, "result": result}

    # ------------------------------------------------------------------ replay and publishing
    def _on_user_event(self, market: str, api_key: str | None, payload: dict[str, object]) -> None:
        if api_key is None:
            return
        keys = {key for key, owner in self.listen_keys.items() if owner == (market, api_key)}
        self.hub.publish_user(market, api_key, payload, keys)

    def advance(self, bars: int) -> int:
        """Replay ``bars`` bars and publish klines, tickers and mark prices.

        Returns how many new bars were produced (one per symbol per step; 0 once data runs out).
        """
        produced = self.exchange.advance(bars)
        self.synthetic_update_id += len(produced)
        now = self.exchange.now
        by_symbol: dict[str, list[object]] = {}
        tickers: dict[str, list[dict[str, object]]] = {}
        minis: dict[str, list[dict[str, object]]] = {}
        marks: list[dict[str, object]] = []
        for symbol, kline in produced:
            by_symbol.setdefault(symbol, []).append(kline)
        for market in (SPOT, USDM):
            for symbol in self.exchange.symbols[market]:
                if symbol not in by_symbol:
                    continue
                lower = symbol.lower()
                for stream in self.hub.subscribed_streams(market, f"{lower}@kline_"):
                    interval = stream.split("_", 1)[1]
                    with contextlib.suppress(BinanceError):
                        latest = self.exchange.series[symbol].klines(interval, None, None, 1)
                        if latest:
                            kline = latest[-1]
                            closed = kline.close_time + 1 <= now
                            self.hub.publish(
                                market,
                                stream,
                                payloads.kline_event(symbol, interval, kline, closed, now),
                            )
                if market == USDM:
                    event = payloads.mark_price_event(self.exchange, symbol)
                    for stream in (f"{lower}@markPrice", f"{lower}@markPrice@1s"):
                        self.hub.publish(market, stream, event)
                ticker = payloads.ticker_24h(self.exchange, market, symbol)
                full, mini = (
                    _ticker_event(symbol, ticker, now),
                    _mini_ticker_event(symbol, ticker, now),
                )
                self.hub.publish(market, f"{lower}@ticker", full)
                self.hub.publish(market, f"{lower}@miniTicker", mini)
                tickers.setdefault(market, []).append(full)
                minis.setdefault(market, []).append(mini)
                if market == USDM:
                    marks.append(event)
                if (market, symbol) not in self.recordings:
                    bid, ask = self.exchange.bid_ask(symbol)
                    row = {
                        "update_id": self.synthetic_update_id,
                        "bid": bid,
                        "bid_qty": 1.0,
                        "ask": ask,
                        "ask_qty": 1.0,
                    }
                    self.hub.publish(
                        market,
                        f"{lower}@bookTicker",
                        payloads.book_ticker_event(market, symbol, row, now * 1_000_000),
                    )
        for market, rows in tickers.items():
            self.hub.publish(market, "!ticker@arr", rows)
        for market, rows in minis.items():
            self.hub.publish(market, "!miniTicker@arr", rows)
        if marks:
            self.hub.publish(USDM, "!markPrice@arr", marks)
            self.hub.publish(USDM, "!markPrice@arr@1s", marks)
        return len(produced)

    def advance_ticks(self, milliseconds: float) -> int:
        """Move the tick-replay clock forward and publish every recorded event it passes."""
        if milliseconds <= 0:
            raise ValueError(f"milliseconds must be > 0, got {milliseconds}")
        self.tick_clock_ns += int(milliseconds * 1_000_000)
        published = 0
        for (market, symbol), recording in self.recordings.items():
            events = recording.take_until(self.tick_clock_ns)
            published += len(events)
            if events:
                self._publish_ticks(market, symbol, recording, events)
                if self.config.price_source == "trades":
                    prices, times = recording.trades["price"], recording.trades["trade_time_ms"]
                    for event in events:
                        if event.kind == "trade":
                            self.exchange.apply_trade(
                                market, symbol, float(prices[event.index]), int(times[event.index])
                            )
        return published

    def _publish_ticks(
        self, market: str, symbol: str, recording: TickRecording, events: list[TickEvent]
    ) -> None:
        lower = symbol.lower()
        self._publish_partial_depth(market, symbol, recording)
        depth_streams = [
            stream
            for stream in (
                f"{lower}@depth",
                f"{lower}@depth@100ms",
                f"{lower}@depth@250ms",
                f"{lower}@depth@500ms",
                f"{lower}@depth@0ms",
            )
            if self.hub.subscribed(market, stream)
        ]
        trade = self.hub.subscribed(market, f"{lower}@trade")
        aggregated = self.hub.subscribed(market, f"{lower}@aggTrade")
        book_ticker = self.hub.subscribed(market, f"{lower}@bookTicker")
        if not (depth_streams or trade or aggregated or book_ticker):
            return
        for event in events:
            if event.kind == "depth" and depth_streams:
                payload = payloads.depth_event(market, symbol, recording.depth_event(event.index))
                for stream in depth_streams:
                    self.hub.publish(market, stream, payload)
            elif event.kind == "trade" and (trade or aggregated):
                row = recording.trade_row(event.index)
                if trade:
                    self.hub.publish(
                        market, f"{lower}@trade", payloads.trade_event(market, symbol, row, False)
                    )
                if aggregated:
                    self.hub.publish(
                        market, f"{lower}@aggTrade", payloads.trade_event(market, symbol, row, True)
                    )
            elif event.kind == "bookTicker" and book_ticker:
                row = recording.ticker_row(event.index)
                self.hub.publish(
                    market,
                    f"{lower}@bookTicker",
                    payloads.book_ticker_event(market, symbol, row, event.local_ns),
                )

    def _publish_partial_depth(self, market: str, symbol: str, recording: TickRecording) -> None:
        """``<symbol>@depth<5|10|20>[@<speed>]``: the top of the replayed book after each step."""
        prefix = f"{symbol.lower()}@depth"
        for stream in self.hub.subscribed_streams(market, prefix):
            levels = stream[len(prefix) :].split("@", 1)[0]
            if levels not in ("5", "10", "20"):
                continue
            bids, asks = recording.book.top(int(levels))
            book = {
                "bids": [[payloads.fmt(p), payloads.fmt(q)] for p, q in bids],
                "asks": [[payloads.fmt(p), payloads.fmt(q)] for p, q in asks],
            }
            last_id = recording.book.last_update_id
            if market == SPOT:
                payload: dict[str, object] = {"lastUpdateId": last_id, **book}
            else:
                event_ms = self.tick_clock_ns // 1_000_000
                payload = {
                    "e": "depthUpdate", "E": event_ms, "T": event_ms, "s": symbol,
                    "U": last_id, "u": last_id, "pu": last_id,
                    "b": book["bids"], "a": book["asks"],
                }  # fmt: skip
            self.hub.publish(market, stream, payload)

    async def _replay_forever(self) -> None:
        """Real-time replay at ``speed``: bars by market time, ticks by recorded receiver time."""
        bar_ms = self.exchange.timeframe.milliseconds
        owed_ms = 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            elapsed_ms = (now - last) * 1000.0 * self.config.speed
            last = now
            owed_ms += elapsed_ms
            if owed_ms >= bar_ms:
                bars = int(owed_ms // bar_ms)
                owed_ms -= bars * bar_ms
                self.advance(bars)
            if self.recordings:
                self.advance_ticks(elapsed_ms)

    def status(self) -> dict[str, object]:
        return {
            "time": self.exchange.now,
            "timeframe": str(self.exchange.timeframe),
            "speed": self.config.speed,
            "prices": {symbol: self.exchange.price(symbol) for symbol in self.exchange.series},
            "tick_clock_ns": self.tick_clock_ns,
            "recordings": {
                f"{market}:{symbol}": {
                    "cursor": rec.cursor,
                    "events": len(rec),
                    "last_update_id": rec.book.last_update_id,
                }
                for (market, symbol), rec in self.recordings.items()
            },
            "websockets": len(self.hub.connections),
            "faults": self.faults.active(),
        }

    # ------------------------------------------------------------------ admin API
    async def _admin_body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    async def admin_status(self, request: web.Request) -> web.Response:
        return _json(self.status())

    async def admin_ledger(self, request: web.Request) -> web.Response:
        return _json(self.exchange.ledger())

    async def admin_advance(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        bars = body.get("bars", 1)
        if not isinstance(bars, int) or bars < 1:
            return _json({"error": f"bars must be a positive integer, got {bars!r}"}, status=400)
        self.advance(bars)
        return _json(self.status())

    async def admin_advance_ticks(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        milliseconds = body.get("milliseconds", 1000)
        if not isinstance(milliseconds, int | float) or milliseconds <= 0:
            return _json({"error": f"milliseconds must be > 0, got {milliseconds!r}"}, status=400)
        published = self.advance_ticks(float(milliseconds))
        return _json({"published": published, "tick_clock_ns": self.tick_clock_ns})

    async def admin_price(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        try:
            self.exchange.set_price(
                str(body.get("symbol", "")).upper(), float(body.get("price", 0))
            )
        except (ValueError, TypeError, BinanceError) as error:
            return _json({"error": str(error)}, status=400)
        return _json(self.status())

    async def admin_faults(self, request: web.Request) -> web.Response:
        return _json({"active": self.faults.active(), "history": self.faults.history})

    async def admin_add_fault(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        try:
            fault = Fault.model_validate(body)
        except ValueError as error:
            return _json({"error": str(error)}, status=400)
        self.faults.add(fault)
        return _json({"active": self.faults.active()})

    async def admin_clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return _json({"active": []})

    async def admin_drop_websockets(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        dropped = await self.hub.drop_all(
            path=body.get("path"), abort=bool(body.get("abort", True))
        )
        return _json({"dropped": dropped})


def _ticker_event(symbol: str, ticker: dict[str, object], now: int) -> dict[str, object]:
    return {
        "e": "24hrTicker",
        "E": now,
        "s": symbol,
        "p": ticker["priceChange"],
        "P": ticker["priceChangePercent"],
        "w": ticker["weightedAvgPrice"],
        "c": ticker["lastPrice"],
        "Q": "0",
        "o": ticker["openPrice"],
        "h": ticker["highPrice"],
        "l": ticker["lowPrice"],
        "v": ticker["volume"],
        "q": ticker["quoteVolume"],
        "O": ticker["openTime"],
        "C": ticker["closeTime"],
        "F": 0,
        "L": 0,
        "n": 0,
    }


def _mini_ticker_event(symbol: str, ticker: dict[str, object], now: int) -> dict[str, object]:
    return {
        "e": "24hrMiniTicker",
        "E": now,
        "s": symbol,
        "c": ticker["lastPrice"],
        "o": ticker["openPrice"],
        "h": ticker["highPrice"],
        "l": ticker["lowPrice"],
        "v": ticker["volume"],
        "q": ticker["quoteVolume"],
    }


def _window(
    items: list[Any],
    params: dict[str, str],
    time_of: Callable[[Any], int],
    id_of: Callable[[Any], int],
    id_param: str,
) -> list[Any]:
    """startTime/endTime/fromId/limit filtering shared by the history endpoints."""
    start, end = _int(params, "startTime"), _int(params, "endTime")
    from_id = _int(params, id_param)
    limit = _int(params, "limit", 500) or 500
    result = [
        item
        for item in items
        if (start is None or time_of(item) >= start)
        and (end is None or time_of(item) <= end)
        and (from_id is None or id_of(item) >= from_id)
    ]
    return result[:limit] if (start is not None or from_id is not None) else result[-limit:]
