"""RiskManager: the one object the engine asks before every order and tells after every bar.

It owns the active rules (built from the registry), sizes orders, and turns every
decision into a ``RiskEvent``: passed to ``emit`` (the engine dispatches it to the
expert and to the audit trail) and returned in the decision. Halts, breaker changes and
volatility alerts also go to the ``Notifier``. Because the engine calls it the same way
in backtest, paper and live mode, a rule can never be enforced in one mode only.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from metaexpert.core.enums import PositionMode, PositionSide, RiskEventAction
from metaexpert.core.events import RiskEvent
from metaexpert.core.intent import OrderIntent, RiskAction, RiskDecision
from metaexpert.core.market import Bar, MarketSpec, Tick
from metaexpert.core.portfolio import Notifier, PortfolioView
from metaexpert.risk.base import RiskRule, execution_price
from metaexpert.risk.config import RiskConfig
from metaexpert.risk.limits import effective_leverage, validate_leverage
from metaexpert.risk.protective import ProtectiveLevels, compute_levels
from metaexpert.risk.registry import build_rules
from metaexpert.risk.sizing import compute_size, finalize

logger = logging.getLogger(__name__)

SIZING_RULE: Final = "sizing"
_NO_EXITS: Final = ProtectiveLevels()
_NOTHING_SIZED: Final[tuple[None, float]] = (None, 0.0)


def _overrides(rule: RiskRule, method: str) -> bool:
    return getattr(type(rule), method) is not getattr(RiskRule, method)


class RiskManager:
    """Sizing, entry rules, halts and protective levels for one expert.

    ``emit`` receives every RiskEvent as it happens. Events raised while judging an
    order are also in the returned ``RiskDecision.events``; events raised by ``on_bar``
    / ``on_tick`` are also kept for ``drain_events()``, so an engine can use either the
    callback or the pull style without seeing an event twice within one style.
    Actions (close, flatten, move a stop, cancel entries) are returned by ``on_bar`` /
    ``on_tick``; one raised inside ``check`` (a halt noticed while judging an order) is
    returned by the next ``on_bar`` / ``on_tick`` or ``take_actions``.
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        notifier: Notifier | None = None,
        emit: Callable[[RiskEvent], None] | None = None,
    ) -> None:
        if not isinstance(config, RiskConfig):
            raise TypeError(f"RiskManager needs a RiskConfig, got {type(config).__name__}")
        self.config = config
        self.notifier = notifier
        self._emit = emit
        self.rules: list[RiskRule] = build_rules(config)
        self._entry_rules = [rule for rule in self.rules if _overrides(rule, "check")]
        self._observers = [rule for rule in self.rules if _overrides(rule, "observe")]
        self._bar_rules = [rule for rule in self.rules if _overrides(rule, "on_bar")]
        self._tick_rules = [rule for rule in self.rules if _overrides(rule, "on_tick")]
        self._halting = [rule for rule in self.rules if _overrides(rule, "halted")]
        self._floor_rules = [rule for rule in self._observers if _overrides(rule, "equity_floor")]
        #: The equity at or below which an observed rule could act now (``RiskRule.equity_floor``);
        #: +inf until the first observation and while actions wait to be taken.
        self.floor = math.inf if self._floor_rules else -math.inf
        self._places_exits = any(
            value is not None
            for value in (config.stop_loss_pct, config.take_profit_pct, config.trailing_stop_pct)
        )
        self._counts: Counter[str] = Counter()
        self._pending_actions: list[RiskAction] = []
        self._recent_events: list[RiskEvent] = []
        self._undrained: list[RiskEvent] = []
        self._last_sized: tuple[OrderIntent | None, float] = _NOTHING_SIZED

    # ------------------------------------------------------------------ journal (for rules)
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
        event = RiskEvent(
            rule=rule,
            action=action,
            timestamp=timestamp,
            symbol=symbol,
            reason=reason,
            details=details,
        )
        self._publish(event)
        if alert:
            self._alert(event)

    def act(self, action: RiskAction) -> None:
        self._pending_actions.append(action)

    def _publish(self, event: RiskEvent) -> None:
        self._recent_events.append(event)
        if self._emit is not None:
            self._emit(event)

    def _alert(self, event: RiskEvent) -> None:
        if self.notifier is None:
            return
        subject = f" {event.symbol}" if event.symbol else ""
        title = f"MetaExpert risk: {event.rule} {event.action}{subject}"
        try:
            delivered = self.notifier.notify(
                title, event.reason, level="warning", tags=("risk", event.rule)
            )
        except Exception as error:  # noqa: BLE001  (an alert channel must never stop trading)
            logger.warning("risk alert %r could not be sent: %s", title, type(error).__name__)
            return
        if not delivered:
            logger.warning("risk alert %r was not delivered", title)

    # ------------------------------------------------------------------ public API
    @property
    def counts(self) -> dict[str, int]:
        """Blocked decisions per rule name (for the backtest report)."""
        return dict(self._counts)

    @property
    def needs_bars(self) -> bool:
        """False when no active rule watches bars, so the engine may skip ``on_bar`` entirely."""
        return bool(self._bar_rules or self._observers)

    @property
    def watches_every_bar(self) -> bool:
        """True when some rule must see every bar (``on_bar``, or ``observe`` without an equity floor)."""
        return bool(self._bar_rules) or len(self._floor_rules) < len(self._observers)

    @property
    def watches_equity(self) -> bool:
        """True when rules watch the equity through a floor (a replay calls ``on_equity`` at it)."""
        return bool(self._floor_rules)

    @property
    def halted(self) -> bool:
        """True while new entries are halted (max drawdown, daily loss, an open circuit breaker)."""
        return any(rule.halted for rule in self._halting)

    def validate_leverage(self, leverage: float, market: MarketSpec) -> float:
        """The leverage to use on ``market``: raises ``ConfigurationError`` (policy "error") or clamps."""
        return validate_leverage(leverage, market, self.config.leverage_policy)

    def size(self, intent: OrderIntent, view: PortfolioView) -> float:
        """Quantity for an intent without one (0.0 when below the market minimums or caps)."""
        quantity = self._size(intent, view)[0]
        self._last_sized = (intent, quantity)
        return quantity

    def _size(self, intent: OrderIntent, view: PortfolioView) -> tuple[float, str, dict[str, Any]]:
        market = view.market(intent.symbol)
        leverage = effective_leverage(intent, self.config)
        limit = market.max_leverage if market.is_derivative else 1.0
        leverage = min(leverage, limit)
        result = compute_size(self.config, intent, view, leverage)
        return result.quantity, result.reason, result.details or {}

    def check(self, intent: OrderIntent, view: PortfolioView) -> RiskDecision:
        """Judge an intent: allowed (maybe resized) or blocked by the first objecting rule."""
        self._keep_for_drain()  # anything left by an interrupted call stays deliverable
        self._observe(view)
        if not intent.opens_exposure or intent.reduce_only:
            quantity = (
                intent.quantity if intent.quantity is not None else self._closable(intent, view)
            )
            return RiskDecision(True, quantity, events=self._take_events())

        if intent.quantity is None:
            quantity, reason, details = self._size(intent, view)
            if quantity <= 0:
                return self._block(SIZING_RULE, reason, intent, details)
        else:
            requested = intent.quantity
            if not requested > 0:
                return self._block(
                    SIZING_RULE, self._why_not_positive(intent, view, requested), intent, {}
                )
            sized_intent, sized = self._last_sized
            self._last_sized = _NOTHING_SIZED
            if sized_intent is intent and sized == requested:
                quantity = requested  # ``size`` fitted it to the market a moment ago
            else:
                market = view.market(intent.symbol)
                fitted = finalize(requested, market, execution_price(intent))
                if fitted.quantity <= 0:
                    return self._block(SIZING_RULE, fitted.reason, intent, fitted.details or {})
                quantity = fitted.quantity
            if quantity < requested * (1 - 1e-12):
                self._resized(
                    SIZING_RULE,
                    intent,
                    requested,
                    quantity,
                    f"rounded down from {requested:.10g} to {quantity:.10g} by the market's step "
                    "and maximum amount",
                )

        for rule in self._entry_rules:
            verdict = rule.check(intent, quantity, view)
            if verdict is None:
                continue
            if verdict.blocked:
                return self._block(rule.name, verdict.reason, intent, verdict.details)
            if verdict.quantity < quantity:
                self._resized(
                    rule.name, intent, quantity, verdict.quantity, verdict.reason, **verdict.details
                )
                quantity = verdict.quantity
        decision = RiskDecision(True, quantity, events=self._take_events())
        return decision

    def protective_levels(
        self, symbol: str, position_side: PositionSide, entry_price: float, view: PortfolioView
    ) -> ProtectiveLevels:
        """Stop, target and trailing settings for a position opened at ``entry_price``."""
        if not self._places_exits:  # asked after every entry fill: answer without arithmetic
            return _NO_EXITS
        return compute_levels(
            self.config, view.market(symbol), PositionSide(position_side), entry_price
        )

    def on_bar(self, bar: Bar, view: PortfolioView) -> list[RiskAction]:
        """Update monitors after a closed bar; returns what the engine must do now."""
        self._keep_for_drain()  # anything left by an interrupted call stays deliverable
        self._observe(view)
        for rule in self._bar_rules:
            rule.on_bar(bar, view, self)
        self._keep_for_drain()
        return self.take_actions()

    def on_tick(self, tick: Tick, view: PortfolioView) -> list[RiskAction]:
        """Update monitors on a tick (paper/live); returns what the engine must do now."""
        self._keep_for_drain()  # anything left by an interrupted call stays deliverable
        self._observe(view)
        for rule in self._tick_rules:
            rule.on_tick(tick, view, self)
        self._keep_for_drain()
        return self.take_actions()

    def on_equity(self, view: PortfolioView) -> list[RiskAction]:
        """Observe the equity-floor rules (a replay calls this when equity reached ``floor``, the
        peak moved or the UTC day changed); returns what the engine must do now."""
        self._keep_for_drain()
        self._observe(view)
        self._keep_for_drain()
        actions = self.take_actions()
        self.refresh_floor(view)
        return actions

    def refresh_floor(self, view: PortfolioView) -> float:
        """Recompute ``floor`` from the rules (after the peak or the day's start equity moved)."""
        rules = self._floor_rules
        if not rules:
            return self.floor
        if self._pending_actions:
            self.floor = math.inf  # act at the next bar, whatever the equity
            return self.floor
        floor = -math.inf
        for rule in rules:
            level = rule.equity_floor(view)
            if level is not None and level > floor:
                floor = level
        self.floor = floor
        return floor

    def take_actions(self) -> list[RiskAction]:
        """Actions raised since the last call (and forget them)."""
        actions, self._pending_actions = self._pending_actions, []
        return actions

    def drain_events(self) -> list[RiskEvent]:
        """Events raised by ``on_bar`` / ``on_tick`` since the last call (decision events excluded)."""
        events, self._undrained = self._undrained, []
        return events

    # ------------------------------------------------------------------ internals
    def _why_not_positive(self, intent: OrderIntent, view: PortfolioView, requested: float) -> str:
        """Explain a zero quantity: usually ``size()`` gave 0.0 and its reason is the useful one."""
        if requested == 0.0:
            try:
                quantity, reason, _ = self._size(intent, view)
            except (ValueError, ArithmeticError):
                quantity, reason = 1.0, ""
            if quantity <= 0 and reason:
                return f"order size is zero: {reason}"
        return f"order quantity must be positive, got {requested!r}"

    def _keep_for_drain(self) -> None:
        if self._recent_events:
            self._undrained.extend(self._recent_events)
            self._recent_events = []

    def _observe(self, view: PortfolioView) -> None:
        for rule in self._observers:
            rule.observe(view, self)
        if self._floor_rules:
            self.refresh_floor(view)

    def _take_events(self) -> list[RiskEvent]:
        events, self._recent_events = self._recent_events, []
        return events

    def _block(
        self, rule: str, reason: str, intent: OrderIntent, details: dict[str, Any]
    ) -> RiskDecision:
        self._counts[rule] += 1
        event = RiskEvent(
            rule=rule,
            action=RiskEventAction.BLOCKED,
            timestamp=intent.timestamp,
            symbol=intent.symbol,
            reason=reason,
            details=dict(details),
        )
        self._publish(event)
        return RiskDecision(False, 0.0, rule, reason, self._take_events())

    def _resized(
        self,
        rule: str,
        intent: OrderIntent,
        before: float,
        after: float,
        reason: str,
        **details: Any,
    ) -> None:
        self._publish(
            RiskEvent(
                rule=rule,
                action=RiskEventAction.RESIZED,
                timestamp=intent.timestamp,
                symbol=intent.symbol,
                reason=reason,
                details={**details, "requested": before, "quantity": after},
            )
        )

    @staticmethod
    def _closable(intent: OrderIntent, view: PortfolioView) -> float:
        """What an exit without a quantity would close: the named leg (hedge) or the net position."""
        positions = view.positions(intent.symbol)
        if view.position_mode is PositionMode.HEDGE:
            leg = intent.position_side
            if leg is None:
                leg = (
                    PositionSide.LONG
                    if intent.side is PositionSide.LONG.closing_side
                    else PositionSide.SHORT
                )
            return sum(position.quantity for position in positions if position.side is leg)
        closing_leg = (
            PositionSide.LONG
            if intent.side is PositionSide.LONG.closing_side
            else PositionSide.SHORT
        )
        return sum(position.quantity for position in positions if position.side is closing_leg)
