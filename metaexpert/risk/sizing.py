"""Position sizing: how much to buy or sell when a handler leaves the quantity to us.

All arithmetic goes through ``MarketSpec.notional`` so that spot, linear and inverse
contracts size the same way: a quote-currency budget divided by the quote value of one
unit (a coin, or one inverse contract of ``contract_size`` USD). Equity is in the
settlement currency, so for inverse contracts it is converted to quote at the price.
``fixed_base`` is a base-coin amount in every market (converted to contracts of
``contract_size`` coins on linear contracts, refused on inverse ones). The result is
rounded DOWN to the amount step (never more than allowed) and is 0.0 when it falls below
the market's minimum amount or notional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from metaexpert.core.enums import PositionSide, SizeType
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import MarketSpec
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk.base import (
    execution_price,
    intent_leg,
    leg_entry_value,
    unit_notional_quote,
    volatility_pct,
)
from metaexpert.risk.config import RiskConfig


@dataclass(slots=True)
class SizeResult:
    """A quantity and, when it is zero, why (the reason becomes the blocked decision's text)."""

    quantity: float
    reason: str = ""
    details: dict | None = None

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(self, quantity: float, reason: str = "", details: dict | None = None) -> None:
        self.quantity = quantity
        self.reason = reason
        self.details = details


def loss_per_unit(market: MarketSpec, side: PositionSide, entry: float, stop: float) -> float:
    """Loss in the settlement currency of one unit if a position at ``entry`` is stopped at ``stop``."""
    if market.is_inverse:
        per_unit = market.contract_size * (1.0 / entry - 1.0 / stop)
    else:
        per_unit = market.contract_size * (stop - entry)
    return -per_unit * side.sign


def equity_in_quote(view: PortfolioView, market: MarketSpec, price: float) -> float:
    equity = view.account.equity
    return equity * price if market.is_inverse else equity


def base_to_quantity(base: float, market: MarketSpec, symbol: str) -> float:
    """The order quantity of ``base`` coins of exposure: the coins themselves on spot, contracts
    of ``contract_size`` coins on linear contracts (OKX BTC-USDT-SWAP: 0.01 BTC is 1 contract;
    ``size_value`` was taken as contracts, 100 times the exposure asked for there).

    Inverse contracts are worth a fixed amount of quote each (Binance COIN-M: 100 USD), so a
    base-coin amount would be a different number of contracts at every price: refused, with
    ``fixed_quote`` (the USD value, i.e. ``contracts * contract_size``) named instead."""
    if market.is_inverse:
        raise ConfigurationError(
            f"size_type=fixed_base on the inverse contract {symbol}: size_value is a base-coin "
            f"amount, and an inverse contract is worth a fixed {market.contract_size:g} "
            f"{market.quote}; use size_type=fixed_quote with size_value in {market.quote} "
            "(contracts times the contract size)"
        )
    if market.is_derivative and market.contract_size > 0 and market.contract_size != 1.0:
        return base / market.contract_size
    return base


def raw_size(
    config: RiskConfig,
    intent: OrderIntent,
    view: PortfolioView,
    leverage: float,
    market: MarketSpec,
    price: float,
) -> float:
    """The quantity the size type asks for (at ``price`` on ``market``), before scaling, caps and rounding."""
    if not price > 0:
        raise ValueError(f"cannot size an order on {intent.symbol}: price {price} is not positive")
    unit_value = unit_notional_quote(market, price)
    size_type = config.size_type
    value = config.size_value
    if size_type is SizeType.FIXED_BASE:
        return base_to_quantity(value, market, intent.symbol)
    if size_type is SizeType.FIXED_QUOTE:
        return value / unit_value
    equity = view.account.equity
    if equity <= 0:
        return 0.0
    if size_type is SizeType.PERCENT_EQUITY:
        budget = equity_in_quote(view, market, price) * value / 100.0
        if market.is_derivative:
            budget *= leverage
        return budget / unit_value
    # RISK_BASED: lose size_value % of equity if the stop is hit.
    leg = intent_leg(intent)
    stop = intent.stop_loss_price
    if stop is None:
        if config.stop_loss_pct is None:
            raise ConfigurationError(
                f"size_type=risk_based needs a stop: pass stop_loss_price on the order for {intent.symbol} "
                "or set stop_loss_pct"
            )
        stop = price * (1.0 - leg.sign * config.stop_loss_pct / 100.0)
    if (stop - price) * leg.sign >= 0 or stop <= 0:
        raise ValueError(
            f"stop loss {stop} is on the wrong side of the entry price {price} for a {leg.value} "
            f"position on {intent.symbol}"
        )
    risk_budget = equity * value / 100.0
    per_unit = loss_per_unit(market, leg, price, stop)
    return risk_budget / per_unit if per_unit > 0 else 0.0


def volatility_scale(config: RiskConfig, symbol: str, view: PortfolioView) -> float:
    """Multiplier from volatility sizing (1.0 when disabled or while history is too short)."""
    settings = config.volatility_sizing
    if settings is None:
        return 1.0
    measured = volatility_pct(view, symbol, settings.measure, settings.period, settings.timeframe)
    if not measured > 0 or math.isnan(measured):
        return 1.0
    return min(max(settings.target_pct / measured, settings.min_scale), settings.max_scale)


def position_room(
    config: RiskConfig, intent: OrderIntent, view: PortfolioView, market: MarketSpec, price: float
) -> float:
    """How many more units the leg may take under ``max_position_size_quote`` (inf without a cap)."""
    cap = config.max_position_size_quote
    if cap is None:
        return math.inf
    committed = leg_entry_value(view, intent.symbol, intent_leg(intent), market, price)
    return max((cap - committed) / unit_notional_quote(market, price), 0.0)


def finalize(quantity: float, market: MarketSpec, price: float) -> SizeResult:
    """Round down to the step and apply the market's minimums and maximum."""
    if not math.isfinite(quantity) or quantity <= 0:
        return SizeResult(0.0, "computed size is zero")
    quantity = min(quantity, market.max_amount)
    rounded = market.round_amount(quantity)
    if rounded <= 0:
        return SizeResult(
            0.0, f"size {quantity:.10g} rounds down to zero at step {market.amount_step:g}"
        )
    if rounded < market.min_amount:
        return SizeResult(
            0.0,
            f"size {rounded:.10g} is below the minimum amount {market.min_amount:g}",
            {"quantity": rounded, "min_amount": market.min_amount},
        )
    notional = market.notional(rounded, price)
    if notional < market.min_notional:
        return SizeResult(
            0.0,
            f"order value {notional:.10g} is below the minimum notional {market.min_notional:g}",
            {"quantity": rounded, "notional": notional, "min_notional": market.min_notional},
        )
    return SizeResult(rounded)


def compute_size(
    config: RiskConfig, intent: OrderIntent, view: PortfolioView, leverage: float
) -> SizeResult:
    """Full sizing: size type, volatility scaling, position cap, market limits, rounding."""
    market = view.market(intent.symbol)
    price = execution_price(intent)
    quantity = raw_size(config, intent, view, leverage, market, price)
    if config.volatility_sizing is not None:
        quantity *= volatility_scale(config, intent.symbol, view)
    room = position_room(config, intent, view, market, price)
    if room <= 0:
        return SizeResult(
            0.0,
            f"position on {intent.symbol} already at max_position_size_quote "
            f"{config.max_position_size_quote:g}",
        )
    return finalize(min(quantity, room), market, price)
