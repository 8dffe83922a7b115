"""What a handler wants to trade and what the risk features answer: the engine's order vocabulary.

An ``OrderIntent`` is an order before it exists; risk and compliance answer it with a
``RiskDecision`` and may ask the engine for ``RiskAction``s. They live in ``core`` so that
risk and compliance stay siblings that never import the engine or each other, and apart
from the read-only protocols of ``core.portfolio`` so that they can be compiled (see
``metaexpert/_compiled.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from metaexpert.core.enums import (
    OrderSide,
    OrderType,
    PositionSide,
    RiskActionKind,
    RiskEventAction,
    TimeInForce,
)
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
    def __init__(
        self,
        allowed: bool,
        quantity: float,
        rule: str = "",
        reason: str = "",
        events: list[RiskEvent] | None = None,
    ) -> None:
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
        event = RiskEvent(
            rule=rule,
            action=RiskEventAction.BLOCKED,
            timestamp=timestamp,
            symbol=symbol,
            reason=reason,
        )
        return RiskDecision(False, 0.0, rule, reason, [event])


@dataclass(slots=True)
class RiskAction:
    """Something a risk rule wants the engine to do now (``kind``: a ``RiskActionKind``;
    its name is accepted too and checked here, so an unknown kind fails where it is made).

    close_position: symbol + position_side; flatten_all; move_stop: symbol + position_side +
    stop_price; cancel_entries: cancel resting entry orders (of ``symbol``, or all).
    """

    kind: RiskActionKind
    rule: str
    reason: str
    symbol: str | None = None
    position_side: PositionSide | None = None
    stop_price: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        kind: RiskActionKind | str,
        rule: str,
        reason: str,
        symbol: str | None = None,
        position_side: PositionSide | None = None,
        stop_price: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.kind = RiskActionKind(kind)
        self.rule = rule
        self.reason = reason
        self.symbol = symbol
        self.position_side = position_side
        self.stop_price = stop_price
        self.details = {} if details is None else details


@dataclass(slots=True)
class OrderRequest:
    """An order as a handler or the engine asks for it (``Engine.execute``): what ``ctx.buy``/
    ``ctx.sell`` options and ``Engine.place`` keywords mean.

    ``quantity`` None: sized by the strategy (entries) or the whole closable quantity (exits).
    ``order_type`` None: inferred from the prices given (see ``resolved_type``).
    ``stop_loss``/``take_profit`` are prices of the protective orders placed once it fills.
    ``bypass_risk`` is for the engine's own protective and risk-driven orders only.
    """

    symbol: str
    side: OrderSide
    quantity: float | None = None
    price: float | None = None
    stop_price: float | None = None
    order_type: OrderType | None = None
    position_side: PositionSide | None = None
    reduce_only: bool = False
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_at: int | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None
    activation_price: float | None = None
    client_order_id: str | None = None
    tag: str = ""
    comment: str = ""
    oco_group: str = ""
    bypass_risk: bool = False

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        symbol: str,
        side: OrderSide,
        quantity: float | None = None,
        *,
        price: float | None = None,
        stop_price: float | None = None,
        order_type: OrderType | None = None,
        position_side: PositionSide | None = None,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at: int | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_pct: float | None = None,
        activation_price: float | None = None,
        client_order_id: str | None = None,
        tag: str = "",
        comment: str = "",
        oco_group: str = "",
        bypass_risk: bool = False,
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.order_type = order_type
        self.position_side = position_side
        self.reduce_only = reduce_only
        self.time_in_force = time_in_force
        self.expire_at = expire_at
        self.stop_loss = stop_loss
        self.take_profit = take_profit
        self.trailing_pct = trailing_pct
        self.activation_price = activation_price
        self.client_order_id = client_order_id
        self.tag = tag
        self.comment = comment
        self.oco_group = oco_group
        self.bypass_risk = bypass_risk

    def resolved_type(self) -> OrderType:
        """``order_type``, else inferred: trailing stop, stop-limit (price and stop), limit
        (price), stop-market (stop price), market (neither)."""
        if self.order_type is not None:
            return self.order_type
        if self.trailing_pct is not None:
            return OrderType.TRAILING_STOP
        if self.price is not None and self.stop_price is not None:
            return OrderType.STOP_LIMIT
        if self.price is not None:
            return OrderType.LIMIT
        if self.stop_price is not None:
            return OrderType.STOP_MARKET
        return OrderType.MARKET


#: The option names ``ctx.buy``/``ctx.sell`` pass on to an ``OrderRequest``.
ORDER_REQUEST_OPTIONS: Final = frozenset(
    {
        "price",
        "stop_price",
        "order_type",
        "position_side",
        "reduce_only",
        "time_in_force",
        "expire_at",
        "stop_loss",
        "take_profit",
        "trailing_pct",
        "activation_price",
        "client_order_id",
        "tag",
        "comment",
        "oco_group",
    }
)
