"""Engine configuration: how the simulation fills, and what the strategy declared in on_init."""

from __future__ import annotations

import re
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
    funding: FundingMode = Field(
        default=FundingMode.RECORDED,
        description="perpetuals: 'recorded' funding rates (refused when none are found) or 'none'",
    )

    def market_overrides(self) -> dict[str, float]:
        """The ``MarketSpec`` fields this simulation sets (fees, maintenance margin rate)."""
        chosen = {
            "maker_fee": self.maker_fee,
            "taker_fee": self.taker_fee,
            "maintenance_margin_rate": self.maintenance_margin_rate,
        }
        return {name: value for name, value in chosen.items() if value is not None}


#: Upper bound of lookback_bars/warmup_bars: ten years of 5-minute bars. Larger values are
#: typing mistakes (``10**400`` used to pass and overflow later).
MAX_BARS = 1_100_000
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}(-[A-Z0-9]{1,12}){0,4}$")
_EXPIRY = re.compile(r"^(\d{6}|\d{8}|\d{1,2}[A-Z]{3}\d{2})$")


def engine_symbol(text: str) -> str:
    """The engine's key for a user symbol: a pair loses its separators (``btc/usdt``,
    ``BTC-USDT``, ``BTC-USDT-SWAP`` are ``BTCUSDT``); a dated contract keeps its expiry apart
    (``BTCUSDT_261225`` is ``BTCUSDT-261225``) and an option keeps every part
    (``BTC-26DEC25-100000-C``), because the venue modules read expiry, strike and kind from them
    (collapsed, ``BTC26DEC25100000C`` named no market on any venue)."""
    parts = [part for part in re.split(r"[-_]", text.strip().upper().replace("/", "")) if part]
    if len(parts) >= 4 and parts[-1] in {"C", "P"}:
        return "-".join(parts)
    if len(parts) >= 2 and parts[-1] in {"SWAP", "PERP"}:
        parts = parts[:-1]
    if len(parts) >= 2 and _EXPIRY.match(parts[-1]):
        return "".join(parts[:-1]) + "-" + parts[-1]
    return "".join(parts)


def pair_of(symbol: str) -> str:
    """The pair an engine symbol trades, without expiry, strike and kind: ``BTCUSD-261225`` is
    ``BTCUSD``, ``BTC-USD-261225-100000-C`` is ``BTC-USD``, ``BTC-26DEC25-100000-C`` is ``BTC``
    (its quote is the venue's). Split whole, ``BTCUSD-261225`` read as base BTCUSD quoted in
    261225 (an inverse contract of 10 USD where COIN-M's are 100)."""
    parts = symbol.split("-")
    if len(parts) >= 4 and parts[-1] in {"C", "P"}:
        return "-".join(parts[:-3])
    if len(parts) == 2 and _EXPIRY.match(parts[1]):
        return parts[0]
    return symbol


#: ``symbol="*"``: every symbol the candle source lists (a portfolio universe, backtest/universe.py)
ALL_SYMBOLS = "*"


class StrategyConfig(BaseModel):
    """What the expert declared in ``@expert.on_init(...)`` besides risk settings.

    ``max_consecutive_errors``: a handler that raises this many times in a row stops the
    run with a clear reason (a strategy that fails on every bar cannot trade); 0 never stops.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    symbols: list[str]
    timeframe: str = "1h"
    lookback_bars: int = Field(default=100, ge=0, le=MAX_BARS)
    warmup_bars: int = Field(default=0, ge=0, le=MAX_BARS)
    strategy_id: int | str | None = None
    strategy_name: str = Field(default="expert", min_length=1, max_length=200)
    comment: str = Field(default="", max_length=10_000)
    max_consecutive_errors: int = Field(default=5, ge=0, le=1_000_000)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("symbols", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            message = (
                f"must be a symbol such as 'BTCUSDT' or a list of them, not {type(value).__name__}"
            )
            raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
        symbols = []
        for item in value:
            if not isinstance(item, str):
                message = (
                    f"a symbol is text such as 'BTCUSDT', not {type(item).__name__} {item!r:.40}"
                )
                raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
            symbol = engine_symbol(item)
            if symbol == ALL_SYMBOLS:  # every symbol of the candle source (a portfolio universe)
                symbols.append(symbol)
                continue
            if not _SYMBOL.match(symbol):
                raise ValueError(f"{item!r:.40} is not a symbol such as 'BTCUSDT' or 'BTC/USDT'")
            if symbol not in symbols:
                symbols.append(symbol)
        if not symbols:
            raise ValueError("at least one symbol is needed")
        return symbols

    @field_validator("timeframe", mode="before")
    @classmethod
    def _valid_timeframe(cls, value: Any) -> str:
        if not isinstance(value, str):
            message = f"must be a timeframe such as '1h', not {type(value).__name__}"
            raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
        return str(Timeframe.parse(value))

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(
                    f"strategy parameter names are identifiers such as 'fast_period', not {name!r:.40}"
                )
        return value

    @property
    def symbol(self) -> str:
        return self.symbols[0]
