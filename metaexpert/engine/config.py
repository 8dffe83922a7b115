"""Engine configuration: how the simulation fills, and what the strategy declared in on_init."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metaexpert.core.enums import IntrabarPath
from metaexpert.core.timeframe import Timeframe
from metaexpert.engine.funding import FundingMode


class SimulationConfig(BaseModel):
    """How the simulated broker turns orders into fills (backtest and paper mode).

    Fees default to the market's maker/taker rates; ``maker_fee``/``taker_fee`` override
    them (fractions: 0.001 = 0.1%).
    """

    model_config = ConfigDict(extra="forbid")

    fill_market_on: Literal["next_open", "close"] = "next_open"
    intrabar_path: IntrabarPath = IntrabarPath.OPEN_NEAREST_FIRST
    maker_fee: float | None = Field(default=None, ge=0, lt=0.1)
    taker_fee: float | None = Field(default=None, ge=0, lt=0.1)
    slippage: Literal["none", "fixed", "volume"] = "none"
    slippage_pct: float = Field(default=0.0, ge=0, lt=50)
    slippage_impact_pct: float = Field(default=10.0, ge=0)
    slippage_max_pct: float = Field(default=5.0, ge=0)
    max_volume_participation: float | None = Field(default=None, gt=0, le=1)
    liquidation: bool = True
    maintenance_margin_rate: float | None = Field(default=None, ge=0, lt=1)
    funding: FundingMode = Field(default=FundingMode.RECORDED, description="perpetuals: 'recorded' funding rates "
                                 "(refused when none are found) or 'none'")


class StrategyConfig(BaseModel):
    """What the expert declared in ``@expert.on_init(...)`` besides risk settings."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[str]
    timeframe: str = "1h"
    lookback_bars: int = Field(default=100, ge=0)
    warmup_bars: int = Field(default=0, ge=0)
    strategy_id: int | str | None = None
    strategy_name: str = "expert"
    comment: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("symbols", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        symbols = [str(symbol).upper().replace("/", "").replace("-", "") for symbol in value]
        if not symbols:
            raise ValueError("at least one symbol is needed")
        return symbols

    @field_validator("timeframe")
    @classmethod
    def _valid_timeframe(cls, value: str) -> str:
        return str(Timeframe.parse(value))

    @property
    def symbol(self) -> str:
        return self.symbols[0]
