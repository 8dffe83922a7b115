"""Round trips: a position (or part of one) opened and later closed."""

from __future__ import annotations

from dataclasses import dataclass

from metaexpert.core.enums import PositionSide


@dataclass(slots=True)
class ClosedTrade:
    """A round trip: a position (or part of one) opened and closed.

    ``pnl`` is net of the entry and exit fees attributed to this quantity and includes
    its share of the perpetual funding booked while it was held (``funding``: > 0
    received, < 0 paid), in the settlement currency; ``return_pct`` is ``pnl`` over the
    entry notional.
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
    funding: float = 0.0

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        symbol: str,
        side: PositionSide,
        quantity: float,
        entry_time: int,
        exit_time: int,
        entry_price: float,
        exit_price: float,
        pnl: float,
        fees: float,
        return_pct: float,
        bars_held: int = 0,
        exit_reason: str = "",
        funding: float = 0.0,
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.entry_time = entry_time
        self.exit_time = exit_time
        self.entry_price = entry_price
        self.exit_price = exit_price
        self.pnl = pnl
        self.fees = fees
        self.return_pct = return_pct
        self.bars_held = bars_held
        self.exit_reason = exit_reason
        self.funding = funding
