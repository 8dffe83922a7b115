"""Protective exits: stop-loss, take-profit and trailing levels, and the breakeven move.

The risk side is arithmetic only. The engine places these levels as reduce-only
conditional orders, evaluates them intrabar and keeps them one-cancels-the-other; the
``BreakevenStop`` rule tells it, through a ``move_stop`` action, when a position's stop
should jump to its entry price.
"""

from __future__ import annotations

from dataclasses import dataclass

from metaexpert.core.enums import PositionSide, RiskActionKind, RiskEventAction
from metaexpert.core.intent import RiskAction
from metaexpert.core.market import Bar, MarketSpec, Tick
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk.base import RiskJournal, RiskRule
from metaexpert.risk.config import RiskConfig
from metaexpert.risk.registry import register_rule


@dataclass(frozen=True, slots=True)
class ProtectiveLevels:
    """Prices at which a position should be closed; None where the expert set no such exit.

    ``trailing_pct`` is the distance the trailing stop keeps from the best price since
    activation; ``trailing_activation_price`` is where trailing starts (None: at once).
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None
    trailing_activation_price: float | None = None

    @property
    def is_empty(self) -> bool:
        return self.stop_loss is None and self.take_profit is None and self.trailing_pct is None


def _offset(
    market: MarketSpec, entry: float, side: PositionSide, pct: float | None, direction: int
) -> float | None:
    """Price ``pct`` % away from entry: direction +1 in the position's favour, -1 against it.

    None when that price would not be positive (a short's target of 100 % or more can
    never be reached), so the engine places no order that could never trigger.
    """
    if pct is None:
        return None
    price = market.round_price(entry * (1.0 + direction * side.sign * pct / 100.0))
    return price if price > 0 else None


def compute_levels(
    config: RiskConfig, market: MarketSpec, side: PositionSide, entry_price: float
) -> ProtectiveLevels:
    if not entry_price > 0:
        raise ValueError(
            f"entry price must be positive to place protective exits, got {entry_price!r}"
        )
    return ProtectiveLevels(
        stop_loss=_offset(market, entry_price, side, config.stop_loss_pct, -1),
        take_profit=_offset(market, entry_price, side, config.take_profit_pct, +1),
        trailing_pct=config.trailing_stop_pct,
        trailing_activation_price=_offset(
            market, entry_price, side, config.trailing_activation_pct, +1
        ),
    )


@register_rule
class BreakevenStop(RiskRule):
    """Moves a position's stop to its entry price once its profit reaches ``breakeven_pct``.

    Once per position: a position is identified by symbol, leg and opening time, so a
    position closed and opened again is a new position.
    """

    name = "breakeven"
    priority = 90

    def __init__(self, trigger_pct: float) -> None:
        self.trigger_pct = trigger_pct
        self._moved: dict[str, set[tuple[PositionSide, int]]] = {}

    @classmethod
    def from_config(cls, config: RiskConfig) -> BreakevenStop | None:
        return cls(config.breakeven_pct) if config.breakeven_pct is not None else None

    def _watch(self, symbol: str, price: float, view: PortfolioView, journal: RiskJournal) -> None:
        positions = view.positions(symbol)
        moved = self._moved.get(symbol)
        if moved:
            live = {
                (position.side, position.opened_at) for position in positions if position.is_open
            }
            moved &= live
        if not positions:
            return
        for position in positions:
            if not position.is_open or position.entry_price <= 0:
                continue
            key = (position.side, position.opened_at)
            if moved and key in moved:
                continue
            entry = position.entry_price
            profit_pct = (price - entry) / entry * 100.0 * position.side.sign
            if profit_pct < self.trigger_pct:
                continue
            stop = view.market(symbol).round_price(entry)
            current = position.stop_loss
            if current is not None and (current - stop) * position.side.sign >= 0:
                self._moved.setdefault(symbol, set()).add(key)
                continue  # the stop already protects the entry (or better)
            self._moved.setdefault(symbol, set()).add(key)
            moved = self._moved[symbol]
            reason = (
                f"{symbol} {position.side.value} is {profit_pct:.2f}% in profit (breakeven_pct "
                f"{self.trigger_pct:g}): stop moved to entry {stop:.10g}"
            )
            journal.act(
                RiskAction(
                    RiskActionKind.MOVE_STOP,
                    self.name,
                    reason,
                    symbol=symbol,
                    position_side=position.side,
                    stop_price=stop,
                )
            )
            journal.record(
                self.name,
                RiskEventAction.MOVE_STOP,
                view.now_ms,
                symbol=symbol,
                reason=reason,
                position_side=position.side.value,
                stop_price=stop,
                profit_pct=profit_pct,
            )

    def on_bar(self, bar: Bar, view: PortfolioView, journal: RiskJournal) -> None:
        self._watch(bar.symbol, bar.close, view, journal)

    def on_tick(self, tick: Tick, view: PortfolioView, journal: RiskJournal) -> None:
        self._watch(tick.symbol, tick.price, view, journal)
