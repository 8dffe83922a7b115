"""Events the engine dispatches to handlers, persistence and observers.

They are plain records: the same in backtest, paper and live mode, and the form in
which the audit trail stores what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metaexpert.core.account import Account
from metaexpert.core.enums import RiskEventAction
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position


@dataclass(slots=True)
class OrderEvent:
    """An order changed status (submitted, filled, cancelled, rejected, ...)."""

    order: Order
    timestamp: int
    reason: str = ""


@dataclass(slots=True)
class TradeEvent:
    """A fill happened (MetaTrader's 'transaction')."""

    trade: Trade
    timestamp: int


@dataclass(slots=True)
class PositionEvent:
    """A position was opened, changed, closed or liquidated."""

    position: Position
    timestamp: int
    action: str  # opened | increased | reduced | closed | liquidated | flipped
    realized_pnl: float = 0.0
    quantity: float = 0.0
    price: float = 0.0


@dataclass(slots=True)
class AccountEvent:
    account: Account
    timestamp: int


@dataclass(slots=True)
class RiskEvent:
    """A risk or compliance rule took a decision (blocked, resized, forced exit, halt, resume)."""

    rule: str
    action: RiskEventAction
    timestamp: int
    symbol: str | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.action = RiskEventAction(
            self.action
        )  # a stored value ("blocked") reads back as the enum


@dataclass(slots=True)
class ErrorEvent:
    """An exception reached the engine (from a handler, the broker or a feature)."""

    error: BaseException
    timestamp: int
    source: str = ""
    handler: str = ""
