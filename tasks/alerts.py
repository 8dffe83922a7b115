"""Alert delivery for the pipelines: settings, a retried send task, and Prefect state hooks.

Where alerts go is read once from the environment (``METAEXPERT_ALERT_URLS``: Apprise URLs
separated by commas or whitespace; ``METAEXPERT_ALERT_CONFIG``: an Apprise YAML/text config
file) or passed explicitly. No destination configured means no alert and no error: the
pipelines stay usable on a laptop without any chat service.

An alert target that is down never fails the flow it reports on: flows call ``alert(...)``,
which runs the retried ``send_alert`` task and, when every attempt failed, logs a warning and
returns False (the ingest it reported on still completes). Failure and crash alerts carry a
link to the flow run in the Prefect UI (``PREFECT_UI_URL``).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, field_validator

from metaexpert.notify import AppriseNotifier, NotificationConfig

logger = logging.getLogger("metaexpert.pipelines.alerts")

URLS_VARIABLE = "METAEXPERT_ALERT_URLS"
CONFIG_VARIABLE = "METAEXPERT_ALERT_CONFIG"


class AlertSettings(BaseModel):
    """Alert destinations for flows; ``urls`` are Apprise URLs (``json://127.0.0.1:8000/hook``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: tuple[str, ...] = ()
    config_file: Path | None = None
    title_prefix: str = Field(default="MetaExpert pipelines", max_length=80)

    @field_validator("urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[\s,]+", value) if part)
        return value

    @field_validator("urls")
    @classmethod
    def _schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if "://" not in url:
                raise ValueError(
                    f"alert URL without a scheme ({url.split('@')[-1][:40]!r}); "
                    "expected an Apprise URL such as json://host/path or tgram://token/chat"
                )
        return value

    @property
    def configured(self) -> bool:
        return bool(self.urls) or self.config_file is not None

    @classmethod
    def from_environment(
        cls, urls: str | list[str] | None = None, config_file: str | None = None
    ) -> AlertSettings:
        """Explicit values win over ``METAEXPERT_ALERT_URLS`` / ``METAEXPERT_ALERT_CONFIG``."""
        chosen_urls = urls if urls else os.environ.get(URLS_VARIABLE, "")
        chosen_file = config_file or os.environ.get(CONFIG_VARIABLE) or None
        return cls(urls=chosen_urls, config_file=chosen_file)

    def notifier(self) -> AppriseNotifier | None:
        """The Apprise notifier for these settings, or None when nothing is configured."""
        if not self.configured:
            return None
        return AppriseNotifier(
            NotificationConfig(
                urls=list(self.urls), config_file=self.config_file, title_prefix=self.title_prefix
            )
        )


def deliver(
    settings: AlertSettings,
    title: str,
    body: str,
    *,
    level: str = "warning",
    tags: tuple[str, ...] = (),
) -> bool:
    """Send one alert now; False when nothing is configured or no target took it."""
    notifier = settings.notifier()
    if notifier is None:
        return False
    return notifier.notify(title, body, level=level, tags=tags)


class AlertNotDeliveredError(RuntimeError):
    """Every configured alert target refused the alert (retried by ``send_alert``)."""


@task(
    name="send-alert",
    retries=2,
    retry_delay_seconds=[1, 5],
    cache_policy=NO_CACHE,
    persist_result=False,
    task_run_name="alert {title}",
)
def send_alert(
    title: str,
    body: str,
    level: str = "warning",
    urls: list[str] | None = None,
    config_file: str | None = None,
) -> bool:
    """Deliver an alert; retried when configured targets all fail, a no-op when none is set."""
    settings = AlertSettings.from_environment(urls, config_file)
    if not settings.configured:
        return False
    if not deliver(settings, title, body, level=level):
        raise AlertNotDeliveredError(f"alert {title!r} was not delivered to any configured target")
    return True


def alert(
    title: str,
    body: str,
    level: str = "warning",
    urls: list[str] | None = None,
    config_file: str | None = None,
) -> bool:
    """Send an alert from a flow without ever failing it: ``send_alert`` retries, and a target
    still down after the retries is logged (run logs) instead of raised. True when delivered."""
    from prefect import get_run_logger

    state = send_alert(title, body, level, urls, config_file, return_state=True)
    if state.is_completed():
        return bool(state.result())
    get_run_logger().warning(
        "alert %r not delivered after retries (%s); the flow goes on",
        title,
        str(state.message or state.name)[:300],
    )
    return False


def run_link(flow_run: Any) -> str | None:
    """The flow run's page in the Prefect UI, or None when no UI address is known."""
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    run_id = getattr(flow_run, "id", None)
    return f"{str(base).rstrip('/')}/runs/flow-run/{run_id}" if base and run_id else None


def _describe_failure(flow: Any, flow_run: Any, state: Any) -> tuple[str, str]:
    name = getattr(flow, "name", "flow")
    run_name = getattr(flow_run, "name", "?")
    kind = "crashed" if getattr(state, "is_crashed", lambda: False)() else "failed"
    message = str(getattr(state, "message", "") or "no message")[:1500]
    parameters = getattr(flow_run, "parameters", {}) or {}
    shown = ", ".join(
        f"{key}={value!r}"
        for key, value in parameters.items()
        if not re.search(r"key|secret|password|token|passphrase", key, re.IGNORECASE)
    )
    link = run_link(flow_run)
    return f"flow {name} {kind}", (
        f"run {run_name} {kind}: {message}\nparameters: {shown[:500]}"
        + (f"\nrun: {link}" if link else "")
    )


#: The server-side automation of ``deployments/automations.py``: it alerts on every crashed run.
CRASH_AUTOMATION_NAME = "metaexpert-flow-run-did-not-run"


def crash_automation_alerts() -> bool:
    """Whether the server's crash automation exists and is enabled (then it sends the alert of
    a crashed run, and the hook does not send a second one). Unknown counts as no."""
    try:
        from prefect.client.orchestration import get_client

        # the sync client: a hook of an async flow runs inside an event loop
        with get_client(sync_client=True) as client:
            found = client.read_automations_by_name(CRASH_AUTOMATION_NAME)
        return any(automation.enabled for automation in found)
    except Exception:  # noqa: BLE001 - not there (ValueError/ObjectNotFound) or server unreachable
        return False


def alert_on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` / ``on_crashed`` hook: one failure alert per failed flow run.

    A crash is left to the server's crash automation when it is installed: both would
    otherwise alert on the same run. Hooks must never raise (Prefect would log the hook error
    instead of the flow's), so delivery problems are logged and swallowed."""
    try:
        if getattr(state, "is_crashed", lambda: False)() and crash_automation_alerts():
            logger.info(
                "crash of %s: alerted by the server automation %s",
                getattr(flow_run, "name", "?"),
                CRASH_AUTOMATION_NAME,
            )
            return
        title, body = _describe_failure(flow, flow_run, state)
        settings = AlertSettings.from_environment()
        if settings.configured and not deliver(settings, title, body, level="failure", tags=()):
            logger.warning("failure alert for %s was not delivered", title)
    except Exception as error:  # noqa: BLE001 - a broken alert channel must not mask the flow's failure
        logger.warning("failure alert could not be sent: %s", type(error).__name__)


FAILURE_HOOKS: dict[str, list[Any]] = {
    "on_failure": [alert_on_flow_failure],
    "on_crashed": [alert_on_flow_failure],
}
