"""Market-condition filters: spread, expected slippage and traded volume.

Spread and slippage need an order book. Where the engine has none (a candle-only
backtest), ``view.order_book`` returns None and these two filters have nothing to judge,
so they let the entry pass; the engine's simulated book, when it has one, is judged
exactly like a live book.
"""

from __future__ import annotations

from metaexpert.core.enums import OrderSide
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import OrderBook
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk.base import RiskRule, Verdict, is_market_like
from metaexpert.risk.config import RiskConfig
from metaexpert.risk.registry import register_rule


@register_rule
class MaxSpreadFilter(RiskRule):
    """Blocks entries while the bid/ask spread, in percent of mid, exceeds ``max_spread_pct``."""

    name = "max_spread"
    priority = 60

    def __init__(self, limit_pct: float) -> None:
        self.limit_pct = limit_pct

    @classmethod
    def from_config(cls, config: RiskConfig) -> MaxSpreadFilter | None:
        return cls(config.max_spread_pct) if config.max_spread_pct is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        book = view.order_book(intent.symbol)
        if book is None:
            return None
        spread = book.spread_pct
        if spread is None:
            return Verdict.block(f"order book of {intent.symbol} has an empty side: spread unknown")
        if spread > self.limit_pct:
            return Verdict.block(
                f"spread {spread:.4f}% on {intent.symbol} exceeds max_spread_pct {self.limit_pct:g}",
                spread_pct=spread,
            )
        return None


def average_fill_price(book: OrderBook, side: OrderSide, quantity: float) -> float | None:
    """Volume-weighted price of taking ``quantity`` from the book, or None if the book is too thin."""
    levels = book.asks if side is OrderSide.BUY else book.bids
    remaining = quantity
    cost = 0.0
    for price, size in levels:
        take = min(remaining, size)
        cost += take * price
        remaining -= take
        if remaining <= quantity * 1e-12:
            return cost / quantity
    return None


@register_rule
class MaxSlippageFilter(RiskRule):
    """Blocks market-like entries whose expected fill (walking the book) is worse than
    the reference price by more than ``max_slippage_pct``."""

    name = "max_slippage"
    priority = 61

    def __init__(self, limit_pct: float) -> None:
        self.limit_pct = limit_pct

    @classmethod
    def from_config(cls, config: RiskConfig) -> MaxSlippageFilter | None:
        return cls(config.max_slippage_pct) if config.max_slippage_pct is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        if not is_market_like(intent.order_type):
            return None
        book = view.order_book(intent.symbol)
        if book is None:
            return None
        fill = average_fill_price(book, intent.side, quantity)
        if fill is None:
            return Verdict.block(
                f"order book of {intent.symbol} is too thin to fill {quantity:.10g}"
            )
        reference = intent.reference_price
        slippage = (fill - reference) / reference * 100.0 * intent.side.sign
        if slippage > self.limit_pct:
            return Verdict.block(
                f"expected slippage {slippage:.4f}% on {intent.symbol} exceeds max_slippage_pct {self.limit_pct:g}",
                slippage_pct=slippage,
                expected_price=fill,
            )
        return None


@register_rule
class MinVolumeFilter(RiskRule):
    """Blocks entries when the last closed bar traded less than ``min_volume`` (base units)."""

    name = "min_volume"
    priority = 62

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    @classmethod
    def from_config(cls, config: RiskConfig) -> MinVolumeFilter | None:
        return cls(config.min_volume) if config.min_volume is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        series = view.bars(intent.symbol)
        if len(series) == 0:
            return Verdict.block(f"no closed bar of {intent.symbol} yet: volume unknown")
        volume = float(series.volume[-1])
        if volume < self.minimum:
            return Verdict.block(
                f"last bar volume {volume:.10g} of {intent.symbol} is below min_volume {self.minimum:g}",
                volume=volume,
            )
        return None
