"""The deployment list, written once: ``deployments/prefect.yaml`` is the source.

``prefect deploy --all`` reads it for workers; ``deployments/serve.py`` builds its
``RunnerDeployment`` objects from the same entries (names, descriptions, tags, parameters,
schedules, concurrency limits), so the two ways register the same deployments. Evaluate
deployments: one per expert file, named ``evaluate-<file stem>``, cron from the expert's
timers and bars (``deployments.schedules.cron_for_expert``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from deployments.schedules import SCHEDULE_TIMEZONE, cron_for_expert
from metaexpert.core.errors import ConfigurationError

PREFECT_FILE = Path(__file__).with_name("prefect.yaml")
EVALUATE_ENTRYPOINT = "flows/evaluate.py:evaluate"


def deployment_name(expert_file: str | Path) -> str:
    """``evaluate-<file stem>``: one evaluate deployment per expert file."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(expert_file).stem.lower()).strip("-") or "expert"
    return f"evaluate-{stem}"


def load_entries(path: str | Path = PREFECT_FILE) -> list[dict[str, Any]]:
    """The ``deployments:`` entries of a prefect.yaml (YAML anchors resolved)."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"cannot read the deployments file {path}: {error}") from None
    entries = (document or {}).get("deployments")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{path} has no 'deployments:' list")
    return entries


def evaluate_entry(
    expert_file: str | Path,
    trade_mode: str = "paper",
    storage_url: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A prefect.yaml-shaped evaluate entry for ``expert_file`` (cron from its timers and bars)."""
    cron = cron_for_expert(expert_file)
    parameters: dict[str, Any] = {"expert_file": str(expert_file), "trade_mode": trade_mode}
    if storage_url:
        parameters["storage_url"] = storage_url
    return {
        "name": deployment_name(expert_file),
        "entrypoint": EVALUATE_ENTRYPOINT,
        "description": description
        or f"One {trade_mode} step of {Path(expert_file).name} per cron tick "
        f"({cron} UTC, from its timers and bars).",
        "tags": ["trading", trade_mode],
        "concurrency_limit": 1,
        "parameters": parameters,
        "schedules": [{"cron": cron, "timezone": SCHEDULE_TIMEZONE}],
    }


def load_flow(entrypoint: str) -> Any:
    """The flow object of ``flows/x.py:name`` (imported as the ``flows.x`` module)."""
    path, _, attribute = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, attribute)


def to_runner_deployment(entry: dict[str, Any]) -> Any:
    """The ``RunnerDeployment`` (for ``serve``) of one prefect.yaml entry."""
    from prefect.schedules import Cron

    schedules = [
        Cron(item["cron"], timezone=item.get("timezone", SCHEDULE_TIMEZONE))
        for item in entry.get("schedules") or []
    ]
    return load_flow(entry["entrypoint"]).to_deployment(
        name=entry["name"],
        description=entry.get("description"),
        tags=list(entry.get("tags") or []),
        parameters=dict(entry.get("parameters") or {}),
        schedules=schedules or None,
        concurrency_limit=entry.get("concurrency_limit"),
    )
