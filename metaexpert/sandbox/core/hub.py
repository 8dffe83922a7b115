"""Websocket connections and what each one is subscribed to.

Why a hub: market data and user data are produced by the exchange on the event loop and must
reach every subscribed connection in order without blocking the producer; each connection owns
a queue drained by its own writer task, so a slow client never stalls the replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field

from aiohttp import web

MAX_QUEUED_MESSAGES = 50_000


@dataclass(eq=False)
class Connection:
    """One websocket client: market (spot/usdm), raw or combined framing, and its subscriptions."""

    ws: web.WebSocketResponse
    market: str
    combined: bool
    path: str
    streams: set[str] = field(default_factory=set)
    listen_keys: set[str] = field(default_factory=set)
    user_subscriptions: dict[int, str] = field(default_factory=dict)  # ws-api id -> api key
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    sent: int = 0

    overflowed: bool = False

    def push(self, text: str) -> None:
        """Queue a message; a client that falls too far behind is disconnected, as Binance does."""
        if self.overflowed:
            return
        if self.queue.qsize() >= MAX_QUEUED_MESSAGES:
            self.overflowed = True
            asyncio.get_running_loop().create_task(
                self.ws.close(code=1008, message=b"slow consumer")
            )
            return
        self.queue.put_nowait(text)

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
                self.sent += 1
            except (ConnectionResetError, RuntimeError):
                return


class StreamHub:
    """Routes stream payloads to the connections subscribed to them."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self._subscription_ids = itertools.count(0)

    def next_subscription_id(self) -> int:
        return next(self._subscription_ids)

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)

    def remove(self, connection: Connection) -> None:
        self.connections.discard(connection)
        connection.queue.put_nowait(None)

    def subscribed(self, market: str, stream: str) -> bool:
        return any(c.market == market and stream in c.streams for c in self.connections)

    def subscribed_streams(self, market: str, prefix: str) -> set[str]:
        return {
            stream
            for connection in self.connections
            if connection.market == market
            for stream in connection.streams
            if stream.startswith(prefix)
        }

    def publish(self, market: str, stream: str, payload: object) -> int:
        """Send ``payload`` on ``stream`` to every subscriber; returns how many got it."""
        raw: str | None = None
        wrapped: str | None = None
        delivered = 0
        for connection in self.connections:
            if connection.market != market or stream not in connection.streams:
                continue
            if connection.combined:
                if wrapped is None:
                    wrapped = json.dumps({"stream": stream, "data": payload})
                connection.push(wrapped)
            else:
                if raw is None:
                    raw = json.dumps(payload)
                connection.push(raw)
            delivered += 1
        return delivered

    def publish_user(
        self, market: str, api_key: str, payload: dict[str, object], listen_keys: set[str]
    ) -> int:
        """Send a user-data event to the listenKey streams and ws-api subscriptions of ``api_key``."""
        delivered = 0
        for connection in self.connections:
            if connection.market != market:
                continue
            for key in connection.listen_keys & listen_keys:
                if connection.combined:
                    connection.push(json.dumps({"stream": key, "data": payload}))
                else:
                    connection.push(json.dumps(payload))
                delivered += 1
            for subscription_id, owner in connection.user_subscriptions.items():
                if owner == api_key:
                    connection.push(
                        json.dumps({"subscriptionId": subscription_id, "event": payload})
                    )
                    delivered += 1
        return delivered

    async def drop_all(self, *, path: str | None = None, abort: bool = True) -> int:
        """Cut websocket connections (all, or those whose path contains ``path``)."""
        victims = [c for c in self.connections if path is None or path in c.path]
        for connection in victims:
            self.remove(connection)
            if abort:
                transport = connection.ws._req.transport if connection.ws._req is not None else None
                if transport is not None:
                    transport.abort()
                    continue
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"sandbox dropped the connection")
        return len(victims)

    async def close_all(self) -> None:
        for connection in list(self.connections):
            self.remove(connection)
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"sandbox shutting down")
