"""OKX v5 websocket streams as ccxt.pro ``okx`` uses them (``/ws/v5/{public,private,business}``).

Public: ``tickers``, ``books5``, ``books`` (a full snapshot each bar) and ``trades`` (the
recorded trades, with ``tick_replay``) per instId, candles (``candle1m``, ``candle1H``...) on the
business socket, each pushed after every replayed bar. Private, after ``{"op": "login", "args":
[{apiKey, passphrase, timestamp (s), sign = base64 HMAC(timestamp + "GET/users/self/verify")}]}``:
``orders`` (instType), ``orders-algo`` (business), ``positions`` and ``account`` in the REST row
shapes. Messages are ``{"arg": {...}, "data": [...]}``; the text ``ping`` is answered ``pong``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.core.events import AccountEvent, AlgoEvent, BalanceEvent, Event, OrderEvent
from metaexpert.sandbox.core.hub import Connection
from metaexpert.sandbox.core.market_data import Kline
from metaexpert.sandbox.core.model import fmt
from metaexpert.sandbox.core.service import Route
from metaexpert.sandbox.venues.okx import orders as wire
from metaexpert.sandbox.venues.okx.markets import BARS, SWAP

if TYPE_CHECKING:
    from metaexpert.sandbox.venues.okx.routes import OkxApp

PUBLIC_CHANNELS = {"tickers", "books5", "books", "trades"}
PRIVATE_CHANNELS = {"orders", "orders-algo", "positions", "account"}
Json = dict[str, Any]


class OkxStreams:
    def __init__(self, app: OkxApp) -> None:
        self.app = app
        # connection -> subscribed args (channel, instId or instType)
        self.args: dict[Connection, list[Json]] = {}

    def routes(self) -> list[Route]:
        return [("GET", "/ws/v5/{kind:public|private|business}", self.socket)]

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        connection = Connection(
            ws=ws, market=f"okx:{request.match_info['kind']}", combined=False, path=request.path
        )
        self.app.hub.add(connection)
        self.args[connection] = []
        try:
            await ws.prepare(request)
        except BaseException:
            self.app.hub.remove(connection)
            self.args.pop(connection, None)
            raise
        writer = asyncio.get_running_loop().create_task(connection.writer())
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                if message.data == "ping":
                    connection.push("pong")
                    continue
                for answer in self._control(connection, message.data):
                    connection.push(json.dumps(answer))
        finally:
            self.app.hub.remove(connection)
            self.args.pop(connection, None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        return ws

    def _control(self, connection: Connection, data: str) -> list[Json]:
        conn_id = str(id(connection))
        try:
            message = json.loads(data)
            op, args = message.get("op"), message.get("args") or []
        except (json.JSONDecodeError, AttributeError):
            return [
                {
                    "event": "error",
                    "code": "60012",
                    "msg": f"Illegal request: {data}",
                    "connId": conn_id,
                }
            ]
        if op == "login":
            error = self._login(connection, args)
            if error:
                return [{"event": "error", "code": error[0], "msg": error[1], "connId": conn_id}]
            return [{"event": "login", "code": "0", "msg": "", "connId": conn_id}]
        if op not in ("subscribe", "unsubscribe"):
            return [
                {
                    "event": "error",
                    "code": "60012",
                    "msg": f"Illegal request: {data}",
                    "connId": conn_id,
                }
            ]
        answers = []
        for arg in args:
            if not isinstance(arg, dict):
                return [
                    {
                        "event": "error",
                        "code": "60012",
                        "msg": f"Illegal request: {data}",
                        "connId": conn_id,
                    }
                ]
            error = self._check(connection, arg)
            if error:
                return [{"event": "error", "code": "60018", "msg": error, "connId": conn_id}]
            # ``connection.streams`` names them too, as on the other venues (``subscriptions()``).
            topic = ":".join(
                str(arg[key]) for key in ("channel", "instId", "instType") if arg.get(key)
            )
            if op == "subscribe":
                self.args[connection].append(dict(arg))
                connection.streams.add(topic)
            else:
                self.args[connection] = [a for a in self.args[connection] if a != arg]
                connection.streams.discard(topic)
            answers.append({"event": op, "arg": arg, "connId": conn_id})
        return answers

    def _login(self, connection: Connection, args: list[Any]) -> tuple[str, str] | None:
        if not args or not isinstance(args[0], dict):
            return ("60012", "Illegal request")
        arg = args[0]
        api_key = str(arg.get("apiKey", ""))
        secret = self.app.exchange.secrets.get(api_key)
        accounts = {a.api_key: a for a in self.app.config.accounts}
        if secret is None:
            return ("60005", "Invalid OK-ACCESS-KEY")
        if str(arg.get("passphrase", "")) != accounts[api_key].passphrase:
            return ("60024", "Wrong passphrase")
        timestamp = str(arg.get("timestamp", ""))
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 30:
            return ("60006", "Timestamp request expired")
        digest = hmac.new(
            secret.encode(), f"{timestamp}GET/users/self/verify".encode(), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), str(arg.get("sign", ""))):
            return ("60007", "Invalid sign")
        connection.user_subscriptions[0] = api_key
        return None

    def _check(self, connection: Connection, arg: Json) -> str:
        channel = str(arg.get("channel", ""))
        if channel in PRIVATE_CHANNELS:
            return "" if connection.user_subscriptions else f"channel:{channel} requires login"
        inst = str(arg.get("instId", ""))
        if not any(inst in rules for rules in self.app.exchange.symbols.values()):
            return f"channel:{channel},instId:{inst} doesn't exist"
        if channel.startswith("candle") and channel[len("candle") :] in BARS:
            return ""
        return "" if channel in PUBLIC_CHANNELS else f"channel:{channel} doesn't exist"

    # ------------------------------------------------------------------ publishing
    def _send(
        self,
        match: Any,
        arg: Json,
        data: list[Any],
        api_key: str | None = None,
        action: str | None = None,
    ) -> None:
        """Push to every matching subscription, echoing its own arg as OKX does; a private
        subscription to one instId gets only that instrument's rows."""
        for connection, subscribed in self.args.items():
            if api_key is not None and api_key not in connection.user_subscriptions.values():
                continue
            for wanted in subscribed:
                if not match(wanted):
                    continue
                rows = data
                if api_key is not None and wanted.get("instId"):
                    rows = [
                        row
                        for row in data
                        if isinstance(row, dict) and row.get("instId") == wanted["instId"]
                    ]
                    if not rows:
                        break
                message: Json = {"arg": {**arg, **wanted, "uid": "1"}, "data": rows}
                if action is not None:
                    message["action"] = action
                connection.push(json.dumps(message))
                break

    def on_bars(self, produced: list[tuple[str, Kline]]) -> None:
        if not self.args:
            return
        exchange = self.app.exchange
        moved = {candle for candle, _ in produced}
        wanted = {(a.get("channel"), a.get("instId")) for args in self.args.values() for a in args}
        for market, rules in exchange.symbols.items():
            for inst in rules:
                if exchange.candle_of(inst) not in moved:
                    continue
                for channel, target in wanted:
                    if target != inst:
                        continue
                    arg = {"channel": channel, "instId": inst}
                    action = None
                    if channel == "tickers":
                        data: list[Any] = [self.app._ticker(market, inst)]
                    elif channel == "books5":
                        data = [self._book(market, inst)]
                    elif channel == "books":  # a full snapshot every bar (no prevSeqId chain)
                        data = [{**self._book(market, inst), "prevSeqId": -1}]
                        action = "snapshot"
                    elif str(channel).startswith("candle"):
                        bar = str(channel)[len("candle") :]
                        latest = exchange.series_of(inst).klines(
                            Timeframe.parse(BARS[bar]), None, None, 1
                        )
                        if not latest:
                            continue
                        k = latest[-1]
                        size = exchange.markets[market].contract_size.get(inst, 1.0)
                        data = [
                            [
                                str(k.open_time),
                                fmt(k.open),
                                fmt(k.high),
                                fmt(k.low),
                                fmt(k.close),
                                fmt(k.volume / size),
                                fmt(k.volume),
                                fmt(k.volume * k.close),
                                "1" if k.close_time < exchange.now else "0",
                            ]
                        ]
                    else:
                        continue
                    self._send(
                        lambda a, c=channel, i=inst: a.get("channel") == c and a.get("instId") == i,
                        arg,
                        data,
                        action=action,
                    )

    def on_ticks(self, data_market: str, candle: str, recording: Any, events: list[Any]) -> None:
        """Recorded trades on the ``trades`` channel of each instrument replaying them."""
        if not self.args:
            return
        exchange = self.app.exchange
        for market, spec in exchange.markets.items():
            if spec.data_market != data_market:
                continue
            for inst in exchange.symbols.get(market, {}):
                if exchange.candle_of(inst) != candle:
                    continue
                size = spec.contract_size.get(inst, 1.0)
                rows = [
                    _trade_row(recording.trade_row(event.index), inst, size)
                    for event in events
                    if event.kind == "trade"
                ]
                if rows:
                    self._send(
                        lambda a, i=inst: a.get("channel") == "trades" and a.get("instId") == i,
                        {"channel": "trades", "instId": inst},
                        rows,
                    )

    def _book(self, market: str, inst: str) -> Json:
        exchange = self.app.exchange
        tick = exchange.symbols[market][inst].tick_size
        bid, ask = exchange.bid_ask(inst, market)
        best_bid = int(bid / tick + 1e-9)
        best_ask = max(int(ask / tick - 1e-9 + 0.999999), best_bid + 1)
        return {
            "asks": [[fmt((best_ask + i) * tick), "1", "0", "1"] for i in range(5)],
            "bids": [[fmt((best_bid - i) * tick), "1", "0", "1"] for i in range(5)],
            "instId": inst,
            "ts": str(exchange.now),
            "seqId": self.app.replay.synthetic_update_id,
        }

    def on_event(self, event: Event) -> None:
        if not any(c.user_subscriptions for c in self.args):
            return
        if isinstance(event, OrderEvent):
            order = event.order
            row = self.app._order_row(order, order.api_key)
            arg = {"channel": "orders", "instType": order.market}
            self._send(
                lambda a: (
                    a.get("channel") == "orders"
                    and a.get("instType") in (None, "ANY", order.market)
                ),
                arg,
                [row],
                order.api_key,
            )
        elif isinstance(event, AlgoEvent):
            order = event.order
            row = wire.algo_row(
                order, order.market, self.app._td_mode(order.market, order.api_key, order.symbol)
            )
            arg = {"channel": "orders-algo", "instType": order.market}
            self._send(lambda a: a.get("channel") == "orders-algo", arg, [row], order.api_key)
        elif isinstance(event, AccountEvent | BalanceEvent):
            api_key = event.account.api_key
            self._send(
                lambda a: a.get("channel") == "account",
                {"channel": "account"},
                [self.app.balance_row(api_key, [])],
                api_key,
            )
            if isinstance(event, AccountEvent):
                rows = self.app.position_rows(api_key, None)
                self._send(
                    lambda a: a.get("channel") == "positions",
                    {"channel": "positions", "instType": SWAP},
                    rows,
                    api_key,
                )


def _trade_row(row: dict[str, Any], inst: str, contract_size: float) -> Json:
    """One recorded trade as an OKX ``trades`` row (``sz`` in contracts; ``side``: the taker's)."""
    return {
        "instId": inst,
        "tradeId": str(row["trade_id"]),
        "px": fmt(float(row["price"])),
        "sz": fmt(float(row["qty"]) / contract_size),
        "side": "sell" if row["is_buyer_maker"] else "buy",
        "ts": str(int(row["trade_time_ms"])),
        "count": "1",
    }
