"""Trend filter: trade with the moving average, never against it."""

from __future__ import annotations

import math

from metaexpert.core.enums import PositionSide
from metaexpert.core.intent import OrderIntent
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk.base import RiskRule, Verdict, intent_leg
from metaexpert.risk.config import RiskConfig, TrendFilterConfig
from metaexpert.risk.registry import register_rule


@register_rule
class TrendFilter(RiskRule):
    """Long entries only while the price is above the EMA/SMA, short entries only below it.

    The price is the intent's reference price; the average is the cached causal value at
    the last closed bar. Entries are blocked while the average is not known yet.
    """

    name = "trend_filter"
    priority = 71

    def __init__(self, settings: TrendFilterConfig) -> None:
        self.settings = settings
        self.label = f"{settings.indicator.upper()}({settings.period})"
        self.use_ema = settings.indicator == "ema"

    @classmethod
    def from_config(cls, config: RiskConfig) -> TrendFilter | None:
        return cls(config.trend_filter) if config.trend_filter is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        settings = self.settings
        leg = intent_leg(intent)
        label = self.label
        if leg is PositionSide.LONG and not settings.allow_long:
            return Verdict.block("trend_filter allows no long entries")
        if leg is PositionSide.SHORT and not settings.allow_short:
            return Verdict.block("trend_filter allows no short entries")
        series = view.bars(intent.symbol, settings.timeframe)
        if len(series) == 0:
            return Verdict.block(f"{label} of {intent.symbol} not known yet (no closed bar)")
        average = series.ema(settings.period) if self.use_ema else series.sma(settings.period)
        if math.isnan(average):
            return Verdict.block(
                f"{label} of {intent.symbol} not known yet (needs {settings.period} closed bars)"
            )
        price = intent.reference_price
        if leg is PositionSide.LONG and price <= average:
            return Verdict.block(
                f"long entry at {price:.10g} is not above {label} {average:.10g}", average=average
            )
        if leg is PositionSide.SHORT and price >= average:
            return Verdict.block(
                f"short entry at {price:.10g} is not below {label} {average:.10g}", average=average
            )
        return None
