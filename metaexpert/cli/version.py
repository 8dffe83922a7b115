"""``metaexpert version``: what is installed, for bug reports."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Annotated

import typer
from rich.console import Console

import metaexpert
from metaexpert._compiled import COMPILED_MODULES, compiled_modules

__all__ = ["version_command", "version_lines"]

_COMPONENTS = ("ccxt", "polars", "pandas", "sqlalchemy", "pydantic", "typer", "rich")


def engine_build() -> str:
    """Whether the engine's hot modules run compiled (``make build``) or interpreted."""
    compiled = len(compiled_modules())
    if compiled == len(COMPILED_MODULES):
        return "compiled engine"
    if compiled == 0:
        return "pure-Python engine (not compiled: `make build`)"
    return f"partly compiled engine ({compiled} of {len(COMPILED_MODULES)} modules: `make build`)"


def version_lines(*, verbose: bool = False) -> list[str]:
    """``metaexpert X.Y.Z (build)`` and, with ``verbose``, Python and the key dependencies."""
    lines = [f"metaexpert {metaexpert.__version__} ({engine_build()})"]
    if verbose:
        system = f"{platform.system()} {platform.machine()}"
        lines.append(f"python {platform.python_version()} ({system})")
        for name in _COMPONENTS:
            try:
                lines.append(f"{name} {metadata.version(name)}")
            except metadata.PackageNotFoundError:
                lines.append(f"{name} not installed")
    return lines


def version_command(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show Python and key libraries.")
    ] = False,
) -> None:
    """Show the MetaExpert version (--verbose: Python and key libraries too)."""
    console = Console(highlight=False, soft_wrap=True)
    for line in version_lines(verbose=verbose):
        console.print(line)
