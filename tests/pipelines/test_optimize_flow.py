"""The optimize flow: passes as Prefect tasks on the thread runner; runner choice and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.research.conftest import EXPERTS, HOUR_MS, PERIOD, START_MS, sine_candles


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    from metaexpert.data import CandleStore

    root = tmp_path_factory.mktemp("optimize-flow-candles")
    CandleStore(root).write("binance", "spot", "BTCUSDT", "1h", sine_candles(PERIOD * 30))
    return root


def test_optimize_flow_with_thread_runner_finds_optimum_and_writes_report(
    prefect_harness, synthetic_dir, tmp_path
):
    from flows.optimize import optimize

    summary = optimize(
        expert_path=str(EXPERTS / "cycle_timer.py"),
        start="2024-01-01",
        end="2024-01-20",
        method="grid",
        space={"phase": [12, 24, 36], "hold": [12, 24]},
        fitness={"name": "total_return", "min_trades": 3},
        backtest={"data_dir": str(synthetic_dir)},
        task_runner="thread",
        max_workers=2,
        report_path=str(tmp_path / "report.html"),
        database_url=f"sqlite:///{tmp_path / 'runs.sqlite'}",
    )
    assert summary["passes"] == 6 and summary["failed_passes"] == 0
    assert summary["best_parameters"] == {"phase": 36, "hold": 24}
    assert Path(summary["report_path"]).is_file()
    assert summary["optimization_id"]


def test_optimize_flow_walk_forward_returns_in_and_out_of_sample_per_window(
    prefect_harness, synthetic_dir
):
    from flows.optimize import optimize

    summary = optimize(
        expert_path=str(EXPERTS / "cycle_timer.py"),
        start="2024-01-01",
        end="2024-02-29",
        method="tpe",
        trials=4,
        seed=1,
        space={"phase": [12, 36], "hold": [24]},
        fitness={"name": "total_return", "min_trades": 3},
        walk_forward_windows={"mode": "rolling", "in_sample_days": 20, "out_of_sample_days": 20},
        backtest={"data_dir": str(synthetic_dir)},
    )
    assert summary["mode"] == "walk_forward"
    assert len(summary["windows"]) == 2
    for window in summary["windows"]:
        assert window["in_sample"][1] == window["out_of_sample"][0]
        assert window["best_parameters"] == {"phase": 36, "hold": 24}
    assert summary["robustness"]["windows_tested"] == 2


@pytest.mark.parametrize("runner, package", [("dask", "prefect_dask"), ("ray", "prefect_ray")])
def test_make_task_runner_without_cluster_package_raises_clear_error(runner, package):
    import importlib.util

    from metaexpert.core.errors import ConfigurationError
    from tasks.optimization import make_task_runner

    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(ConfigurationError, match=f"pip install prefect-{runner}"):
        make_task_runner(runner, cluster_address="tcp://127.0.0.1:8786")


def test_pass_task_called_directly_returns_outcome(synthetic_dir):
    from metaexpert.backtest.optimization import PassRequest
    from tasks.optimization import run_pass

    outcome = run_pass.fn(
        str(EXPERTS / "cycle_timer.py"),
        None,
        {"data_dir": str(synthetic_dir)},
        (START_MS, START_MS + PERIOD * 10 * HOUR_MS),
        PassRequest({"phase": 36, "hold": 24}, START_MS, START_MS + PERIOD * 10 * HOUR_MS),
    )
    assert outcome.error is None and outcome.metrics["number_of_trades"] == 10


def _sweep_arguments(synthetic_dir: Path) -> dict:
    return {
        "expert_path": str(EXPERTS / "cycle_timer.py"),
        "start": "2024-01-01",
        "end": "2024-01-20",
        "method": "grid",
        "space": {"phase": [12, 24, 36], "hold": [12, 24]},
        "fitness": {"name": "total_return", "min_trades": 3},
        "backtest": {"data_dir": str(synthetic_dir)},
    }


@pytest.mark.slow
def test_optimize_flow_with_dask_cluster_by_address_finds_the_same_best_parameters(
    prefect_harness, synthetic_dir, monkeypatch
):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("prefect_dask")
    from prefect.settings import PREFECT_API_URL

    from flows.optimize import optimize
    from tests.pipelines.clusters import dask_cluster

    arguments = _sweep_arguments(synthetic_dir)
    local = optimize(**arguments, task_runner="thread", max_workers=2)
    monkeypatch.setenv(
        "PREFECT_API_URL", str(PREFECT_API_URL.value())
    )  # the Dask workers report to this server
    with dask_cluster() as cluster:
        remote = optimize(
            **arguments, task_runner="dask", cluster_address=cluster.scheduler_address
        )
        with distributed.Client(cluster.scheduler_address) as client:
            ran_on = client.run(lambda: __import__("os").getpid())
    assert len(ran_on) == 2
    assert remote["passes"] == local["passes"] == 6 and remote["failed_passes"] == 0
    assert remote["best_parameters"] == local["best_parameters"] == {"phase": 36, "hold": 24}
    assert remote["top"] == local["top"]


@pytest.mark.slow
def test_optimize_flow_with_ray_cluster_by_address_finds_the_same_best_parameters(
    prefect_harness, synthetic_dir, monkeypatch
):
    pytest.importorskip("prefect_ray")
    from prefect.settings import PREFECT_API_URL

    from flows.optimize import optimize
    from tests.pipelines.clusters import ray_head

    arguments = _sweep_arguments(synthetic_dir)
    local = optimize(**arguments, task_runner="thread", max_workers=2)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    with ray_head() as head:
        remote = optimize(**arguments, task_runner="ray", cluster_address=head.address)
        ran_on = head.completed_runs_by_pid("optimization-pass")
    # every pass ran in one of the cluster's worker processes, none in this one
    assert sum(ran_on.values()) == 6 and os.getpid() not in ran_on
    assert remote["passes"] == local["passes"] == 6 and remote["failed_passes"] == 0
    assert remote["best_parameters"] == local["best_parameters"] == {"phase": 36, "hold": 24}
    assert remote["top"] == local["top"]
