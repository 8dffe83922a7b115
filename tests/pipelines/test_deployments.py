"""Deployments: cron derivation from expert files, prefect.yaml registered on a local server, serve()."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployments.schedules import cron_for_expert, cron_for_interval
from metaexpert.core.errors import ConfigurationError
from tests.pipelines.experts import TIMER_EXPERT, write_expert

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
EXPECTED = {
    "ingest-candles/ingest",
    "candle-data-quality/data-quality",
    "evaluate/evaluate-ema-cross-binance-spot",
    "backtest/backtest",
    "optimize/optimize",
    "compliance-report/compliance-report",
    "archive/archive",
}


@pytest.mark.parametrize(
    ("interval", "cron"),
    [
        ("1m", "* * * * *"),
        ("5m", "*/5 * * * *"),
        ("15m", "*/15 * * * *"),
        ("120m", "0 */2 * * *"),
        ("1h", "0 * * * *"),
        ("4h", "0 */4 * * *"),
        ("1d", "0 0 * * *"),
        ("1w", "0 0 * * 1"),
        ("1M", "0 0 1 * *"),
    ],
)
def test_cron_for_interval_with_aligned_interval_returns_boundary_cron(interval, cron):
    assert cron_for_interval(interval) == cron


@pytest.mark.parametrize("interval", ["7m", "5h", "3d"])
def test_cron_for_interval_with_unaligned_interval_raises_clear_error(interval):
    with pytest.raises(ConfigurationError, match="does not fall on cron boundaries"):
        cron_for_interval(interval)


def test_cron_for_expert_with_timer_shorter_than_bars_uses_the_timer(tmp_path):
    assert (
        cron_for_expert(write_expert(tmp_path, "timer_expert", TIMER_EXPERT)) == "* * * * *"
    )  # 1m bars < 5m
    five = TIMER_EXPERT.replace('timeframe="1m"', 'timeframe="15m"').replace(
        'on_bar(timeframe="1m")', 'on_bar(timeframe="15m")'
    )
    assert cron_for_expert(write_expert(tmp_path, "five", five)) == "*/5 * * * *"


def test_prefect_yaml_evaluate_schedule_with_example_expert_matches_derived_cron():
    config = yaml.safe_load(PREFECT_FILE.read_text())
    evaluations = [
        item for item in config["deployments"] if item["entrypoint"] == "flows/evaluate.py:evaluate"
    ]
    assert evaluations
    for item in evaluations:
        (schedule,) = item["schedules"]
        assert schedule["cron"] == cron_for_expert(ROOT / item["parameters"]["expert_file"])
        assert schedule["timezone"] == "UTC" and item["concurrency_limit"] == 1


async def _deployments() -> dict[str, object]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flows = {flow.id: flow.name for flow in await client.read_flows()}
        return {
            f"{flows[item.flow_id]}/{item.name}": item for item in await client.read_deployments()
        }


@pytest.mark.slow
def test_prefect_deploy_all_with_local_server_registers_every_deployment_with_schedule(
    prefect_harness,
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL

    async def create_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(
                WorkPoolCreate(name="metaexpert", type="process"), overwrite=True
            )

    asyncio.run(create_pool())
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "METAEXPERT_HOME": str(ROOT),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    prefect = Path(sys.executable).with_name("prefect")
    completed = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    registered = asyncio.run(_deployments())
    assert EXPECTED <= set(registered)
    config = {
        item["name"]: item for item in yaml.safe_load(PREFECT_FILE.read_text())["deployments"]
    }
    for full_name in EXPECTED:
        deployment = registered[full_name]
        declared = config[full_name.split("/")[1]]
        crons = sorted(
            (schedule.schedule.cron, schedule.schedule.timezone)
            for schedule in deployment.schedules
        )
        assert crons == sorted(
            (item["cron"], item["timezone"]) for item in declared.get("schedules", [])
        )
        assert deployment.work_pool_name == "metaexpert"
        for key, value in declared.get("parameters", {}).items():
            assert deployment.parameters[key] == value
    evaluate = registered["evaluate/evaluate-ema-cross-binance-spot"]
    assert (
        evaluate.global_concurrency_limit is not None
        and evaluate.global_concurrency_limit.limit == 1
    )


def test_build_deployments_with_expert_file_derives_evaluate_schedule(tmp_path):
    from deployments.serve import build_deployments

    deployments = {
        item.name: item
        for item in build_deployments([write_expert(tmp_path, "timer_expert", TIMER_EXPERT)])
    }
    assert {
        "ingest",
        "data-quality",
        "backtest",
        "compliance-report",
        "archive",
        "evaluate-timer-expert",
    } <= set(deployments)
    evaluate = deployments["evaluate-timer-expert"]
    assert evaluate.schedules[0].schedule.cron == "* * * * *"
    assert evaluate.schedules[0].schedule.timezone == "UTC"
    assert evaluate.parameters["expert_file"].endswith("timer_expert.py")
