"""Serve the MetaExpert deployments from one process: the local shortcut, no work pool.

    python -m deployments.serve [more_expert.py ...] --mode paper --storage-url sqlite:///var/metaexpert.sqlite

Which way to use: ``prefect.yaml`` + a ``process`` work pool + ``prefect worker start`` is THE
way to deploy (a server, several hosts, runs that survive this shell); ``serve`` is for a
laptop session. Both register the same deployments, built from the same entries of
``deployments/prefect.yaml`` (``deployments/spec.py``): same names, descriptions, parameters
and schedules. Expert files given here add one ``evaluate-<stem>`` deployment each.

The switch is guarded: serve refuses to start when any of its deployments is registered for a
work pool (by ``prefect deploy``), because serving would update it in place, drop its pull step
and make every worker run crash. Deploying for workers after serving is fine (the deployments
get their work pool and pull step; stop the serve process).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from deployments.spec import (
    PREFECT_FILE,
    deployment_name,
    evaluate_entry,
    load_entries,
    to_runner_deployment,
)
from metaexpert.core.errors import ConfigurationError

__all__ = ["build_deployments", "check_not_deployed_for_workers", "deployment_name", "main"]


def build_deployments(
    expert_files: list[str] | None = None,
    *,
    trade_mode: str = "paper",
    storage_url: str | None = None,
    prefect_file: str | Path = PREFECT_FILE,
) -> list[Any]:
    """The ``RunnerDeployment`` objects of every prefect.yaml entry, plus one evaluate
    deployment per expert file given (an entry of the same name is replaced by it)."""
    entries = {entry["name"]: entry for entry in load_entries(prefect_file)}
    for expert_file in expert_files or []:
        entries[deployment_name(expert_file)] = evaluate_entry(expert_file, trade_mode, storage_url)
    return [to_runner_deployment(entry) for entry in entries.values()]


async def _worker_bound(deployments: list[Any]) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    bound = []
    async with get_client() as client:
        for deployment in deployments:
            full_name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = await client.read_deployment_by_name(full_name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                bound.append(f"{full_name} (work pool {existing.work_pool_name})")
    return bound


def check_not_deployed_for_workers(deployments: list[Any]) -> None:
    """Raise ``ConfigurationError`` when serving would take over deployments a worker runs."""
    bound = asyncio.run(_worker_bound(deployments))
    if bound:
        raise ConfigurationError(
            f"{len(bound)} deployment(s) are registered for workers by `prefect deploy`: {', '.join(bound[:4])}"
            f"{' ...' if len(bound) > 4 else ''}; serving them would replace them in place (no pull step, every "
            "worker run would crash). Run `prefect worker start --pool <pool>` instead, or delete them first "
            "(`prefect deployment delete <flow>/<name>`) to switch to serve"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve the MetaExpert deployments in one process (local use)."
    )
    parser.add_argument(
        "experts", nargs="*", help="more expert files to evaluate on their derived schedules"
    )
    parser.add_argument(
        "--mode", default="paper", choices=["paper", "live"], help="trade mode of those experts"
    )
    parser.add_argument("--storage-url", default=None, help="state database URL of those experts")
    arguments = parser.parse_args(argv)
    from prefect import serve

    deployments = build_deployments(
        arguments.experts, trade_mode=arguments.mode, storage_url=arguments.storage_url
    )
    check_not_deployed_for_workers(deployments)
    serve(*deployments)


if __name__ == "__main__":
    main()
