"""Contracts between the engine and the features that judge orders (risk, compliance).

The engine owns the state; features see it through ``PortfolioView`` (read-only) and
answer an ``OrderIntent`` with a ``RiskDecision``. Keeping these in ``core`` lets risk and
compliance stay siblings that never import the engine or each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from metaexpert.core.account import Account
from metaexpert.core.enums import OrderSide, OrderType, PositionMode, PositionSide, TimeInForce, TradeMode
from metaexpert.core.events import RiskEvent
from metaexpert.core.market import MarketSpec, OrderBook
from metaexpert.core.order import Order
from metaexpert.core.position import Position
from metaexpert.core.series import BarSeries


@dataclass(slots=True)
class OrderIntent:
    """An order a handler (or a risk action) wants to place, before it becomes an Order.

    ``quantity`` None means "size it for me" (the strategy's size_type/size_value).
    ``reference_price`` is the price the engine expects to trade at (last close / mid).
    ``opens_exposure`` is True when the order would open or increase a position.
    """

    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: float | None
    reference_price: float
    timestamp: int
    price: float | None = None
    stop_price: float | None = None
    position_side: PositionSide | None = None
    reduce_only: bool = False
    time_in_force: TimeInForce = TimeInForce.GTC
    opens_exposure: bool = True
    stop_loss_price: float | None = None
    take_profit_price: float | None = None
    leverage: float = 1.0
    client_order_id: str | None = None
    tag: str = ""

    @property
    def notional(self) -> float:
        quantity = self.quantity or 0.0
        return quantity * (self.price or self.reference_price)


@dataclass(slots=True)
class RiskDecision:
    """The verdict on an intent: allowed (possibly with a changed quantity) or blocked by a rule."""

    allowed: bool
    quantity: float
    rule: str = ""
    reason: str = ""
    events: list[RiskEvent] = field(default_factory=list)

    @staticmethod
    def allow(quantity: float) -> RiskDecision:
        return RiskDecision(True, quantity)

    @staticmethod
    def block(rule: str, reason: str, timestamp: int, symbol: str | None = None) -> RiskDecision:
        event = RiskEvent(rule=rule, action="blocked", timestamp=timestamp, symbol=symbol, reason=reason)
        return RiskDecision(False, 0.0, rule, reason, [event])


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

    def notify(self, title: str, body: str, *, level: str = "info", tags: tuple[str, ...] = ()) -> bool: ...


@dataclass(slots=True)
class RiskAction:
    """Something a risk rule wants the engine to do now.

    kind: "close_position" (symbol + position_side), "flatten_all", "move_stop"
    (symbol + position_side + stop_price), "cancel_entries" (cancel resting entry orders).
    """

    kind: str
    rule: str
    reason: str
    symbol: str | None = None
    position_side: PositionSide | None = None
    stop_price: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
