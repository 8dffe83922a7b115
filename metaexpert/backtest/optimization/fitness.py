"""Fitness: one number per pass that the search maximises, with guards against flukes.

A pass with too few trades has a meaningless Sharpe or profit factor (one lucky trade
gives a perfect score), so every built-in fitness refuses passes below ``min_trades``
and, optionally, above ``max_drawdown_pct``: a refused pass scores ``None`` and ranks
below every scored pass. ``"expert"`` uses the expert's own ``on_backtest`` handler,
whose return value the runner stores as ``metrics["fitness"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FitnessName = Literal[
    "sharpe",
    "sortino",
    "calmar",
    "profit_factor",
    "return_over_max_drawdown",
    "expectancy",
    "total_return",
    "expert",
]

#: The metric behind each built-in fitness.
FITNESS_METRICS: dict[str, str] = {
    "sharpe": "sharpe_ratio",
    "sortino": "sortino_ratio",
    "calmar": "calmar_ratio",
    "profit_factor": "profit_factor",
    "expectancy": "expectancy",
    "total_return": "total_return_pct",
    "expert": "fitness",
}

#: A profit factor without a losing trade is undefined (None in the metrics); it is capped here.
PROFIT_FACTOR_CAP = 100.0


class Fitness(BaseModel):
    """Which score to maximise and which passes to refuse.

    ``min_trades`` guards statistics built on too few round trips; ``max_drawdown_pct``
    (percent, e.g. 30) refuses passes that fell deeper than that.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: FitnessName = "sharpe"
    min_trades: int = Field(default=5, ge=0)
    max_drawdown_pct: float | None = Field(default=None, gt=0, le=100)

    def score(self, metrics: Mapping[str, Any]) -> float | None:
        """The pass's score, or ``None`` when the guards refuse it or the metric is undefined."""
        trades = int(metrics.get("number_of_trades") or 0)
        if trades < self.min_trades:
            return None
        drawdown = metrics.get("max_drawdown_pct")
        if (
            self.max_drawdown_pct is not None
            and drawdown is not None
            and abs(float(drawdown)) > self.max_drawdown_pct
        ):
            return None
        if self.name == "return_over_max_drawdown":
            total = metrics.get("total_return_pct")
            if total is None:
                return None
            depth = abs(float(drawdown or 0.0))
            value = float(total) / depth if depth > 0 else (float(total) if total <= 0 else None)
        elif self.name == "profit_factor":
            raw = metrics.get("profit_factor")
            if raw is None:  # no losing trade: perfect if there were wins, else undefined
                value = PROFIT_FACTOR_CAP if (metrics.get("winning_trades") or 0) > 0 else None
            else:
                value = min(float(raw), PROFIT_FACTOR_CAP)
        else:
            raw = metrics.get(FITNESS_METRICS[self.name])
            value = None if raw is None else float(raw)
        if value is None or not math.isfinite(value):
            return None
        return value

    def describe(self) -> str:
        guards = [f"min {self.min_trades} trades"]
        if self.max_drawdown_pct is not None:
            guards.append(f"max drawdown {self.max_drawdown_pct:g}%")
        return f"{self.name} ({', '.join(guards)})"


def fitness_from(value: Fitness | str | Mapping[str, Any] | None) -> Fitness:
    """Accept a Fitness, a name (``"sharpe"``) or its dict form."""
    if value is None:
        return Fitness()
    if isinstance(value, Fitness):
        return value
    if isinstance(value, str):
        return Fitness(name=value)  # type: ignore[arg-type]
    return Fitness.model_validate(dict(value))
