"""The trading account: balance, equity and margin in one settlement currency."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Account:
    """Balances in the settlement currency (USDT for spot and linear, the coin for inverse).

    ``balance`` is the wallet balance: cash for spot, deposits plus realised PnL minus
    fees for futures. ``equity`` adds the value of what is held (spot) or the unrealised
    PnL (futures).
    """

    currency: str
    balance: float
    equity: float = 0.0
    used_margin: float = 0.0
    unrealized_pnl: float = 0.0
    fees_paid: float = 0.0
    timestamp: int = 0

    def __post_init__(self) -> None:
        if not self.equity:
            self.equity = self.balance

    @property
    def free_margin(self) -> float:
        return self.equity - self.used_margin

    @property
    def margin_level(self) -> float | None:
        """Equity over used margin, in percent (None without margin in use)."""
        if self.used_margin <= 0:
            return None
        return self.equity / self.used_margin * 100.0
