"""Binance websocket streams: market streams per market, the websocket API, user-data events.

Paths (one port): spot ``/ws``, ``/ws/<streams>``, ``/stream?streams=`` (also under ``/stream/ws``
so ccxt recognises the URL as spot); USD-M the same under ``/fstream`` plus ccxt's
``/fstream/{public,market,private}/ws``; COIN-M under ``/dstream``; websocket API ``/ws-api/v3``
and ``/ws-fapi/v1``. Streams: ``<sym>@kline_<iv>``, ``@trade``, ``@aggTrade``, ``@bookTicker``,
``@depth[@100ms]`` (U/u, futures also pu), ``@depth<5|10|20>``, ``@ticker``, ``@miniTicker``,
``@markPrice[@1s]``, ``!ticker@arr``, ``!miniTicker@arr``, ``!markPrice@arr``, and listenKeys.
User-data payloads (executionReport, ORDER_TRADE_UPDATE, ALGO_UPDATE...) are in ``user_data.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.core.events import Event
from metaexpert.sandbox.core.hub import Connection
from metaexpert.sandbox.core.market_data import Kline, TickEvent, TickRecording
from metaexpert.sandbox.core.rejects import Reject
from metaexpert.sandbox.core.service import Route
from metaexpert.sandbox.venues.binance import payloads
from metaexpert.sandbox.venues.binance.auth import server_time_ms, verify_ws_api_params
from metaexpert.sandbox.venues.binance.errors import BinanceError
from metaexpert.sandbox.venues.binance.markets import COINM, INTERVALS, SPOT, USDM
from metaexpert.sandbox.venues.binance.user_data import render_event

if TYPE_CHECKING:
    from metaexpert.sandbox.venues.binance.routes import SandboxApp

ALL_MARKET_STREAMS = {"!ticker@arr", "!miniTicker@arr", "!markPrice@arr", "!markPrice@arr@1s"}


class BinanceStreams:
    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    @property
    def hub(self) -> Any:
        return self.app.hub

    @property
    def exchange(self) -> Any:
        return self.app.exchange

    @property
    def listen_keys(self) -> dict[str, tuple[str, str]]:
        return self.app.listen_keys

    @property
    def config(self) -> Any:
        return self.app.config

    @property
    def recordings(self) -> dict[tuple[str, str], TickRecording]:
        return self.app.recordings

    def routes(self) -> list[Route]:
        return [
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
            ("GET", "/dstream/ws", self.ws_coinm),
            ("GET", "/dstream/ws/{streams:.*}", self.ws_coinm),
            ("GET", "/dstream/stream", self.ws_coinm_combined),
            ("GET", "/ws-api/v3", self.ws_api_spot),
            ("GET", "/ws-fapi/v1", self.ws_api_futures),
        ]

    def on_event(self, event: Event) -> None:
        """Render a core event as Binance does and send it to the account's user-data streams."""
        rendered = render_event(self.exchange, event)
        if rendered is None:
            return
        market, api_key, payload = rendered
        keys = {key for key, owner in self.listen_keys.items() if owner == (market, api_key)}
        self.hub.publish_user(market, api_key, payload, keys)

    # ------------------------------------------------------------------ websockets
    async def ws_spot(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, SPOT, combined=False)

    async def ws_spot_combined(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, SPOT, combined=True)

    async def ws_futures(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, USDM, combined=False)

    async def ws_futures_combined(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, USDM, combined=True)

    async def ws_coinm(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, COINM, combined=False)

    async def ws_coinm_combined(self, request: web.Request) -> web.WebSocketResponse:
        return await self._stream_socket(request, COINM, combined=True)

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

    # ------------------------------------------------------------------ publishing
    def on_bars(self, produced: list[tuple[str, Kline]]) -> None:
        """Publish klines, tickers, mark prices (and synthetic book tickers) after new bars."""
        now = self.exchange.now
        by_symbol: dict[str, list[object]] = {}
        tickers: dict[str, list[dict[str, object]]] = {}
        minis: dict[str, list[dict[str, object]]] = {}
        for symbol, kline in produced:
            by_symbol.setdefault(symbol, []).append(kline)
        marks: dict[str, list[dict[str, object]]] = {}
        for market, spec in self.exchange.markets.items():
            for symbol in spec.rules:
                if self.exchange.candle_of(symbol) not in by_symbol:
                    continue
                lower = symbol.lower()
                for stream in self.hub.subscribed_streams(market, f"{lower}@kline_"):
                    interval = stream.split("_", 1)[1]
                    with contextlib.suppress(Reject, ValueError):
                        if interval not in INTERVALS:
                            continue
                        latest = self.exchange.series_of(symbol).klines(
                            Timeframe.parse(interval), None, None, 1
                        )
                        if latest:
                            kline = latest[-1]
                            closed = kline.close_time + 1 <= now
                            self.hub.publish(
                                market,
                                stream,
                                payloads.kline_event(symbol, interval, kline, closed, now),
                            )
                if market != SPOT:
                    event = payloads.mark_price_event(self.exchange, symbol, market)
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
                if market != SPOT:
                    marks.setdefault(market, []).append(event)
                if (spec.data_market, self.exchange.candle_of(symbol)) not in self.recordings:
                    bid, ask = self.exchange.bid_ask(symbol)
                    row = {
                        "update_id": self.app.replay.synthetic_update_id,
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
        for market, rows in marks.items():
            self.hub.publish(market, "!markPrice@arr", rows)
            self.hub.publish(market, "!markPrice@arr@1s", rows)

    def on_ticks(
        self, data_market: str, candle: str, recording: TickRecording, events: list[TickEvent]
    ) -> None:
        """Publish recorded trades, book tickers and depth on the markets replaying ``recording``."""
        for market, spec in self.exchange.markets.items():
            if spec.data_market == data_market and candle in spec.rules:
                self._publish_ticks(market, candle, recording, events)

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
                event_ms = self.app.tick_clock_ns // 1_000_000
                payload = {
                    "e": "depthUpdate", "E": event_ms, "T": event_ms, "s": symbol,
                    "U": last_id, "u": last_id, "pu": last_id,
                    "b": book["bids"], "a": book["asks"],
                }  # fmt: skip
            self.hub.publish(market, stream, payload)


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
