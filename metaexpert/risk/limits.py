"""Exposure limits: leverage, number of positions, and position size.

Counting includes resting entry orders, not only filled positions: otherwise several
limit orders accepted while flat could all fill and break the limit together.
In hedge mode the long and short legs of a symbol count as two positions.
"""

from __future__ import annotations

import math

from metaexpert.core.enums import PositionMode, PositionSide
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import MarketSpec
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk.base import (
    RiskRule,
    Verdict,
    execution_price,
    intent_leg,
    leg_entry_value,
    resting_entry_legs,
    unit_notional_quote,
)
from metaexpert.risk.config import RiskConfig
from metaexpert.risk.registry import register_rule
from metaexpert.risk.sizing import finalize


def effective_leverage(intent: OrderIntent, config: RiskConfig) -> float:
    """The intent's leverage when the engine set one (anything but the 1.0 default), else the config's."""
    return intent.leverage if intent.leverage != 1.0 else config.leverage


def validate_leverage(leverage: float, market: MarketSpec, policy: str) -> float:
    """``leverage`` if the market allows it; otherwise raise (policy "error") or clamp (policy "clamp")."""
    if not math.isfinite(leverage) or leverage < 1.0:
        raise ConfigurationError(f"leverage must be a finite number >= 1, got {leverage!r}")
    limit = market.max_leverage if market.is_derivative else 1.0
    if leverage <= limit:
        return float(leverage)
    if policy == "clamp":
        return float(limit)
    if not market.is_derivative:
        raise ConfigurationError(
            f"leverage {leverage:g} requested on spot market {market.symbol}: spot trades without leverage "
            "(use leverage=1 or leverage_policy='clamp')"
        )
    raise ConfigurationError(
        f"leverage {leverage:g} exceeds the maximum {limit:g} of {market.symbol} "
        "(lower it or set leverage_policy='clamp')"
    )


@register_rule
class LeverageLimit(RiskRule):
    """Blocks entries whose leverage the market does not allow (policy "error")."""

    name = "leverage"
    priority = 10

    def __init__(self, config: RiskConfig) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: RiskConfig) -> LeverageLimit:
        return cls(config)

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        leverage = effective_leverage(intent, self.config)
        if leverage == 1.0:
            return None
        try:
            validate_leverage(leverage, view.market(intent.symbol), self.config.leverage_policy)
        except ConfigurationError as error:
            return Verdict.block(str(error), leverage=leverage)
        return None


def _open_legs(view: PortfolioView, symbol: str | None) -> set[tuple[str, PositionSide]]:
    legs = {
        (position.symbol, position.side) for position in view.positions(symbol) if position.is_open
    }
    legs.update(resting_entry_legs(view, symbol))
    return legs


def _adds_leg(
    intent: OrderIntent, view: PortfolioView, legs: set[tuple[str, PositionSide]]
) -> bool:
    leg = intent_leg(intent)
    if (intent.symbol, leg) in legs:
        return False
    if view.position_mode is PositionMode.ONEWAY:
        opposite = PositionSide.SHORT if leg is PositionSide.LONG else PositionSide.LONG
        if (intent.symbol, opposite) in legs:
            return False  # nets (and at most flips) the one position of the symbol
    return True


@register_rule
class MaxOpenPositions(RiskRule):
    """At most ``max_open_positions`` positions (legs) across all symbols, resting entries included."""

    name = "max_open_positions"
    priority = 40

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @classmethod
    def from_config(cls, config: RiskConfig) -> MaxOpenPositions | None:
        return cls(config.max_open_positions) if config.max_open_positions is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        legs = _open_legs(view, None)
        if len(legs) >= self.limit and _adds_leg(intent, view, legs):
            return Verdict.block(
                f"{len(legs)} positions open or pending, max_open_positions is {self.limit}",
                open_positions=len(legs),
                limit=self.limit,
            )
        return None


@register_rule
class MaxPositionsPerSymbol(RiskRule):
    """At most ``max_positions_per_symbol`` legs per symbol (hedge mode: long and short separately)."""

    name = "max_positions_per_symbol"
    priority = 41

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @classmethod
    def from_config(cls, config: RiskConfig) -> MaxPositionsPerSymbol | None:
        limit = config.max_positions_per_symbol
        return cls(limit) if limit is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        legs = _open_legs(view, intent.symbol)
        if len(legs) >= self.limit and _adds_leg(intent, view, legs):
            return Verdict.block(
                f"{len(legs)} positions open or pending on {intent.symbol}, "
                f"max_positions_per_symbol is {self.limit}",
                open_positions=len(legs),
                limit=self.limit,
            )
        return None


@register_rule
class MaxPositionSize(RiskRule):
    """Caps a leg's value (held + resting entries + this order) at ``max_position_size_quote``.

    An order that would go over is cut down to the remaining room (a "resized" decision);
    when the room is below the market minimum it is blocked.
    """

    name = "max_position_size"
    priority = 50

    def __init__(self, cap: float) -> None:
        self.cap = cap

    @classmethod
    def from_config(cls, config: RiskConfig) -> MaxPositionSize | None:
        cap = config.max_position_size_quote
        return cls(cap) if cap is not None else None

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        market = view.market(intent.symbol)
        price = execution_price(intent)
        unit_value = unit_notional_quote(market, price)
        committed = leg_entry_value(view, intent.symbol, intent_leg(intent), market, price)
        room = (self.cap - committed) / unit_value
        if quantity <= room * (1 + 1e-12):
            return None
        details = {"cap": self.cap, "committed": committed, "requested": quantity}
        if room <= 0:
            return Verdict.block(
                f"{intent.symbol} {intent_leg(intent).value} already commits {committed:.10g} "
                f"of max_position_size_quote {self.cap:g}",
                **details,
            )
        fitted = finalize(room, market, price)
        if fitted.quantity <= 0:
            return Verdict.block(
                f"room left under max_position_size_quote {self.cap:g}: {fitted.reason}", **details
            )
        return Verdict.resize(
            fitted.quantity,
            f"cut from {quantity:.10g} to {fitted.quantity:.10g} by max_position_size_quote {self.cap:g}",
            **details,
        )
