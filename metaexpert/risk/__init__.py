"""Risk management enforced identically in backtest, paper and live mode.

``RiskManager`` is the one interface the engine calls: ``size`` and ``check`` before an
order, ``on_bar`` / ``on_tick`` after market data, ``protective_levels`` after a fill.
Each rule is a small plug-in (``RiskRule``) registered by name; importing this package
registers the built-in families: limits, halts, schedule, market filters, volatility,
trend and protective exits.
"""

from metaexpert.risk import halts, limits, market_filters, protective, schedule, trend, volatility  # noqa: F401  (registration)
from metaexpert.risk.base import RiskJournal, RiskRule, Verdict
from metaexpert.risk.config import (
    CircuitBreakerConfig,
    RiskConfig,
    TrendFilterConfig,
    VolatilityFilterConfig,
    VolatilitySizingConfig,
)
from metaexpert.risk.manager import RiskManager
from metaexpert.risk.protective import ProtectiveLevels
from metaexpert.risk.registry import build_rules, register_rule, registered_rules

__all__ = [
    "CircuitBreakerConfig",
    "ProtectiveLevels",
    "RiskConfig",
    "RiskJournal",
    "RiskManager",
    "RiskRule",
    "TrendFilterConfig",
    "Verdict",
    "VolatilityFilterConfig",
    "VolatilitySizingConfig",
    "build_rules",
    "register_rule",
    "registered_rules",
]
