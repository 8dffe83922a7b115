"""The one-call entry points: ``optimize`` (search one period) and ``optimize_walk_forward``.

    from metaexpert.backtest.optimization import optimize, optimize_walk_forward
    result = optimize(expert, start="2023-01-01", end="2023-12-31", method="tpe", trials=100, workers=2)
    print(result.best.parameters, result.best.score)

The space defaults to the one the expert declared with ``expert.parameter_space(...)``.
Date-only ends ('2023-12-31') include that whole day, as in ``expert.run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metaexpert.backtest.optimization.execution import (
    BacktestSettings,
    ExpertReference,
    LocalExecutor,
    PassEvaluator,
    load_expert_file,
)
from metaexpert.backtest.optimization.fitness import Fitness, fitness_from
from metaexpert.backtest.optimization.search import ScoredPass, SearchResult, SearchSettings, search
from metaexpert.backtest.optimization.spaces import ParameterSpace
from metaexpert.backtest.optimization.walk_forward import (
    WalkForwardResult,
    WalkForwardSettings,
    WindowResult,
    walk_forward,
)
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import DAY_MS


def period_ms(start: Any, end: Any) -> tuple[int, int]:
    """``[start, end)`` in epoch ms; a date-only end string includes that day."""
    start_ms = start if isinstance(start, int) else parse_date_ms(start)
    end_ms = end if isinstance(end, int) else parse_date_ms(end)
    if isinstance(end, str) and len(end.strip()) == 10:
        end_ms += DAY_MS
    if end_ms <= start_ms:
        raise ConfigurationError(f"optimisation end {end!r} must be after its start {start!r}")
    return start_ms, end_ms


def resolve_space(expert: Any, space: ParameterSpace | Mapping[str, Any] | None) -> ParameterSpace:
    if isinstance(space, ParameterSpace):
        return space
    if space is not None:
        return ParameterSpace(space)
    declared = getattr(expert, "declared_parameter_space", None)
    if declared is None:
        raise ConfigurationError(
            "no parameter space: declare one with expert.parameter_space(...) or pass space="
        )
    return declared


def _settings(model: type, value: Any, what: str) -> Any:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(dict(value or {}))
    except ValidationError as error:
        raise ConfigurationError(f"invalid {what}: {error}") from None


def _expert_and_reference(
    expert: Any, expert_file: str | Path | None, variable: str | None
) -> tuple[Any, ExpertReference | None]:
    if isinstance(expert, str | Path):
        reference = ExpertReference(str(Path(expert).resolve()), variable)
        return reference.load(), reference
    reference = ExpertReference(str(Path(expert_file).resolve()), variable) if expert_file else None
    return expert, reference


def optimize(
    expert: Any,
    *,
    start: Any,
    end: Any,
    space: ParameterSpace | Mapping[str, Any] | None = None,
    method: str = "tpe",
    trials: int = 50,
    seed: int = 0,
    fitness: Fitness | str | Mapping[str, Any] | None = "sharpe",
    workers: int = 1,
    backtest: BacktestSettings | Mapping[str, Any] | None = None,
    expert_file: str | Path | None = None,
    variable: str | None = None,
    batch_size: int | None = None,
    database_url: str | None = None,
    on_pass: Callable[[ScoredPass], None] | None = None,
) -> SearchResult:
    """Search the expert's parameter space over one period; passes run on ``workers`` processes.

    ``expert`` is a MetaExpert or the path of its file. ``database_url`` stores every pass
    as a backtest run. The result's ``best`` is the highest-fitness pass.
    """
    expert, reference = _expert_and_reference(expert, expert_file, variable)
    start_ms, end_ms = period_ms(start, end)
    chosen_space = resolve_space(expert, space)
    search_settings = _settings(
        SearchSettings,
        {
            "method": method,
            "trials": trials,
            "seed": seed,
            "batch_size": batch_size or max(workers, 1) * 2,
        },
        "search settings",
    )
    scoring = _fitness(fitness)
    evaluator = PassEvaluator(
        expert,
        _settings(BacktestSettings, backtest, "backtest settings"),
        reference=reference,
        span=(start_ms, end_ms),
    )
    with LocalExecutor(evaluator, workers) as executor:
        result = search(
            chosen_space,
            executor.map,
            start_ms=start_ms,
            end_ms=end_ms,
            fitness=scoring,
            settings=search_settings,
            on_pass=on_pass,
        )
    if database_url:
        from metaexpert.backtest.optimization.persistence import store_search

        store_search(database_url, getattr(expert, "name", "expert"), result)
    return result


def optimize_walk_forward(
    expert: Any,
    *,
    start: Any,
    end: Any,
    space: ParameterSpace | Mapping[str, Any] | None = None,
    windows: WalkForwardSettings | Mapping[str, Any] | None = None,
    method: str = "tpe",
    trials: int = 50,
    seed: int = 0,
    fitness: Fitness | str | Mapping[str, Any] | None = "sharpe",
    workers: int = 1,
    backtest: BacktestSettings | Mapping[str, Any] | None = None,
    expert_file: str | Path | None = None,
    variable: str | None = None,
    batch_size: int | None = None,
    database_url: str | None = None,
    on_window: Callable[[WindowResult], None] | None = None,
) -> WalkForwardResult:
    """Walk-forward analysis (rolling, anchored or a train/test split) of the expert's space."""
    expert, reference = _expert_and_reference(expert, expert_file, variable)
    start_ms, end_ms = period_ms(start, end)
    chosen_space = resolve_space(expert, space)
    search_settings = _settings(
        SearchSettings,
        {
            "method": method,
            "trials": trials,
            "seed": seed,
            "batch_size": batch_size or max(workers, 1) * 2,
        },
        "search settings",
    )
    window_settings = _settings(WalkForwardSettings, windows, "walk-forward settings")
    backtest_settings = _settings(BacktestSettings, backtest, "backtest settings")
    evaluator = PassEvaluator(
        expert, backtest_settings, reference=reference, span=(start_ms, end_ms)
    )
    with LocalExecutor(evaluator, workers) as executor:
        result = walk_forward(
            chosen_space,
            executor.map,
            start=start_ms,
            end=end_ms,
            settings=window_settings,
            fitness=_fitness(fitness),
            search_settings=search_settings,
            initial_capital=backtest_settings.initial_capital,
            on_window=on_window,
        )
    if database_url:
        from metaexpert.backtest.optimization.persistence import store_walk_forward

        store_walk_forward(database_url, getattr(expert, "name", "expert"), result)
    return result


def _fitness(value: Any) -> Fitness:
    try:
        return fitness_from(value)
    except ValidationError as error:
        raise ConfigurationError(f"invalid fitness: {error}") from None


__all__ = ["load_expert_file", "optimize", "optimize_walk_forward", "period_ms", "resolve_space"]
