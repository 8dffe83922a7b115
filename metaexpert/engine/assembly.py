"""One way to build a run: an expert's ``RunPlan`` becomes its runtime, in every mode.

The facade (``MetaExpert.plan``) validates the expert's configuration once and hands a
``RunPlan`` to ``RunBuilder``; the builder makes every part a run has, the same way for a
backtest, a paper or live run, the streaming worker, a Prefect evaluation and a supervised
process:

- ``notifier()``: the Apprise notifier, or None without notification settings;
- ``risk_manager()``: the ``RiskManager`` of the on_init risk settings;
- ``compliance_gate()``: the ``ComplianceGate`` bound to the venue, or None;
- ``open_recorder()``: the ``ExpertRecorder`` (always in paper/live, in a backtest only
  with an explicit ``storage_url``), or None;
- ``parts(recorder)``: all of them as ``RunParts`` for ``wiring.wire_engine``;
- ``gateway(...)``: the ccxt gateway of a paper/live run (the one place it is constructed);
- ``trading_runtime(gateway, recorder)`` and the ``trading()`` context manager: the paper
  or live ``TradingRuntime`` with the gateway and the recorder closed afterwards;
- monitoring (``MonitoringPlan``, from the constructor's ``metrics_port`` and ``alert_rules``):
  the run's ``ExpertMetrics`` are fed by the engine, the runtime and the gateway (rate-limit
  waits, circuit-breaker states); ``trading()`` serves them at ``/metrics`` and checks the
  alert rules on a thread, both stopped on the way out.

A backtest takes ``parts(...)`` to ``metaexpert.backtest.run_backtest``, which wires its
engine through the same ``wire_engine``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metaexpert.compliance import BoundComplianceGate, ComplianceConfig, ComplianceGate
from metaexpert.core.enums import (
    ContractType,
    Exchange,
    MarginMode,
    MarketType,
    PositionMode,
    TradeMode,
)
from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.wiring import RunParts
from metaexpert.risk import RiskConfig, RiskManager

if TYPE_CHECKING:  # imported when used: a plain backtest loads no database or exchange layer
    from metaexpert.engine.persistence import ExpertRecorder, PersistenceConfig
    from metaexpert.engine.runtime import TradingRuntime

logger = logging.getLogger("metaexpert.assembly")

__all__ = ["RecorderIdentity", "RunBuilder", "RunPlan", "VenueSettings"]


@dataclass(frozen=True, slots=True)
class VenueSettings:
    """Where the expert trades: venue, market, and the account modes it trades with."""

    exchange: Exchange
    market_type: MarketType
    contract_type: ContractType | None  # None on spot
    margin_mode: MarginMode | None  # None on spot
    position_mode: PositionMode  # always one-way on spot

    @property
    def derivative(self) -> bool:
        return self.market_type is not MarketType.SPOT


@dataclass(frozen=True, slots=True)
class RecorderIdentity:
    """How a recorded expert is registered in the state database (secrets left out)."""

    exchange: str
    market_type: str
    configuration: dict[str, Any]


@dataclass(slots=True)
class RunPlan:
    """Everything that wires one run, validated by the facade (``MetaExpert.plan``)."""

    expert_name: str
    trade_mode: TradeMode
    handlers: HandlerRegistry
    strategy: StrategyConfig
    risk: RiskConfig
    venue: VenueSettings
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    exchange: Any | None = None  # ExchangeConfig of a paper/live run
    persistence: PersistenceConfig | None = None  # None: nothing is recorded
    recorder_identity: RecorderIdentity | None = None
    compliance: ComplianceConfig | None = None
    notification: Any | None = None  # NotificationConfig, or None: no alerts
    initial_capital: float = 10_000.0
    stop_on_error: bool = False
    observers: list[Callable[[Any], None]] = field(default_factory=list)
    metrics: Any | None = None  # ExpertMetrics, when the run exports metrics
    monitoring: MonitoringPlan | None = None  # where metrics are served, which alerts are checked


@dataclass(frozen=True, slots=True)
class MonitoringPlan:
    """``metrics_port`` (0: any free port; None: metrics are not served) and the alert rules
    (``observability.alerts.AlertRule``) checked every ``alert_interval_seconds``."""

    metrics_port: int | None = None
    alert_rules: tuple[Any, ...] = ()
    alert_interval_seconds: float = 15.0


class RunBuilder:
    """Makes the parts of a run from its plan (see the module docstring); each part once."""

    def __init__(self, plan: RunPlan, *, notifier: Any | None = None) -> None:
        self.plan = plan
        self._notifier = notifier
        self._notifier_made = notifier is not None
        self.metrics_server: Any | None = None  # the MetricsServer while trading() runs

    # ------------------------------------------------------------------ parts
    def notifier(self) -> Any | None:
        if not self._notifier_made:
            self._notifier = make_notifier(self.plan.notification)
            self._notifier_made = True
        return self._notifier

    def risk_manager(self) -> RiskManager:
        return RiskManager(self.plan.risk, notifier=self.notifier())

    def compliance_gate(self) -> BoundComplianceGate | None:
        return make_compliance_gate(self.plan.compliance, self.plan.venue)

    def open_recorder(self) -> ExpertRecorder | None:
        plan = self.plan
        return open_recorder(
            plan.persistence,
            expert_name=plan.expert_name,
            trade_mode=plan.trade_mode,
            identity=plan.recorder_identity,
        )

    def parts(
        self,
        recorder: ExpertRecorder | None,
        *,
        observers: list[Callable[[Any], None]] | None = None,
    ) -> RunParts:
        """What this run's engine gets (``wiring.wire_engine``), ``observers`` after the plan's."""
        plan = self.plan
        return RunParts(
            risk=self.risk_manager(),
            compliance=self.compliance_gate(),
            recorder=recorder,
            notifier=self.notifier(),
            metrics=plan.metrics,
            observers=[*plan.observers, *(observers or [])],
            stop_on_error=plan.stop_on_error,
        )

    # ------------------------------------------------------------------ paper and live
    def gateway(self, **options: Any) -> Any:
        """The ccxt gateway of a paper or live run (``options`` go to ``CcxtGateway``)."""
        from metaexpert.exchanges import CcxtGateway

        if self.plan.exchange is None:
            raise ConfigurationError(f"a {self.plan.trade_mode} run has no exchange settings")
        metrics = self.plan.metrics
        if metrics is not None:
            options.setdefault(
                "on_circuit_state_change",
                lambda name, _old, new: metrics.set_circuit_state(name, str(new)),
            )
            options.setdefault("on_rate_limit_wait", metrics.rate_limit_waited)
        return CcxtGateway(self.plan.exchange, **options)

    def trading_runtime(
        self,
        gateway: Any,
        recorder: ExpertRecorder | None,
        *,
        poll_interval: float = 1.0,
        observers: list[Callable[[Any], None]] | None = None,
    ) -> TradingRuntime:
        from metaexpert.engine.runtime import TradingRuntime

        plan = self.plan
        if plan.trade_mode is TradeMode.BACKTEST:
            raise ConfigurationError(
                "a backtest has no trading runtime; run it with trade_mode='backtest'"
            )
        return TradingRuntime(
            handlers=plan.handlers,
            strategy=plan.strategy,
            gateway=gateway,
            trade_mode=plan.trade_mode,
            parts=self.parts(recorder, observers=observers),
            initial_capital=plan.initial_capital,
            leverage=plan.risk.leverage,
            margin_mode=plan.venue.margin_mode,
            position_mode=plan.venue.position_mode,
            market_type=plan.venue.market_type,
            simulation=plan.simulation,
            poll_interval=poll_interval,
        )

    @asynccontextmanager
    async def trading(
        self,
        *,
        poll_interval: float = 1.0,
        observers: list[Callable[[Any], None]] | None = None,
        gateway_options: dict[str, Any] | None = None,
    ) -> AsyncIterator[TradingRuntime]:
        """The paper/live runtime with its recorder and gateway, both closed on the way out
        (and its metrics endpoint and alert checks, when the plan has monitoring)."""
        recorder = self.open_recorder()
        try:
            with self._monitoring():
                gateway = self.gateway(**(gateway_options or {}))
                try:
                    yield self.trading_runtime(
                        gateway, recorder, poll_interval=poll_interval, observers=observers
                    )
                finally:
                    await gateway.close()
        finally:
            if recorder is not None:
                recorder.close()

    @contextmanager
    def _monitoring(self) -> Iterator[None]:
        """Serve the run's metrics and check its alert rules while the run lasts."""
        plan, monitoring = self.plan, self.plan.monitoring
        if plan.metrics is None or monitoring is None:
            yield
            return
        from metaexpert.observability.alerts import AlertEvaluator
        from metaexpert.observability.metrics import MetricsServer

        with ExitStack() as stack:
            if monitoring.metrics_port is not None:
                server = MetricsServer(plan.metrics.registry, port=monitoring.metrics_port)
                try:
                    server.start()
                except OSError as error:
                    raise ConfigurationError(
                        f"metrics_port={monitoring.metrics_port}: cannot serve metrics ({error})"
                    ) from None
                stack.callback(server.stop)
                self.metrics_server = server
                stack.callback(setattr, self, "metrics_server", None)
                logger.info("metrics of %s at %s", plan.expert_name, server.url)
            notifier = self.notifier()
            if monitoring.alert_rules and notifier is not None:
                evaluator = AlertEvaluator(plan.metrics, notifier, list(monitoring.alert_rules))
                evaluator.start(monitoring.alert_interval_seconds)
                stack.callback(evaluator.stop)
            yield


# ---------------------------------------------------------------------- one function per part
def make_notifier(config: Any | None) -> Any | None:
    """The Apprise notifier of ``config`` (a ``NotificationConfig``), or None."""
    if config is None:
        return None
    from metaexpert.notify import AppriseNotifier

    try:
        return AppriseNotifier(config)
    except ValueError as error:
        raise ConfigurationError(f"invalid notification settings: {error}") from None


def make_compliance_gate(
    config: ComplianceConfig | None, venue: VenueSettings
) -> BoundComplianceGate | None:
    """The compliance gate bound to ``venue``, or None without compliance settings."""
    if config is None:
        return None
    return ComplianceGate(config).bind(exchange=venue.exchange, market_type=venue.market_type)


def open_recorder(
    config: PersistenceConfig | None,
    *,
    expert_name: str,
    trade_mode: TradeMode,
    identity: RecorderIdentity | None,
) -> ExpertRecorder | None:
    """Open the expert's recorder (upgrading or checking the schema), or None without storage."""
    if config is None:
        return None
    from metaexpert.engine.persistence import ExpertRecorder

    def on_storage_error(error: BaseException) -> None:
        logger.error("storage: %s", error)

    identity = identity or RecorderIdentity("", "", {})
    return ExpertRecorder.open(
        config,
        expert_name=expert_name,
        trade_mode=trade_mode,
        exchange=identity.exchange,
        market_type=identity.market_type,
        configuration=identity.configuration,
        on_error=on_storage_error,
    )
