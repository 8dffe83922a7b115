"""Parsing and resolving command-line values, shared by the commands.

Everything here is validated at the edge and fails with a message that names the option
and shows an example of what is expected.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

import metaexpert

# Options several commands share, declared once (Typer reads them from the annotation).
DebugOption = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="The local sandbox (REST and websockets), e.g. http://127.0.0.1:8765."
    ),
]
SandboxUrlOption = Annotated[
    str | None, typer.Option("--sandbox-url", hidden=True, help="Old name of --base-url.")
]

__all__ = [
    "DATA_DIR_ENVIRONMENT_VARIABLE",
    "default_output_dir",
    "parse_date",
    "parse_parameters",
    "repository_root",
    "resolve_data_dir",
]

DATA_DIR_ENVIRONMENT_VARIABLE = "METAEXPERT_DATA_DIR"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_date(value: str, option: str) -> str:
    """Check that ``value`` is a real YYYY-MM-DD date; return it unchanged (UTC is implied)."""
    text = value.strip()
    if not _DATE.match(text):
        raise typer.BadParameter(f"{text!r} is not a date like 2024-01-31", param_hint=option)
    try:
        dt.date.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(
            f"{text!r} is not a valid date: {error}", param_hint=option
        ) from error
    return text


def check_date_range(start: str, end: str) -> None:
    """The backtest must cover at least one day: ``start`` strictly before ``end``."""
    if dt.date.fromisoformat(start) >= dt.date.fromisoformat(end):
        raise typer.BadParameter(
            f"--start ({start}) must be before --end ({end})", param_hint="--start/--end"
        )


def _literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    # Only plain data: numbers, strings, and lists/tuples/dicts of them.
    if isinstance(value, (int, float, str, list, tuple, dict)):
        return value
    return text


def parse_parameters(items: Iterable[str] | None) -> dict[str, Any]:
    """Turn ``["fast_period=10", "use_filter=true", "name=abc"]`` into typed values.

    Values are read as Python literals when they look like one (``10`` -> int, ``0.5`` ->
    float, ``true``/``false``/``none``, ``[1,2]``); anything else stays a string.
    """
    parameters: dict[str, Any] = {}
    for item in items or ():
        key, separator, raw = item.partition("=")
        key = key.strip()
        if not separator:
            raise typer.BadParameter(
                f"{item!r} must look like key=value, e.g. fast_period=10", param_hint="--param"
            )
        if not _KEY.match(key):
            raise typer.BadParameter(
                f"{key!r} is not a valid parameter name (letters, digits and underscores)",
                param_hint="--param",
            )
        if key in parameters:
            raise typer.BadParameter(f"parameter {key!r} is given twice", param_hint="--param")
        parameters[key] = _literal(raw.strip())
    return parameters


def repository_root() -> Path:
    """The checkout that holds the ``metaexpert`` package (and ``examples/``)."""
    return Path(metaexpert.__file__).resolve().parents[1]


def resolve_data_dir(option: Path | None, *, fallback: Path | None = None) -> Path | None:
    """Where candles come from: ``--data``, else ``$METAEXPERT_DATA_DIR``, else ``fallback``.

    ``None`` means "no local data": the expert fetches candles from the exchange. An
    explicitly named folder must exist; the fallback is used only if it exists.
    """
    if option is not None:
        folder = option.expanduser()
        if not folder.is_dir():
            raise typer.BadParameter(f"data folder not found: {folder}", param_hint="--data")
        return folder.resolve()
    environment = os.environ.get(DATA_DIR_ENVIRONMENT_VARIABLE, "").strip()
    if environment:
        folder = Path(environment).expanduser()
        if not folder.is_dir():
            raise typer.BadParameter(
                f"data folder from {DATA_DIR_ENVIRONMENT_VARIABLE} not found: {folder}",
                param_hint=DATA_DIR_ENVIRONMENT_VARIABLE,
            )
        return folder.resolve()
    if fallback is not None and fallback.is_dir():
        return fallback.resolve()
    return None


def default_output_dir(
    expert_name: str, *, now: dt.datetime | None = None, base: Path = Path("output")
) -> Path:
    """``output/<expert>-<UTC timestamp>/``: one folder per run, never overwritten."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    folder = base / f"{expert_name}-{moment.strftime('%Y%m%dT%H%M%SZ')}"
    candidate, counter = folder, 1
    while candidate.exists():
        counter += 1
        candidate = folder.with_name(f"{folder.name}-{counter}")
    return candidate
