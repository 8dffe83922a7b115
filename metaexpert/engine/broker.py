"""The broker interface: where orders go. Simulated (backtest, paper) or live (exchange).

A broker validates, routes and matches orders; it never books fills itself. It reports
status changes and executions to its ``BrokerListener`` (the engine), which books them
into the portfolio and fires the expert's events. That single booking path is what keeps
fee, position and margin accounting identical in every mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from metaexpert.core.enums import LiquidityRole
from metaexpert.core.order import Order
from metaexpert.core.position import Position


class BrokerListener(Protocol):
    def on_order_update(self, order: Order, reason: str = "") -> None:
        """``order`` changed status (submitted, cancelled, rejected, expired, triggered)."""

    def on_execution(
        self,
        order: Order,
        quantity: float,
        price: float,
        timestamp: int,
        liquidity: LiquidityRole,
        *,
        fee: float | None = None,
        fee_currency: str | None = None,
        trade_id: str | None = None,
        fee_in_base: float = 0.0,
    ) -> None:
        """``order`` was (partly) executed; ``fee`` None lets the engine apply the market's fee.
        ``fee_in_base``: the coin a spot buy's venue kept as its fee (``fee`` is its quote value)."""

    def on_liquidation(self, position: Position, price: float, timestamp: int) -> None:
        """The venue liquidated ``position`` at ``price``."""


class Broker(ABC):
    """Order routing for one expert."""

    @abstractmethod
    def submit(self, order: Order) -> None:
        """Take a CREATED order: move it to SUBMITTED (and report it) or reject it."""

    @abstractmethod
    def cancel(self, order: Order) -> None:
        """Cancel an open order (reported through the listener)."""

    @abstractmethod
    def modify(
        self,
        order: Order,
        *,
        quantity: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        """Change an open order's quantity or prices."""

    @property
    def has_work(self) -> bool:
        """True while the broker holds open orders it must match."""
        return False
