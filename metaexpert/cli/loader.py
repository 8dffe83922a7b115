"""Load a user's expert file without running its ``if __name__ == "__main__":`` block.

The file is executed as a module under a private name (never ``"__main__"``), so the
expert's own ``expert.run(...)`` at the bottom stays dormant and the CLI decides how to
run it. The module's directory is put on ``sys.path`` so that an expert can import its
sibling helper modules, as it could when run with ``python file.py``.
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

from metaexpert.cli.errors import ExpertLoadError

__all__ = ["LoadedExpert", "find_expert", "load_expert", "load_module", "resolve_expert_type"]


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


def resolve_expert_type() -> type:
    """The ``MetaExpert`` class; a clear error when the facade is not importable."""
    try:
        from metaexpert.expert import MetaExpert
    except ImportError as error:
        raise ExpertLoadError(
            f"the MetaExpert facade cannot be imported ({error}); reinstall metaexpert"
        ) from error
    return MetaExpert


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
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename) == file]
    return f" at line {frames[-1].lineno}" if frames else ""


def find_expert(module: ModuleType, expert_type: type, *, path: Path | None = None) -> LoadedExpert:
    """The single ``expert_type`` instance defined at module level in ``module``."""
    found: dict[int, tuple[str, Any]] = {}
    for variable, value in vars(module).items():
        if isinstance(value, expert_type) and id(value) not in found:
            found[id(value)] = (variable, value)
    file = path or Path(getattr(module, "__file__", module.__name__))
    if not found:
        raise ExpertLoadError(
            f"{file.name} defines no {expert_type.__name__} instance at module level; "
            f"create one, e.g. expert = {expert_type.__name__}(exchange=\"binance\")"
        )
    if len(found) > 1:
        names = ", ".join(sorted(variable for variable, _ in found.values()))
        raise ExpertLoadError(
            f"{file.name} defines {len(found)} {expert_type.__name__} instances ({names}); "
            "keep exactly one per file"
        )
    ((variable, expert),) = found.values()
    return LoadedExpert(path=file, module=module, variable=variable, expert=expert)


def load_expert(path: str | Path, *, expert_type: type | None = None) -> LoadedExpert:
    """Load ``path`` and return its one expert instance (see ``load_module``, ``find_expert``)."""
    expert_type = expert_type or resolve_expert_type()
    module = load_module(path)
    return find_expert(module, expert_type, path=Path(module.__file__ or path))
