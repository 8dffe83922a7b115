"""What a handler wants to trade and what the risk features answer: the engine's order vocabulary.

An ``OrderIntent`` is an order before it exists; risk and compliance answer it with a
``RiskDecision`` and may ask the engine for ``RiskAction``s. They live in ``core`` so that
risk and compliance stay siblings that never import the engine or each other, and apart
from the read-only protocols of ``core.portfolio`` so that they can be compiled (see
``metaexpert/_compiled.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metaexpert.core.enums import OrderSide, OrderType, PositionSide, TimeInForce
from metaexpert.core.events import RiskEvent


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

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        symbol: str,
        side: OrderSide,
        order_type: OrderType,
        quantity: float | None,
        reference_price: float,
        timestamp: int,
        price: float | None = None,
        stop_price: float | None = None,
        position_side: PositionSide | None = None,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        opens_exposure: bool = True,
        stop_loss_price: float | None = None,
        take_profit_price: float | None = None,
        leverage: float = 1.0,
        client_order_id: str | None = None,
        tag: str = "",
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.reference_price = reference_price
        self.timestamp = timestamp
        self.price = price
        self.stop_price = stop_price
        self.position_side = position_side
        self.reduce_only = reduce_only
        self.time_in_force = time_in_force
        self.opens_exposure = opens_exposure
        self.stop_loss_price = stop_loss_price
        self.take_profit_price = take_profit_price
        self.leverage = leverage
        self.client_order_id = client_order_id
        self.tag = tag

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

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(self, allowed: bool, quantity: float, rule: str = "", reason: str = "",
                 events: list[RiskEvent] | None = None) -> None:
        self.allowed = allowed
        self.quantity = quantity
        self.rule = rule
        self.reason = reason
        self.events = [] if events is None else events

    @staticmethod
    def allow(quantity: float) -> RiskDecision:
        return RiskDecision(True, quantity)

    @staticmethod
    def block(rule: str, reason: str, timestamp: int, symbol: str | None = None) -> RiskDecision:
        event = RiskEvent(rule=rule, action="blocked", timestamp=timestamp, symbol=symbol, reason=reason)
        return RiskDecision(False, 0.0, rule, reason, [event])


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
