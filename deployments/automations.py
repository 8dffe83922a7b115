"""Alerts for flow runs that never reach their own hooks: a Prefect automation on the server.

A flow's ``on_failure`` / ``on_crashed`` hooks run inside the flow's process; a run whose flow
cannot even be loaded (a missing or broken entrypoint, a worker without the checkout) ends
Crashed or Failed without them, and sent nothing. This automation reacts on the server to
every flow run entering Crashed, or Failed from a run whose flow never started, and posts an
alert with the run's UI link to a webhook (the same JSON shape as Apprise ``json://``), so
nothing fails silently. ``python -m deployments.automations http://alerts.example/hook``.

A crash inside a running flow would reach both this automation and the flow's ``on_crashed``
hook; the hook sees the automation (``tasks.alerts.crash_automation_alerts``) and stays quiet,
so each crashed run is alerted once.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from tasks.alerts import CRASH_AUTOMATION_NAME as AUTOMATION_NAME

BLOCK_NAME = "metaexpert-alerts-webhook"


def ensure_failure_automation(webhook_url: str) -> Any:
    """Create (or replace) the webhook block and the automation; returns the automation's id."""
    from prefect.automations import Automation, EventTrigger, Posture, SendNotification
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name=BLOCK_NAME,
        url=webhook_url,
        method="POST",
        allow_private_urls=True,
        json_data={
            "version": "1.0",
            "title": "{{subject}}",
            "message": "{{body}}",
            "type": "failure",
        },
    )
    block_id = block.save(BLOCK_NAME, overwrite=True)
    with contextlib.suppress(
        Exception
    ):  # not there yet (Prefect raises ValueError or ObjectNotFound)
        Automation.read(name=AUTOMATION_NAME).delete()
    automation = Automation(
        name=AUTOMATION_NAME,
        description="Alert on flow runs that crashed or failed before their own failure hooks could run.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="flow run {{ flow_run.name }} crashed",
                body="flow run {{ flow_run.name }} of deployment {{ deployment.name }} crashed: "
                "{{ flow_run.state.message }}\nrun: {{ flow_run|ui_url }} (flow run id {{ flow_run.id }}; "
                "the link needs PREFECT_UI_URL set on the server)",
            )
        ],
    )
    return automation.create().id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Alert on flow runs that crashed before their hooks ran."
    )
    parser.add_argument("webhook_url", help="URL receiving the alert JSON (title, message, type)")
    print(ensure_failure_automation(parser.parse_args(argv).webhook_url))


if __name__ == "__main__":
    main()
