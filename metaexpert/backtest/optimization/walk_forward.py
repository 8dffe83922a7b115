"""Walk-forward analysis: optimise on a past window, then trade the next, unseen window.

Windows are consecutive periods ``[in_start, in_end)`` then ``[out_start, out_end)`` with
``in_end == out_start``: the optimisation of a window can only ever read candles that
close before its out-of-sample period starts (the runner reads ``timestamp < end``).
*Rolling* windows slide a fixed-length in-sample period; *anchored* ones keep the first
start and grow. A train/test split is the one-window case.

The out-of-sample curves are stitched by compounding each window's returns, which is
what trading the re-optimised strategy through time would have produced. Robustness:

* walk-forward efficiency = annualised out-of-sample return / annualised in-sample
  return (Pardo); near or above 0.5 suggests the in-sample edge survives;
* parameter stability per parameter: how much the chosen value moves between windows,
  as the standard deviation over the range width (0 = always the same value), and how
  often the most frequent value was chosen.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metaexpert.backtest.metrics import drawdown_pct
from metaexpert.backtest.optimization.execution import PassOutcome, PassRequest
from metaexpert.backtest.optimization.fitness import Fitness
from metaexpert.backtest.optimization.search import (
    BatchEvaluator,
    ScoredPass,
    SearchResult,
    SearchSettings,
    search,
)
from metaexpert.backtest.optimization.spaces import ParameterSpace
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS

logger = logging.getLogger("metaexpert.optimization")

WindowMode = Literal["rolling", "anchored", "split"]


class WalkForwardSettings(BaseModel):
    """Window layout. Lengths in days; ``step_days`` defaults to the out-of-sample length.

    ``mode="split"`` ignores the lengths: one in-sample window of ``train_fraction`` of the
    period, then the rest as out-of-sample.
    """

    model_config = ConfigDict(extra="forbid")

    mode: WindowMode = "rolling"
    in_sample_days: int = Field(default=365, ge=1)
    out_of_sample_days: int = Field(default=90, ge=1)
    step_days: int | None = Field(default=None, ge=1)
    train_fraction: float = Field(default=0.7, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> WalkForwardSettings:
        if (
            self.step_days is not None
            and self.mode == "rolling"
            and self.step_days > self.out_of_sample_days
        ):
            raise ValueError(
                f"step_days ({self.step_days}) > out_of_sample_days ({self.out_of_sample_days}) "
                "would leave periods untested"
            )
        return self


@dataclass(frozen=True, slots=True)
class Window:
    index: int
    in_start_ms: int
    in_end_ms: int
    out_start_ms: int
    out_end_ms: int


def build_windows(start: int | str, end: int | str, settings: WalkForwardSettings) -> list[Window]:
    """The windows covering ``[start, end)`` (epoch ms or 'YYYY-MM-DD'); the last OOS may be shorter."""
    start_ms = start if isinstance(start, int) else parse_date_ms(start)
    end_ms = end if isinstance(end, int) else parse_date_ms(end)
    if end_ms <= start_ms:
        raise ConfigurationError("walk-forward end must be after its start")
    if settings.mode == "split":
        cut = start_ms + int((end_ms - start_ms) * settings.train_fraction) // DAY_MS * DAY_MS
        if cut <= start_ms or cut >= end_ms:
            raise ConfigurationError(
                "the period is too short to split into whole training and test days"
            )
        return [Window(0, start_ms, cut, cut, end_ms)]
    in_ms = settings.in_sample_days * DAY_MS
    out_ms = settings.out_of_sample_days * DAY_MS
    step_ms = (settings.step_days or settings.out_of_sample_days) * DAY_MS
    windows: list[Window] = []
    out_start = start_ms + in_ms
    while out_start < end_ms:
        in_start = start_ms if settings.mode == "anchored" else out_start - in_ms
        windows.append(
            Window(len(windows), in_start, out_start, out_start, min(out_start + out_ms, end_ms))
        )
        out_start += step_ms
    if not windows:
        days = (end_ms - start_ms) / DAY_MS
        raise ConfigurationError(
            f"the period has {days:.0f} days, not enough for one {settings.in_sample_days}-day "
            "in-sample window plus an out-of-sample one"
        )
    return windows


@dataclass(slots=True)
class WindowResult:
    window: Window
    search: SearchResult
    best: ScoredPass | None
    out_of_sample: PassOutcome | None
    out_of_sample_score: float | None

    @property
    def in_sample_metrics(self) -> dict[str, Any]:
        return self.best.metrics if self.best is not None else {}

    @property
    def out_of_sample_metrics(self) -> dict[str, Any]:
        return self.out_of_sample.metrics if self.out_of_sample is not None else {}


@dataclass(slots=True)
class WalkForwardResult:
    settings: WalkForwardSettings
    fitness: Fitness
    search_settings: SearchSettings
    initial_capital: float
    windows: list[WindowResult] = field(default_factory=list)
    equity_timestamps: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    equity: np.ndarray = field(default_factory=lambda: np.empty(0))
    summary: dict[str, Any] = field(default_factory=dict)


def walk_forward(
    space: ParameterSpace,
    evaluate: BatchEvaluator,
    *,
    start: int | str,
    end: int | str,
    settings: WalkForwardSettings,
    fitness: Fitness,
    search_settings: SearchSettings,
    initial_capital: float,
    on_window: Callable[[WindowResult], None] | None = None,
) -> WalkForwardResult:
    """Optimise every in-sample window, run its best parameters out of sample, stitch and summarise."""
    windows = build_windows(start, end, settings)
    result = WalkForwardResult(settings, fitness, search_settings, initial_capital)
    for window in windows:
        found = search(
            space,
            evaluate,
            start_ms=window.in_start_ms,
            end_ms=window.in_end_ms,
            fitness=fitness,
            settings=search_settings,
        )
        best = found.best
        out: PassOutcome | None = None
        out_score = None
        if best is None:
            logger.warning(
                "window %d: no in-sample pass met the fitness guards (%s); out-of-sample skipped",
                window.index,
                fitness.describe(),
            )
        else:
            out = evaluate(
                [
                    PassRequest(
                        best.parameters, window.out_start_ms, window.out_end_ms, keep_equity=True
                    )
                ]
            )[0]
            out_score = None if out.failed else fitness.score(out.metrics)
        window_result = WindowResult(window, found, best, out, out_score)
        result.windows.append(window_result)
        if on_window is not None:
            on_window(window_result)
    result.equity_timestamps, result.equity = stitch_equity(result.windows, initial_capital)
    result.summary = robustness_summary(result, space)
    return result


def stitch_equity(
    windows: list[WindowResult], initial_capital: float
) -> tuple[np.ndarray, np.ndarray]:
    """Chain out-of-sample curves: each window's returns compound on the previous window's end."""
    stamps: list[np.ndarray] = []
    values: list[np.ndarray] = []
    capital = initial_capital
    usable = [
        item.out_of_sample
        for item in windows
        if item.out_of_sample is not None
        and not item.out_of_sample.failed
        and item.out_of_sample.equity is not None
        and item.out_of_sample.equity.size
    ]
    for position, out in enumerate(usable):
        keep = np.ones(out.equity.size, dtype=bool)
        if position + 1 < len(
            usable
        ):  # overlapping windows (step < out-of-sample length): next window takes over
            keep = out.equity_timestamps < usable[position + 1].start_ms
        if not keep.any():
            continue
        scaled = out.equity[keep] / initial_capital * capital
        stamps.append(out.equity_timestamps[keep])
        values.append(scaled)
        capital = float(scaled[-1])
    if not values:
        return np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(stamps), np.concatenate(values)


def _annualised(metrics: dict[str, Any], days: float) -> float | None:
    total = metrics.get("total_return_pct")
    if total is None or days <= 0:
        return None
    growth = 1.0 + float(total) / 100.0
    if growth <= 0:
        return -100.0
    return (growth ** (365.0 / days) - 1.0) * 100.0


def robustness_summary(result: WalkForwardResult, space: ParameterSpace) -> dict[str, Any]:
    """Walk-forward efficiency, out-of-sample totals and parameter stability."""
    efficiencies, in_returns, out_returns = [], [], []
    profitable = 0
    tested = 0
    for item in result.windows:
        window = item.window
        if item.best is None or item.out_of_sample is None or item.out_of_sample.failed:
            continue
        tested += 1
        in_annual = _annualised(
            item.in_sample_metrics, (window.in_end_ms - window.in_start_ms) / DAY_MS
        )
        out_annual = _annualised(
            item.out_of_sample_metrics, (window.out_end_ms - window.out_start_ms) / DAY_MS
        )
        if in_annual is not None and out_annual is not None:
            in_returns.append(in_annual)
            out_returns.append(out_annual)
            if in_annual > 0:
                efficiencies.append(out_annual / in_annual)
        if (item.out_of_sample_metrics.get("total_return_pct") or 0.0) > 0:
            profitable += 1
    mean_in = float(np.mean(in_returns)) if in_returns else None
    mean_out = float(np.mean(out_returns)) if out_returns else None
    efficiency = (
        mean_out / mean_in if mean_in is not None and mean_out is not None and mean_in > 0 else None
    )
    equity = result.equity
    total_out = float((equity[-1] / result.initial_capital - 1.0) * 100.0) if equity.size else None
    depth = (
        float(np.max(np.abs(drawdown_pct(result.initial_capital, equity)))) if equity.size else None
    )
    return {
        "windows": len(result.windows),
        "windows_tested": tested,
        "profitable_out_of_sample_windows": profitable,
        "walk_forward_efficiency": _finite(efficiency),
        "median_window_efficiency": _finite(float(np.median(efficiencies)))
        if efficiencies
        else None,
        "mean_in_sample_annualized_return_pct": _finite(mean_in),
        "mean_out_of_sample_annualized_return_pct": _finite(mean_out),
        "out_of_sample_total_return_pct": _finite(total_out),
        "out_of_sample_max_drawdown_pct": _finite(depth),
        "parameter_stability": parameter_stability(
            [item.best.parameters for item in result.windows if item.best], space
        ),
    }


def parameter_stability(
    chosen: list[dict[str, Any]], space: ParameterSpace
) -> dict[str, dict[str, Any]]:
    """Per parameter: the values chosen per window, the most frequent one and how steady the choice was."""
    stability: dict[str, dict[str, Any]] = {}
    for name, parameter in space.parameters.items():
        values = [parameters[name] for parameters in chosen if name in parameters]
        if not values:
            continue
        counts = Counter(map(repr, values))
        mode_repr, mode_count = counts.most_common(1)[0]
        entry: dict[str, Any] = {
            "values": values,
            "mode": next(v for v in values if repr(v) == mode_repr),
            "mode_share": mode_count / len(values),
        }
        width = parameter.width()
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric and width:
            entry["normalized_std"] = float(np.std(np.asarray(values, dtype=float)) / width)
        stability[name] = entry
    return stability


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
