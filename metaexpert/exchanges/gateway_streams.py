"""Websocket streams of ``CcxtGateway`` (ccxt.pro ``watch_*``) and their supervisors.

A mixin of ``CcxtGateway`` (the class is split by concern): each ``watch_*`` call translates
ccxt's errors like a REST call, and ``start_stream`` keeps a stream running in a background
task that reconnects with backoff and reports a degraded state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from metaexpert.core.market import Bar, OrderBook, Tick
from metaexpert.core.order import Order
from metaexpert.exchanges import mapping
from metaexpert.exchanges.errors import translate_error
from metaexpert.exchanges.streams import StreamSupervisor

if TYPE_CHECKING:
    from metaexpert.exchanges.ccxt_gateway import CcxtGateway

T = TypeVar("T")


class StreamingMixin:
    """``watch_*``, ``start_stream`` and the stream state, for ``CcxtGateway``."""

    async def _stream(
        self: CcxtGateway, operation: str, call: Callable[[], Awaitable[T]], symbol: str | None
    ) -> T:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            error = translate_error(
                exc, exchange=self.exchange_name, operation=operation, symbol=symbol
            )
        raise error

    async def watch_ticker(self: CcxtGateway, symbol: str) -> Tick:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        ticker = await self._stream(
            "watch_ticker", lambda: self.client.watch_ticker(market_symbol), symbol
        )
        return mapping.tick_from_ticker(ticker, symbol)

    async def watch_trades(self: CcxtGateway, symbol: str) -> list[Tick]:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        trades = await self._stream(
            "watch_trades", lambda: self.client.watch_trades(market_symbol), symbol
        )
        return [mapping.tick_from_trade(trade, symbol) for trade in trades]

    async def watch_order_book(
        self: CcxtGateway, symbol: str, *, limit: int | None = None
    ) -> OrderBook:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        depth = self.venue.order_book_depth(limit, self.config)  # Bybit streams fixed depths
        book = await self._stream(
            "watch_order_book", lambda: self.client.watch_order_book(market_symbol, depth), symbol
        )
        return mapping.order_book_from_ccxt(book, symbol, depth=limit)

    async def watch_ohlcv(self: CcxtGateway, symbol: str, timeframe: str) -> list[Bar]:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        rows = await self._stream(
            "watch_ohlcv", lambda: self.client.watch_ohlcv(market_symbol, timeframe), symbol
        )
        return [mapping.bar_from_ccxt(row, symbol, timeframe) for row in rows]

    async def watch_orders(self: CcxtGateway, symbol: str | None = None) -> list[Order]:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol) if symbol else None
        snapshots = await self._stream(
            "watch_orders", lambda: self.client.watch_orders(market_symbol), symbol
        )
        return [self._track(snapshot, symbol) for snapshot in snapshots]

    def start_stream(
        self: CcxtGateway,
        name: str,
        watch: Callable[[], Awaitable[T]],
        on_update: Callable[[T], Any],
        **supervisor_options: Any,
    ) -> StreamSupervisor[T]:
        """Supervise ``watch`` in a background task (reconnect with backoff, degraded flag)."""
        supervisor: StreamSupervisor[T] = StreamSupervisor(
            name,
            watch,
            on_update,
            on_state_change=self._on_stream_state_change,
            sleep=self._sleep,
            **supervisor_options,
        )
        task = asyncio.get_running_loop().create_task(supervisor.run(), name=f"stream:{name}")
        self._streams.append((supervisor, task))
        return supervisor

    def start_order_book_stream(
        self: CcxtGateway,
        symbol: str,
        on_book: Callable[[OrderBook], Any],
        *,
        limit: int | None = None,
        **supervisor_options: Any,
    ) -> StreamSupervisor[OrderBook]:
        """Keep ``symbol``'s order book flowing to ``on_book``; see ``stream_degraded``."""
        return self.start_stream(
            f"{self.exchange_name}:{symbol}:order_book",
            lambda: self.watch_order_book(symbol, limit=limit),
            on_book,
            **supervisor_options,
        )

    @property
    def stream_degraded(self: CcxtGateway) -> bool:
        return any(supervisor.degraded or task.done() for supervisor, task in self._streams)

    @property
    def streams(self: CcxtGateway) -> list[StreamSupervisor[Any]]:
        return [supervisor for supervisor, _ in self._streams]
