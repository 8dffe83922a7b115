"""How an engine is wired, written once for every mode.

A backtest (``metaexpert.backtest.runner``), a paper or live runtime
(``metaexpert.engine.runtime``) and the streaming worker differ in what drives the
engine, never in what is attached to it: the same risk manager, compliance gate,
notifier, metrics collector, observers and recorder, in the same order. Before this
module the engine was wired by hand in three places and they drifted: the paper broker
ignored ``fill_market_on`` and ``max_volume_participation``, and ``metaexpert stream``
ran without compliance rules or a recorder. ``RunParts`` is what a run attaches;
``wire_engine`` attaches it; ``simulated_broker`` is the one place a ``SimulationConfig``
becomes a broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metaexpert.core.enums import TradeMode
from metaexpert.engine.broker import Broker
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.context import Context
from metaexpert.engine.engine import Engine
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.simulated_broker import SimulatedBroker
from metaexpert.engine.slippage import slippage_from_settings

__all__ = ["RunParts", "simulated_broker", "wire_engine"]


@dataclass(slots=True)
class RunParts:
    """What a run attaches to its engine, whatever the mode (see module docstring).

    ``recorder`` is an ``ExpertRecorder`` (``metaexpert.engine.persistence``) or None when
    nothing is recorded; ``compliance`` answers ``check(intent, view)`` (a bound
    ``ComplianceGate``); ``risk`` is the ``RiskManager``."""

    risk: Any | None = None
    compliance: Any | None = None
    recorder: Any | None = None
    notifier: Any | None = None
    metrics: Any | None = None
    observers: list[Callable[[Any], None]] = field(default_factory=list)
    stop_on_error: bool = False


def simulated_broker(
    portfolio: Portfolio, engine: Engine, simulation: SimulationConfig
) -> SimulatedBroker:
    """The simulated broker of a backtest or a paper run: every fill setting applies in both."""
    return SimulatedBroker(
        portfolio,
        engine,
        intrabar_path=simulation.intrabar_path,
        fill_market_on=simulation.fill_market_on,
        slippage=slippage_from_settings(
            simulation.slippage,
            simulation.slippage_pct,
            simulation.slippage_impact_pct,
            simulation.slippage_max_pct,
        ),
        max_volume_participation=simulation.max_volume_participation,
        liquidation=simulation.liquidation,
    )


def wire_engine(
    *,
    strategy: StrategyConfig,
    portfolio: Portfolio,
    handlers: HandlerRegistry,
    parts: RunParts,
    trade_mode: TradeMode,
    broker: Callable[[Engine], Broker],
    state: dict[str, Any] | None = None,
    atomic_steps: bool = True,
) -> tuple[Engine, Broker]:
    """Build the engine, attach ``broker(engine)``, the handlers' context, the observers and the
    recorder (``atomic_steps``: its records wait for ``commit_step``; a backtest writes at once).
    Returns the engine and the broker itself (the recorder may wrap ``engine.broker``)."""
    engine = Engine(
        strategy=strategy,
        portfolio=portfolio,
        handlers=handlers,
        risk=parts.risk,
        stop_on_error=parts.stop_on_error,
        notifier=parts.notifier,
        compliance=parts.compliance,
        metrics=parts.metrics,
    )
    recorder = parts.recorder
    if state is None and recorder is not None and trade_mode is not TradeMode.BACKTEST:
        state = recorder.state  # ctx.state survives restarts of a paper or live expert
    made = broker(engine)
    engine.attach(made, Context(engine, trade_mode=trade_mode, state=state))
    for observer in parts.observers:
        engine.subscribe(observer)
    if recorder is not None:
        recorder.attach(engine, atomic_steps=atomic_steps)
    return engine, made
