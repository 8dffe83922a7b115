"""The two documented ways to deploy register the same deployments and cannot break each other,
and the deployed runs complete through a real ``prefect worker start`` process.

Order 1, serve then deploy: serve's registration (``RunnerDeployment.apply``, what ``serve()``
does on start) gives exactly the names, descriptions, parameters and schedules of prefect.yaml;
``prefect deploy --all`` then binds them to the work pool with their pull step.
Order 2, deploy then serve: serve refuses (it would drop the pull step) and the deployments stay
intact. Then one run per deployment kind that needs no exchange (backtest, data-quality,
compliance-report, archive) goes through a worker process; every run must complete.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployments.serve import build_deployments, check_not_deployed_for_workers
from metaexpert.core.errors import ConfigurationError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
WORKER_TIMEOUT_S = 420


async def _registered() -> dict[str, object]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flows = {flow.id: flow.name for flow in await client.read_flows()}
        return {
            f"{flows[item.flow_id]}/{item.name}": item for item in await client.read_deployments()
        }


async def _reset(pool: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async with get_client() as client:
        for deployment in await client.read_deployments():
            await client.delete_deployment(deployment.id)
        await client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)


def _shape(deployment) -> dict[str, object]:
    return {
        "description": deployment.description,
        "parameters": dict(deployment.parameters),
        "tags": sorted(deployment.tags),
        "schedules": sorted((s.schedule.cron, s.schedule.timezone) for s in deployment.schedules),
    }


def _declared() -> dict[str, dict[str, object]]:
    shapes = {}
    for item in yaml.safe_load(PREFECT_FILE.read_text())["deployments"]:
        shapes[item["name"]] = {
            "description": item["description"],
            "parameters": item.get("parameters", {}),
            "tags": sorted(item.get("tags", [])),
            "schedules": sorted((s["cron"], s["timezone"]) for s in item.get("schedules", [])),
        }
    return shapes


def _env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "METAEXPERT_HOME": str(ROOT),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(ROOT),
    }


def _deploy_all() -> None:
    prefect = Path(sys.executable).with_name("prefect")
    completed = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


def test_deploy_with_serve_then_prefect_deploy_registers_the_same_deployments_and_workers_complete_runs(
    prefect_harness, shared_data, btc_1h, tmp_path
):
    from prefect.deployments import run_deployment

    from metaexpert.data import CandleStore
    from metaexpert.storage import Database

    asyncio.run(_reset("metaexpert"))
    declared = _declared()
    for deployment in build_deployments():  # what serve() registers when it starts
        deployment.apply()
    served = asyncio.run(_registered())
    assert {name.split("/")[1]: _shape(item) for name, item in served.items()} == declared
    assert all(item.work_pool_name is None for item in served.values())

    _deploy_all()  # order 1: deploy after serve takes the deployments over for workers
    deployed = asyncio.run(_registered())
    assert (
        set(deployed) == set(served)
        and {name.split("/")[1]: _shape(item) for name, item in deployed.items()} == declared
    )
    assert all(
        item.work_pool_name == "metaexpert" and item.pull_steps for item in deployed.values()
    )

    with pytest.raises(ConfigurationError, match="registered for workers by `prefect deploy`"):
        check_not_deployed_for_workers(
            build_deployments()
        )  # order 2: serve after deploy is refused ...
    assert all(
        item.pull_steps for item in asyncio.run(_registered()).values()
    )  # ... and changed nothing

    store = CandleStore(tmp_path / "store")
    store.write("binance", "spot", "BTCUSDT", "1h", btc_1h.head(300))
    database_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    Database(database_url).upgrade()
    runs = {
        "backtest/backtest": {
            "expert_file": "examples/timer_rebalance_binance_spot.py",
            "start": "2024-01-01",
            "end": "2024-01-07",
            "data_dir": str(shared_data),
            "output_dir": str(tmp_path / "bt"),
        },
        "candle-data-quality/data-quality": {
            "store_root": str(store.root),
            "docs_dir": str(tmp_path / "docs"),
        },
        "compliance-report/compliance-report": {
            "database_url": database_url,
            "output_dir": str(tmp_path / "cr"),
            "day": "2025-06-04",
            "archive_dir": str(tmp_path / "archive"),
        },
        "archive/archive": {"database_url": database_url, "directory": str(tmp_path / "archive")},
    }
    flow_runs = {
        name: run_deployment(name, parameters=parameters, timeout=0)
        for name, parameters in runs.items()
    }
    prefect = Path(sys.executable).with_name("prefect")
    worker = subprocess.run(
        [
            str(prefect),
            "worker",
            "start",
            "--pool",
            "metaexpert",
            "--run-once",
            "--limit",
            str(len(runs)),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )
    log = worker.stdout[-4000:] + worker.stderr[-4000:]

    async def states() -> dict[str, str]:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return {
                name: (await client.read_flow_run(run.id)).state.type.value
                for name, run in flow_runs.items()
            }

    final = asyncio.run(states())
    assert final == {name: "COMPLETED" for name in runs}, f"{final}\n{log}"
