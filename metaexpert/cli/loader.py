"""The CLI's view of the one expert loader (``metaexpert.engine.loader``).

Only the choice of the expert class is the CLI's: the ``MetaExpert`` facade (replaceable in
tests through ``resolve_expert_type``). Rules and errors are the loader's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metaexpert.engine.loader import ExpertLoadError, LoadedExpert, find_expert, load_module
from metaexpert.engine.loader import load_expert as _load_expert

__all__ = ["LoadedExpert", "find_expert", "load_expert", "load_module", "resolve_expert_type"]


def resolve_expert_type() -> type:
    """The ``MetaExpert`` class; a clear error when the facade is not importable."""
    try:
        from metaexpert.expert import MetaExpert
    except ImportError as error:
        raise ExpertLoadError(
            f"the MetaExpert facade cannot be imported ({error}); reinstall metaexpert"
        ) from error
    return MetaExpert


def load_expert(
    path: str | Path, *, expert_type: type | None = None, overrides: dict[str, Any] | None = None
) -> LoadedExpert:
    """Load the expert file ``path`` (see ``metaexpert.engine.loader.load_expert``)."""
    return _load_expert(path, expert_type=expert_type or resolve_expert_type(), overrides=overrides)
