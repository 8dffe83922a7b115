"""Turning failures into one clear line (and an exit code) instead of a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from metaexpert.core.errors import MetaExpertError
from metaexpert.engine.failures import RunFailure
from metaexpert.engine.loader import ExpertLoadError
from metaexpert.observability.logging import log_fatal
from metaexpert.observability.masking import mask_text

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "ExpertLoadError",
    "error_console",
    "reported_errors",
]


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
        log_fatal(error)  # the error log gets it too, not only the terminal
        if debug:
            raise
        kind = type(error).__name__
        error_console().print(
            f"[bold red]error:[/] {escape(mask_text(_one_line(error)))} ({kind})", markup=True
        )
        raise typer.Exit(EXIT_FAILURE) from None
    except KeyboardInterrupt:
        if debug:
            raise
        error_console().print("[yellow]interrupted[/]", markup=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (
        Exception
    ) as error:  # a bug: keeps its traceback on the terminal, and reaches the error log
        log_fatal(error, what="unexpected error")
        raise


def exit_if_run_failed(outcome: object) -> None:
    """Exit non-zero when a finished run (a backtest result or a paper/live engine) had
    handler errors or was stopped by one.

    A strategy that raised on every bar, ``-p period=abc`` reaching a handler, or
    ``stop_on_error=True`` used to end with exit code 0 and look like a run that made no
    trades. The distinct errors (with their counts) are repeated on standard error.
    """
    failure = RunFailure.of(outcome)
    if not failure.failed:
        return
    console = error_console()
    console.print(f"[bold red]error:[/] {escape(mask_text(failure.headline()))}", markup=True)
    for line in failure.errors[:20]:
        console.print(f"  {escape(mask_text(line))}", markup=False)
    raise typer.Exit(EXIT_FAILURE)
