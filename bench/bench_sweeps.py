"""The ``optimize`` flow's sweep on each task runner: local process pool, Dask and Ray clusters.

Run: ``.venv/bin/python -m bench.bench_sweeps`` (``--quick`` for 20 sets). The same seeded
random search as ``bench_optimize`` (EMA cross, BTCUSDT 1h, one year of ``../shared/data``)
runs through the Prefect flow, against a temporary Prefect server, four ways: in this
process's threads, on Prefect's process pool (2 workers), on a ``dask.distributed``
LocalCluster (2 worker processes on 127.0.0.1) given by address, and on a one-node Ray head
(2 CPUs, loopback) given by address. Each line gives the wall time of the whole flow
(cluster start excluded, passes' process start and candle reads included) and whether it
found the same best parameters as the thread run. Every pass also records a Prefect task
run, so the flow costs more per pass than ``bench_optimize``'s bare executor.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from bench.bench_optimize import EXPERT, SEARCH


def _sweep(trials: int, start: str, end: str, **runner: Any) -> tuple[float, dict[str, Any]]:
    from flows.optimize import optimize

    started = time.perf_counter()
    summary = optimize(
        expert_path=str(EXPERT),
        start=start,
        end=end,
        trials=trials,
        batch_size=trials,
        **SEARCH,
        **runner,
    )
    elapsed = time.perf_counter() - started
    if summary["failed_passes"]:
        raise SystemExit(f"{summary['failed_passes']} passes failed on {runner}")
    return elapsed, summary


def _on_dask(run: Callable[..., tuple[float, dict[str, Any]]]) -> tuple[float, dict[str, Any]]:
    from tests.pipelines.clusters import dask_cluster

    with dask_cluster() as cluster:
        return run(task_runner="dask", cluster_address=cluster.scheduler_address)


def _on_ray(run: Callable[..., tuple[float, dict[str, Any]]]) -> tuple[float, dict[str, Any]]:
    from tests.pipelines.clusters import ray_head

    with ray_head() as head:
        return run(task_runner="ray", cluster_address=head.address)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 parameter sets instead of 100")
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--end", default="2024-12-31")
    arguments = parser.parse_args()
    trials = 20 if arguments.quick else 100
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # one line per task run otherwise
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    def run(**runner: Any) -> tuple[float, dict[str, Any]]:
        return _sweep(trials, arguments.start, arguments.end, **runner)

    print(
        f"sweep bench: {trials} EMA-cross parameter sets through the optimize flow, BTCUSDT 1h "
        f"{arguments.start} to {arguments.end}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # cluster workers report here
        runs = {
            "threads (this process)": lambda: run(task_runner="thread", max_workers=2),
            "process pool, 2 workers": lambda: run(task_runner="process", max_workers=2),
            "Dask LocalCluster, 2 workers": lambda: _on_dask(run),
            "Ray head, 2 CPUs": lambda: _on_ray(run),
        }
        reference: dict[str, Any] | None = None
        for label, sweep in runs.items():
            try:
                elapsed, summary = sweep()
            except ImportError as missing:
                print(f"  {label:<30} skipped: {missing}")
                continue
            reference = reference or summary
            same = summary["best_parameters"] == reference["best_parameters"]
            print(
                f"  {label:<30} {elapsed:7.2f} s  {trials / elapsed:6.1f} passes/s  "
                f"best {summary['best_parameters']} (same as threads: {same})"
            )
    print(f"  load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
