"""Optimisation passes as a Prefect task, and the task runner a sweep runs on.

``run_pass`` is one backtest of one parameter set. Each worker process (a thread-pool flow,
a process pool, a Dask or Ray worker) keeps one ``PassEvaluator`` per expert and settings,
so the expert is imported and its candles read once per worker, not once per pass.
``make_task_runner`` maps the flow's ``task_runner`` parameter to Prefect's runners; the
Dask and Ray ones come from prefect-dask / prefect-ray (extras ``dask`` / ``ray``) and are
given the address of an existing cluster.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from metaexpert.backtest.optimization import (
    BacktestSettings,
    ExpertReference,
    PassEvaluator,
    PassOutcome,
    PassRequest,
)
from metaexpert.core.errors import ConfigurationError

RunnerName = Literal["thread", "process", "dask", "ray"]

_EVALUATORS: dict[str, PassEvaluator] = {}
_EVALUATORS_LOCK = threading.Lock()


def _evaluator(
    expert_path: str, variable: str | None, backtest: dict[str, Any], span: tuple[int, int]
) -> PassEvaluator:
    """One evaluator per worker process and configuration: the expert is imported and candles read once."""
    key = json.dumps([expert_path, variable, backtest, span], sort_keys=True, default=str)
    with _EVALUATORS_LOCK:
        if key not in _EVALUATORS:
            _EVALUATORS[key] = PassEvaluator.from_reference(
                ExpertReference(expert_path, variable),
                BacktestSettings.model_validate(backtest),
                span=span,
            )
        return _EVALUATORS[key]


@task(
    name="optimization-pass",
    cache_policy=NO_CACHE,
    retries=0,
    log_prints=False,
    task_run_name="pass {request.parameters}",
)
def run_pass(
    expert_path: str,
    variable: str | None,
    backtest: dict[str, Any],
    span: tuple[int, int],
    request: PassRequest,
) -> PassOutcome:
    """One backtest of one parameter set; a failing expert comes back as ``outcome.error``."""
    return _evaluator(expert_path, variable, backtest, span).evaluate(request)


def make_task_runner(
    name: str, *, max_workers: int | None = None, cluster_address: str | None = None
) -> Any:
    """The task runner for passes; Dask and Ray runners are imported only when chosen."""
    if name == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max_workers)
    if name == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=max_workers)
    if name == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ConfigurationError(
                "task_runner='dask' needs the prefect-dask package: pip install prefect-dask"
            ) from None
        return DaskTaskRunner(address=cluster_address) if cluster_address else DaskTaskRunner()
    if name == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError:
            raise ConfigurationError(
                "task_runner='ray' needs the prefect-ray package: pip install prefect-ray"
            ) from None
        return RayTaskRunner(address=cluster_address) if cluster_address else RayTaskRunner()
    raise ConfigurationError(f"unknown task_runner {name!r}: use thread, process, dask or ray")
