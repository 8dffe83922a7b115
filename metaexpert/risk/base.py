"""The one interface every risk rule implements, and the small helpers rules share.

A rule is a plug-in (in the spirit of Freqtrade's protections): it is built from the
``RiskConfig`` when its settings are present, judges order intents in ``check``, and may
watch the market in ``on_bar`` / ``on_tick``. Rules never talk to the engine directly:
they report through a ``RiskJournal`` (events, alerts, actions) that the ``RiskManager``
owns, which is what keeps backtest, paper and live behaviour identical.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from metaexpert.core.enums import OrderSide, OrderType, PositionMode, PositionSide, RiskEventAction
from metaexpert.core.intent import OrderIntent, RiskAction
from metaexpert.core.market import Bar, MarketSpec, Tick
from metaexpert.core.order import Order
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk.config import RiskConfig


@dataclass(slots=True)
class Verdict:
    """A rule's answer to one intent: block it, or let it through with a smaller quantity."""

    blocked: bool
    quantity: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def block(reason: str, **details: Any) -> Verdict:
        return Verdict(True, 0.0, reason, details)

    @staticmethod
    def resize(quantity: float, reason: str, **details: Any) -> Verdict:
        return Verdict(False, quantity, reason, details)


class RiskJournal(Protocol):
    """Where rules report what they decided outside ``check`` (owned by the RiskManager)."""

    def record(
        self,
        rule: str,
        action: RiskEventAction,
        timestamp: int,
        *,
        symbol: str | None = None,
        reason: str = "",
        alert: bool = False,
        **details: Any,
    ) -> None:
        """Emit a RiskEvent (and send it to the notifier when ``alert``)."""
        ...

    def act(self, action: RiskAction) -> None:
        """Ask the engine to do something now (close, flatten, move a stop, cancel entries)."""
        ...


class RiskRule(ABC):
    """Base class of every rule.

    ``name`` is what appears in blocked decisions, events and ``RiskManager.counts``.
    ``priority`` orders the rules inside ``check`` (cheap, decisive rules first).
    ``halts_entries`` marks rules whose state can stop all new entries (they feed
    ``RiskManager.halted``). Entry rules only ever see intents that open exposure:
    the manager never shows them exits, so an exit can never be blocked by a filter.
    """

    name: ClassVar[str]
    priority: ClassVar[int] = 100

    @classmethod
    @abstractmethod
    def from_config(cls, config: RiskConfig) -> RiskRule | None:
        """The rule configured by ``config``, or None when the user did not ask for it."""

    def check(self, intent: OrderIntent, quantity: float, view: PortfolioView) -> Verdict | None:
        """Judge an entry of ``quantity``; None means "no objection"."""
        return None

    def observe(self, view: PortfolioView, journal: RiskJournal) -> None:
        """Update state from the portfolio (equity, clock); called before every check, bar and tick.

        Must be O(1): it runs on every decision.
        """

    def equity_floor(self, view: PortfolioView) -> float | None:
        """For a rule whose ``observe`` acts on the account's equity alone: the equity at or
        below which ``observe`` could act now (``-inf``: not before the next UTC day).

        A replay then observes the rule only on bars whose equity reaches the floor, when the
        peak equity moved or when the UTC day changed, instead of on every bar (``observe``
        still runs before every decision). None, the default: observe it on every bar.
        """
        return None

    def on_bar(self, bar: Bar, view: PortfolioView, journal: RiskJournal) -> None:
        """Update state after a closed bar (must stay O(1) in the length of history)."""

    def on_tick(self, tick: Tick, view: PortfolioView, journal: RiskJournal) -> None:
        """Update state on a tick (paper/live)."""

    @property
    def halted(self) -> bool:
        """True while this rule stops every new entry."""
        return False


# ---------------------------------------------------------------------- helpers
def intent_leg(intent: OrderIntent) -> PositionSide:
    """The position leg an entry opens or increases."""
    if intent.position_side is not None:
        return intent.position_side
    return PositionSide.LONG if intent.side is OrderSide.BUY else PositionSide.SHORT


def execution_price(intent: OrderIntent) -> float:
    """The price the intent is expected to trade at: limit price, trigger price, or reference."""
    if intent.order_type.has_limit_price and intent.price:
        return intent.price
    if intent.order_type.is_conditional and intent.stop_price:
        return intent.stop_price
    return intent.reference_price


def unit_notional_quote(market: MarketSpec, price: float) -> float:
    """Quote-currency value of one unit of quantity (one coin, or one inverse contract)."""
    return market.notional(1.0, price)


def is_finite_positive(value: float) -> bool:
    return value > 0 and math.isfinite(value)


def order_leg(order: Order) -> PositionSide:
    return order.position_side or (
        PositionSide.LONG if order.side is OrderSide.BUY else PositionSide.SHORT
    )


def resting_entry_orders(
    view: PortfolioView, symbol: str | None = None, *, include_flips: bool = False
) -> list[Order]:
    """Open orders that can still add exposure.

    Reduce-only orders (stops, targets, closes) and hedge-mode closes of a leg are left
    out. In one-way mode an order against the symbol's open position closes (or flips,
    replacing) that position, so it is no extra position: it is left out unless
    ``include_flips``. Value limits include it, because the position it faces may be
    closed by another order first and then the whole order opens the other side.
    """
    oneway = view.position_mode is PositionMode.ONEWAY and not include_flips
    entries: list[Order] = []
    for order in view.open_orders(symbol):
        if order.reduce_only:
            continue
        leg = order_leg(order)
        if order.position_side is not None and order.side is not leg.opening_side:
            continue
        if oneway:
            opposite = PositionSide.SHORT if leg is PositionSide.LONG else PositionSide.LONG
            if any(position.side is opposite for position in view.positions(order.symbol)):
                continue
        entries.append(order)
    return entries


def resting_entry_legs(
    view: PortfolioView, symbol: str | None = None
) -> list[tuple[str, PositionSide]]:
    """(symbol, leg) of every resting entry order."""
    return [(order.symbol, order_leg(order)) for order in resting_entry_orders(view, symbol)]


def is_market_like(order_type: OrderType) -> bool:
    """Orders that take liquidity at once (and can therefore slip)."""
    return order_type in _MARKET_LIKE


_MARKET_LIKE = frozenset(
    {OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TRAILING_STOP}
)


def volatility_pct(
    view: PortfolioView, symbol: str, measure: str, period: int, timeframe: str | None
) -> float:
    """Volatility as a percent of price at the last closed bar: ATR / close or realised vol.

    Uses the BarSeries' cached causal indicators, so repeated calls within a bar are
    array lookups. NaN while there is not enough history.
    """
    series = view.bars(symbol, timeframe)
    if len(series) == 0:
        return math.nan
    if measure == "atr":
        close = series.last_close
        if close <= 0:
            return math.nan
        return series.atr(period) / close * 100.0
    return series.volatility(period) * 100.0


def leg_entry_value(
    view: PortfolioView, symbol: str, leg: PositionSide, market: MarketSpec, price: float
) -> float:
    """Quote value committed to ``leg`` at entry prices: held quantity at its average entry
    price plus resting entry orders at their own prices (``price`` for orders without one).
    In one-way mode a position on the other side is not netted against it: that position
    may be closed separately, and then every order of this side opens this leg.

    Valuing at entry prices makes ``max_position_size_quote`` a firm bound on what is put
    into a position, whatever the market does afterwards and in whatever order fills come.
    """
    held = sum(
        market.notional(position.quantity, position.entry_price)
        for position in view.positions(symbol)
        if position.side is leg
    )
    pending = 0.0
    for order in resting_entry_orders(view, symbol, include_flips=True):
        if order.symbol == symbol and order_leg(order) is leg:
            order_price = order.price if order.order_type.has_limit_price else order.stop_price
            pending += market.notional(order.remaining_quantity, order_price or price)
    return held + pending
