"""Supervisor settings (pydantic, from a YAML file): which experts, their limits, restarts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError

#: ``expert.run`` keyword arguments a supervised expert may set (everything else is the supervisor's).
RUN_OPTIONS = frozenset(
    {
        "backtest_start",
        "backtest_end",
        "initial_capital",
        "data_dir",
        "symbol",
        "timeframe",
        "parameters",
        "simulation",
        "market_specs",
        "close_at_end",
        "stop_on_error",
        "max_steps",
        "duration_seconds",
        "poll_interval",
    }
)


class ExpertProcessConfig(BaseModel):
    """One expert run in its own OS process with its own limits."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    file: Path
    trade_mode: TradeMode = TradeMode.BACKTEST
    run: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments for expert.run"
    )
    memory_limit_mb: int | None = Field(
        default=None, ge=256, description="RLIMIT_AS (address space) in MiB"
    )
    cpu_seconds: int | None = Field(
        default=None, ge=1, description="RLIMIT_CPU: CPU time before SIGXCPU"
    )
    requests_per_minute: int | None = Field(
        default=None, ge=1, description="this expert's exchange request budget"
    )
    restart_on_crash: bool = True
    environment: dict[str, str] = Field(default_factory=dict)

    @field_validator("file")
    @classmethod
    def _exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"expert file {value} does not exist")
        if value.suffix != ".py":
            raise ValueError(f"expert file {value} is not a Python file")
        return value.resolve()

    @field_validator("run")
    @classmethod
    def _run_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - RUN_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown run option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(RUN_OPTIONS))}"
            )
        return value


class SupervisorConfig(BaseModel):
    """Every supervised expert, the restart policy, alerts and the metrics endpoint."""

    model_config = ConfigDict(extra="forbid")

    experts: list[ExpertProcessConfig] = Field(min_length=1)
    max_restarts: int = Field(default=3, ge=0, le=100)
    backoff_initial_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    account_requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="the exchange account's budget, shared by every expert on it",
    )
    notification_urls: list[str] = Field(default_factory=list)
    run_dir: Path = Path("output/supervisor")
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    poll_interval_seconds: float = Field(default=0.2, gt=0, le=10)
    stop_grace_seconds: float = Field(default=5.0, ge=0)
    python: str = sys.executable

    @model_validator(mode="after")
    def _consistent(self) -> SupervisorConfig:
        names = [expert.name for expert in self.experts]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"expert names must be unique; repeated: {', '.join(duplicates)}")
        if self.account_requests_per_minute is not None:
            budgets = [
                expert.requests_per_minute
                for expert in self.experts
                if expert.trade_mode is not TradeMode.BACKTEST
            ]
            if any(budget is None for budget in budgets):
                raise ValueError(
                    "with account_requests_per_minute, every paper/live expert needs requests_per_minute"
                )
            total = sum(budget or 0 for budget in budgets)
            if total > self.account_requests_per_minute:
                raise ValueError(
                    f"the experts' requests_per_minute add up to {total}, above the account's "
                    f"{self.account_requests_per_minute}"
                )
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> SupervisorConfig:
        source = Path(path)
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"supervisor configuration {source} does not exist") from None
        except yaml.YAMLError as error:
            raise ConfigurationError(
                f"supervisor configuration {source} is not valid YAML: {error}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"supervisor configuration {source} must be a mapping with an 'experts' list"
            )
        base = source.resolve().parent
        for expert in data.get("experts") or []:
            if (
                isinstance(expert, dict)
                and "file" in expert
                and not Path(str(expert["file"])).is_absolute()
            ):
                expert["file"] = str(base / str(expert["file"]))
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in issue['loc']) or 'value'}: "
                f"{issue['msg'].removeprefix('Value error, ')}"
                for issue in error.errors()
            )
            raise ConfigurationError(
                f"invalid supervisor configuration {source}: {problems}"
            ) from None
