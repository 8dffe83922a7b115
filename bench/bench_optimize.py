"""Optimisation throughput: 100 parameter sets of an EMA cross over one year of real 1h bars.

Run: ``.venv/bin/python -m bench.bench_optimize`` (``--quick`` for 20 sets). It runs the
same seeded random search with 1 worker and with 2 worker processes, checks both found
the same passes, and prints wall time, passes per second and the 1 -> 2 worker scaling.
Target: 100 sets in under 30 s on a 2-core machine. Candles are read in place from
``../shared/data`` (never copied); the expert is ``examples/walk_forward_ema.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERT = ROOT / "examples" / "walk_forward_ema.py"
TARGET_SECONDS = 30.0
#: The seeded search both this bench and ``bench_sweeps`` (through the Prefect flow) run.
SEARCH: dict = {"method": "random", "seed": 7, "fitness": {"name": "sharpe", "min_trades": 5}}


def run(workers: int, trials: int, start: str, end: str) -> tuple[float, list]:
    from metaexpert.backtest.optimization import optimize

    started = time.perf_counter()
    result = optimize(
        EXPERT,
        start=start,
        end=end,
        trials=trials,
        workers=workers,
        **SEARCH,
    )
    elapsed = time.perf_counter() - started
    failed = [p for p in result.passes if p.error]
    if failed:
        raise SystemExit(f"{len(failed)} passes failed, first: {failed[0].error}")
    return elapsed, result.passes


def run_warm(workers: int, trials: int, start: str, end: str) -> float:
    """Pass throughput once the workers are up (process start and first data read excluded)."""
    import numpy as np

    from metaexpert.backtest.optimization import (
        LocalExecutor,
        PassEvaluator,
        PassRequest,
        load_expert_file,
        period_ms,
    )

    expert = load_expert_file(EXPERT)
    start_ms, end_ms = period_ms(start, end)
    random = np.random.default_rng(7)
    space = expert.declared_parameter_space
    requests = []
    while len(requests) < trials:
        values = space.sample(random)
        if space.is_feasible(values):
            requests.append(PassRequest(values, start_ms, end_ms))
    evaluator = PassEvaluator(expert, span=(start_ms, end_ms))
    with LocalExecutor(evaluator, workers) as executor:
        executor.map(requests[: workers * 2])  # start the workers, read the candles
        started = time.perf_counter()
        executor.map(requests)
        return time.perf_counter() - started


def _spin(count: int) -> int:
    total = 0
    for index in range(count):
        total += index * index
    return total


def reference_scaling() -> float:
    """How well 2 processes of plain Python scale right now: the ceiling for pass scaling."""
    from concurrent.futures import ProcessPoolExecutor

    work = [2_000_000] * 8
    started = time.perf_counter()
    for count in work:
        _spin(count)
    serial = time.perf_counter() - started
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1, 1]))
        started = time.perf_counter()
        list(pool.map(_spin, work))
        parallel = time.perf_counter() - started
    return serial / parallel


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 parameter sets instead of 100")
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--end", default="2024-12-31")
    arguments = parser.parse_args()
    trials = 20 if arguments.quick else 100
    print(
        f"optimisation bench: {trials} EMA-cross parameter sets, BTCUSDT 1h {arguments.start} to {arguments.end}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work on the machine skews scaling)"
    )
    results = {}
    for workers in (1, 2):
        elapsed, passes = run(workers, trials, arguments.start, arguments.end)
        results[workers] = (elapsed, passes)
        mean_pass = sum(p.metrics.get("bars", 0) for p in passes) / len(passes)
        print(
            f"  {workers} worker{'s' if workers > 1 else ' '}: {elapsed:6.2f} s  {len(passes) / elapsed:6.1f} passes/s  "
            f"({mean_pass:.0f} bars per pass, process start included)"
        )
    warm = {
        workers: run_warm(workers, trials, arguments.start, arguments.end) for workers in (1, 2)
    }
    for workers, elapsed in warm.items():
        print(
            f"  warm pool, {workers} worker{'s' if workers > 1 else ' '}: {elapsed:6.2f} s  "
            f"{trials / elapsed:6.1f} passes/s  (workers already started)"
        )
    print(
        f"  warm scaling 1 -> 2 workers: {warm[1] / warm[2]:.2f}x "
        f"(plain-Python reference on this machine right now: {reference_scaling():.2f}x)"
    )
    one, two = results[1][0], results[2][0]
    same = [(p.parameters, p.score) for p in results[1][1]] == [
        (p.parameters, p.score) for p in results[2][1]
    ]
    print(
        f"  cold scaling 1 -> 2 workers: {one / two:.2f}x speed-up ({one / two / 2 * 100:.0f}% parallel efficiency)"
    )
    print(f"  identical passes with 1 and 2 workers: {same}")
    best = min(one, two)
    verdict = "met" if best < TARGET_SECONDS * trials / 100 else "MISSED"
    print(
        f"  target {TARGET_SECONDS * trials / 100:.0f} s for {trials} sets: {verdict} (best {best:.2f} s)"
    )


if __name__ == "__main__":
    main()
