"""Round trips: a position (or part of one) opened and later closed."""

from __future__ import annotations

from dataclasses import dataclass

from metaexpert.core.enums import PositionSide


@dataclass(slots=True)
class ClosedTrade:
    """A round trip: a position (or part of one) opened and closed.

    ``pnl`` is net of the entry and exit fees attributed to this quantity, in the
    settlement currency; ``return_pct`` is ``pnl`` over the entry notional.
    """

    symbol: str
    side: PositionSide
    quantity: float
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    return_pct: float
    bars_held: int = 0
    exit_reason: str = ""
