"""What the matching core tells the venues after each state change (their user-data streams).

Why neutral events: the core must not know that Binance says ``executionReport`` and Bybit
``order``; it says "this order changed, with this fill" and each venue's ``streams.py`` renders
the event in its own shape for the connections of the account it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metaexpert.sandbox.core.model import Fill, FuturesAccount, SandboxOrder, SpotAccount


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A plain order changed; ``execution`` is NEW, TRADE, CANCELED, EXPIRED or AMENDMENT."""

    order: SandboxOrder
    execution: str
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class AlgoEvent:
    """A conditional (algo) order changed: placed, triggered, cancelled or expired."""

    order: SandboxOrder


@dataclass(frozen=True, slots=True)
class BalanceEvent:
    """Spot balances of an account changed."""

    market: str
    account: SpotAccount
    time: int


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """A derivative account changed (wallet and positions); ``reason`` ORDER or FUNDING_FEE."""

    market: str
    account: FuturesAccount
    reason: str
    time: int


Event = OrderEvent | AlgoEvent | BalanceEvent | AccountEvent
Listener = Callable[[Event], None]
