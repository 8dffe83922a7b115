"""Optimisation flow: a parameter search or a walk-forward analysis, passes run as Prefect tasks.

The search itself (grid, random, Optuna TPE; walk-forward windows; fitness) is the
library's (``metaexpert.backtest.optimization``); this flow only decides *where* passes
run. Each pass is one ``optimization-pass`` task (``tasks/optimization.py``) submitted from the
``optimization-sweep`` subflow, which runs with the task runner named by the ``task_runner``
parameter (``sweep.with_options(task_runner=...)``, as Prefect documents it):

* ``"thread"`` (default): ``ThreadPoolTaskRunner(max_workers)`` in the flow's process. Fine
  for small sweeps and local development (passes share the GIL, so there is little
  speed-up; use ``metaexpert.backtest.optimization.optimize(..., workers=N)`` for local
  multi-core runs).
* ``"process"``: Prefect's ``ProcessPoolTaskRunner(max_workers)``: one process per worker
  on this machine (each starts in a few seconds, then reuses its candles).
* ``"dask"``: ``prefect_dask.DaskTaskRunner(address=cluster_address)`` sends passes to an
  existing Dask cluster (``pip install prefect-dask``; without ``cluster_address`` it starts
  a ``LocalCluster``). Example: ``task_runner="dask", cluster_address="tcp://scheduler:8786"``.
* ``"ray"``: ``prefect_ray.RayTaskRunner(address=cluster_address)`` for an existing Ray
  cluster (``pip install prefect-ray``), e.g. ``cluster_address="ray://head:10001"``.

On a cluster every worker must have this repository installed (the ``flows`` package
and ``metaexpert``), the expert file at the same ``expert_path``, and the candles at
``backtest["data_dir"]`` (or ``METAEXPERT_DATA_DIR``): workers load the expert and read the
candles themselves, once per worker process. Each worker keeps a ``PassEvaluator`` per
expert and settings, so candles are read once per worker, not once per pass.

Results: the flow returns a JSON summary (best parameters, per-window in/out-of-sample
metrics, robustness), publishes a table and a markdown artifact, writes the HTML report
to ``report_path`` when given, and stores every pass as a backtest run when
``database_url`` is set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from metaexpert.backtest.optimization import (
    BacktestSettings,
    ExpertReference,
    ParameterSpace,
    PassOutcome,
    PassRequest,
    SearchSettings,
    WalkForwardSettings,
    fitness_from,
    period_ms,
    search,
    walk_forward,
    write_search_report,
    write_walk_forward_report,
)
from metaexpert.backtest.optimization.optimizer import resolve_space
from tasks.alerts import FAILURE_HOOKS
from tasks.optimization import RunnerName, make_task_runner, run_pass
from tasks.reports import rounded

__all__ = ["make_task_runner", "optimize", "run_pass", "sweep"]


@flow(
    name="optimization-sweep",
    flow_run_name="sweep {method} of {expert_path}",
    validate_parameters=False,
)
def sweep(
    expert_path: str,
    variable: str | None,
    settings_dump: dict[str, Any],
    span: tuple[int, int],
    space: Any,
    method: str,
    search_settings: Any,
    scoring: Any,
    walk_forward_windows: dict[str, Any] | None,
    initial_capital: float,
) -> Any:
    """The search (or walk-forward analysis): every batch of passes goes to this flow's task runner."""
    logger = get_run_logger()

    def evaluate(requests: Sequence[PassRequest]) -> list[PassOutcome]:
        futures = [
            run_pass.submit(expert_path, variable, settings_dump, span, request)
            for request in requests
        ]
        return [future.result() for future in futures]

    start_ms, end_ms = span
    if walk_forward_windows is None:
        return search(
            space,
            evaluate,
            start_ms=start_ms,
            end_ms=end_ms,
            fitness=scoring,
            settings=search_settings,
        )
    return walk_forward(
        space,
        evaluate,
        start=start_ms,
        end=end_ms,
        settings=WalkForwardSettings.model_validate(walk_forward_windows),
        fitness=scoring,
        search_settings=search_settings,
        initial_capital=initial_capital,
        on_window=lambda w: logger.info(
            "window %d: best %s, out-of-sample return %s%%",
            w.window.index,
            w.best.parameters if w.best else None,
            w.out_of_sample_metrics.get("total_return_pct"),
        ),
    )


@flow(
    name="optimize",
    validate_parameters=True,
    flow_run_name="optimize {expert_path} {start}..{end} ({method})",
    **FAILURE_HOOKS,
)
def optimize(
    expert_path: str,
    start: str,
    end: str,
    method: Literal["grid", "random", "tpe"] = "tpe",
    trials: int = 50,
    seed: int = 0,
    fitness: str | dict[str, Any] = "sharpe",
    space: dict[str, Any] | None = None,
    constraints: list[str] | None = None,
    walk_forward_windows: dict[str, Any] | None = None,
    backtest: dict[str, Any] | None = None,
    variable: str | None = None,
    task_runner: RunnerName = "thread",
    cluster_address: str | None = None,
    max_workers: int | None = None,
    batch_size: int = 8,
    database_url: str | None = None,
    report_path: str | None = None,
) -> dict[str, Any]:
    """Optimise the expert in ``expert_path`` over ``start``..``end`` (date-only end inclusive).

    ``space`` (JSON ranges such as ``{"fast": {"kind": "integer", "low": 5, "high": 50, "step": 5}}``
    or lists of choices) and ``constraints`` (expressions like ``"fast < slow"``) replace the
    space the expert declared. ``walk_forward_windows`` (``{"mode": "rolling",
    "in_sample_days": 365, "out_of_sample_days": 90}``, or ``{"mode": "split", "train_fraction": 0.7}``)
    switches to a walk-forward analysis. ``task_runner`` picks where passes run (see the module doc).
    """
    logger = get_run_logger()
    reference = ExpertReference(expert_path, variable)
    expert = reference.load()
    start_ms, end_ms = period_ms(start, end)
    chosen = ParameterSpace(space, constraints or []) if space else resolve_space(expert, None)
    if constraints and not space:
        chosen = ParameterSpace(chosen.parameters, [*chosen.constraints, *constraints])
    settings = BacktestSettings.model_validate(backtest or {})
    settings_dump = settings.model_dump()
    search_settings = SearchSettings(method=method, trials=trials, seed=seed, batch_size=batch_size)
    scoring = fitness_from(fitness)
    runner = make_task_runner(task_runner, max_workers=max_workers, cluster_address=cluster_address)
    result = sweep.with_options(task_runner=runner)(
        reference.path,
        variable,
        settings_dump,
        (start_ms, end_ms),
        chosen,
        method,
        search_settings,
        scoring,
        walk_forward_windows,
        settings.initial_capital,
    )
    summary = (
        _search_summary(result) if walk_forward_windows is None else _walk_forward_summary(result)
    )
    logger.info(
        "%s sweep on the %s task runner done: best %s",
        method,
        task_runner,
        summary.get("best_parameters", "per window"),
    )
    name = getattr(expert, "name", "expert")
    if database_url:
        from metaexpert.backtest.optimization.persistence import store_search, store_walk_forward

        store = store_search if walk_forward_windows is None else store_walk_forward
        summary["optimization_id"] = store(database_url, name, result)
    if report_path:
        writer = write_search_report if walk_forward_windows is None else write_walk_forward_report
        summary["report_path"] = str(writer(result, report_path, title=f"{name} optimisation"))
    _publish(name, summary)
    return summary


def _search_summary(result: Any) -> dict[str, Any]:
    best = result.best
    return {
        "mode": "search",
        "method": result.method,
        "passes": len(result.passes),
        "failed_passes": sum(1 for p in result.passes if p.error),
        "best_parameters": best.parameters if best else None,
        "best_fitness": best.score if best else None,
        "best_metrics": _small(best.metrics) if best else None,
        "top": [p.as_row() for p in result.ranked()[:10]],
    }


def _walk_forward_summary(result: Any) -> dict[str, Any]:
    windows = [
        {
            "index": item.window.index,
            "in_sample": [item.window.in_start_ms, item.window.in_end_ms],
            "out_of_sample": [item.window.out_start_ms, item.window.out_end_ms],
            "best_parameters": item.best.parameters if item.best else None,
            "in_sample_fitness": item.best.score if item.best else None,
            "out_of_sample_fitness": item.out_of_sample_score,
            "in_sample_metrics": _small(item.in_sample_metrics),
            "out_of_sample_metrics": _small(item.out_of_sample_metrics),
        }
        for item in result.windows
    ]
    return {"mode": "walk_forward", "windows": windows, "robustness": result.summary}


def _small(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "total_return_pct",
        "max_drawdown_pct",
        "sharpe_ratio",
        "profit_factor",
        "number_of_trades",
    )
    return {key: metrics.get(key) for key in keys}


def _publish(name: str, summary: dict[str, Any]) -> None:
    if summary["mode"] == "search":
        create_table_artifact(
            key="optimization-best-passes",
            table=rounded(summary["top"]),
            description=f"{name}: best passes of the {summary['method']} search",
        )
        lines = [
            f"# {name}: {summary['method']} search",
            "",
            (f"- passes: {summary['passes']} ({summary['failed_passes']} failed)"),
            f"- best parameters: `{summary['best_parameters']}`",
            f"- best fitness: {rounded(summary['best_fitness'])}",
        ]
    else:
        rows = [
            {
                "window": w["index"],
                "best_parameters": json.dumps(w["best_parameters"]),
                "in_sample_return_pct": w["in_sample_metrics"]["total_return_pct"],
                "out_of_sample_return_pct": w["out_of_sample_metrics"]["total_return_pct"],
            }
            for w in summary["windows"]
        ]
        create_table_artifact(
            key="walk-forward-windows",
            table=rounded(rows),
            description=f"{name}: in-sample vs out-of-sample per window",
        )
        robustness = summary["robustness"]
        lines = [
            f"# {name}: walk-forward",
            "",
            f"- walk-forward efficiency: {rounded(robustness['walk_forward_efficiency'])}",
            f"- stitched out-of-sample return: {rounded(robustness['out_of_sample_total_return_pct'])}%",
            (
                f"- profitable out-of-sample windows: {robustness['profitable_out_of_sample_windows']}"
                f"/{robustness['windows_tested']}"
            ),
        ]
    if summary.get("report_path"):
        lines.append(f"- report: `{summary['report_path']}`")
    create_markdown_artifact(
        key="optimization-summary",
        markdown="\n".join(lines),
        description=f"{name} optimisation summary",
    )
