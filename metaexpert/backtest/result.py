"""What a backtest produces: the contract between the engine, metrics, reports and storage.

``ClosedTrade`` lives in ``metaexpert.core.round_trip`` (the engine produces it in every
mode) and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metaexpert.core.order import Order, Trade
from metaexpert.core.round_trip import ClosedTrade

__all__ = ["BacktestResult", "ClosedTrade", "PriceSeries"]


@dataclass(slots=True)
class PriceSeries:
    """The base-timeframe candles of one symbol over the backtest, for charts."""

    timestamps: np.ndarray  # int64 epoch ms, bar open time
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


@dataclass(slots=True)
class BacktestResult:
    """Everything a backtest run produced.

    ``equity_timestamps``/``equity`` hold one point per base bar: the account equity
    after that bar closed. ``exposure`` is True where any position was open at that point.
    ``metrics`` is filled by ``metaexpert.backtest.metrics.compute_metrics``.
    """

    expert_name: str
    symbols: list[str]
    timeframe: str
    start_ms: int
    end_ms: int
    initial_capital: float
    currency: str
    final_equity: float
    equity_timestamps: np.ndarray
    equity: np.ndarray
    exposure: np.ndarray
    closed_trades: list[ClosedTrade] = field(default_factory=list)
    fills: list[Trade] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fees_paid: float = 0.0
    prices: dict[str, PriceSeries] = field(default_factory=dict)
    risk_counts: dict[str, int] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    symbol_metrics: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # per symbol, see metrics.py
    bars_processed: int = 0
    wall_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    funding: list[Any] = field(
        default_factory=list
    )  # perpetuals: FundingPayment per settled leg, in time order
    #: handler errors of the run (every one counted; ``errors`` lists the distinct ones)
    error_count: int = 0
    #: the run was stopped by an error (``stop_on_error`` or ``max_consecutive_errors``)
    stopped_by_error: bool = False

    @property
    def had_errors(self) -> bool:
        """True when a handler failed or an error stopped the run: not a normal result."""
        return self.error_count > 0 or self.stopped_by_error
