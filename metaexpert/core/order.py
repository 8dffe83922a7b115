"""Orders, their status state machine, and fills (trades).

The state machine is explicit so that every mode (backtest, paper, live) and the
persistence layer agree on what an order may become:

    created -> submitted -> partially_filled -> filled
                        \\-> cancelled | rejected | expired (from submitted or partially_filled)
    created -> rejected | cancelled (refused or withdrawn before it reached the venue)

Any other transition raises ``InvalidTransitionError``.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from dataclasses import dataclass, field
from typing import Final

from metaexpert.core.enums import (
    LiquidityRole,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
)
from metaexpert.core.errors import InvalidTransitionError


def position_leg(
    side: OrderSide, reduce_only: bool, position_side: PositionSide | None = None
) -> PositionSide:
    """The position leg an order touches: ``position_side`` when given, else the leg a buy
    opens (long) or a reduce-only buy closes (short), and the mirror for sells.

    The one statement of this rule: the engine (hedge-mode orders without a side), the venue
    modules (Binance ``positionSide``, Bybit ``positionIdx``, OKX ``posSide``) and recovery
    of protective orders all ask here."""
    if position_side is not None:
        return position_side
    opens_long = side is OrderSide.BUY
    if reduce_only:
        opens_long = not opens_long
    return PositionSide.LONG if opens_long else PositionSide.SHORT


ALLOWED_TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    OrderStatus.CREATED: frozenset(
        {OrderStatus.SUBMITTED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
    ),
    OrderStatus.SUBMITTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}

_QUANTITY_EPSILON: Final = 1e-12
_sequence = itertools.count(1)
_next_order_number = 1  # the next value ``_sequence`` yields (kept to move it forward only)
_client_id_prefix: str | None = None  # set: sequential client ids "<prefix><n>" (persistent runs)
_client_sequence = itertools.count(1)
_next_client_number = 1
# A generator of our own, seeded from the OS: an expert or a test that seeds the global
# ``random`` for reproducibility must not make client ids repeat. Reseeded in forked
# children, so parallel optimisation workers never share a sequence.
_id_random = random.Random(os.urandom(32))
_id_bits = _id_random.getrandbits
os.register_at_fork(after_in_child=lambda: _id_random.seed(os.urandom(32)))


def _next_local_order_id() -> str:
    global _next_order_number
    value = next(_sequence)
    _next_order_number = value + 1
    return str(value)


def reserve_order_ids(next_order_number: int) -> None:
    """Make local order ids continue at ``next_order_number`` or above.

    A restarted expert recovers orders whose local ids (and the fill ids derived from
    them, ``<order id>-<n>``) came from an earlier process; new ids must not reuse them,
    or a new fill would be taken for an already stored one. The sequence never moves back.
    """
    global _sequence, _next_order_number
    if next_order_number > _next_order_number:
        _sequence = itertools.count(next_order_number)
        _next_order_number = next_order_number


def use_sequential_client_order_ids(prefix: str | None, next_number: int = 1) -> None:
    """Give new orders client ids ``<prefix><n>`` counting from ``next_number`` (None: random ids).

    Sequential ids make a persisted run reproducible and let a restarted expert continue
    its own numbering, so an id is never sent to the venue twice. ``prefix`` plus the
    number must stay within the venues' 32-36 characters of [A-Za-z0-9_-].
    """
    global _client_id_prefix, _client_sequence, _next_client_number
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", prefix):
        raise ValueError(
            f"client order id prefix must be 1-20 characters of [A-Za-z0-9_-], got {prefix!r}"
        )
    if next_number < 1:
        raise ValueError(f"next_number must be at least 1, got {next_number}")
    _client_id_prefix = prefix
    _client_sequence = itertools.count(next_number)
    _next_client_number = next_number


def new_client_order_id(prefix: str = "me") -> str:
    """A unique client order id; exchanges accept up to 32-36 characters of [A-Za-z0-9_-]."""
    global _next_client_number
    if _client_id_prefix is not None:
        number = next(_client_sequence)
        _next_client_number = number + 1
        return f"{_client_id_prefix}{number}"
    # 96 random bits, as much as a uuid4 cut to 24 hex digits, at a fraction of its cost
    # (a backtest creates one id per order).
    return f"{prefix}-{_id_bits(96):024x}"


@dataclass(slots=True)
class Trade:
    """One fill of an order (a transaction)."""

    trade_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    fee_currency: str
    timestamp: int
    liquidity: LiquidityRole = LiquidityRole.TAKER
    position_side: PositionSide | None = None
    realized_pnl: float = 0.0

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        trade_id: str,
        order_id: str,
        client_order_id: str,
        symbol: str,
        side: OrderSide,
        quantity: float,
        price: float,
        fee: float,
        fee_currency: str,
        timestamp: int,
        liquidity: LiquidityRole = LiquidityRole.TAKER,
        position_side: PositionSide | None = None,
        realized_pnl: float = 0.0,
    ) -> None:
        self.trade_id = trade_id
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.price = price
        self.fee = fee
        self.fee_currency = fee_currency
        self.timestamp = timestamp
        self.liquidity = liquidity
        self.position_side = position_side
        self.realized_pnl = realized_pnl

    @property
    def notional(self) -> float:
        return self.quantity * self.price


@dataclass(slots=True, eq=False)
class Order:
    """An order and its lifecycle. Quantities are in base units (contracts for inverse)."""

    symbol: str
    side: OrderSide
    order_type: OrderType
    quantity: float
    price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    position_side: PositionSide | None = None
    reduce_only: bool = False
    client_order_id: str = field(default_factory=new_client_order_id)
    order_id: str = ""
    status: OrderStatus = OrderStatus.CREATED
    created_at: int = 0
    updated_at: int = 0
    expire_at: int | None = None
    filled_quantity: float = 0.0
    average_price: float = 0.0
    fee: float = 0.0
    fee_currency: str = ""
    cost: float = 0.0
    triggered: bool = False
    trailing_pct: float | None = None  # trailing stops: callback distance in percent
    activation_price: float | None = None  # trailing stops: arm only once price reaches this
    oco_group: str = ""  # orders sharing a group cancel each other when one fills (brackets)
    reject_reason: str = ""
    tag: str = ""
    comment: str = ""
    # Live: kept and triggered by the engine, never sent to the venue (live_broker.py); stored,
    # so that a restart hands it back to the engine instead of looking for it at the venue.
    engine_managed: bool = False
    trades: list[Trade] = field(default_factory=list)
    status_history: list[tuple[OrderStatus, int]] = field(default_factory=list)

    # Written out (dataclass keeps an __init__ the class defines) so that mypyc compiles it:
    # the generated one runs interpreted and cost more than the rest of placing an order.
    # Same parameters and defaults as the fields above.
    def __init__(
        self,
        symbol: str,
        side: OrderSide,
        order_type: OrderType,
        quantity: float,
        price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        position_side: PositionSide | None = None,
        reduce_only: bool = False,
        client_order_id: str | None = None,
        order_id: str = "",
        status: OrderStatus = OrderStatus.CREATED,
        created_at: int = 0,
        updated_at: int = 0,
        expire_at: int | None = None,
        filled_quantity: float = 0.0,
        average_price: float = 0.0,
        fee: float = 0.0,
        fee_currency: str = "",
        cost: float = 0.0,
        triggered: bool = False,
        trailing_pct: float | None = None,
        activation_price: float | None = None,
        oco_group: str = "",
        reject_reason: str = "",
        tag: str = "",
        comment: str = "",
        engine_managed: bool = False,
        trades: list[Trade] | None = None,
        status_history: list[tuple[OrderStatus, int]] | None = None,
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.time_in_force = time_in_force
        self.position_side = position_side
        self.reduce_only = reduce_only
        self.client_order_id = new_client_order_id() if client_order_id is None else client_order_id
        self.order_id = order_id
        self.status = status
        self.created_at = created_at
        self.updated_at = updated_at
        self.expire_at = expire_at
        self.filled_quantity = filled_quantity
        self.average_price = average_price
        self.fee = fee
        self.fee_currency = fee_currency
        self.cost = cost
        self.triggered = triggered
        self.trailing_pct = trailing_pct
        self.activation_price = activation_price
        self.oco_group = oco_group
        self.reject_reason = reject_reason
        self.tag = tag
        self.comment = comment
        self.engine_managed = engine_managed
        self.trades = [] if trades is None else trades
        self.status_history = [] if status_history is None else status_history
        self.__post_init__()

    def __post_init__(self) -> None:
        if not self.order_id:
            self.order_id = _next_local_order_id()
        if self.quantity <= 0:
            raise ValueError(f"order quantity must be positive, got {self.quantity}")
        if self.order_type.has_limit_price and (self.price is None or self.price <= 0):
            raise ValueError(f"{self.order_type} order needs a positive limit price")
        if self.order_type.is_conditional and (self.stop_price is None or self.stop_price <= 0):
            raise ValueError(f"{self.order_type} order needs a positive stop price")
        if self.order_type is OrderType.TRAILING_STOP and not (
            self.trailing_pct and 0 < self.trailing_pct < 100
        ):
            raise ValueError("trailing stop order needs trailing_pct between 0 and 100")
        if self.time_in_force is TimeInForce.GTD and self.expire_at is None:
            raise ValueError("GTD order needs expire_at")
        if not self.status_history:
            self.status_history.append((self.status, self.created_at))

    # ----------------------------------------------------------------- state machine
    def can_transition(self, new_status: OrderStatus) -> bool:
        return new_status in ALLOWED_TRANSITIONS[self.status]

    def transition(self, new_status: OrderStatus, timestamp: int) -> None:
        if new_status not in ALLOWED_TRANSITIONS[self.status]:
            raise InvalidTransitionError(
                f"order {self.client_order_id} cannot go from {self.status} to {new_status}"
            )
        self.status = new_status
        self.updated_at = timestamp
        self.status_history.append((new_status, timestamp))

    def submit(self, timestamp: int) -> None:
        self.transition(OrderStatus.SUBMITTED, timestamp)

    def reject(self, reason: str, timestamp: int) -> None:
        self.reject_reason = reason
        self.transition(OrderStatus.REJECTED, timestamp)

    def cancel(self, timestamp: int) -> None:
        self.transition(OrderStatus.CANCELLED, timestamp)

    def expire(self, timestamp: int) -> None:
        self.transition(OrderStatus.EXPIRED, timestamp)

    # ----------------------------------------------------------------------- fills
    @property
    def remaining_quantity(self) -> float:
        return max(self.quantity - self.filled_quantity, 0.0)

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def apply_fill(
        self,
        quantity: float,
        price: float,
        fee: float,
        fee_currency: str,
        timestamp: int,
        *,
        liquidity: LiquidityRole = LiquidityRole.TAKER,
        trade_id: str | None = None,
    ) -> Trade:
        """Record a fill: quantities, average price, fee and cost; moves the status on."""
        if quantity <= 0:
            raise ValueError(f"fill quantity must be positive, got {quantity}")
        if not self.status.is_open:
            # Checked before anything changes: a refused fill must not leave the order's
            # quantities, average price and fee half-updated.
            raise InvalidTransitionError(
                f"order {self.client_order_id} is {self.status}; only submitted or partially "
                "filled orders can be filled"
            )
        tolerance = max(_QUANTITY_EPSILON, self.quantity * 1e-9)
        filled_before = self.filled_quantity
        if quantity > self.quantity - filled_before + tolerance:
            raise ValueError(
                f"fill of {quantity} exceeds the remaining {self.remaining_quantity} "
                f"of order {self.client_order_id}"
            )
        filled = self.filled_quantity = filled_before + quantity
        self.average_price = (self.average_price * filled_before + price * quantity) / filled
        self.fee += fee
        self.fee_currency = fee_currency
        self.cost += quantity * price
        done = self.quantity - filled <= tolerance
        if done:
            self.filled_quantity = self.quantity
        self.transition(OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, timestamp)
        trade = Trade(
            trade_id=trade_id or f"{self.order_id}-{len(self.trades) + 1}",
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            quantity=quantity,
            price=price,
            fee=fee,
            fee_currency=fee_currency,
            timestamp=timestamp,
            liquidity=liquidity,
            position_side=self.position_side,
        )
        self.trades.append(trade)
        return trade
