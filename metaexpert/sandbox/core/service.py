"""The venue-neutral server shell: aiohttp app, fault injection, error rendering, admin API, replay.

Why a base class: every venue needs the same things around its own routes, and they must
behave the same on every venue: faults injected by path (``Fault``), a handler bug answered in
the venue's own error shape instead of a traceback, the ``/sandbox/*`` admin API, and the
real-time replay loop. A venue subclass provides its routes, its error shapes
(``render_reject``, ``fault_error``, ``internal_error``), its ccxt URLs and its stream rendering
(``on_bars`` / ``on_ticks`` / ``on_event``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.events import Event
from metaexpert.sandbox.core.exchange import SandboxExchange
from metaexpert.sandbox.core.faults import Fault, FaultInjector
from metaexpert.sandbox.core.hub import StreamHub
from metaexpert.sandbox.core.market_data import Kline, TickEvent, TickRecording
from metaexpert.sandbox.core.model import MarketSpec
from metaexpert.sandbox.core.rejects import Reject
from metaexpert.sandbox.core.replay import Replay

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]


class VenueError(Exception):
    """An error a venue answers with its own body, HTTP status and headers."""

    status: int = 400
    headers: dict[str, str]

    def body(self) -> dict[str, object]:
        raise NotImplementedError


class Params(dict[str, str]):
    """Request parameters (query + form body) plus the raw strings a signature covers."""

    raw_query: str = ""
    raw_body: str = ""


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


async def read_params(request: web.Request, *, json_body: bool = False) -> Params:
    """Query parameters plus a form (or, with ``json_body``, a JSON object) body."""
    params = Params(request.query)
    params.raw_query = request.query_string
    if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
        body = await request.text()
        params.raw_body = body
        if json_body:
            if body.strip():
                try:
                    decoded = json.loads(body)
                except json.JSONDecodeError:
                    decoded = {}
                if isinstance(decoded, dict):
                    params.update({key: _as_text(value) for key, value in decoded.items()})
        else:
            params.update(dict(parse_qsl(body, keep_blank_values=True)))
    return params


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class VenueApp(ABC):
    """Owns the exchange, the stream hub, the fault rules and the replay of one venue."""

    venue = "venue"
    unified = False  # derivative markets settle into the spot balances (unified account)
    hedge_reduce_only = False  # reduce-only flag accepted in hedge mode
    unique_client_ids = False  # a client order id may never be reused (not only while open)

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.hub = StreamHub()
        self.exchange = SandboxExchange(
            config,
            self.markets(config),
            listener=self.on_event,
            unified=self.unified,
            hedge_reduce_only=self.hedge_reduce_only,
            unique_client_ids=self.unique_client_ids,
        )
        self.faults = FaultInjector(seed=config.seed)
        self.replay = Replay(config, self.exchange, self)
        self._replay_task: asyncio.Task[None] | None = None
        self.app = self._build()

    # ------------------------------------------------------------------ what a venue provides
    @abstractmethod
    def markets(self, config: SandboxConfig) -> list[MarketSpec]: ...

    @abstractmethod
    def routes(self) -> list[Route]: ...

    @abstractmethod
    def render_reject(self, reject: Reject) -> VenueError: ...

    @abstractmethod
    def fault_error(self, fault: Fault) -> VenueError: ...

    @abstractmethod
    def internal_error(self) -> VenueError: ...

    @abstractmethod
    def not_served_error(self, request: web.Request) -> VenueError: ...

    @staticmethod
    @abstractmethod
    def urls(http: str, ws: str) -> dict[str, Any]: ...

    def on_event(self, event: Event) -> None:
        """A user-data event of the core (orders, fills, balances, positions)."""

    def on_bars(self, produced: list[tuple[str, Kline]]) -> None:
        """New bars were replayed: publish klines, tickers, mark prices."""

    def on_ticks(
        self, data_market: str, symbol: str, recording: TickRecording, events: list[TickEvent]
    ) -> None:
        """Recorded ticks were replayed: publish trades, book tickers, depth."""

    # ------------------------------------------------------------------ application
    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._fault_middleware, self._error_middleware])
        route = app.router.add_route
        for method, path, handler in [*self.routes(), *self._admin_routes()]:
            route(method, path, handler)
        route("*", "/{tail:.*}", self._not_served)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _not_served(self, request: web.Request) -> web.Response:
        raise self.not_served_error(request)

    async def _on_startup(self, _app: web.Application) -> None:
        if self.config.speed > 0:
            self._replay_task = asyncio.get_running_loop().create_task(self.replay.run_forever())

    async def _on_shutdown(self, _app: web.Application) -> None:
        if self._replay_task is not None:
            self._replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay_task
        await self.hub.close_all()

    @staticmethod
    def respond(error: VenueError) -> web.Response:
        return json_response(error.body(), status=error.status, headers=error.headers or None)

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Reject as reject:
            return self.respond(self.render_reject(reject))
        except VenueError as error:
            return self.respond(error)
        except web.HTTPException:
            raise
        except ConnectionError:  # the client went away mid-request (its timeout): nobody to answer
            logger.debug("client left during %s %s", request.method, request.path)
            raise
        except Exception:  # a bug in the sandbox must still answer like the venue does
            logger.exception("sandbox handler failed on %s %s", request.method, request.path)
            return self.respond(self.internal_error())

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/sandbox"):
            if (
                self.config.admin_token
                and request.headers.get("X-Sandbox-Token") != self.config.admin_token
            ):
                return json_response({"error": "missing or wrong X-Sandbox-Token"}, status=403)
            return await handler(request)
        fault = self.faults.match(request.method, request.path)
        if fault is None:
            return await handler(request)
        return await self._apply_fault(fault, request, handler)

    async def _apply_fault(
        self, fault: Fault, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if fault.kind in ("rate_limit", "ip_ban", "unavailable"):
            return self.respond(self.fault_error(fault))
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

    # ------------------------------------------------------------------ replay (thread of the loop)
    def advance(self, bars: int) -> int:
        return self.replay.advance(bars)

    def advance_ticks(self, milliseconds: float) -> int:
        return self.replay.advance_ticks(milliseconds)

    @property
    def recordings(self) -> dict[tuple[str, str], TickRecording]:
        return self.replay.recordings

    @property
    def tick_clock_ns(self) -> int:
        return self.replay.tick_clock_ns

    def status(self) -> dict[str, object]:
        return {
            "venue": self.venue,
            **self.replay.status(),
            "websockets": len(self.hub.connections),
            "faults": self.faults.active(),
        }

    # ------------------------------------------------------------------ admin API
    def _admin_routes(self) -> list[Route]:
        return [
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
        return json_response(self.status())

    async def admin_ledger(self, request: web.Request) -> web.Response:
        return json_response(self.exchange.ledger())

    async def admin_advance(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        bars = body.get("bars", 1)
        if not isinstance(bars, int) or bars < 1:
            return json_response(
                {"error": f"bars must be a positive integer, got {bars!r}"}, status=400
            )
        self.advance(bars)
        return json_response(self.status())

    async def admin_advance_ticks(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        milliseconds = body.get("milliseconds", 1000)
        if not isinstance(milliseconds, int | float) or milliseconds <= 0:
            return json_response(
                {"error": f"milliseconds must be > 0, got {milliseconds!r}"}, status=400
            )
        published = self.advance_ticks(float(milliseconds))
        return json_response({"published": published, "tick_clock_ns": self.tick_clock_ns})

    async def admin_price(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        try:
            self.exchange.set_price(
                str(body.get("symbol", "")).upper(), float(body.get("price", 0))
            )
        except (ValueError, TypeError, Reject) as error:
            return json_response({"error": str(error)}, status=400)
        return json_response(self.status())

    async def admin_faults(self, request: web.Request) -> web.Response:
        return json_response({"active": self.faults.active(), "history": self.faults.history})

    async def admin_add_fault(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        try:
            fault = Fault.model_validate(body)
        except ValueError as error:
            return json_response({"error": str(error)}, status=400)
        self.faults.add(fault)
        return json_response({"active": self.faults.active()})

    async def admin_clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response({"active": []})

    async def admin_drop_websockets(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        dropped = await self.hub.drop_all(
            path=body.get("path"), abort=bool(body.get("abort", True))
        )
        return json_response({"dropped": dropped})
