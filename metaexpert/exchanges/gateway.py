"""The exchange gateway interface the engine's live broker and the data feeds talk to.

One interface for every venue; the only implementation is ``CcxtGateway``. Symbols are
the user's (``BTCUSDT``); results are core types (``Order``, ``Bar``, ``MarketSpec``...),
so nothing above this layer sees ccxt. Every method raises ``RecoverableError`` or
``PermanentError`` subclasses from ``metaexpert.exchanges.errors``, with causes named and
credentials scrubbed.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Self

from metaexpert.core.account import Account
from metaexpert.core.enums import MarginMode
from metaexpert.core.funding import FundingRate
from metaexpert.core.market import Bar, MarketSpec, OrderBook, Tick
from metaexpert.core.order import Order
from metaexpert.core.position import Position


class ExchangeGateway(abc.ABC):
    """Async access to one exchange account for one market type."""

    # ------------------------------------------------------------ reference data
    @abc.abstractmethod
    async def load_markets(self, *, reload: bool = False) -> None:
        """Load (or reload) the venue's markets; needed before ``market_spec``."""

    @abc.abstractmethod
    def market_spec(self, symbol: str) -> MarketSpec:
        """Steps, limits, fees, contract size and maximum leverage of ``symbol``."""

    # --------------------------------------------------------------- market data
    @abc.abstractmethod
    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        *,
        since: int | None = None,
        limit: int | None = None,
        until: int | None = None,
    ) -> list[Bar]: ...

    def serves_candles(self, symbol: str) -> bool:
        """False where the venue has no candles of ``symbol`` (the runtime builds its bars from
        polled prices instead, ``engine/polled_bars.py``); needs ``load_markets`` first."""
        return True

    @abc.abstractmethod
    async def fetch_ticker(self, symbol: str) -> Tick: ...

    @abc.abstractmethod
    async def fetch_order_book(self, symbol: str, *, limit: int | None = None) -> OrderBook: ...

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """The rate the venue announces for the coming funding time of perpetual ``symbol``."""
        raise NotImplementedError(f"{type(self).__name__} serves no funding rates")

    async def fetch_funding_rate_history(
        self, symbol: str, *, since: int | None = None, limit: int | None = None
    ) -> list[FundingRate]:
        """The rates the venue settled at past funding times (oldest first), from ``since``."""
        raise NotImplementedError(f"{type(self).__name__} serves no funding rates")

    # ------------------------------------------------------------------ account
    @abc.abstractmethod
    async def fetch_balance(self, currency: str | None = None) -> Account: ...

    @abc.abstractmethod
    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]: ...

    @abc.abstractmethod
    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]: ...

    @abc.abstractmethod
    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...

    # ------------------------------------------------------------------- orders
    @abc.abstractmethod
    async def create_order(self, order: Order) -> Order:
        """Submit ``order`` (status ``created``); returns it updated (exchange id, status, fills)."""

    @abc.abstractmethod
    async def cancel_order(self, order: Order) -> Order: ...

    @abc.abstractmethod
    async def modify_order(
        self,
        order: Order,
        *,
        quantity: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
    ) -> Order: ...

    # ----------------------------------------------------------------- settings
    @abc.abstractmethod
    async def set_leverage(self, symbol: str, leverage: float) -> bool:
        """Returns False when the venue said the leverage was already set."""

    @abc.abstractmethod
    async def set_margin_mode(
        self, symbol: str, margin_mode: MarginMode | None = None, *, leverage: float | None = None
    ) -> bool: ...

    @abc.abstractmethod
    async def set_position_mode(
        self, hedged: bool | None = None, symbol: str | None = None
    ) -> bool: ...

    # ------------------------------------------------------------------ streams
    @abc.abstractmethod
    async def watch_ticker(self, symbol: str) -> Tick: ...

    @abc.abstractmethod
    async def watch_trades(self, symbol: str) -> list[Tick]: ...

    @abc.abstractmethod
    async def watch_order_book(self, symbol: str, *, limit: int | None = None) -> OrderBook: ...

    @abc.abstractmethod
    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[Bar]: ...

    @abc.abstractmethod
    async def watch_orders(self, symbol: str | None = None) -> list[Order]: ...

    @property
    @abc.abstractmethod
    def stream_degraded(self) -> bool:
        """True while any supervised stream (the order book above all) is down."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.load_markets()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
