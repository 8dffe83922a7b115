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
import sys
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
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from metaexpert.backtest.report import print_summary, write_html_report, write_json
from metaexpert.backtest.runner import BacktestConfig, load_backtest_data, run_backtest
from metaexpert.compliance import ComplianceConfig
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
from metaexpert.engine.assembly import (
    MonitoringPlan,
    RecorderIdentity,
    RunBuilder,
    RunPlan,
    VenueSettings,
    make_compliance_gate,
    make_notifier,
    open_recorder,
)
from metaexpert.engine.config import StrategyConfig
from metaexpert.engine.failures import RunFailure
from metaexpert.engine.handlers import Handler, HandlerRegistry
from metaexpert.engine.parameters import coerce_parameter
from metaexpert.engine.run_settings import (
    BacktestRunSettings,
    RunSettings,
    TradingRunSettings,
    run_settings_for,
)
from metaexpert.observability.alerts import AlertRule
from metaexpert.observability.logging import LoggingConfig, configure_logging
from metaexpert.observability.masking import MINIMUM_SECRET_LENGTH, mask_text, register_secret
from metaexpert.risk import RiskConfig

logger = logging.getLogger("metaexpert.expert")


class ExpertConfig(BaseModel):
    """Everything the MetaExpert constructor accepts, validated.

    Text, flags and counts are strict (``b"binance"``, ``"yes"`` or ``1.5`` are refused,
    not converted); a wrong value names the field in a ``ConfigurationError``.
    """

    model_config = ConfigDict(extra="forbid")

    exchange: Exchange = Exchange.BINANCE
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_passphrase: SecretStr | None = None
    subaccount: StrictStr | None = None
    base_url: StrictStr | None = None
    testnet: StrictBool = False
    demo: StrictBool = Field(
        default=False, description="Binance/Bybit demo trading (ccxt enable_demo_trading)"
    )
    proxy: StrictStr | None = None
    market_type: MarketType = MarketType.SPOT
    contract_type: ContractType | None = None
    margin_mode: MarginMode = MarginMode.ISOLATED
    position_mode: PositionMode = PositionMode.ONEWAY
    log_level: StrictStr = "INFO"
    log_file: StrictStr | None = "expert.log"
    log_trade_file: StrictStr | None = "trades.log"
    log_error_file: StrictStr | None = "errors.log"
    log_to_file: StrictBool = True
    log_to_console: StrictBool = True
    json_logging: StrictBool = False
    log_dir: StrictStr = "logs"
    rate_limit: StrictInt = Field(
        default=1200, ge=1, le=100_000, description="exchange requests per minute"
    )
    storage_url: StrictStr | None = Field(
        default=None,
        description="database for trading state; None: "
        "sqlite:///var/metaexpert.sqlite in paper/live, nothing in backtests",
    )
    on_database_down: Literal["buffer", "stop"] = Field(
        default="buffer",
        description="database unreachable: keep trading and buffer, or stop safely",
    )
    upgrade_schema: StrictBool = Field(
        default=True, description="False: only check the schema and name the upgrade command"
    )
    journal_dir: StrictStr | None = Field(
        default=None, description="write-ahead journal; default var/journal/<expert>-<mode>"
    )
    display_timezone: StrictStr = "UTC"
    notification_urls: list[StrictStr] = Field(
        default_factory=list, description="Apprise URLs for alerts"
    )
    notification_config: StrictStr | None = Field(
        default=None, description="Apprise config file (URLs with tags)"
    )
    compliance_config: ComplianceConfig | None = Field(
        default=None, description="jurisdiction rule sets, verifier"
    )
    jurisdiction: StrictStr | None = Field(
        default=None, description="active jurisdiction in compliance_config"
    )
    metrics_port: StrictInt | None = Field(
        default=None,
        ge=0,
        le=65_535,
        description="paper/live: Prometheus metrics at http://127.0.0.1:<port>/metrics (0: a free port)",
    )
    alert_rules: list[AlertRule] = Field(
        default_factory=list,
        description="paper/live: alerts on error_rate, staleness or drawdown, "
        "sent to the notification targets",
    )
    alert_interval_seconds: StrictFloat | StrictInt = Field(
        default=15.0, gt=0, le=3_600, description="how often the alert rules are checked"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bytes(cls, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            message = (
                f"must be text, not bytes ({bytes(value)[:20]!r}): write it without the b prefix"
            )
            raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
        return value

    @field_validator("api_key", "api_secret", "api_passphrase", mode="before")
    @classmethod
    def _credential(cls, value: Any) -> Any:
        if value is None or isinstance(value, SecretStr):
            return value
        if not isinstance(value, str):
            message = f"must be text (the key the exchange shows), not {type(value).__name__}"
            raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
        text = value.strip()
        if len(text) < MINIMUM_SECRET_LENGTH or any(ord(char) < 32 for char in text):
            raise ValueError(
                f"is not an exchange credential: it needs at least {MINIMUM_SECRET_LENGTH} "
                "printable characters (leave it out for paper trading)"
            )
        return text

    @field_validator(
        "log_dir",
        "log_file",
        "log_trade_file",
        "log_error_file",
        "journal_dir",
        "notification_config",
    )
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("a file name cannot contain a NUL character")
        return value

    @field_validator("display_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')"
            ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExpertConfig:
        if self.market_type is MarketType.SPOT:
            if self.contract_type is not None:
                raise ValueError(
                    "contract_type applies to futures and options only; remove it for spot"
                )
            if self.position_mode is PositionMode.HEDGE:
                raise ValueError(
                    "position_mode='hedge' exists only for futures; spot positions are one-way"
                )
        elif self.contract_type is None:
            self.contract_type = ContractType.LINEAR
        if self.alert_rules and not (self.notification_urls or self.notification_config):
            raise ValueError(
                "alert_rules need a target: give notification_urls (Apprise URLs) or "
                "notification_config"
            )
        if self.jurisdiction is not None:
            if self.compliance_config is None:
                raise ValueError(
                    "jurisdiction needs compliance_config with that jurisdiction's rule set"
                )
            self.compliance_config = ComplianceConfig.model_validate(
                {**self.compliance_config.model_dump(), "jurisdiction": self.jurisdiction}
            )
        return self

    def check_for_mode(self, trade_mode: TradeMode) -> None:
        """Checks that depend on how the expert runs (keys are needed only live)."""
        if trade_mode is TradeMode.LIVE:
            passphrase = self.api_passphrase
            if self.api_key is None or self.api_secret is None:
                # The environment or ``metaexpert secrets set``: the gateway's settings take the
                # keys from there (this check used to refuse them before it could).
                from metaexpert.exchanges.credentials import load_credentials

                found = load_credentials(self.exchange, subaccount=self.subaccount)
                if found is None:
                    variable = f"METAEXPERT_{self.exchange.value.upper()}_API"
                    raise ConfigurationError(
                        f"live trading on {self.exchange} needs api_key and api_secret: give "
                        f"them to MetaExpert, set {variable}_KEY and {variable}_SECRET, or save "
                        f"them with `metaexpert secrets set --exchange {self.exchange}`"
                    )
                passphrase = passphrase or found.api_passphrase
            if self.exchange is Exchange.OKX and passphrase is None:
                raise ConfigurationError(
                    "live trading on OKX needs api_passphrase (OKX API keys have a passphrase)"
                )


def _config_error(
    error: ValidationError, what: str, names: dict[str, str] | None = None
) -> ConfigurationError:
    """One line naming each field the user wrote (``names`` maps model fields to keyword names)."""

    def field(location: tuple[Any, ...]) -> str:
        parts = [str(part) for part in location]
        if parts and names:
            parts[0] = names.get(parts[0], parts[0])
        return ".".join(parts) or "value"

    problems = "; ".join(
        f"{field(issue['loc'])}: {issue['msg'].removeprefix('Value error, ')}"
        for issue in error.errors(include_url=False, include_input=False)
    )
    return ConfigurationError(f"invalid {what}: {problems}")


def _check_handler(decorator: str, handler: Any) -> None:
    if not callable(handler):
        raise ConfigurationError(
            f"@expert.{decorator} decorates a function, got {type(handler).__name__} "
            f"{handler!r:.60}"
        )


def _check_interval(decorator: str, field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(
            f"@expert.{decorator}: {field} must be a timeframe such as '1h', "
            f"not {type(value).__name__} {value!r:.40}"
        )


_RISK_FIELDS = frozenset(RiskConfig.model_fields)
_STRATEGY_FIELDS = frozenset(StrategyConfig.model_fields) - {"symbols", "parameters"}

#: The candle timeframes each venue serves (ccxt's ``exchange.timeframes``, checked on this
#: machine with ccxt 4): a backtest's base timeframe must be one of them, or there is no data.
VENUE_TIMEFRAMES: dict[str, tuple[str, ...]] = {
    "binance": (
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1M",
    ),
    "bybit": ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w", "1M"),
    "okx": ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w", "1M", "3M"),
}


def inclusive_end_ms(value: str | datetime) -> int:
    """A date-only end ('2024-12-31') includes that whole day; a datetime is exclusive."""
    end = parse_date_ms(value)
    if isinstance(value, str) and len(value.strip()) == 10:
        end += DAY_MS
    return end


def _trade_mode(value: str | TradeMode) -> TradeMode:
    try:
        return TradeMode(value)
    except ValueError:
        raise ConfigurationError(
            f"invalid trade_mode {value!r}: expected backtest, paper or live"
        ) from None


def default_data_dir() -> Path | None:
    """``METAEXPERT_DATA_DIR``, else the shared recordings beside the repository, if present."""
    configured = os.environ.get("METAEXPERT_DATA_DIR")
    if configured:
        return Path(configured)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if shared.is_dir() else None


def _default_name(handler: Handler) -> str:
    """The expert's name without ``strategy_name``: its file's stem (``sma_cross.py`` ->
    ``sma_cross``), the same for ``python sma_cross.py``, ``metaexpert run sma_cross.py`` and an
    import; it names the run in logs, metrics, reports and the database. (The CLI loader runs a
    file under a private module name, which used to become the name:
    ``metaexpert_user_sma_cross_e03808b36b``.)"""
    source = getattr(getattr(handler, "__code__", None), "co_filename", "")
    stem = Path(source).stem if source and not source.startswith("<") else ""
    if stem and stem != "__init__":
        return stem
    module = getattr(handler, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module and module != "__main__" else "expert"


def _exit_if_script_run_failed(outcome: Any) -> None:
    """``python expert.py`` exits 1, as ``metaexpert run``/``backtest`` do, when the run it
    started had handler errors or was stopped by one (it used to exit 0 and look like a run
    that made no trades). Only for ``run()`` called by the script itself (``__main__``): a
    program or an optimiser that calls ``run()`` gets the result and decides."""
    failure = RunFailure.of(outcome)
    if not failure.failed:
        return
    lines = [f"error: {failure.headline()}", *(f"  {line}" for line in failure.errors[:20])]
    print(mask_text("\n".join(lines)), file=sys.stderr)
    raise SystemExit(1)


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
            self.logging_config = LoggingConfig(
                **self.config.model_dump(include=set(LoggingConfig.model_fields))
            )
        except ValidationError as error:
            raise _config_error(error, "logging settings") from None
        self.handlers = HandlerRegistry()
        self._init_options: dict[str, Any] | None = None
        self.name = "expert"
        self.declared_parameter_space: Any | None = None

    def __repr__(self) -> str:
        return f"MetaExpert(exchange={self.config.exchange}, market_type={self.config.market_type}, name={self.name!r})"

    # ------------------------------------------------------------------ decorators
    # Every decorator works with and without parentheses, as in the original MetaExpert
    # template: ``@expert.on_deinit`` and ``@expert.on_deinit()`` register the same handler.
    def on_init(self, handler: Handler | None = None, /, **options: Any) -> Any:
        """Declare the strategy (symbol, timeframe, sizing, stops, limits, filters, parameters)."""
        self.strategy_config(options)  # validate now: errors point at the decorator
        self._init_options = options

        def register(handler: Handler) -> Handler:
            _check_handler("on_init", handler)
            self.handlers.add("init", handler)
            if options.get("strategy_name") is None:
                self.name = _default_name(handler)
            else:
                self.name = str(options["strategy_name"])
            return handler

        return register(handler) if handler is not None else register

    def _simple(event: str) -> Callable[..., Any]:  # type: ignore[misc]
        def decorator(self: MetaExpert, handler: Handler | None = None, /) -> Any:
            def register(handler: Handler) -> Handler:
                _check_handler(f"on_{event}", handler)
                self.handlers.add(event, handler)
                return handler

            return register(handler) if handler is not None else register

        decorator.__name__ = f"on_{event}"
        decorator.__doc__ = (
            f"Register a handler for the {event!r} event: ``@expert.on_{event}`` "
            f"or ``@expert.on_{event}()``."
        )
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

    def on_bar(self, timeframe: str | Handler = "1h") -> Any:
        """Register ``handler(ctx, bars)`` for closed bars of ``timeframe`` (several allowed);
        bare ``@expert.on_bar`` means the default 1h."""
        if callable(timeframe):
            return self.on_bar()(timeframe)
        _check_interval("on_bar", "timeframe", timeframe)

        def register(handler: Handler) -> Handler:
            _check_handler("on_bar", handler)
            self.handlers.add_bar(timeframe, handler)
            return handler

        return register

    def on_timer(self, interval: str | Handler = "1m") -> Any:
        """Register ``handler(ctx)`` to fire every ``interval`` of (simulated or real) UTC time;
        bare ``@expert.on_timer`` means every minute."""
        if callable(interval):
            return self.on_timer()(interval)
        _check_interval("on_timer", "interval", interval)

        def register(handler: Handler) -> Handler:
            _check_handler("on_timer", handler)
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
                raise ConfigurationError(
                    f"parameter_space names {sorted(unknown)}, which on_init does not declare"
                )
        self.declared_parameter_space = space
        return space

    # ------------------------------------------------------------------ configuration
    def strategy_config(self, options: dict[str, Any]) -> tuple[StrategyConfig, RiskConfig]:
        """Validate on_init's options: ``ConfigurationError`` naming the field, never a bare error."""
        if not isinstance(options, dict):
            raise ConfigurationError(
                f"on_init options must be keyword arguments, not {type(options).__name__}"
            )
        options = dict(options)
        symbol = options.pop("symbol", None)
        if symbol is None:
            raise ConfigurationError("on_init needs symbol= (for example symbol='BTCUSDT')")
        strategy_values = {
            key: options.pop(key) for key in list(options) if key in _STRATEGY_FIELDS
        }
        strategy_values.pop("symbol", None)
        risk_values = {key: options.pop(key) for key in list(options) if key in _RISK_FIELDS}
        try:
            strategy = StrategyConfig(symbols=symbol, parameters=options, **strategy_values)
        except ValidationError as error:
            raise _config_error(error, "on_init strategy settings", {"symbols": "symbol"}) from None
        listed = VENUE_TIMEFRAMES.get(self.config.exchange.value)
        if listed is not None and strategy.timeframe not in listed:
            raise ConfigurationError(
                f"invalid on_init strategy settings: timeframe: {self.config.exchange.value} has no "
                f"{strategy.timeframe} candles; use one of {', '.join(listed)} (on_bar may use any multiple "
                "of it, resampled)"
            )
        risk = RiskConfig.from_options(risk_values)
        if self.config.market_type is MarketType.SPOT and risk.leverage != 1:
            raise ConfigurationError(
                "invalid on_init risk settings: leverage: applies to futures; spot trades at 1x"
            )
        return strategy, risk

    def settings_for(
        self, trade_mode: TradeMode, overrides: dict[str, Any] | None = None
    ) -> tuple[StrategyConfig, RiskConfig]:
        """The strategy and risk settings a ``trade_mode`` run uses: the mode is checked against
        the configuration and on_init's options (with ``overrides`` on top) are validated.

        An override that is neither a strategy nor a risk setting must be a parameter on_init
        declares (a typo names the declared ones) and is typed like its declared default."""
        self.config.check_for_mode(trade_mode)
        if self._init_options is None:
            raise ConfigurationError(
                "the expert has no @expert.on_init(symbol=..., timeframe=...) handler"
            )
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigurationError(
                f"parameters must be a dict of name=value, not {type(overrides).__name__}"
            )
        declared = {
            key: value
            for key, value in self._init_options.items()
            if key != "symbol" and key not in _STRATEGY_FIELDS and key not in _RISK_FIELDS
        }
        typed = {
            key: value
            if key == "symbol" or key in _STRATEGY_FIELDS or key in _RISK_FIELDS
            else coerce_parameter(key, value, declared)
            for key, value in (overrides or {}).items()
        }
        return self.strategy_config({**self._init_options, **typed})

    # ------------------------------------------------------------------ running
    def run(
        self,
        trade_mode: str | TradeMode = TradeMode.BACKTEST,
        settings: RunSettings | None = None,
        **options: Any,
    ) -> Any:
        """Run the expert. ``trade_mode`` is "backtest", "paper" or "live".

        The mode's settings are a ``BacktestRunSettings`` or a ``TradingRunSettings``
        (``metaexpert.engine.run_settings``), or the same names as keywords:
        ``expert.run("backtest", backtest_start="2024-01-01", backtest_end="2024-12-31",
        initial_capital=10_000)``, ``expert.run("paper", max_steps=20)``.

        Paper and live mode run until ``max_steps`` polls, ``duration_seconds``, or
        ``ctx.stop()``, and return the engine (positions, orders, fills). In a backtest,
        the result is a ``BacktestResult``; ``report`` prints the summary and writes JSON and HTML reports to
        ``output_dir`` (default ``output/<expert>-<UTC time>``). ``parameters`` override
        strategy parameters from on_init (an optimiser passes them this way), and
        ``candle_source`` (a ``CandleSource``) lets it reuse candles already in memory.
        ``data`` is a backtest's own candles: a polars or pandas frame, a dict ``symbol -> frame``,
        a CSV or Parquet file, or a store folder (see ``backtest.data_source.candle_source_for``).
        """
        mode = _trade_mode(trade_mode)
        chosen = run_settings_for(mode, settings, options)
        plan = self.plan(mode, chosen)
        if isinstance(chosen, BacktestRunSettings):
            outcome = self._run_backtest(plan, chosen)
        else:
            assert isinstance(chosen, TradingRunSettings)
            if chosen.configure_logs:
                self._configure_logging()
            outcome = self._run_trading(plan, chosen)
        if sys._getframe(1).f_globals.get("__name__") == "__main__":
            _exit_if_script_run_failed(outcome)
        return outcome

    def plan(self, trade_mode: str | TradeMode, settings: RunSettings | None = None) -> RunPlan:
        """What a ``trade_mode`` run of this expert is made of, validated (``RunBuilder(plan)`` builds it)."""
        mode = _trade_mode(trade_mode)
        settings = settings if settings is not None else run_settings_for(mode, None, {})
        strategy, risk_config = self.settings_for(mode, settings.overrides())
        config = self.config
        derivative = config.market_type is not MarketType.SPOT
        venue = VenueSettings(
            exchange=config.exchange,
            market_type=config.market_type,
            contract_type=config.contract_type,
            margin_mode=config.margin_mode if derivative else None,
            position_mode=config.position_mode if derivative else PositionMode.ONEWAY,
        )
        trading = mode is not TradeMode.BACKTEST
        return RunPlan(
            expert_name=self.name,
            trade_mode=mode,
            handlers=self.handlers,
            strategy=strategy,
            risk=risk_config,
            venue=venue,
            simulation=settings.simulation,
            exchange=self.exchange_config(mode) if trading else None,
            persistence=self._persistence_config(mode),
            recorder_identity=self._recorder_identity(strategy),
            compliance=config.compliance_config,
            notification=self._notification_config() if trading else None,
            initial_capital=settings.initial_capital,
            stop_on_error=settings.stop_on_error,
            observers=list(settings.observers),
            **(self._monitoring() if trading else {}),
        )

    def _monitoring(self) -> dict[str, Any]:
        """The run's metrics and where they go, when ``metrics_port`` or ``alert_rules`` ask."""
        config = self.config
        if config.metrics_port is None and not config.alert_rules:
            return {}
        from metaexpert.observability.metrics import ExpertMetrics

        return {
            "metrics": ExpertMetrics(self.name),
            "monitoring": MonitoringPlan(
                metrics_port=config.metrics_port,
                alert_rules=tuple(config.alert_rules),
                alert_interval_seconds=config.alert_interval_seconds,
            ),
        }

    def builder(
        self,
        trade_mode: str | TradeMode,
        settings: RunSettings | None = None,
        *,
        notifier: Any | None = None,
    ) -> RunBuilder:
        """The ``RunBuilder`` of a ``trade_mode`` run (used by the CLI, the Prefect tasks, the supervisor);
        ``notifier`` replaces the one the notification settings would make."""
        return RunBuilder(self.plan(trade_mode, settings), notifier=notifier)

    def reconfigure(self, **overrides: Any) -> None:
        """Change constructor settings after loading (``base_url`` for a sandbox, a rate limit...),
        validated like the constructor; an unknown name is a ``ConfigurationError`` naming it."""
        if not overrides:
            return
        unknown = set(overrides) - set(ExpertConfig.model_fields)
        if unknown:
            raise ConfigurationError(
                f"unknown expert setting(s) {sorted(unknown)}; "
                f"known: {', '.join(sorted(ExpertConfig.model_fields))}"
            )
        values = {
            **self.config.model_dump(exclude_unset=True),
            **overrides,
        }  # secrets stay SecretStr
        try:
            config = ExpertConfig(**values)
        except ValidationError as error:
            raise _config_error(error, "MetaExpert configuration") from None
        for secret in (config.api_key, config.api_secret, config.api_passphrase):
            if secret is not None:
                register_secret(secret.get_secret_value())
        self.config = config

    def _run_backtest(self, plan: RunPlan, settings: BacktestRunSettings) -> Any:
        if settings.backtest_start is None or settings.backtest_end is None:
            raise ConfigurationError(
                "a backtest needs backtest_start and backtest_end ('YYYY-MM-DD')"
            )
        if settings.configure_logs:
            self._configure_logging()
        data_path = Path(settings.data_dir) if settings.data_dir is not None else default_data_dir()
        venue = plan.venue
        try:
            backtest = BacktestConfig(
                exchange=venue.exchange,
                market_type=venue.market_type,
                contract_type=venue.contract_type,
                margin_mode=venue.margin_mode or self.config.margin_mode,
                position_mode=venue.position_mode,
                leverage=plan.risk.leverage,
                start_ms=parse_date_ms(settings.backtest_start),
                end_ms=inclusive_end_ms(settings.backtest_end),
                initial_capital=plan.initial_capital,
                simulation=plan.simulation,
                market_specs=settings.market_specs,
                data_dir=data_path,
                cache_dir=Path(
                    os.environ.get("METAEXPERT_CACHE_DIR", Path.home() / ".metaexpert" / "data")
                ),
                allow_download=data_path is None,
                close_at_end=settings.close_at_end,
                stop_on_error=plan.stop_on_error,
            )
        except ValidationError as error:
            raise _config_error(error, "backtest settings") from None
        # Loaded and validated before anything is recorded: bad candles leave no run row, order or report.
        loaded = load_backtest_data(
            handlers=plan.handlers,
            strategy=plan.strategy,
            config=backtest,
            candle_source=settings.candle_source,
            data=settings.data,
        )
        builder = RunBuilder(plan)
        recorder = builder.open_recorder()  # only with an explicit storage_url
        run_uid = None
        if recorder is not None:
            run_uid = recorder.store.backtest_runs.start(
                self.name,
                parameters={
                    "strategy": plan.strategy.model_dump(mode="json"),
                    "initial_capital": plan.initial_capital,
                },
                data_start_ms=backtest.start_ms,
                data_end_ms=backtest.end_ms,
            )
        try:
            result = run_backtest(
                handlers=plan.handlers,
                strategy=plan.strategy,
                config=backtest,
                parts=builder.parts(recorder),
                progress=settings.progress,
                expert_name=self.name,
                loaded=loaded,
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
        if settings.report:
            safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_") or "expert"
            target = (
                Path(settings.output_dir)
                if settings.output_dir
                else Path("output") / f"{safe_name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
            )
            print_summary(result)
            write_json(result, target / "result.json")
            html = write_html_report(
                result, target / "report.html", display_timezone=self.config.display_timezone
            )
            logger.info("report written to %s", html)
            result.parameters["report_path"] = str(html)
        return result

    def _run_trading(self, plan: RunPlan, settings: TradingRunSettings) -> Any:
        import asyncio

        builder = RunBuilder(plan)

        async def trade() -> Any:
            async with builder.trading(poll_interval=settings.poll_interval) as runtime:
                return await runtime.run(
                    max_steps=settings.max_steps, duration_seconds=settings.duration_seconds
                )

        return asyncio.run(trade())

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
                exchange=config.exchange,
                market_type=config.market_type,
                contract_type=config.contract_type,
                margin_mode=config.margin_mode
                if config.market_type is not MarketType.SPOT
                else None,
                position_mode=config.position_mode,
                api_key=config.api_key,
                api_secret=config.api_secret,
                api_passphrase=config.api_passphrase,
                subaccount=config.subaccount,
                base_url=config.base_url,
                testnet=config.testnet,
                demo=config.demo,
                proxy=config.proxy,
                rate_limit_per_minute=config.rate_limit,
                trade_mode=mode,
                order_queue_path=self._order_queue_path() if mode is TradeMode.LIVE else None,
            )
        except ValidationError as error:
            raise _config_error(error, "exchange settings") from None

    def _persistence_config(self, mode: TradeMode) -> Any | None:
        """Storage settings: always in paper/live mode (default SQLite file ``var/metaexpert.sqlite``),
        in a backtest only with an explicit storage_url (then no database layer is even imported)."""
        config = self.config
        if mode is TradeMode.BACKTEST and config.storage_url is None:
            return None
        from metaexpert.engine.persistence import PersistenceConfig
        from metaexpert.storage import DEFAULT_DATABASE_URL

        try:
            return PersistenceConfig(
                storage_url=config.storage_url or DEFAULT_DATABASE_URL,
                on_database_down=config.on_database_down,
                upgrade_schema=config.upgrade_schema,
                journal_directory=Path(config.journal_dir) if config.journal_dir else None,
            )
        except ValidationError as error:
            raise _config_error(error, "storage settings") from None

    def _recorder_identity(self, strategy: StrategyConfig | None) -> RecorderIdentity:
        config = self.config
        configuration = config.model_dump(
            mode="json", exclude={"api_key", "api_secret", "api_passphrase"}
        )
        if strategy is not None:
            configuration["strategy"] = strategy.model_dump(mode="json")
        return RecorderIdentity(
            exchange=str(config.exchange),
            market_type=str(config.market_type),
            configuration=configuration,
        )

    def _notification_config(self) -> Any | None:
        if not self.config.notification_urls and not self.config.notification_config:
            return None
        from metaexpert.notify import NotificationConfig

        try:
            return NotificationConfig(
                urls=self.config.notification_urls,
                config_file=self.config.notification_config,
                title_prefix=f"MetaExpert {self.name}",
            )
        except (ValidationError, ValueError) as error:
            raise ConfigurationError(f"invalid notification settings: {error}") from None

    def open_recorder(self, mode: TradeMode, strategy: StrategyConfig | None = None) -> Any | None:
        """The ``ExpertRecorder`` that persists a run: always in paper/live mode (default
        SQLite file ``var/metaexpert.sqlite``), in a backtest only with an explicit storage_url.
        Upgrades the schema first, or with ``upgrade_schema=False`` checks it and raises
        ``SchemaOutOfDateError`` naming the exact upgrade command."""
        return open_recorder(
            self._persistence_config(mode),
            expert_name=self.name,
            trade_mode=mode,
            identity=self._recorder_identity(strategy),
        )

    def compliance_gate(self) -> Any | None:
        """The compliance gate bound to this expert's venue, or None without compliance_config."""
        config = self.config
        return make_compliance_gate(
            config.compliance_config,
            VenueSettings(
                exchange=config.exchange,
                market_type=config.market_type,
                contract_type=config.contract_type,
                margin_mode=None,
                position_mode=config.position_mode,
            ),
        )

    def notifier(self) -> Any | None:
        """The Apprise notifier for this expert's alerts, or None when none is configured."""
        return make_notifier(self._notification_config())

    def _configure_logging(self) -> None:
        configure_logging(self.logging_config)
