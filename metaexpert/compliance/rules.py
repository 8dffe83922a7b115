"""Compliance rules: small plug-ins behind one base class.

Each rule answers one question about an order intent and returns ``None`` (fine) or the
reason it is not allowed. Rules judge orders that open or increase exposure; an order
that only reduces a position (a close, a stop-loss) is never blocked, because a rule that
traps a client in a position is itself a compliance failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from metaexpert.compliance.config import JurisdictionRules, parse_trading_hours
from metaexpert.core.enums import Exchange, MarketType
from metaexpert.core.intent import OrderIntent
from metaexpert.core.portfolio import PortfolioView


@dataclass(frozen=True, slots=True)
class OrderContext:
    """Where the order goes and under which jurisdiction: facts the intent does not carry."""

    exchange: Exchange
    market_type: MarketType
    jurisdiction: str | None


class ComplianceRule(ABC):
    """One check. ``name`` appears in decisions as ``compliance:<name>``."""

    name: str = "rule"
    #: Orders that only reduce exposure pass every rule unless a rule says otherwise.
    applies_to_exits: bool = False

    def applies(self, intent: OrderIntent) -> bool:
        return self.applies_to_exits or (intent.opens_exposure and not intent.reduce_only)

    @abstractmethod
    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        """The reason ``intent`` breaks this rule, or None when it complies."""


class RestrictedExchangeRule(ComplianceRule):
    name = "restricted_exchange"

    def __init__(self, exchanges: Iterable[Exchange]) -> None:
        self.exchanges = frozenset(exchanges)

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        if context.exchange in self.exchanges:
            return f"trading on {context.exchange} is not permitted in jurisdiction {context.jurisdiction}"
        return None


class RestrictedMarketTypeRule(ComplianceRule):
    name = "restricted_market_type"

    def __init__(self, market_types: Iterable[MarketType]) -> None:
        self.market_types = frozenset(market_types)

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        if context.market_type in self.market_types:
            return f"{context.market_type} trading is not permitted in jurisdiction {context.jurisdiction}"
        return None


class RestrictedSymbolRule(ComplianceRule):
    name = "restricted_symbol"

    def __init__(self, symbols: Iterable[str]) -> None:
        self.symbols = frozenset(_normalise_symbol(symbol) for symbol in symbols)

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        if _normalise_symbol(intent.symbol) in self.symbols:
            return (
                f"{intent.symbol} is a restricted instrument in jurisdiction {context.jurisdiction}"
            )
        return None


class MaxLeverageRule(ComplianceRule):
    name = "max_leverage"

    def __init__(self, max_leverage: float) -> None:
        self.max_leverage = max_leverage

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        if intent.leverage > self.max_leverage + 1e-12:
            return (
                f"leverage {intent.leverage:g}x exceeds the {self.max_leverage:g}x maximum of "
                f"jurisdiction {context.jurisdiction}"
            )
        return None


class MaxOrderNotionalRule(ComplianceRule):
    name = "max_order_notional"

    def __init__(self, max_notional: float) -> None:
        self.max_notional = max_notional

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        quantity = intent.quantity or 0.0
        price = intent.price or intent.reference_price
        try:
            notional = view.market(intent.symbol).notional(quantity, price)
        except (KeyError, LookupError):
            notional = quantity * price
        if notional > self.max_notional:
            return (
                f"order notional {notional:,.2f} exceeds the {self.max_notional:,.2f} maximum of "
                f"jurisdiction {context.jurisdiction}"
            )
        return None


class TradingHoursRule(ComplianceRule):
    """Opening orders only inside a UTC window of the trading day (the engine's clock)."""

    name = "trading_hours"

    def __init__(self, window: str) -> None:
        self.window = window
        self.start, self.end = parse_trading_hours(window)

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        moment = datetime.fromtimestamp(intent.timestamp / 1000, tz=UTC).time()
        if self.start < self.end:
            inside = self.start <= moment < self.end
        else:  # wraps midnight, or 00:00-24:00
            inside = moment >= self.start or moment < self.end
        if not inside:
            return (
                f"{moment:%H:%M} UTC is outside the trading hours {self.window} UTC of "
                f"jurisdiction {context.jurisdiction}"
            )
        return None


def _normalise_symbol(symbol: str) -> str:
    """``BTC/USDT:USDT``, ``BTC-USDT`` and ``btcusdt`` all name BTCUSDT."""
    text = symbol.upper().split(":")[0]
    return text.replace("/", "").replace("-", "").replace("_", "")


def rules_for(rules: JurisdictionRules) -> list[ComplianceRule]:
    """The plug-ins one jurisdiction's settings call for, cheapest first."""
    built: list[ComplianceRule] = []
    if rules.restricted_exchanges:
        built.append(RestrictedExchangeRule(rules.restricted_exchanges))
    if rules.restricted_market_types:
        built.append(RestrictedMarketTypeRule(rules.restricted_market_types))
    if rules.restricted_symbols:
        built.append(RestrictedSymbolRule(rules.restricted_symbols))
    if rules.max_leverage is not None:
        built.append(MaxLeverageRule(rules.max_leverage))
    if rules.max_order_notional is not None:
        built.append(MaxOrderNotionalRule(rules.max_order_notional))
    if rules.trading_hours is not None:
        built.append(TradingHoursRule(rules.trading_hours))
    return built
