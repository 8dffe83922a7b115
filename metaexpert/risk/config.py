"""Risk configuration, validated once at the edge.

Field names are flat on purpose: they are the keyword arguments a user passes to
``@expert.on_init(...)`` (``stop_loss_pct=2.0, max_open_positions=3``). Nested settings
(volatility sizing, filters, circuit breaker) accept plain dicts. Every bound is checked
here so the rules themselves never have to re-validate numbers while trading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from metaexpert.core.enums import SizeType
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import Timeframe

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_HOURS_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

VolatilityMeasure = Literal["atr", "realized"]


def _check_timeframe(value: str | None) -> str | None:
    if value is None:
        return None
    return str(Timeframe.parse(value))


def _accepts_bool(annotation: Any) -> bool:
    return annotation is bool or any(_accepts_bool(argument) for argument in get_args(annotation))


class _Strict(BaseModel):
    """No unknown keys, no NaN or infinity, and no True/False where a number belongs
    (pydantic would read ``leverage=True`` as 1x)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_flag_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and not _accepts_bool(field.annotation):
                raise ValueError(f"must be a number or text, not {value}")
        return value


class VolatilitySizingConfig(_Strict):
    """Scale position size so that the measured volatility matches ``target_pct``.

    The scale is ``target_pct / volatility_pct`` (volatility as a percent of price, from
    ATR or realised volatility of log returns), clipped to ``[min_scale, max_scale]``:
    calm markets get bigger positions, wild markets smaller ones.
    """

    measure: VolatilityMeasure = "atr"
    period: int = Field(14, ge=1, le=10_000)
    target_pct: float = Field(gt=0, le=100)
    min_scale: float = Field(0.1, gt=0)
    max_scale: float = Field(3.0, gt=0)
    timeframe: str | None = None

    @field_validator("timeframe")
    @classmethod
    def _valid_timeframe(cls, value: str | None) -> str | None:
        return _check_timeframe(value)

    @model_validator(mode="after")
    def _scales_ordered(self) -> VolatilitySizingConfig:
        if self.min_scale > self.max_scale:
            raise ValueError(
                f"volatility_sizing.min_scale ({self.min_scale}) must not exceed max_scale ({self.max_scale})"
            )
        return self


class VolatilityFilterConfig(_Strict):
    """Allow entries only while volatility (percent of price) lies within ``[min_pct, max_pct]``."""

    measure: VolatilityMeasure = "atr"
    period: int = Field(14, ge=1, le=10_000)
    min_pct: float | None = Field(None, ge=0)
    max_pct: float | None = Field(None, gt=0)
    timeframe: str | None = None

    @field_validator("timeframe")
    @classmethod
    def _valid_timeframe(cls, value: str | None) -> str | None:
        return _check_timeframe(value)

    @model_validator(mode="after")
    def _bounds(self) -> VolatilityFilterConfig:
        if self.min_pct is None and self.max_pct is None:
            raise ValueError("volatility_filter needs min_pct, max_pct or both")
        if self.min_pct is not None and self.max_pct is not None and self.min_pct >= self.max_pct:
            raise ValueError(
                f"volatility_filter.min_pct ({self.min_pct}) must be below max_pct ({self.max_pct})"
            )
        return self


class TrendFilterConfig(_Strict):
    """Long entries only above the moving average, short entries only below it."""

    indicator: Literal["ema", "sma"] = "ema"
    period: int = Field(200, ge=1, le=10_000)
    timeframe: str | None = None
    allow_long: bool = True
    allow_short: bool = True

    @field_validator("timeframe")
    @classmethod
    def _valid_timeframe(cls, value: str | None) -> str | None:
        return _check_timeframe(value)


class CircuitBreakerConfig(_Strict):
    """Pause entries on a symbol when its price range within ``window_minutes`` exceeds ``move_pct``.

    The range is (highest - lowest) / lowest over the window, fed by closed bars (their
    high and low) and by ticks. Entries resume ``cooldown_minutes`` after the last trip.
    """

    move_pct: float = Field(gt=0, le=1_000)
    window_minutes: float = Field(gt=0, le=60 * 24 * 31)
    cooldown_minutes: float = Field(gt=0, le=60 * 24 * 31)


class RiskConfig(_Strict):
    """Every risk setting of one expert. All optional except sizing, which has defaults.

    Percentages are in percent (2.0 means 2 %). ``daily_loss_limit`` is an amount in the
    settlement currency, measured from the equity at the start of the UTC day.
    ``size_type=fixed_base``: ``size_value`` coins of the base asset in every market (on a
    linear contract of 0.01 BTC, 0.01 is 1 contract); refused on inverse contracts, whose
    contracts are worth a fixed quote amount: use ``fixed_quote`` there.
    """

    size_type: SizeType = SizeType.PERCENT_EQUITY
    size_value: float = Field(10.0, gt=0)
    max_position_size_quote: float | None = Field(None, gt=0)
    volatility_sizing: VolatilitySizingConfig | None = None
    leverage: float = Field(1.0, ge=1.0, le=1_000)
    leverage_policy: Literal["error", "clamp"] = "error"

    stop_loss_pct: float | None = Field(None, gt=0, lt=100)
    take_profit_pct: float | None = Field(None, gt=0, le=10_000)
    trailing_stop_pct: float | None = Field(None, gt=0, lt=100)
    trailing_activation_pct: float | None = Field(None, gt=0, le=10_000)
    breakeven_pct: float | None = Field(None, gt=0, le=10_000)

    max_drawdown_pct: float | None = Field(None, gt=0, le=100)
    flatten_on_max_drawdown: bool = False
    daily_loss_limit: float | None = Field(None, gt=0)

    max_open_positions: int | None = Field(None, ge=1)
    max_positions_per_symbol: int | None = Field(None, ge=1)

    max_spread_pct: float | None = Field(None, gt=0, le=100)
    max_slippage_pct: float | None = Field(None, gt=0, le=100)
    trade_hours: str | None = None
    allowed_days: list[str] | None = None
    min_volume: float | None = Field(None, ge=0)
    volatility_filter: VolatilityFilterConfig | None = None
    trend_filter: TrendFilterConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None

    @field_validator(
        "stop_loss_pct",
        "take_profit_pct",
        "trailing_stop_pct",
        "trailing_activation_pct",
        "breakeven_pct",
        "max_drawdown_pct",
        "max_spread_pct",
        "max_slippage_pct",
        mode="before",
    )
    @classmethod
    def _percent_text(cls, value: Any) -> Any:
        """``"20%"`` is 20.0: the explicit way to write a percentage (and 0.2 % as ``"0.2%"``)."""
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1])
            except ValueError:
                raise ValueError(f"{value!r:.40} is not a percentage such as '20%' or 20") from None
        return value

    @field_validator("max_drawdown_pct", mode="before")
    @classmethod
    def _not_a_fraction(cls, value: Any) -> Any:
        # The original MetaExpert template wrote fractions (max_drawdown_pct=0.2 for 20 %);
        # here it would mean 0.2 % and halt trading on the first wiggle. A drawdown limit
        # below 1 % is almost surely such a fraction: ask for the unambiguous spelling.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
            raise ValueError(
                f"{value} is read as {value} %, not {value * 100:g} %: percentages are in percent here. "
                f"Write max_drawdown_pct={value * 100:g} for {value * 100:g} %, or max_drawdown_pct='{value}%' "
                f"if you mean {value} %"
            )
        return value

    @field_validator("trade_hours")
    @classmethod
    def _valid_hours(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_trade_hours(value)
        return value.strip()

    @field_validator("allowed_days", mode="before")
    @classmethod
    def _valid_days(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = [part for part in re.split(r"[\s,]+", value) if part]
        if not isinstance(value, (list, tuple, set, frozenset)):
            message = (
                f"must name days such as ['mon', 'tue'] or 'mon,tue', not {type(value).__name__}"
            )
            raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
        days: list[str] = []
        for item in value:
            if not isinstance(item, str):
                message = f"unknown day {item!r:.40}: use {', '.join(DAY_NAMES)}"
                raise ValueError(message)  # noqa: TRY004 - pydantic reports only ValueError
            name = item.strip().lower()
            name = _FULL_DAY_NAMES.get(name, name)
            if name not in DAY_NAMES:
                raise ValueError(f"unknown day {item!r}: use {', '.join(DAY_NAMES)}")
            if name not in days:
                days.append(name)
        if not days:
            raise ValueError("allowed_days must name at least one day (or be left out)")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if (
            self.size_type in (SizeType.PERCENT_EQUITY, SizeType.RISK_BASED)
            and self.size_value > 100
        ):
            raise ValueError(
                f"size_value {self.size_value} is a percentage for size_type={self.size_type.value}: "
                "it must be in (0, 100]"
            )
        if self.trailing_activation_pct is not None and self.trailing_stop_pct is None:
            raise ValueError("trailing_activation_pct needs trailing_stop_pct")
        if self.flatten_on_max_drawdown and self.max_drawdown_pct is None:
            raise ValueError("flatten_on_max_drawdown needs max_drawdown_pct")
        return self

    # ------------------------------------------------------------------ helpers
    @classmethod
    def from_options(
        cls, options: Mapping[str, Any] | None = None, /, **keywords: Any
    ) -> RiskConfig:
        """Build from keyword arguments; raises ``ConfigurationError`` with one line per problem."""
        merged = {**(options or {}), **keywords}
        try:
            return cls.model_validate(merged)
        except ValidationError as error:
            raise ConfigurationError(
                describe_validation_error(error, "risk configuration")
            ) from None

    @classmethod
    def split_options(cls, options: Mapping[str, Any]) -> tuple[RiskConfig, dict[str, Any]]:
        """Separate risk keywords from the rest of an ``on_init`` call and validate them.

        Returns the config and the options that are not risk settings (symbol, timeframe...).
        """
        names = set(cls.model_fields)
        risk = {key: value for key, value in options.items() if key in names}
        rest = {key: value for key, value in options.items() if key not in names}
        return cls.from_options(risk), rest


def describe_validation_error(error: ValidationError, what: str) -> str:
    """A readable multi-line message: ``field.path: message`` per problem, input values kept out."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in problem["loc"]) or "(config)"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {location}: {message}")
    return f"invalid {what}:\n" + "\n".join(lines)


def parse_trade_hours(text: str) -> tuple[int, int]:
    """``"08:00-20:00"`` -> (480, 1200) minutes of the UTC day. End may be ``24:00``; may wrap midnight."""
    match = _HOURS_PATTERN.match(text)
    if not match:
        raise ValueError(
            f"trade_hours {text!r} must look like 'HH:MM-HH:MM' (UTC), e.g. '08:00-20:00'"
        )
    start_hour, start_minute, end_hour, end_minute = (int(group) for group in match.groups())
    for hour, minute in ((start_hour, start_minute), (end_hour, end_minute)):
        if minute > 59 or hour > 24 or (hour == 24 and minute != 0):
            raise ValueError(f"trade_hours {text!r} has an invalid time {hour:02d}:{minute:02d}")
    start = start_hour * 60 + start_minute
    end = end_hour * 60 + end_minute
    if start == 24 * 60:
        raise ValueError(f"trade_hours {text!r} cannot start at 24:00")
    if start == end:
        raise ValueError(f"trade_hours {text!r} is empty: start and end are equal")
    return start, end
