"""Flow parameters the Prefect run form explains: descriptions written once, on the type.

Flows declare ``name: Annotated[type, Field(description=...)]`` (pydantic validates the
constraints). Prefect 3.9 builds the run form's descriptions from the docstring's ``Args:``
section only and drops a ``Field`` description, so ``document_parameters`` writes that section
from the ``Field`` descriptions (apply it under ``@flow``).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def parameter_descriptions(function: Callable[..., Any]) -> dict[str, str]:
    """``{parameter: description}`` from the ``Field`` metadata of ``Annotated`` parameters."""
    hints = typing.get_type_hints(function, include_extras=True)
    descriptions = {}
    for name in inspect.signature(function).parameters:
        for metadata in getattr(hints.get(name), "__metadata__", ()):
            description = getattr(metadata, "description", None)
            if description:
                descriptions[name] = " ".join(str(description).split())
    return descriptions


def document_parameters(function: F) -> F:
    """Append a Google-style ``Args:`` section built from the parameters' ``Field`` descriptions."""
    descriptions = parameter_descriptions(function)
    if descriptions:
        lines = [f"    {name}: {text}" for name, text in descriptions.items()]
        function.__doc__ = (
            (inspect.getdoc(function) or "").rstrip() + "\n\nArgs:\n" + "\n".join(lines) + "\n"
        )
    return function
