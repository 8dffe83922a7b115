"""``metaexpert supervise CONFIG.yaml``: run several experts, one process each, until they end.

The YAML file is a ``SupervisorConfig``: the experts (file, trade mode, run options,
memory/CPU limits, request budget), the restart policy, Apprise URLs for alerts and an
optional Prometheus port. The command prints one line per expert at the end and exits
non-zero when any expert did not finish.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.cli.errors import EXIT_FAILURE, reported_errors
from metaexpert.cli.options import DebugOption

__all__ = ["supervise_command"]


def supervise_command(
    config: Annotated[Path, typer.Argument(help="Supervisor configuration (YAML).")],
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=1, help="Stop every expert after this many seconds."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Run the experts listed in CONFIG, each in its own process with its limits, and report."""
    from metaexpert.supervisor import SupervisorConfig, supervise

    with reported_errors(debug=debug):
        settings = SupervisorConfig.from_yaml(config)
        report = supervise(settings, timeout_seconds=timeout)
    console = Console(highlight=False)
    for name, entry in report.experts.items():
        result = entry["result"] or {}
        outcome = (
            f"final equity {result['final_equity']:.2f}"
            if "final_equity" in result
            else escape(entry["reason"])
        )
        console.print(
            f"{escape(name)}: {entry['status']} ({outcome}; restarts {entry['restarts']}; log {escape(entry['log'])})"
        )
    if not report.all_finished:
        raise typer.Exit(EXIT_FAILURE)
