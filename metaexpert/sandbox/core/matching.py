"""Price-path rules of the matching core: when a trigger fires, at what price an order fills.

Why candles drive matching: the replay clock is the only price source every client sees the same
way (klines, tickers, mark price), so an order fills exactly when the replayed bar crosses it:
limit orders at their price (or the bar open when the bar gaps through), stops and take-profits
at their trigger (or the open on a gap), market orders at the current price plus half the spread.
Trailing stops follow the best price since placement (or since the activation price was reached)
and trigger once the price falls back by ``callback_rate`` percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from metaexpert.sandbox.core.model import FuturesPosition, OrderKind, SandboxOrder


@dataclass(frozen=True, slots=True)
class BarPrices:
    """The price path one replay step offers to resting orders."""

    open: float
    high: float
    low: float
    close: float
    time: int


def is_multiple(value: Decimal, step: float) -> bool:
    return (value / Decimal(repr(step))) % 1 == 0


def is_closing_leg(side: str, position_side: str) -> bool:
    return (position_side == "LONG" and side == "SELL") or (
        position_side == "SHORT" and side == "BUY"
    )


def split_quantity(
    side: str, position_side: str, quantity: float, position: FuturesPosition
) -> tuple[float, float]:
    """How much of an order opens exposure and how much closes the existing position."""
    if position_side in ("LONG", "SHORT"):
        if is_closing_leg(side, position_side):
            closing = min(quantity, abs(position.amount))
            return quantity - closing, closing
        return quantity, 0.0
    held = position.amount
    if held == 0.0 or (held > 0) == (side == "BUY"):
        return quantity, 0.0
    closing = min(quantity, abs(held))
    return quantity - closing, closing


def trailing_trigger(order: SandboxOrder) -> float:
    """The trigger price a trailing stop has reached so far (0 before it is activated)."""
    if not order.extreme_price:
        return 0.0
    distance = order.extreme_price * order.callback_rate / 100.0
    return order.extreme_price + distance if order.side == "BUY" else order.extreme_price - distance


def update_trailing(order: SandboxOrder, bar: BarPrices) -> bool:
    """Move a trailing stop's reference price with the bar (a sell trails the high, a buy the
    low); True when the bar's close is already beyond the moved trigger.

    The order within a bar is unknown, so the trigger is first checked at its old level (the
    caller does) and only the close is checked against the level the bar's extreme moved it to.
    """
    if order.kind is not OrderKind.TRAILING_STOP_MARKET:
        return False
    best = bar.low if order.side == "BUY" else bar.high
    if not order.extreme_price:
        activation = order.activation_price
        if activation and (best > activation if order.side == "BUY" else best < activation):
            return False
        order.extreme_price = best if not activation else activation
    if order.side == "BUY":
        order.extreme_price = min(order.extreme_price, best)
    else:
        order.extreme_price = max(order.extreme_price, best)
    order.stop_price = trailing_trigger(order)
    return bar.close >= order.stop_price if order.side == "BUY" else bar.close <= order.stop_price


def would_trigger(order: SandboxOrder, price: float) -> bool:
    """True when the trigger is already crossed at ``price`` (venues reject such orders)."""
    if order.kind is OrderKind.TRAILING_STOP_MARKET:
        return False
    return _beyond_trigger(order, price)


def _beyond_trigger(order: SandboxOrder, price: float) -> bool:
    buy = order.side == "BUY"
    if order.is_stop:
        return price >= order.stop_price if buy else price <= order.stop_price
    return price <= order.stop_price if buy else price >= order.stop_price


def crossed_trigger(order: SandboxOrder, bar: BarPrices) -> bool:
    if order.kind is OrderKind.TRAILING_STOP_MARKET and not order.stop_price:
        return False
    buy = order.side == "BUY"
    if order.is_stop:
        return bar.high >= order.stop_price if buy else bar.low <= order.stop_price
    return bar.low <= order.stop_price if buy else bar.high >= order.stop_price


def trigger_fill_price(order: SandboxOrder, bar: BarPrices) -> float:
    """A triggered market order fills at its trigger, or at the open when the bar gapped past it."""
    if not order.stop_price:
        return bar.open
    return bar.open if _beyond_trigger(order, bar.open) else order.stop_price
