"""Contracts between the engine and the features that judge orders (risk, compliance).

The engine owns the state; features see it through ``PortfolioView`` (read-only) and
answer an ``OrderIntent`` with a ``RiskDecision`` (both in ``core.intent``). Keeping these
in ``core`` lets risk and compliance stay siblings that never import the engine or each other.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from metaexpert.core.account import Account
from metaexpert.core.enums import PositionMode, TradeMode
from metaexpert.core.market import MarketSpec, OrderBook
from metaexpert.core.order import Order
from metaexpert.core.position import Position
from metaexpert.core.series import BarSeries


@runtime_checkable
class PortfolioView(Protocol):
    """Read-only state the engine exposes to risk and compliance rules."""

    @property
    def now_ms(self) -> int: ...

    @property
    def trade_mode(self) -> TradeMode: ...

    @property
    def account(self) -> Account: ...

    @property
    def position_mode(self) -> PositionMode: ...

    @property
    def peak_equity(self) -> float: ...

    @property
    def day_start_equity(self) -> float:
        """Equity at the start of the current UTC day (for daily loss limits)."""
        ...

    def positions(self, symbol: str | None = None) -> list[Position]: ...

    def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    def market(self, symbol: str) -> MarketSpec: ...

    def last_price(self, symbol: str) -> float: ...

    def bars(self, symbol: str, timeframe: str | None = None) -> BarSeries: ...

    def order_book(self, symbol: str) -> OrderBook | None: ...


@runtime_checkable
class Notifier(Protocol):
    """Where alerts go (Apprise in ``metaexpert.notify``); features depend on this only."""

    def notify(
        self, title: str, body: str, *, level: str = "info", tags: tuple[str, ...] = ()
    ) -> bool: ...
