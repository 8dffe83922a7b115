"""Load a user's expert file without running its ``if __name__ == "__main__":`` block.

The one loader of the project: the CLI, the optimiser's worker processes, the supervisor's
worker and the Prefect tasks all load expert files here, with the same rules and the same
errors (``ExpertLoadError``, a ``ConfigurationError`` that names the file).

The file is executed as a module under a private name (never ``"__main__"``), so the
expert's own ``expert.run(...)`` at the bottom stays dormant and the caller decides how to
run it. The module's directory is put on ``sys.path`` so that an expert can import its
sibling helper modules, as it could when run with ``python file.py``. The expert is the
module-level object named ``variable``, else the one expert instance of the file (aliases of
one instance count once). An expert is an instance of ``expert_type`` when given, else any
object holding a ``HandlerRegistry`` as ``handlers`` with a ``run`` method (the MetaExpert
facade sits above this layer, so it is recognised by what it has).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from metaexpert.core.errors import ConfigurationError
from metaexpert.engine.handlers import HandlerRegistry

__all__ = [
    "ExpertLoadError",
    "LoadedExpert",
    "find_expert",
    "is_expert",
    "load_expert",
    "load_module",
]


class ExpertLoadError(ConfigurationError):
    """The expert file cannot be used: missing, not Python, fails to import, no expert in it."""


@dataclass(frozen=True, slots=True)
class LoadedExpert:
    """The expert instance found in a file, with the module it lives in."""

    path: Path
    module: ModuleType
    variable: str
    expert: Any

    @property
    def name(self) -> str:
        """A file-system-safe name for outputs: the file's stem."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.path.stem) or "expert"


def is_expert(value: Any, expert_type: type | None = None) -> bool:
    """Whether ``value`` is an expert instance (see the module docstring)."""
    if expert_type is not None:
        return isinstance(value, expert_type)
    return (
        not isinstance(value, type)
        and isinstance(getattr(value, "handlers", None), HandlerRegistry)
        and callable(getattr(value, "run", None))
    )


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"metaexpert_user_{stem}_{digest}"


def load_module(path: str | Path) -> ModuleType:
    """Execute ``path`` as a fresh module (not ``__main__``) and return it."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ExpertLoadError(f"expert file not found: {file}")
    if not file.is_file():
        raise ExpertLoadError(f"expert path is not a file: {file}")
    if file.suffix != ".py":
        raise ExpertLoadError(f"expert file must be a Python file ending in .py: {file}")
    file = file.resolve()
    name = _module_name(file)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ExpertLoadError(f"cannot load {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise ExpertLoadError(
            f"{file.name} line {error.lineno}: syntax error: {error.msg}"
        ) from error
    except Exception as error:
        sys.modules.pop(name, None)
        where = _innermost_line_in(file, error)
        raise ExpertLoadError(
            f"importing {file.name} failed{where}: {type(error).__name__}: {error}"
        ) from error
    return module


def _innermost_line_in(file: Path, error: BaseException) -> str:
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == file
    ]
    return f" at line {frames[-1].lineno}" if frames else ""


def find_expert(
    module: ModuleType,
    expert_type: type | None = None,
    *,
    path: Path | None = None,
    variable: str | None = None,
) -> LoadedExpert:
    """The expert named ``variable``, else the single expert instance defined at module level in ``module``."""
    file = path or Path(getattr(module, "__file__", module.__name__))
    kind = expert_type.__name__ if expert_type is not None else "MetaExpert"
    if variable is not None:
        if not hasattr(module, variable):
            raise ExpertLoadError(f"{file.name} has no variable {variable!r}")
        value = getattr(module, variable)
        if not is_expert(value, expert_type):
            raise ExpertLoadError(
                f"{file.name}: {variable!r} is a {type(value).__name__}, not a {kind}"
            )
        return LoadedExpert(path=file, module=module, variable=variable, expert=value)
    found: dict[int, tuple[str, Any]] = {}
    for name, value in vars(module).items():
        if is_expert(value, expert_type) and id(value) not in found:
            found[id(value)] = (name, value)
    if not found:
        raise ExpertLoadError(
            f"{file.name} defines no {kind} instance at module level; "
            f'create one, e.g. expert = {kind}(exchange="binance")'
        )
    if len(found) > 1:
        names = ", ".join(sorted(name for name, _ in found.values()))
        raise ExpertLoadError(
            f"{file.name} defines {len(found)} {kind} instances ({names}); "
            "keep exactly one per file (or name the one to use)"
        )
    ((name, expert),) = found.values()
    return LoadedExpert(path=file, module=module, variable=name, expert=expert)


def load_expert(
    path: str | Path,
    *,
    expert_type: type | None = None,
    variable: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> LoadedExpert:
    """Load ``path`` and return its expert (see ``load_module``, ``find_expert``); ``overrides``
    change constructor settings, validated like the constructor (``MetaExpert.reconfigure``)."""
    module = load_module(path)
    loaded = find_expert(module, expert_type, path=Path(module.__file__ or path), variable=variable)
    if overrides:
        reconfigure = getattr(loaded.expert, "reconfigure", None)
        if reconfigure is None:
            raise ExpertLoadError(
                f"{loaded.path.name}: {type(loaded.expert).__name__} takes no setting overrides"
            )
        reconfigure(**overrides)
    return loaded
