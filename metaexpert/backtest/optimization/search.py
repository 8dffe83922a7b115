"""Search methods over a parameter space: grid, seeded random, and Optuna's TPE.

Every method hands batches of parameter sets to an ``evaluate`` callable (a local pool,
or Prefect tasks on a cluster) and gets scored passes back, so the method does not know
where passes run. Results come back in request order, and every random choice comes
from the seed, so the same seed gives the same passes and the same best result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metaexpert.backtest.optimization.execution import PassOutcome, PassRequest
from metaexpert.backtest.optimization.fitness import Fitness
from metaexpert.backtest.optimization.spaces import ParameterSpace
from metaexpert.core.errors import ConfigurationError

logger = logging.getLogger("metaexpert.optimization")

BatchEvaluator = Callable[[Sequence[PassRequest]], list[PassOutcome]]
SearchMethod = Literal["grid", "random", "tpe"]


class SearchSettings(BaseModel):
    """How to search: method, budget (ignored by grid), seed, batch size for TPE."""

    model_config = ConfigDict(extra="forbid")

    method: SearchMethod = "tpe"
    trials: int = Field(default=50, ge=1, description="passes to run (random, tpe)")
    seed: int = 0
    batch_size: int = Field(
        default=4, ge=1, description="TPE passes asked per round (run in parallel)"
    )
    max_grid_size: int = Field(default=100_000, ge=1)


@dataclass(slots=True)
class ScoredPass:
    """A pass with its fitness (``None`` = refused by the guards, or failed)."""

    number: int
    parameters: dict[str, Any]
    score: float | None
    metrics: dict[str, Any]
    error: str | None = None
    outcome: PassOutcome | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "pass": self.number,
            **self.parameters,
            "fitness": self.score,
            **{
                key: self.metrics.get(key)
                for key in (
                    "total_return_pct",
                    "max_drawdown_pct",
                    "sharpe_ratio",
                    "profit_factor",
                    "number_of_trades",
                )
            },
            "error": self.error,
        }


@dataclass(slots=True)
class SearchResult:
    """Every pass of one search over one period, best first via ``ranked()``."""

    method: str
    start_ms: int
    end_ms: int
    fitness: Fitness
    space: ParameterSpace
    passes: list[ScoredPass] = field(default_factory=list)
    seed: int = 0

    def ranked(self) -> list[ScoredPass]:
        """Scored passes by descending fitness (ties: the earlier pass first), then refused ones."""
        scored = sorted(
            (p for p in self.passes if p.score is not None), key=lambda p: (-p.score, p.number)
        )
        return scored + [p for p in self.passes if p.score is None]

    @property
    def best(self) -> ScoredPass | None:
        ranked = self.ranked()
        return ranked[0] if ranked and ranked[0].score is not None else None


def parameter_key(parameters: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in parameters.items()))


class _Scorer:
    """Runs batches, scores them, and never runs the same parameter set twice."""

    def __init__(
        self,
        evaluate: BatchEvaluator,
        fitness: Fitness,
        start_ms: int,
        end_ms: int,
        on_pass: Callable[[ScoredPass], None] | None,
    ) -> None:
        self.evaluate = evaluate
        self.fitness = fitness
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.on_pass = on_pass
        self.passes: list[ScoredPass] = []
        self.seen: dict[tuple[tuple[str, str], ...], ScoredPass] = {}

    def run(self, batch: list[dict[str, Any]]) -> list[ScoredPass]:
        fresh = []
        for parameters in batch:
            key = parameter_key(parameters)
            if key not in self.seen and all(parameter_key(p) != key for p in fresh):
                fresh.append(parameters)
        outcomes = self.evaluate([PassRequest(p, self.start_ms, self.end_ms) for p in fresh])
        for parameters, outcome in zip(fresh, outcomes, strict=True):
            score = None if outcome.failed else self.fitness.score(outcome.metrics)
            scored = ScoredPass(len(self.passes), parameters, score, outcome.metrics, outcome.error)
            self.passes.append(scored)
            self.seen[parameter_key(parameters)] = scored
            if self.on_pass is not None:
                self.on_pass(scored)
        return [self.seen[parameter_key(p)] for p in batch]


def search(
    space: ParameterSpace,
    evaluate: BatchEvaluator,
    *,
    start_ms: int,
    end_ms: int,
    fitness: Fitness,
    settings: SearchSettings | None = None,
    on_pass: Callable[[ScoredPass], None] | None = None,
) -> SearchResult:
    """Search ``space`` over ``[start_ms, end_ms)`` and return every scored pass."""
    settings = settings or SearchSettings()
    scorer = _Scorer(evaluate, fitness, start_ms, end_ms, on_pass)
    if settings.method == "grid":
        size = space.grid_size()
        if size > settings.max_grid_size:
            raise ConfigurationError(
                f"the grid has {size} combinations, more than max_grid_size="
                f"{settings.max_grid_size}; coarsen the steps or use random/tpe search"
            )
        candidates = list(space.grid())
        if not candidates:
            raise ConfigurationError("no combination of the grid satisfies the constraints")
        scorer.run(candidates)
    elif settings.method == "random":
        _random(space, scorer, settings)
    elif settings.method == "tpe":
        _tree_parzen(space, scorer, settings)
    else:  # pragma: no cover - the Literal type refuses it first
        raise ConfigurationError(f"unknown search method {settings.method!r}")
    return SearchResult(
        settings.method, start_ms, end_ms, fitness, space, scorer.passes, settings.seed
    )


def _random(space: ParameterSpace, scorer: _Scorer, settings: SearchSettings) -> None:
    random = np.random.default_rng(settings.seed)
    candidates: list[dict[str, Any]] = []
    keys: set[tuple[tuple[str, str], ...]] = set()
    attempts = 0
    limit = settings.trials * 50
    while len(candidates) < settings.trials and attempts < limit:
        attempts += 1
        values = space.sample(random)
        key = parameter_key(values)
        if key in keys or not space.is_feasible(values):
            continue
        keys.add(key)
        candidates.append(values)
    if not candidates:
        raise ConfigurationError(
            f"random search found no feasible parameter set in {attempts} draws; "
            "check the constraints"
        )
    if len(candidates) < settings.trials:
        logger.info(
            "random search: only %d distinct feasible sets found (asked for %d)",
            len(candidates),
            settings.trials,
        )
    scorer.run(candidates)


def _tree_parzen(space: ParameterSpace, scorer: _Scorer, settings: SearchSettings) -> None:
    import optuna  # imported lazily: only TPE needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed, n_startup_trials=min(10, max(2, settings.trials // 4))
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    evaluated = 0
    attempts = 0
    limit = settings.trials * 20
    while evaluated < settings.trials and attempts < limit:
        size = min(settings.batch_size, settings.trials - evaluated)
        trials, batch = [], []
        while len(batch) < size and attempts < limit:
            attempts += 1
            trial = study.ask()
            values = space.suggest(trial)
            if not space.is_feasible(values):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            key = parameter_key(values)
            known = scorer.seen.get(key)
            if known is not None or any(parameter_key(v) == key for v in batch):
                # a repeat costs no pass: TPE learns the known score and the budget counts distinct sets
                if known is not None and known.score is not None and math.isfinite(known.score):
                    study.tell(trial, known.score)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            trials.append(trial)
            batch.append(values)
        if not batch:
            break
        for trial, scored in zip(trials, scorer.run(batch), strict=True):
            if scored.score is None or not math.isfinite(scored.score):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, scored.score)
        evaluated += len(batch)
    if evaluated == 0:
        raise ConfigurationError(
            f"TPE found no feasible parameter set in {attempts} suggestions; check the constraints"
        )
