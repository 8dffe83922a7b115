"""Turning failures into one clear line (and an exit code) instead of a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from metaexpert.core.errors import MetaExpertError
from metaexpert.engine.loader import ExpertLoadError
from metaexpert.observability.masking import mask_text

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "ExpertLoadError", "error_console", "reported_errors"]


def error_console() -> Console:
    """Where errors go: standard error, so that stdout stays clean for results."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _one_line(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'value'}: {issue['msg']}"
            for issue in error.errors()
        )
        return f"invalid configuration: {problems}"
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def reported_errors(*, debug: bool = False) -> Iterator[None]:
    """Show expected failures as ``error: ...`` and exit non-zero; ``debug`` keeps tracebacks.

    Expected failures are the project's own errors (configuration, data, insufficient
    history, a broken expert file), configuration validation errors and operating-system
    errors (a folder that cannot be written). Anything else is a bug and keeps its
    traceback. Messages pass through secret masking.
    """
    try:
        yield
    except (MetaExpertError, ValidationError, OSError) as error:
        if debug:
            raise
        kind = type(error).__name__
        error_console().print(f"[bold red]error:[/] {escape(mask_text(_one_line(error)))} ({kind})",
                              markup=True)
        raise typer.Exit(EXIT_FAILURE) from None
    except KeyboardInterrupt:
        if debug:
            raise
        error_console().print("[yellow]interrupted[/]", markup=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
