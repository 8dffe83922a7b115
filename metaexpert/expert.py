"""The MetaExpert facade: the only thing a user's expert file needs.

    expert = MetaExpert(exchange="binance", market_type="spot")

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", size_type="percent_equity", size_value=10)
    def init(ctx): ...

    @expert.on_bar(timeframe="1h")
    def bar(ctx, bars): ...

    expert.run(trade_mode="backtest", backtest_start="2024-01-01", backtest_end="2024-12-31")

Configuration is validated here, once (pydantic); everything below receives typed settings.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from metaexpert.backtest.report import print_summary, write_html_report, write_json
from metaexpert.backtest.runner import BacktestConfig, run_backtest
from metaexpert.compliance import ComplianceConfig, ComplianceGate
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.enums import (
    ContractType,
    Exchange,
    MarginMode,
    MarketType,
    PositionMode,
    TradeMode,
)
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.handlers import Handler, HandlerRegistry
from metaexpert.observability.logging import LoggingConfig, configure_logging
from metaexpert.observability.masking import register_secret
from metaexpert.risk import RiskConfig, RiskManager

logger = logging.getLogger("metaexpert.expert")

class ExpertConfig(BaseModel):
    """Everything the MetaExpert constructor accepts, validated."""

    model_config = ConfigDict(extra="forbid")

    exchange: Exchange = Exchange.BINANCE
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_passphrase: SecretStr | None = None
    subaccount: str | None = None
    base_url: str | None = None
    testnet: bool = False
    demo: bool = Field(default=False, description="Binance/Bybit demo trading (ccxt enable_demo_trading)")
    proxy: str | None = None
    market_type: MarketType = MarketType.SPOT
    contract_type: ContractType | None = None
    margin_mode: MarginMode = MarginMode.ISOLATED
    position_mode: PositionMode = PositionMode.ONEWAY
    log_level: str = "INFO"
    log_file: str | None = "expert.log"
    log_trade_file: str | None = "trades.log"
    log_error_file: str | None = "errors.log"
    log_to_file: bool = True
    log_to_console: bool = True
    json_logging: bool = False
    log_dir: str = "logs"
    rate_limit: int = Field(default=1200, ge=1, description="exchange requests per minute")
    storage_url: str | None = Field(default=None, description="database for trading state; None: "
                                    "sqlite:///var/metaexpert.sqlite in paper/live, nothing in backtests")
    on_database_down: Literal["buffer", "stop"] = Field(
        default="buffer", description="database unreachable: keep trading and buffer, or stop safely")
    upgrade_schema: bool = Field(default=True, description="False: only check the schema and name the upgrade command")
    journal_dir: str | None = Field(default=None, description="write-ahead journal; default var/journal/<expert>-<mode>")
    display_timezone: str = "UTC"
    notification_urls: list[str] = Field(default_factory=list, description="Apprise URLs for alerts")
    notification_config: str | None = Field(default=None, description="Apprise config file (URLs with tags)")
    compliance_config: ComplianceConfig | None = Field(default=None, description="jurisdiction rule sets, verifier")
    jurisdiction: str | None = Field(default=None, description="active jurisdiction in compliance_config")

    @field_validator("display_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExpertConfig:
        if self.market_type is MarketType.SPOT:
            if self.contract_type is not None:
                raise ValueError("contract_type applies to futures and options only; remove it for spot")
            if self.position_mode is PositionMode.HEDGE:
                raise ValueError("position_mode='hedge' exists only for futures; spot positions are one-way")
        elif self.contract_type is None:
            self.contract_type = ContractType.LINEAR
        if self.jurisdiction is not None:
            if self.compliance_config is None:
                raise ValueError("jurisdiction needs compliance_config with that jurisdiction's rule set")
            self.compliance_config = ComplianceConfig.model_validate(
                {**self.compliance_config.model_dump(), "jurisdiction": self.jurisdiction})
        return self

    def check_for_mode(self, trade_mode: TradeMode) -> None:
        """Checks that depend on how the expert runs (keys are needed only live)."""
        if trade_mode is TradeMode.LIVE:
            if self.api_key is None or self.api_secret is None:
                raise ConfigurationError(f"live trading on {self.exchange} needs api_key and api_secret")
            if self.exchange is Exchange.OKX and self.api_passphrase is None:
                raise ConfigurationError("live trading on OKX needs api_passphrase (OKX API keys have a passphrase)")


def _config_error(error: ValidationError, what: str) -> ConfigurationError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in issue['loc']) or 'value'}: {issue['msg'].removeprefix('Value error, ')}"
        for issue in error.errors()
    )
    return ConfigurationError(f"invalid {what}: {problems}")


_RISK_FIELDS = frozenset(RiskConfig.model_fields)
_STRATEGY_FIELDS = frozenset({"symbol", "timeframe", "lookback_bars", "warmup_bars", "strategy_id", "strategy_name", "comment"})


def inclusive_end_ms(value: str | datetime) -> int:
    """A date-only end ('2024-12-31') includes that whole day; a datetime is exclusive."""
    end = parse_date_ms(value)
    if isinstance(value, str) and len(value.strip()) == 10:
        end += DAY_MS
    return end


def default_data_dir() -> Path | None:
    """``METAEXPERT_DATA_DIR``, else the shared recordings beside the repository, if present."""
    configured = os.environ.get("METAEXPERT_DATA_DIR")
    if configured:
        return Path(configured)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if shared.is_dir() else None


class MetaExpert:
    """A trading expert: configuration, event handlers, and ``run`` in any mode."""

    def __init__(self, **settings: Any) -> None:
        try:
            self.config = ExpertConfig(**settings)
        except ValidationError as error:
            raise _config_error(error, "MetaExpert configuration") from None
        for secret in (self.config.api_key, self.config.api_secret, self.config.api_passphrase):
            if secret is not None:
                register_secret(secret.get_secret_value())
        # The exchange rules (which market and contract types each venue lists, options
        # included) live with the gateway; check them now, so a backtest fails the same way.
        self.exchange_config(TradeMode.PAPER)
        # The logging settings are the constructor's log_* keywords: validated here, once.
        try:
            self.logging_config = LoggingConfig(**self.config.model_dump(include=set(LoggingConfig.model_fields)))
        except ValidationError as error:
            raise _config_error(error, "logging settings") from None
        self.handlers = HandlerRegistry()
        self._init_options: dict[str, Any] | None = None
        self.name = "expert"
        self.declared_parameter_space: Any | None = None

    def __repr__(self) -> str:
        return f"MetaExpert(exchange={self.config.exchange}, market_type={self.config.market_type}, name={self.name!r})"

    # ------------------------------------------------------------------ decorators
    def on_init(self, **options: Any) -> Callable[[Handler], Handler]:
        """Declare the strategy (symbol, timeframe, sizing, stops, limits, filters, parameters)."""
        self._init_options = options
        self.strategy_config(options)  # validate now: errors point at the decorator

        def register(handler: Handler) -> Handler:
            self.handlers.add("init", handler)
            if options.get("strategy_name") is None:
                self.name = handler.__module__.rsplit(".", 1)[-1] if handler.__module__ != "__main__" else "expert"
            else:
                self.name = str(options["strategy_name"])
            return handler

        return register

    def _simple(event: str) -> Callable[[MetaExpert], Callable[[Handler], Handler]]:  # type: ignore[misc]
        def decorator(self: MetaExpert) -> Callable[[Handler], Handler]:
            def register(handler: Handler) -> Handler:
                self.handlers.add(event, handler)
                return handler

            return register

        decorator.__name__ = f"on_{event}"
        decorator.__doc__ = f"Register a handler for the {event!r} event."
        return decorator

    on_deinit = _simple("deinit")
    on_tick = _simple("tick")
    on_order = _simple("order")
    on_position = _simple("position")
    on_transaction = _simple("transaction")
    on_book = _simple("book")
    on_error = _simple("error")
    on_account = _simple("account")
    on_risk = _simple("risk")
    on_backtest_init = _simple("backtest_init")
    on_backtest = _simple("backtest")
    on_backtest_pass = _simple("backtest_pass")
    on_backtest_deinit = _simple("backtest_deinit")
    del _simple

    def on_bar(self, timeframe: str = "1h") -> Callable[[Handler], Handler]:
        """Register ``handler(ctx, bars)`` for closed bars of ``timeframe`` (several allowed)."""

        def register(handler: Handler) -> Handler:
            self.handlers.add_bar(timeframe, handler)
            return handler

        return register

    def on_timer(self, interval: str = "1m") -> Callable[[Handler], Handler]:
        """Register ``handler(ctx)`` to fire every ``interval`` of (simulated or real) UTC time."""

        def register(handler: Handler) -> Handler:
            self.handlers.add_timer(interval, handler)
            return handler

        return register

    def parameter_space(self, constraints: list[Any] | tuple[Any, ...] = (), **ranges: Any) -> Any:
        """Declare what an optimiser may vary, next to the strategy (validated now).

            expert.parameter_space(fast=IntegerRange(low=5, high=50, step=5),
                                   slow=IntegerRange(low=20, high=200, step=10),
                                   constraints=["fast < slow"])

        Ranges: ``IntegerRange``, ``FloatRange`` (step, log), ``Choice`` or a list of choices,
        from ``metaexpert.backtest.optimization``. Every name must be an on_init parameter.
        """
        from metaexpert.backtest.optimization.spaces import ParameterSpace

        space = ParameterSpace(ranges, list(constraints))
        if self._init_options is not None:
            unknown = set(space.names) - set(self._init_options)
            if unknown:
                raise ConfigurationError(f"parameter_space names {sorted(unknown)}, which on_init does not declare")
        self.declared_parameter_space = space
        return space

    # ------------------------------------------------------------------ configuration
    def strategy_config(self, options: dict[str, Any]) -> tuple[StrategyConfig, RiskConfig]:
        options = dict(options)
        symbol = options.pop("symbol", None)
        if symbol is None:
            raise ConfigurationError("on_init needs symbol= (for example symbol='BTCUSDT')")
        strategy_values = {key: options.pop(key) for key in list(options) if key in _STRATEGY_FIELDS}
        strategy_values.pop("symbol", None)
        risk_values = {key: options.pop(key) for key in list(options) if key in _RISK_FIELDS}
        if self.config.market_type is MarketType.SPOT and risk_values.get("leverage", 1) != 1:
            raise ConfigurationError("leverage applies to futures; spot trades at 1x")
        try:
            strategy = StrategyConfig(symbols=symbol, parameters=options, **strategy_values)
        except ValidationError as error:
            raise _config_error(error, "on_init strategy settings") from None
        try:
            risk = RiskConfig(**risk_values)
        except ValidationError as error:
            raise _config_error(error, "on_init risk settings") from None
        return strategy, risk

    def settings_for(self, trade_mode: TradeMode,
                     overrides: dict[str, Any] | None = None) -> tuple[StrategyConfig, RiskConfig]:
        """The strategy and risk settings a ``trade_mode`` run uses: the mode is checked against
        the configuration and on_init's options (with ``overrides`` on top) are validated."""
        self.config.check_for_mode(trade_mode)
        if self._init_options is None:
            raise ConfigurationError("the expert has no @expert.on_init(symbol=..., timeframe=...) handler")
        return self.strategy_config({**self._init_options, **(overrides or {})})

    # ------------------------------------------------------------------ running
    def run(
        self,
        trade_mode: str | TradeMode = TradeMode.BACKTEST,
        *,
        backtest_start: str | datetime | None = None,
        backtest_end: str | datetime | None = None,
        initial_capital: float = 10_000.0,
        data_dir: str | Path | None = None,
        output_dir: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        parameters: dict[str, Any] | None = None,
        report: bool = True,
        simulation: dict[str, Any] | SimulationConfig | None = None,
        market_specs: dict[str, dict[str, Any]] | None = None,
        close_at_end: bool = False,
        stop_on_error: bool = False,
        configure_logs: bool = True,
        observers: list[Callable[[Any], None]] | None = None,
        max_steps: int | None = None,
        duration_seconds: float | None = None,
        poll_interval: float = 1.0,
        candle_source: Any | None = None,
    ) -> Any:
        """Run the expert. ``trade_mode`` is "backtest", "paper" or "live".

        Paper and live mode run until ``max_steps`` polls, ``duration_seconds``, or
        ``ctx.stop()``, and return the engine (positions, orders, fills). In a backtest,
        the result is a ``BacktestResult``; ``report`` prints the summary and writes JSON and HTML reports to
        ``output_dir`` (default ``output/<expert>-<UTC time>``). ``parameters`` override
        strategy parameters from on_init (an optimiser passes them this way), and
        ``candle_source`` (a ``CandleSource``) lets it reuse candles already in memory.
        """
        try:
            mode = TradeMode(trade_mode)
        except ValueError:
            raise ConfigurationError(f"invalid trade_mode {trade_mode!r}: expected backtest, paper or live") from None
        overrides: dict[str, Any] = {}
        if symbol:
            overrides["symbol"] = symbol
        if timeframe:
            overrides["timeframe"] = timeframe
        strategy, risk_config = self.settings_for(mode, {**overrides, **(parameters or {})})
        if mode is not TradeMode.BACKTEST:
            if configure_logs:
                self._configure_logging()
            return self._run_trading(mode, strategy, risk_config, initial_capital=initial_capital,
                                     simulation=simulation, observers=observers, stop_on_error=stop_on_error,
                                     max_steps=max_steps, duration_seconds=duration_seconds,
                                     poll_interval=poll_interval)
        if backtest_start is None or backtest_end is None:
            raise ConfigurationError("a backtest needs backtest_start and backtest_end ('YYYY-MM-DD')")
        if configure_logs:
            self._configure_logging()
        data_path = Path(data_dir) if data_dir is not None else default_data_dir()
        try:
            backtest = BacktestConfig(
                exchange=self.config.exchange,
                market_type=self.config.market_type,
                contract_type=self.config.contract_type,
                margin_mode=self.config.margin_mode,
                position_mode=self.config.position_mode,
                leverage=risk_config.leverage,
                start_ms=parse_date_ms(backtest_start),
                end_ms=inclusive_end_ms(backtest_end),
                initial_capital=initial_capital,
                simulation=simulation if isinstance(simulation, SimulationConfig) else SimulationConfig(**(simulation or {})),
                market_specs=market_specs or {},
                data_dir=data_path,
                cache_dir=Path(os.environ.get("METAEXPERT_CACHE_DIR", Path.home() / ".metaexpert" / "data")),
                allow_download=data_path is None,
                close_at_end=close_at_end,
                stop_on_error=stop_on_error,
            )
        except ValidationError as error:
            raise _config_error(error, "backtest settings") from None
        recorder = self.open_recorder(TradeMode.BACKTEST, strategy)  # only with an explicit storage_url
        run_uid = None
        if recorder is not None:
            observers = [*(observers or []), recorder.observe]
            run_uid = recorder.store.backtest_runs.start(
                self.name, parameters={"strategy": strategy.model_dump(mode="json"), "initial_capital": initial_capital},
                data_start_ms=backtest.start_ms, data_end_ms=backtest.end_ms)
        try:
            result = run_backtest(
                handlers=self.handlers,
                strategy=strategy,
                config=backtest,
                risk_factory=lambda: RiskManager(risk_config),
                compliance_factory=self.compliance_gate,
                progress=progress,
                expert_name=self.name,
                observers=observers,
                candle_source=candle_source,
            )
            if recorder is not None and run_uid is not None:
                recorder.flush()
                recorder.store.backtest_runs.finish(run_uid, dict(result.metrics))
        except BaseException as error:
            if recorder is not None and run_uid is not None:
                recorder.store.backtest_runs.fail(run_uid, error)
            raise
        finally:
            if recorder is not None:
                recorder.close()
        if report:
            safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_") or "expert"
            target = Path(output_dir) if output_dir else Path("output") / f"{safe_name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
            print_summary(result)
            write_json(result, target / "result.json")
            html = write_html_report(result, target / "report.html", display_timezone=self.config.display_timezone)
            logger.info("report written to %s", html)
            result.parameters["report_path"] = str(html)
        return result

    def _order_queue_path(self) -> Path:
        """The live gateway's durable order queue, beside the write-ahead journal."""
        config = self.config
        directory = Path(config.journal_dir) if config.journal_dir else Path("var") / "journal"
        return directory / f"orders-{config.exchange}-{config.market_type}.sqlite"

    def exchange_config(self, mode: TradeMode) -> Any:
        """The gateway settings for paper/live mode (validated by the exchanges feature)."""
        from metaexpert.exchanges import ExchangeConfig

        config = self.config
        try:
            return ExchangeConfig(
                exchange=config.exchange, market_type=config.market_type, contract_type=config.contract_type,
                margin_mode=config.margin_mode if config.market_type is not MarketType.SPOT else None,
                position_mode=config.position_mode, api_key=config.api_key, api_secret=config.api_secret,
                api_passphrase=config.api_passphrase, subaccount=config.subaccount, base_url=config.base_url,
                testnet=config.testnet, demo=config.demo, proxy=config.proxy, rate_limit_per_minute=config.rate_limit,
                trade_mode=mode, order_queue_path=self._order_queue_path() if mode is TradeMode.LIVE else None,
            )
        except ValidationError as error:
            raise _config_error(error, "exchange settings") from None

    def _run_trading(self, mode: TradeMode, strategy: StrategyConfig, risk_config: RiskConfig, *,
                     initial_capital: float, simulation: Any, observers: Any, stop_on_error: bool,
                     max_steps: int | None, duration_seconds: float | None, poll_interval: float) -> Any:
        import asyncio

        from metaexpert.engine.runtime import TradingRuntime
        from metaexpert.exchanges import CcxtGateway

        notifier = self.notifier()
        recorder = self.open_recorder(mode, strategy)

        async def trade() -> Any:
            gateway = CcxtGateway(self.exchange_config(mode))
            try:
                runtime = TradingRuntime(
                    handlers=self.handlers, strategy=strategy, gateway=gateway, trade_mode=mode,
                    risk=RiskManager(risk_config, notifier=notifier), notifier=notifier, initial_capital=initial_capital, leverage=risk_config.leverage,
                    margin_mode=self.config.margin_mode if self.config.market_type is not MarketType.SPOT else None,
                    position_mode=self.config.position_mode, market_type=self.config.market_type,
                    simulation=simulation if isinstance(simulation, SimulationConfig) else SimulationConfig(**(simulation or {})),
                    observers=observers, poll_interval=poll_interval, stop_on_error=stop_on_error,
                    compliance=self.compliance_gate(), persistence=recorder,
                )
                return await runtime.run(max_steps=max_steps, duration_seconds=duration_seconds)
            finally:
                await gateway.close()

        try:
            return asyncio.run(trade())
        finally:
            if recorder is not None:
                recorder.close()

    def open_recorder(self, mode: TradeMode, strategy: StrategyConfig | None = None) -> Any | None:
        """The ``ExpertRecorder`` that persists a run: always in paper/live mode (default
        SQLite file ``var/metaexpert.sqlite``), in a backtest only with an explicit storage_url.
        Upgrades the schema first, or with ``upgrade_schema=False`` checks it and raises
        ``SchemaOutOfDateError`` naming the exact upgrade command."""
        config = self.config
        if mode is TradeMode.BACKTEST and config.storage_url is None:
            return None  # before the imports: a plain backtest loads no database layer
        from metaexpert.engine.persistence import ExpertRecorder, PersistenceConfig
        from metaexpert.storage import DEFAULT_DATABASE_URL

        try:
            persistence = PersistenceConfig(
                storage_url=config.storage_url or DEFAULT_DATABASE_URL, on_database_down=config.on_database_down,
                upgrade_schema=config.upgrade_schema,
                journal_directory=Path(config.journal_dir) if config.journal_dir else None)
        except ValidationError as error:
            raise _config_error(error, "storage settings") from None
        configuration = config.model_dump(mode="json", exclude={"api_key", "api_secret", "api_passphrase"})
        if strategy is not None:
            configuration["strategy"] = strategy.model_dump(mode="json")

        def on_storage_error(error: BaseException) -> None:
            logger.error("storage: %s", error)

        return ExpertRecorder.open(persistence, expert_name=self.name, trade_mode=mode,
                                   exchange=str(config.exchange), market_type=str(config.market_type),
                                   configuration=configuration, on_error=on_storage_error)

    def compliance_gate(self) -> Any | None:
        """The compliance gate bound to this expert's venue, or None without compliance_config."""
        if self.config.compliance_config is None:
            return None
        gate = ComplianceGate(self.config.compliance_config)
        return gate.bind(exchange=self.config.exchange, market_type=self.config.market_type)

    def notifier(self) -> Any | None:
        """The Apprise notifier for this expert's alerts, or None when none is configured."""
        if not self.config.notification_urls and not self.config.notification_config:
            return None
        from metaexpert.notify import AppriseNotifier, NotificationConfig

        try:
            config = NotificationConfig(urls=self.config.notification_urls,
                                        config_file=self.config.notification_config,
                                        title_prefix=f"MetaExpert {self.name}")
            return AppriseNotifier(config)
        except (ValidationError, ValueError) as error:
            raise ConfigurationError(f"invalid notification settings: {error}") from None

    def _configure_logging(self) -> None:
        configure_logging(self.logging_config)
