"""``metaexpert export`` / ``metaexpert import``: strategy packages (versioned, hashed zip files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from metaexpert.cli.errors import reported_errors

__all__ = ["export_command", "import_command"]


def export_command(
    file: Annotated[Path, typer.Argument(help="The expert file to package.", show_default=False)],
    version: Annotated[str, typer.Option("--version", help="Semantic version, e.g. 1.0.0.", show_default=False)],
    owner: Annotated[str, typer.Option("--owner", help="Who owns the strategy.", show_default=False)],
    permission: Annotated[str, typer.Option("--permission",
                                            help="private, shared_read_only or copy_allowed.")] = "private",
    name: Annotated[str | None, typer.Option("--name", help="Package name (default: file stem).",
                                             show_default=False)] = None,
    parameters: Annotated[Path | None, typer.Option("--parameters", help="JSON file of chosen parameters.",
                                                    show_default=False)] = None,
    metrics: Annotated[Path | None, typer.Option("--metrics", help="JSON file of metrics.", show_default=False)] = None,
    data_start: Annotated[str | None, typer.Option("--data-start", show_default=False)] = None,
    data_end: Annotated[str | None, typer.Option("--data-end", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", help="Folder or .zip path.")] = Path("output/packages"),
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Export an expert file with its parameters and metrics as a versioned package."""
    from metaexpert.backtest.packages import export_strategy

    with reported_errors(debug=debug):
        data_range = {"start": data_start, "end": data_end} if data_start and data_end else None
        path = export_strategy(
            file, output, name=name or file.stem, version=version, owner=owner, permission=permission,
            parameters=json.loads(parameters.read_text()) if parameters else None,
            metrics=json.loads(metrics.read_text()) if metrics else None, data_range=data_range)
        Console().print(f"package: {path}")


def import_command(
    package: Annotated[Path, typer.Argument(help="The package .zip.", show_default=False)],
    user: Annotated[str, typer.Option("--user", help="Who imports (checked against the permission).",
                                      show_default=False)],
    target: Annotated[Path, typer.Option("--target", help="Folder to extract into.")] = Path("strategies"),
    copy: Annotated[bool, typer.Option("--copy", help="Editable copy (needs copy_allowed or ownership).")] = False,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Verify a package's hashes and permission, then extract it."""
    from metaexpert.backtest.packages import import_strategy

    with reported_errors(debug=debug):
        imported = import_strategy(package, target, user=user, copy=copy)
        manifest = imported.package.manifest
        Console().print(f"{manifest.name} {manifest.version} by {manifest.owner} ({manifest.permission}) "
                        f"-> {imported.expert_path}{'' if imported.editable else ' (read-only)'}")
