"""Bybit v5 websocket streams as ccxt.pro ``bybit`` uses them.

Public ``/v5/public/{spot,linear,inverse}``: ``tickers.<symbol>``, ``kline.<interval>.<symbol>``
and ``orderbook.<depth>.<symbol>``, each a ``snapshot`` after every replayed bar, and
``publicTrade.<symbol>`` with the recorded trades as they replay (``tick_replay``). Private
``/v5/private`` after ``{"op": "auth", "args": [key, expires, hex HMAC("GET/realtime" + expires)]}``:
``order``, ``execution``, ``position`` and ``wallet`` in the REST row shapes (``orders.py``,
``payloads.py``) with their ``category``. Requests are answered like Bybit
(``{"success", "ret_msg", "op", "req_id", "conn_id"}``), ``ping`` with ``pong``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.core.events import AccountEvent, AlgoEvent, BalanceEvent, Event, OrderEvent
from metaexpert.sandbox.core.hub import Connection
from metaexpert.sandbox.core.market_data import Kline
from metaexpert.sandbox.core.service import Route
from metaexpert.sandbox.venues.bybit import orders as wire
from metaexpert.sandbox.venues.bybit import payloads
from metaexpert.sandbox.venues.bybit.markets import CATEGORIES, INTERVALS

if TYPE_CHECKING:
    from metaexpert.sandbox.venues.bybit.routes import BybitApp

PRIVATE = "private"
PRIVATE_TOPICS = {"order", "execution", "position", "wallet"}


class BybitStreams:
    def __init__(self, app: BybitApp) -> None:
        self.app = app

    def routes(self) -> list[Route]:
        return [("GET", "/v5/public/{category}", self.public), ("GET", "/v5/private", self.private)]

    async def public(self, request: web.Request) -> web.WebSocketResponse:
        category = request.match_info["category"]
        if category not in CATEGORIES:
            raise web.HTTPNotFound(text=f"no public stream for category {category!r}")
        return await self._socket(request, f"public:{category}")

    async def private(self, request: web.Request) -> web.WebSocketResponse:
        return await self._socket(request, PRIVATE)

    async def _socket(self, request: web.Request, channel: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        connection = Connection(ws=ws, market=channel, combined=False, path=request.path)
        self.app.hub.add(connection)
        try:
            await ws.prepare(request)
        except BaseException:
            self.app.hub.remove(connection)
            raise
        writer = asyncio.get_running_loop().create_task(connection.writer())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    connection.push(json.dumps(self._control(connection, message.data)))
        finally:
            self.app.hub.remove(connection)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        return ws

    def _control(self, connection: Connection, data: str) -> dict[str, object]:
        try:
            message = json.loads(data)
            op, args, req_id = (
                message.get("op"),
                message.get("args") or [],
                message.get("req_id", ""),
            )
        except (json.JSONDecodeError, AttributeError):
            return {
                "success": False,
                "ret_msg": "Invalid JSON",
                "op": "",
                "conn_id": id(connection),
            }
        answer: dict[str, object] = {
            "success": True,
            "ret_msg": "",
            "op": op,
            "req_id": req_id,
            "conn_id": str(id(connection)),
        }
        if op == "ping":
            return {**answer, "ret_msg": "pong"}
        if op == "auth":
            return {**answer, **self._auth(connection, args)}
        if op not in ("subscribe", "unsubscribe"):
            return {**answer, "success": False, "ret_msg": f"unknown op {op!r}"}
        for topic in map(str, args):
            error = self._check_topic(connection, topic)
            if error:
                return {**answer, "success": False, "ret_msg": error}
        for topic in map(str, args):
            (connection.streams.add if op == "subscribe" else connection.streams.discard)(topic)
        return answer

    def _auth(self, connection: Connection, args: list[Any]) -> dict[str, object]:
        if connection.market != PRIVATE or len(args) != 3:
            return {"success": False, "ret_msg": "Params Error"}
        api_key, expires, signature = (str(arg) for arg in args)
        secret = self.app.exchange.secrets.get(api_key)
        if secret is None:
            return {"success": False, "ret_msg": "Invalid apikey"}
        expected = hmac.new(
            secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
        ).hexdigest()
        if not expires.isdigit() or int(expires) < time.time() * 1000:
            return {"success": False, "ret_msg": "Params Error: the request expired"}
        if not hmac.compare_digest(expected, signature):
            return {"success": False, "ret_msg": "Invalid sign"}
        connection.user_subscriptions[0] = api_key
        return {}

    def _check_topic(self, connection: Connection, topic: str) -> str:
        if connection.market == PRIVATE:
            if not connection.user_subscriptions:
                return "Request not authorized"
            return "" if topic in PRIVATE_TOPICS else f"error:handler not found,topic:{topic}"
        category = connection.market.split(":", 1)[1]
        parts = topic.split(".")
        symbol = parts[-1]
        if symbol not in self.app.exchange.symbols.get(category, {}):
            return f"error:invalid symbol :[{topic}]"
        if parts[0] == "kline" and (len(parts) != 3 or parts[1] not in INTERVALS):
            return f"error:invalid interval :[{topic}]"
        if parts[0] not in ("tickers", "kline", "orderbook", "publicTrade"):
            return f"error:handler not found,topic:{topic}"
        return ""

    # ------------------------------------------------------------------ publishing
    def _public(self, category: str, topic: str, data: object, kind: str = "snapshot") -> None:
        now = self.app.exchange.now
        self.app.hub.publish(
            f"public:{category}",
            topic,
            {"topic": topic, "type": kind, "ts": now, "cs": now, "data": data},
        )

    def on_bars(self, produced: list[tuple[str, Kline]]) -> None:
        exchange, hub = self.app.exchange, self.app.hub
        moved = {candle for candle, _ in produced}
        for category, rules in exchange.symbols.items():
            channel = f"public:{category}"
            for symbol in rules:
                if exchange.candle_of(symbol) not in moved:
                    continue
                if hub.subscribed(channel, f"tickers.{symbol}"):
                    self._public(
                        category, f"tickers.{symbol}", payloads.ticker(exchange, category, symbol)
                    )
                for topic in hub.subscribed_streams(channel, "kline."):
                    _, interval, name = topic.split(".")
                    if name != symbol:
                        continue
                    latest = exchange.series_of(symbol).klines(
                        Timeframe.parse(INTERVALS[interval]), None, None, 1
                    )
                    if latest:
                        self._public(category, topic, [_kline(latest[-1], interval, exchange.now)])
                for topic in hub.subscribed_streams(channel, "orderbook."):
                    _, depth, name = topic.split(".")
                    if name == symbol and depth.isdigit():
                        book = payloads.orderbook(
                            exchange,
                            category,
                            symbol,
                            int(depth),
                            self.app.replay.synthetic_update_id,
                        )
                        self._public(category, topic, book)

    def on_ticks(self, data_market: str, candle: str, recording: Any, events: list[Any]) -> None:
        """Recorded trades as ``publicTrade.<symbol>`` on each category replaying them."""
        exchange, hub = self.app.exchange, self.app.hub
        for category, market in exchange.markets.items():
            if market.data_market != data_market or candle not in market.rules:
                continue
            topic = f"publicTrade.{candle}"
            if not hub.subscribed(f"public:{category}", topic):
                continue
            rows = [
                _public_trade(recording.trade_row(event.index), candle)
                for event in events
                if event.kind == "trade"
            ]
            if rows:
                self._public(category, topic, rows)

    def on_event(self, event: Event) -> None:
        hub = self.app.hub
        if not any(c.market == PRIVATE and c.user_subscriptions for c in hub.connections):
            return
        if isinstance(event, OrderEvent | AlgoEvent):
            order = event.order
            self._private(
                order.api_key,
                "order",
                [{**wire.order_row(order, order.market), "category": order.market}],
            )
            if isinstance(event, OrderEvent) and event.fill is not None:
                row = {
                    **wire.execution_row(event.fill, order, order.market),
                    "category": order.market,
                }
                self._private(order.api_key, "execution", [row])
        elif isinstance(event, AccountEvent):
            self._positions(event.market, event.account.api_key)
            self._wallet(event.account.api_key)
        elif isinstance(event, BalanceEvent):
            self._wallet(event.account.api_key)

    def _private(self, api_key: str, topic: str, data: list[Any]) -> None:
        text = json.dumps(
            {
                "id": uuid.uuid4().hex,
                "topic": topic,
                "creationTime": int(time.time() * 1000),
                "data": data,
            }
        )
        for connection in self.app.hub.connections:
            if (
                connection.market == PRIVATE
                and topic in connection.streams
                and api_key in connection.user_subscriptions.values()
            ):
                connection.push(text)

    def _positions(self, category: str, api_key: str) -> None:
        exchange = self.app.exchange
        margin = exchange.margin
        account = exchange.margin_accounts[category][api_key]
        rows = []
        for position in account.positions.values():
            mark = margin.mark(position)
            rows.append(
                {
                    **wire.position_row(
                        position,
                        mark=mark,
                        leverage=margin.leverage(account, position.symbol),
                        unrealized=margin.unrealized(position),
                        liquidation=margin.liquidation_price(account, position),
                        margin=margin.position_margin(account, position),
                        value=margin.notional(
                            category, position.symbol, abs(position.amount), mark
                        ),
                        isolated=account.margin_type.get(position.symbol) == "ISOLATED",
                    ),
                    "category": category,
                }
            )
        self._private(api_key, "position", rows)

    def _wallet(self, api_key: str) -> None:
        self._private(api_key, "wallet", payloads.wallet(self.app.exchange, api_key, None)["list"])  # type: ignore[arg-type]


def _kline(kline: Kline, interval: str, now: int) -> dict[str, object]:
    row = payloads.kline_row(kline)
    return {
        "start": kline.open_time,
        "end": kline.close_time,
        "interval": interval,
        "open": row[1],
        "close": row[4],
        "high": row[2],
        "low": row[3],
        "volume": row[5],
        "turnover": row[6],
        "confirm": kline.close_time < now,
        "timestamp": now,
    }


def _public_trade(row: dict[str, object], symbol: str) -> dict[str, object]:
    """One recorded trade as a Bybit v5 ``publicTrade`` row (``S``: the taker's side)."""
    return {
        "T": int(str(row["trade_time_ms"])),
        "s": symbol,
        "S": "Sell" if row["is_buyer_maker"] else "Buy",
        "v": f"{float(str(row['qty'])):g}",
        "p": f"{float(str(row['price'])):g}",
        "i": str(row["trade_id"]),
        "BT": False,
    }
