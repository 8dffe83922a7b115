"""The settings of one ``MetaExpert.run``, typed per mode.

``expert.run(trade_mode=...)`` stays the one switch between modes; what only a backtest
needs (period, data, reports) and what only paper/live trading needs (how long to poll)
travel in their own settings object instead of one flat list of keyword arguments:

    expert.run("backtest", BacktestRunSettings(backtest_start="2024-01-01", backtest_end="2024-12-31"))
    expert.run("paper", TradingRunSettings(max_steps=20))

The keyword form (``expert.run("backtest", backtest_start=..., initial_capital=...)``) is
validated into the same object, so a setting of the other mode or a misspelt one is an error
naming it, not silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.config import SimulationConfig

__all__ = ["BacktestRunSettings", "RunSettings", "TradingRunSettings", "run_settings_for"]


class RunSettings(BaseModel):
    """What every mode accepts."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    initial_capital: float = Field(
        default=10_000.0,
        gt=0,
        allow_inf_nan=False,
        description="paper/backtest starting capital (live: the venue's balance)",
    )
    symbol: str | list[str] | None = Field(
        default=None, description="override on_init's symbol (or symbols)"
    )
    timeframe: str | None = Field(default=None, description="override on_init's base timeframe")
    parameters: dict[str, Any] | None = Field(
        default=None, description="override on_init's strategy parameters"
    )
    simulation: SimulationConfig = Field(
        default_factory=SimulationConfig, description="simulated fills (backtest and paper)"
    )
    stop_on_error: bool = False
    configure_logs: bool = True
    observers: list[Callable[[Any], None]] = Field(
        default_factory=list, description="receive every engine event"
    )

    @field_validator("simulation", mode="before")
    @classmethod
    def _simulation(cls, value: Any) -> Any:
        return SimulationConfig() if value is None else value

    @field_validator("observers", mode="before")
    @classmethod
    def _observers(cls, value: Any) -> Any:
        return [] if value is None else value

    def overrides(self) -> dict[str, Any]:
        """The on_init overrides these settings carry (symbol, timeframe, parameters)."""
        values: dict[str, Any] = {}
        if self.symbol:
            values["symbol"] = self.symbol
        if self.timeframe:
            values["timeframe"] = self.timeframe
        return {**values, **(self.parameters or {})}


class BacktestRunSettings(RunSettings):
    """A backtest: the period, where the candles are, and what to report."""

    backtest_start: str | datetime | None = None
    backtest_end: str | datetime | None = None
    data_dir: str | Path | None = None
    output_dir: str | Path | None = None
    progress: Callable[[int, int], None] | None = None
    report: bool = True
    market_specs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    close_at_end: bool = False
    candle_source: Any | None = Field(
        default=None, description="a CandleSource with candles already in memory"
    )
    data: Any | None = Field(
        default=None,
        description="the backtest's own candles: a polars or pandas frame, a dict "
        "symbol -> frame, a CSV or Parquet file, or a store folder",
    )

    @field_validator("market_specs", mode="before")
    @classmethod
    def _specs(cls, value: Any) -> Any:
        return {} if value is None else value


class TradingRunSettings(RunSettings):
    """A paper or live run: until ``max_steps`` polls, ``duration_seconds`` or ``ctx.stop()``."""

    max_steps: int | None = Field(default=None, ge=1)
    duration_seconds: float | None = Field(default=None, gt=0)
    poll_interval: float = Field(default=1.0, ge=0)


_SETTINGS: dict[TradeMode, type[RunSettings]] = {
    TradeMode.BACKTEST: BacktestRunSettings,
    TradeMode.PAPER: TradingRunSettings,
    TradeMode.LIVE: TradingRunSettings,
}


def run_settings_for(
    mode: TradeMode, settings: RunSettings | None, options: dict[str, Any]
) -> RunSettings:
    """``settings`` (or the mode's defaults) with the keyword ``options`` on top, validated.

    Raises ``ConfigurationError`` naming a setting that does not apply to ``mode`` (with the
    ones that do) or that has a wrong value."""
    kind = _SETTINGS[mode]
    if settings is not None and not isinstance(settings, kind):
        raise ConfigurationError(
            f"a {mode} run takes {kind.__name__}, not {type(settings).__name__}"
        )
    unknown = sorted(set(options) - set(kind.model_fields))
    if unknown:
        other = [
            name for name in unknown if any(name in k.model_fields for k in _SETTINGS.values())
        ]
        hint = f" ({', '.join(other)} apply to another mode)" if other else ""
        raise ConfigurationError(
            f"run(trade_mode={str(mode)!r}) got unknown setting(s) {unknown}{hint}; "
            f"a {mode} run takes: {', '.join(sorted(kind.model_fields))}"
        )
    # The fields themselves, not a dump: observers and candle sources are kept as they are.
    given = (
        {name: getattr(settings, name) for name in settings.model_fields_set}
        if settings is not None
        else {}
    )
    values = {**given, **options}
    try:
        return kind(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in issue['loc']) or 'value'}: {issue['msg'].removeprefix('Value error, ')}"
            for issue in error.errors()
        )
        raise ConfigurationError(f"invalid {mode} run settings: {problems}") from None
