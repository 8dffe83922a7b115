"""A deployment whose flow cannot be loaded still alerts (server-side automation), with the run link."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_deployment_with_missing_entrypoint_crashes_and_the_automation_alerts(
    prefect_harness, alert_inbox, tmp_path
):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from deployments.automations import ensure_failure_automation

    ensure_failure_automation(alert_inbox.url.replace("json://", "http://"))

    @flow(name="vanished")
    def vanished() -> None:
        pass

    async def register() -> None:
        async with get_client() as client:
            await client.create_work_pool(
                WorkPoolCreate(name="broken-pool", type="process"), overwrite=True
            )
            flow_id = await client.create_flow(vanished)
            await client.create_deployment(
                flow_id=flow_id,
                name="gone",
                entrypoint="flows/no_such_flow.py:gone",
                work_pool_name="broken-pool",
                pull_steps=[
                    {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
                ],
            )

    asyncio.run(register())
    run = run_deployment("vanished/gone", timeout=0)
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    subprocess.run(
        [
            str(Path(sys.executable).with_name("prefect")),
            "worker",
            "start",
            "--pool",
            "broken-pool",
            "--run-once",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    async def state() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(run.id)).state.type.value

    state_value = asyncio.run(state())
    assert state_value in {"CRASHED", "FAILED"}, state_value
    deadline = time.monotonic() + 60
    while not alert_inbox.received and time.monotonic() < deadline:
        time.sleep(1)
    assert alert_inbox.received, f"no alert for the {state_value} run"
    (alert,) = alert_inbox.received
    # the harness server has no PREFECT_UI_URL, so the link is the id (compose sets the UI address)
    assert "crashed" in alert["title"] and f"flow run id {run.id}" in alert["message"], alert


def test_crash_hook_with_the_crash_automation_installed_leaves_the_alert_to_it(
    prefect_harness, alert_inbox, monkeypatch
):
    # A crash inside a running flow reaches both the flow's on_crashed hook and the server's
    # crash automation: one alert, not two. Failures (no automation for them) still alert.
    from types import SimpleNamespace

    from prefect.automations import Automation
    from prefect.states import Crashed, Failed

    from deployments.automations import AUTOMATION_NAME, ensure_failure_automation
    from tasks.alerts import alert_on_flow_failure

    monkeypatch.setenv("METAEXPERT_ALERT_URLS", alert_inbox.url)
    flow = SimpleNamespace(name="evaluate")
    run = SimpleNamespace(id="0f1e", name="evaluate ema", parameters={})
    with contextlib.suppress(Exception):
        Automation.read(name=AUTOMATION_NAME).delete()

    alert_on_flow_failure(flow, run, Crashed(message="worker lost"))
    assert [alert["title"] for alert in alert_inbox.received] == [
        "MetaExpert pipelines: flow evaluate crashed"
    ]

    alert_inbox.received.clear()
    ensure_failure_automation(alert_inbox.url.replace("json://", "http://"))
    alert_on_flow_failure(flow, run, Crashed(message="worker lost"))
    alert_on_flow_failure(flow, run, Failed(message="boom"))
    assert [alert["title"] for alert in alert_inbox.received] == [
        "MetaExpert pipelines: flow evaluate failed"
    ]
