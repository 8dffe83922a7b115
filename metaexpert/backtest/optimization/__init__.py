"""Strategy research: parameter spaces, grid/random/TPE search, fitness, walk-forward, reports.

Typical use::

    from metaexpert.backtest.optimization import IntegerRange, optimize_walk_forward, write_walk_forward_report

    expert.parameter_space(fast=IntegerRange(low=5, high=40, step=5),
                           slow=IntegerRange(low=20, high=200, step=20), constraints=["fast < slow"])
    result = optimize_walk_forward(expert, start="2019-01-01", end="2025-12-31",
                                   windows={"mode": "rolling", "in_sample_days": 365, "out_of_sample_days": 90},
                                   method="tpe", trials=40, fitness="sharpe", workers=2)
    write_walk_forward_report(result, "output/wf/report.html")
"""

from metaexpert.backtest.optimization.execution import (
    BacktestSettings,
    ExpertReference,
    LocalExecutor,
    MemoryCandleSource,
    PassEvaluator,
    PassOutcome,
    PassRequest,
    load_expert_file,
)
from metaexpert.backtest.optimization.fitness import Fitness, fitness_from
from metaexpert.backtest.optimization.optimizer import optimize, optimize_walk_forward, period_ms
from metaexpert.backtest.optimization.report import write_search_report, write_walk_forward_report
from metaexpert.backtest.optimization.search import ScoredPass, SearchResult, SearchSettings, search
from metaexpert.backtest.optimization.spaces import Choice, FloatRange, IntegerRange, ParameterSpace
from metaexpert.backtest.optimization.walk_forward import (
    WalkForwardResult,
    WalkForwardSettings,
    Window,
    WindowResult,
    build_windows,
    walk_forward,
)

__all__ = [
    "BacktestSettings",
    "Choice",
    "ExpertReference",
    "Fitness",
    "FloatRange",
    "IntegerRange",
    "LocalExecutor",
    "MemoryCandleSource",
    "ParameterSpace",
    "PassEvaluator",
    "PassOutcome",
    "PassRequest",
    "ScoredPass",
    "SearchResult",
    "SearchSettings",
    "WalkForwardResult",
    "WalkForwardSettings",
    "Window",
    "WindowResult",
    "build_windows",
    "fitness_from",
    "load_expert_file",
    "optimize",
    "optimize_walk_forward",
    "period_ms",
    "search",
    "walk_forward",
    "write_search_report",
    "write_walk_forward_report",
]
