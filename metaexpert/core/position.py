"""Positions, their PnL and margin arithmetic, and hedge / one-way netting.

Quantities are in base units for spot and linear contracts, and in contracts of
``contract_size`` USD for inverse contracts. Linear PnL is in the quote currency;
inverse PnL is in the base coin (the settlement currency).

Isolated liquidation price (maintenance margin rate ``m``, leverage ``L``, fees ignored):
    linear  long  p = entry * (1 - 1/L) / (1 - m)
    linear  short p = entry * (1 + 1/L) / (1 + m)
    inverse long  p = entry * (1 + m) / (1 + 1/L)
    inverse short p = entry * (1 - m) / (1 - 1/L)      (no liquidation at 1x)
Each solves  margin + unrealised_pnl(p) = maintenance_margin(p).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from metaexpert.core.enums import MarginMode, OrderSide, PositionMode, PositionSide

_EPSILON: Final = 1e-12


@dataclass(slots=True, eq=False)
class Position:
    symbol: str
    side: PositionSide
    quantity: float = 0.0
    entry_price: float = 0.0
    leverage: float = 1.0
    margin_mode: MarginMode = MarginMode.ISOLATED
    inverse: bool = False
    contract_size: float = 1.0
    maintenance_margin_rate: float = 0.005
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = (
        0.0  # funding booked on what is still held (> 0 received); closes take their share
    )
    opened_at: int = 0
    updated_at: int = 0
    mark_price: float = 0.0
    extra_margin: float = 0.0  # margin added to an isolated position beyond the initial
    stop_loss: float | None = None
    take_profit: float | None = None

    @property
    def is_open(self) -> bool:
        return self.quantity > _EPSILON

    @property
    def signed_quantity(self) -> float:
        return self.quantity * self.side.sign

    # ------------------------------------------------------------------ valuation
    def pnl_at(self, price: float) -> float:
        """Unrealised PnL if the position were closed at ``price`` (settlement currency)."""
        if self.quantity <= 0 or price <= 0:
            return 0.0
        if self.inverse:
            per_unit = self.contract_size * (1.0 / self.entry_price - 1.0 / price)
        else:
            per_unit = self.contract_size * (price - self.entry_price)
        return per_unit * self.quantity * self.side.sign

    @property
    def unrealized_pnl(self) -> float:
        return self.pnl_at(self.mark_price)

    def notional(self, price: float | None = None) -> float:
        """Position value in the settlement currency at ``price`` (mark price by default)."""
        price = self.mark_price if price is None else price
        if self.inverse:
            return self.quantity * self.contract_size / price if price > 0 else 0.0
        return self.quantity * self.contract_size * price

    @property
    def initial_margin(self) -> float:
        """Margin locked when the position was opened (settlement currency)."""
        if self.quantity <= 0:
            return 0.0
        return self.notional(self.entry_price) / self.leverage + self.extra_margin

    def maintenance_margin(self, price: float | None = None) -> float:
        return self.notional(price) * self.maintenance_margin_rate

    @property
    def liquidation_price(self) -> float | None:
        """Isolated-margin liquidation price, or None where the position cannot be liquidated."""
        if (
            self.quantity <= 0
            or self.leverage <= 1.0
            and self.side is PositionSide.LONG
            and not self.inverse
        ):
            return None
        inverse_leverage = 1.0 / self.leverage
        rate = self.maintenance_margin_rate
        entry = self.entry_price
        if self.extra_margin:
            inverse_leverage = self.initial_margin / self.notional(entry)
        if self.inverse:
            if self.side is PositionSide.LONG:
                return entry * (1 + rate) / (1 + inverse_leverage)
            if inverse_leverage >= 1.0:
                return None
            return entry * (1 - rate) / (1 - inverse_leverage)
        if self.side is PositionSide.LONG:
            return max(entry * (1 - inverse_leverage) / (1 - rate), 0.0)
        return entry * (1 + inverse_leverage) / (1 + rate)

    # ------------------------------------------------------------------ changes
    def increase(self, quantity: float, price: float, timestamp: int) -> None:
        total = self.quantity + quantity
        if self.inverse:
            # Inverse contracts average entry harmonically (value is quantity / price).
            self.entry_price = (
                total / (self.quantity / self.entry_price + quantity / price)
                if self.quantity > 0
                else price
            )
        else:
            self.entry_price = (self.entry_price * self.quantity + price * quantity) / total
        if self.quantity <= _EPSILON:
            self.opened_at = timestamp
        self.quantity = total
        self.updated_at = timestamp

    def reduce(self, quantity: float, price: float, timestamp: int) -> float:
        """Close ``quantity`` at ``price``; returns the realised PnL of that part."""
        if quantity > self.quantity + max(_EPSILON, self.quantity * 1e-9):
            raise ValueError(
                f"cannot reduce {self.side} {self.symbol} by {quantity}: only {self.quantity} open"
            )
        quantity = min(quantity, self.quantity)
        if self.inverse:
            per_unit = self.contract_size * (1.0 / self.entry_price - 1.0 / price)
        else:
            per_unit = self.contract_size * (price - self.entry_price)
        pnl = per_unit * quantity * self.side.sign
        if self.extra_margin and self.quantity > 0:
            self.extra_margin *= 1 - quantity / self.quantity
        self.quantity -= quantity
        if self.quantity <= max(_EPSILON, quantity * 1e-9):
            self.quantity = 0.0
            self.extra_margin = 0.0
        self.realized_pnl += pnl
        self.updated_at = timestamp
        return pnl


@dataclass(slots=True)
class PositionChange:
    """What one fill did to the positions of a symbol."""

    position: Position
    opened: float = 0.0
    closed: float = 0.0
    realized_pnl: float = 0.0
    closed_entry_price: float = 0.0

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        position: Position,
        opened: float = 0.0,
        closed: float = 0.0,
        realized_pnl: float = 0.0,
        closed_entry_price: float = 0.0,
    ) -> None:
        self.position = position
        self.opened = opened
        self.closed = closed
        self.realized_pnl = realized_pnl
        self.closed_entry_price = closed_entry_price


@dataclass(slots=True)
class PositionLedger:
    """All positions of an account, netted by hedge or one-way rules.

    In hedge mode each symbol has an independent long and short leg and a fill names
    its leg. In one-way mode a symbol has one net position: an opposite fill reduces
    it and the remainder, if any, opens the other side.
    """

    position_mode: PositionMode = PositionMode.ONEWAY
    positions: dict[tuple[str, PositionSide], Position] = field(default_factory=dict)
    #: Counts the fills applied, so that a replay loop re-reads the positions only after one.
    revision: int = 0

    def get(self, symbol: str, side: PositionSide) -> Position | None:
        position = self.positions.get((symbol, side))
        return position if position is not None and position.is_open else None

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        if symbol is not None:
            # Two lookups instead of a walk over every leg: ``ctx.position()`` asks this on every
            # bar, and a portfolio of 126 symbols has 252 legs.
            found: list[Position] = []
            long = self.positions.get((symbol, PositionSide.LONG))
            if long is not None and long.quantity > _EPSILON:
                found.append(long)
            short = self.positions.get((symbol, PositionSide.SHORT))
            if short is not None and short.quantity > _EPSILON:
                if found:  # both hedge legs: in the order they were first opened
                    return [
                        position
                        for position in self.positions.values()
                        if position.symbol == symbol and position.quantity > _EPSILON
                    ]
                found.append(short)
            return found
        return [position for position in self.positions.values() if position.quantity > _EPSILON]

    def net_quantity(self, symbol: str) -> float:
        long = self.positions.get((symbol, PositionSide.LONG))
        short = self.positions.get((symbol, PositionSide.SHORT))
        held = long.quantity if long is not None and long.quantity > _EPSILON else 0.0
        if short is not None and short.quantity > _EPSILON:
            held -= short.quantity
        return held

    def closable_quantity(
        self, symbol: str, side: OrderSide, position_side: PositionSide | None
    ) -> float:
        """How much an order of ``side`` can reduce (reduce-only checks)."""
        if self.position_mode is PositionMode.HEDGE:
            if position_side is None or side is not position_side.closing_side:
                return 0.0
            position = self.get(symbol, position_side)
            return position.quantity if position else 0.0
        # One-way: the leg an order of ``side`` reduces (a sell reduces the long leg).
        leg = self.positions.get(
            (symbol, PositionSide.LONG if side is OrderSide.SELL else PositionSide.SHORT)
        )
        if leg is None or leg.quantity <= _EPSILON:
            return 0.0
        opposite = self.positions.get(
            (symbol, PositionSide.SHORT if side is OrderSide.SELL else PositionSide.LONG)
        )
        if opposite is not None and opposite.quantity > _EPSILON:  # both legs open: net them
            net = leg.quantity - opposite.quantity
            return net if net > 0 else 0.0
        return leg.quantity

    def _leg(self, symbol: str, side: PositionSide, template: Position) -> Position:
        position = self.positions.get((symbol, side))
        if position is None:
            position = Position(
                symbol=symbol,
                side=side,
                leverage=template.leverage,
                margin_mode=template.margin_mode,
                inverse=template.inverse,
                contract_size=template.contract_size,
                maintenance_margin_rate=template.maintenance_margin_rate,
            )
            self.positions[(symbol, side)] = position
        elif not position.is_open:
            position.leverage = template.leverage
            position.margin_mode = template.margin_mode
        return position

    def apply_fill(
        self,
        symbol: str,
        side: OrderSide,
        quantity: float,
        price: float,
        timestamp: int,
        *,
        position_side: PositionSide | None,
        template: Position,
    ) -> list[PositionChange]:
        """Apply a fill; ``template`` carries leverage, margin mode and contract facts."""
        self.revision += 1
        changes: list[PositionChange] = []
        if self.position_mode is PositionMode.HEDGE:
            if position_side is None:
                raise ValueError(f"hedge mode needs a position side for a {side} fill on {symbol}")
            leg = self._leg(symbol, position_side, template)
            if side is position_side.opening_side:
                leg.increase(quantity, price, timestamp)
                changes.append(PositionChange(leg, opened=quantity))
            else:
                entry = leg.entry_price
                pnl = leg.reduce(quantity, price, timestamp)
                changes.append(
                    PositionChange(leg, closed=quantity, realized_pnl=pnl, closed_entry_price=entry)
                )
            return changes

        remaining = quantity
        opposite = PositionSide.SHORT if side is OrderSide.BUY else PositionSide.LONG
        existing = self.get(symbol, opposite)
        if existing is not None:
            closing = min(remaining, existing.quantity)
            entry = existing.entry_price
            pnl = existing.reduce(closing, price, timestamp)
            changes.append(
                PositionChange(existing, closed=closing, realized_pnl=pnl, closed_entry_price=entry)
            )
            remaining -= closing
        if remaining > max(_EPSILON, quantity * 1e-9):
            same = PositionSide.LONG if side is OrderSide.BUY else PositionSide.SHORT
            leg = self._leg(symbol, same, template)
            leg.increase(remaining, price, timestamp)
            changes.append(PositionChange(leg, opened=remaining))
        return changes


def liquidation_price_cross(
    position: Position, wallet_balance: float, other_unrealized: float, other_maintenance: float
) -> float | None:
    """Cross-margin liquidation price of one position, the others of its wallet held constant.

    Solves ``free + pnl(p) = mm(p)`` with ``free = wallet + other_upnl - other_mm``, all in the
    settlement currency. With ``Q`` = contracts x contract size and ``s`` = +1 long / -1 short:
        linear   free + s*Q*(p - entry) = m*Q*p       ->  p = (s*Q*entry - free) / (Q*(s - m))
        inverse  free + s*Q*(1/entry - 1/p) = m*Q/p   ->  p = Q*(s + m) / (free + s*Q/entry)
    With ``free`` equal to the position's own initial margin both reduce to the isolated formulas
    of the module docstring. None where no price liquidates (the wallet covers every loss).
    """
    if position.quantity <= 0:
        return None
    q = position.quantity * position.contract_size
    s = position.side.sign
    m = position.maintenance_margin_rate
    free = wallet_balance + other_unrealized - other_maintenance
    if position.inverse:
        denominator = free + s * q / position.entry_price
        if abs(denominator) < _EPSILON:
            return None
        # a short whose free coin covers the whole contract value gives a negative price: None
        price = q * (s + m) / denominator
    else:
        denominator = q * (s - m)
        if abs(denominator) < _EPSILON:
            return None
        price = (s * q * position.entry_price - free) / denominator
    return price if price > 0 and math.isfinite(price) else None
