"""Checks and the start-up line of a run, before its first bar, in every mode.

Moved out of ``engine.py`` (compiled; these run once per run, so they need no compiling):
the leverage against each venue's limit, the sizing against each market, and the one log
line that says which defaults a run trades with.
"""

from __future__ import annotations

import logging
from typing import Any

from metaexpert.core.enums import SizeType
from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.config import StrategyConfig
from metaexpert.engine.portfolio import Portfolio
from metaexpert.risk.sizing import base_to_quantity

logger = logging.getLogger("metaexpert.engine")


def check_leverage(portfolio: Portfolio, risk: Any) -> None:
    """Refuse, before the first bar, a leverage above a symbol's venue limit.

    ``leverage=1000`` used to be accepted and then every entry was blocked by the risk
    rule at run time (1,299 log lines, 0 trades, exit 0). The limit is the market spec's
    (the runner's in a backtest, the markets ccxt loaded in paper and live mode);
    ``leverage_policy='clamp'`` lowers it to the limit instead, with a warning.
    """
    validate = getattr(risk, "validate_leverage", None) if risk is not None else None
    for symbol, market in portfolio.markets.items():
        leverage = portfolio.leverage.get(symbol, 1.0)
        if leverage == 1.0:
            continue
        if not market.is_derivative:
            raise ConfigurationError(
                f"leverage {leverage:g} on spot market {symbol}: spot trades at 1x"
            )
        if validate is not None:
            allowed = float(
                validate(leverage, market)
            )  # raises ConfigurationError naming the limit
        elif leverage > market.max_leverage:
            raise ConfigurationError(
                f"leverage {leverage:g} exceeds the maximum {market.max_leverage:g} of {symbol}"
            )
        else:
            allowed = leverage
        if allowed != leverage:
            logger.warning(
                "leverage %gx of %s lowered to its venue maximum %gx (leverage_policy='clamp')",
                leverage,
                symbol,
                allowed,
            )
            portfolio.leverage[symbol] = allowed


def check_sizing(portfolio: Portfolio, risk: Any) -> None:
    """Refuse, before the first bar, ``size_type=fixed_base`` on an inverse contract (a
    base-coin amount is no fixed number of contracts worth a fixed quote amount each): the
    error names the setting instead of recurring at every entry."""
    config = getattr(risk, "config", None)
    if config is None or getattr(config, "size_type", None) is not SizeType.FIXED_BASE:
        return
    for symbol, market in portfolio.markets.items():
        base_to_quantity(config.size_value, market, symbol)  # raises ConfigurationError


def startup_line(portfolio: Portfolio, strategy: StrategyConfig) -> str:
    """What this run trades with, defaults included: market and contract type, margin mode,
    leverage against the venue's limit, position mode (futures without contract_type mean
    linear, without leverage 1x, without margin mode isolated: now said, not silent)."""
    markets = []
    derivative = False
    for symbol, market in portfolio.markets.items():
        if market.is_derivative:
            derivative = True
            contract = market.contract_type.value if market.contract_type is not None else "linear"
            markets.append(
                f"{symbol} {market.market_type.value} {contract} at "
                f"{portfolio.leverage.get(symbol, 1.0):g}x leverage (venue maximum "
                f"{market.max_leverage:g}x)"
            )
        else:
            markets.append(f"{symbol} spot")
    line = (
        f"starting {portfolio.trade_mode.value} run of {strategy.strategy_name} on "
        f"{strategy.timeframe} bars: {', '.join(markets)}"
    )
    if derivative:
        line += f"; margin mode {portfolio.margin_mode.value}, position mode {portfolio.position_mode.value}"
    return line
