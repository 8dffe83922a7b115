"""Store optimisation passes as backtest runs, so sweeps can be compared in SQL later.

Each pass becomes one row of ``backtest_runs`` (parameters and metrics as JSON), tagged
with the optimisation's id, the window and whether it was in- or out-of-sample.
"""

from __future__ import annotations

import uuid
from typing import Any

from metaexpert.backtest.optimization.search import SearchResult
from metaexpert.backtest.optimization.walk_forward import WalkForwardResult


def _repository(database_url: str) -> Any:
    from metaexpert.storage import Database
    from metaexpert.storage.backtest_runs import BacktestRunRepository

    database = Database(database_url)
    database.upgrade()
    return database, BacktestRunRepository(database)


def _store_passes(
    repository: Any, expert_name: str, search: SearchResult, tags: dict[str, Any]
) -> int:
    count = 0
    for scored in search.passes:
        uid = repository.start(
            expert_name,
            parameters={**scored.parameters, "optimization": tags},
            data_start_ms=search.start_ms,
            data_end_ms=search.end_ms,
        )
        if scored.error is not None:
            repository.fail(uid, scored.error)
        else:
            repository.finish(uid, {**scored.metrics, "optimization_fitness": scored.score})
        count += 1
    return count


def store_search(
    database_url: str, expert_name: str, search: SearchResult, *, optimization_id: str | None = None
) -> str:
    """Store every pass of ``search``; returns the optimisation id that tags them."""
    optimization_id = optimization_id or uuid.uuid4().hex
    database, repository = _repository(database_url)
    try:
        _store_passes(
            repository,
            expert_name,
            search,
            {
                "id": optimization_id,
                "method": search.method,
                "fitness": search.fitness.describe(),
                "segment": "search",
            },
        )
    finally:
        database.dispose()
    return optimization_id


def store_walk_forward(
    database_url: str,
    expert_name: str,
    result: WalkForwardResult,
    *,
    optimization_id: str | None = None,
) -> str:
    """Store every in-sample pass and each window's out-of-sample run."""
    optimization_id = optimization_id or uuid.uuid4().hex
    database, repository = _repository(database_url)
    try:
        for item in result.windows:
            tags = {
                "id": optimization_id,
                "method": item.search.method,
                "fitness": result.fitness.describe(),
                "window": item.window.index,
            }
            _store_passes(repository, expert_name, item.search, {**tags, "segment": "in_sample"})
            out = item.out_of_sample
            if out is not None:
                uid = repository.start(
                    expert_name,
                    parameters={
                        **out.parameters,
                        "optimization": {**tags, "segment": "out_of_sample"},
                    },
                    data_start_ms=out.start_ms,
                    data_end_ms=out.end_ms,
                )
                if out.failed:
                    repository.fail(uid, out.error or "failed")
                else:
                    repository.finish(
                        uid, {**out.metrics, "optimization_fitness": item.out_of_sample_score}
                    )
    finally:
        database.dispose()
    return optimization_id
